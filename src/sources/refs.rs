//! Which references of extracted tasks are this repository's issues, and
//! the titles of the others, read through `gh`. The references themselves
//! are GitHub's ([`crate::forge::refs`]).

pub use crate::forge::refs::{Kind, Reference, STATUS_KEY, of_status, repo_of_url};

use super::Extracted;
use crate::error::Error;
use crate::forge::{Gh, INSTALL_ADVICE};

/// Where the repository po runs in comes from.
pub enum Local {
    /// Known: `owner/repo` (from the master issue's URL).
    Known(String),
    /// Ask `gh repo view` if a reference names a repository.
    Ask,
}

/// Decide which references of `ex` are this repository's issues (their
/// tasks get `sub_issue`), and read the titles of the others through `gh`
/// where the item gives none (a failure only leaves the reference as the
/// title). Notes say what was kept as a link, and why.
pub fn resolve(ex: &mut Extracted, gh: &Gh, local: Local) {
    let named_repo = ex
        .tasks
        .iter()
        .any(|t| t.reference.as_ref().is_some_and(|r| r.repo.is_some()));
    let local = match local {
        Local::Known(r) => Some(r),
        Local::Ask if named_repo => match gh.repo_name() {
            Ok(r) => Some(r),
            Err(e) => {
                ex.notes.push(format!(
                    "The repository po-parse runs in is unknown ({}): `owner/repo#N` and issue \
                     URLs are kept as links and never closed; only a bare `#N` names an issue of \
                     this repository",
                    gist(&e)
                ));
                None
            }
        },
        Local::Ask => None,
    };
    let mut elsewhere = Vec::new();
    let mut unread: Option<String> = None;
    let mut gh_usable = true;
    for t in &mut ex.tasks {
        let Some(r) = t.reference.as_mut() else {
            continue;
        };
        if let Some(n) = r.local_issue(local.as_deref()) {
            t.sub_issue = Some(n);
            continue;
        }
        if !r.is_local(local.as_deref()) {
            elsewhere.push(r.to_string());
        }
        // Without its own words, the item's title is the reference: read the
        // referenced issue's title.
        let Some(repo) = r.repo.clone().or_else(|| local.clone()) else {
            continue;
        };
        if t.title != r.to_string() || !gh_usable {
            continue;
        }
        match gh.title_in(&repo, r.number, r.kind == Kind::Pull) {
            Ok(title) if !title.trim().is_empty() => {
                let title = crate::text::one_line(title.trim());
                t.title = title.clone();
                r.title = Some(title);
            }
            Ok(_) => {}
            Err(e) => {
                if e.to_string().contains(INSTALL_ADVICE) {
                    gh_usable = false;
                }
                unread.get_or_insert_with(|| format!("{r}: {}", gist(&e)));
            }
        }
    }
    if !elsewhere.is_empty() {
        const SHOWN: usize = 5;
        let mut list: Vec<String> = elsewhere.iter().take(SHOWN).cloned().collect();
        if elsewhere.len() > SHOWN {
            list.push(format!("and {} more", elsewhere.len() - SHOWN));
        }
        ex.notes.push(format!(
            "{} to other repositories {} kept as links (`Refs …`) and never closed: {}",
            if elsewhere.len() == 1 {
                "1 reference".to_string()
            } else {
                format!("{} references", elsewhere.len())
            },
            if elsewhere.len() == 1 { "is" } else { "are" },
            list.join(", ")
        ));
    }
    if let Some(why) = unread {
        ex.notes.push(format!(
            "Some referenced titles could not be read, so the reference is the title ({why})"
        ));
    }
}

/// gh's message without the advice po adds.
fn gist(e: &Error) -> String {
    let s = match e {
        Error::Gh { detail, .. } => detail.clone(),
        other => other.to_string(),
    };
    s.split("; ").next().unwrap_or(&s).trim().to_string()
}
