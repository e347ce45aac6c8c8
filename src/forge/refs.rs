//! References to GitHub issues and pull requests, as GitHub links them, and
//! which of them are a repository's.
//!
//! A task item that opens with a reference names existing work: `#12`,
//! `owner/repo#12`, or a URL `https://github.com/owner/repo/issues/12` (or
//! `/pull/12`). Only a reference to the repository po runs in can be a
//! sub-issue, whose pull request says `Closes #12`: a bare `#12` always is one;
//! `owner/repo#12` and URLs are when `owner/repo` is that repository (known
//! from the master issue's URL or `gh repo view`), and never when it is
//! unknown. A reference elsewhere is kept as a link (`Refs owner/repo#12`) and
//! never closed; a pull request is never a sub-issue.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The key of a task's reference in its status file (a field the schema
/// keeps as an unknown one).
pub const STATUS_KEY: &str = "reference";

/// What a reference points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `/issues/N` in a URL.
    Issue,
    /// `/pull/N` in a URL.
    Pull,
    /// `#N` or `owner/repo#N`: an issue or a pull request.
    Either,
}

/// `#12`, `owner/repo#12`, or an issue or pull-request URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// `owner/repo` as written; `None` for a bare `#N`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub repo: Option<String>,
    pub number: u64,
    pub kind: Kind,
    /// The title of the issue it names, when `gh` could read it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub title: Option<String>,
}

impl Reference {
    fn new(repo: Option<&str>, number: u64, kind: Kind) -> Reference {
        Reference {
            repo: repo.map(str::to_string),
            number,
            kind,
            title: None,
        }
    }

    /// Whether it names an issue or pull request of `local` (`owner/repo`,
    /// `None` when the repository is unknown: then only a bare `#N` does).
    pub fn is_local(&self, local: Option<&str>) -> bool {
        match (&self.repo, local) {
            (None, _) => true,
            (Some(r), Some(l)) => r.eq_ignore_ascii_case(l),
            (Some(_), None) => false,
        }
    }

    /// The issue of this repository that a pull request for the task may
    /// close: a local reference that is not to a pull request.
    pub fn local_issue(&self, local: Option<&str>) -> Option<u64> {
        (self.kind != Kind::Pull && self.is_local(local)).then_some(self.number)
    }

    /// `https://github.com/owner/repo/issues/N` (`/pull/N`), when the
    /// repository is named.
    pub fn url(&self) -> Option<String> {
        let repo = self.repo.as_deref()?;
        let what = if self.kind == Kind::Pull {
            "pull"
        } else {
            "issues"
        };
        Some(format!("https://github.com/{repo}/{what}/{}", self.number))
    }

    /// The reference at the start of `text` and the text after it.
    pub fn at_start(text: &str) -> Option<(Reference, &str)> {
        let t = text.trim_start();
        let end = t
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | ']' | ',' | ';'))
            .unwrap_or(t.len());
        let (word, rest) = t.split_at(end);
        let word = word.trim_end_matches([':', '.']);
        let r = Reference::parse(word)?;
        let rest = rest
            .trim_start()
            .trim_start_matches([':', '-', '–', '—'])
            .trim_start();
        Some((r, rest))
    }

    /// One whole reference: `#12`, `owner/repo#12`, or a URL.
    pub fn parse(word: &str) -> Option<Reference> {
        if let Some(r) = Reference::from_url(word) {
            return Some(r);
        }
        let (repo, digits) = word.split_once('#')?;
        let number = number(digits)?;
        if repo.is_empty() {
            return Some(Reference::new(None, number, Kind::Either));
        }
        valid_repo(repo).then(|| Reference::new(Some(repo), number, Kind::Either))
    }

    /// `https://github.com/owner/repo/issues/12` (also `/pull/12`, with a
    /// `#fragment`, `?query` or a trailing path such as `/files`).
    pub fn from_url(url: &str) -> Option<Reference> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))?;
        let rest = rest
            .strip_prefix("github.com/")
            .or_else(|| rest.strip_prefix("www.github.com/"))?;
        let mut parts = rest.splitn(5, '/');
        let (owner, repo, what, tail) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let kind = match what {
            "issues" => Kind::Issue,
            "pull" => Kind::Pull,
            _ => return None,
        };
        let digits = tail.split(['#', '?']).next().unwrap_or("");
        let number = number(digits)?;
        let name = format!("{owner}/{repo}");
        valid_repo(&name).then(|| Reference::new(Some(&name), number, kind))
    }
}

impl fmt::Display for Reference {
    /// `#12` or `owner/repo#12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repo {
            Some(r) => write!(f, "{r}#{}", self.number),
            None => write!(f, "#{}", self.number),
        }
    }
}

fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&n| n > 0)
}

/// `owner/repo` as GitHub allows the names.
fn valid_repo(name: &str) -> bool {
    let Some((owner, repo)) = name.split_once('/') else {
        return false;
    };
    let owner_ok = (1..=39).contains(&owner.len())
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !owner.starts_with('-');
    let repo_ok = (1..=100).contains(&repo.len())
        && repo
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && repo != "."
        && repo != "..";
    owner_ok && repo_ok
}

/// `owner/repo` of an issue or pull-request URL.
pub fn repo_of_url(url: &str) -> Option<String> {
    Reference::from_url(url).and_then(|r| r.repo)
}

/// The reference recorded in a status file's unknown fields, if any.
pub fn of_status(extra: &serde_json::Map<String, serde_json::Value>) -> Option<Reference> {
    serde_json::from_value(extra.get(STATUS_KEY)?.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_read_in_every_form_github_links() {
        let r = Reference::parse("#12").unwrap();
        assert_eq!(
            (r.repo.as_deref(), r.number, r.kind),
            (None, 12, Kind::Either)
        );
        let r = Reference::parse("pytorch/pytorch#93584").unwrap();
        assert_eq!(r.repo.as_deref(), Some("pytorch/pytorch"));
        assert_eq!(r.to_string(), "pytorch/pytorch#93584");
        let r =
            Reference::parse("https://github.com/pyg-team/pytorch_geometric/issues/8128").unwrap();
        assert_eq!(r.to_string(), "pyg-team/pytorch_geometric#8128");
        assert_eq!(r.kind, Kind::Issue);
        let r = Reference::parse("https://github.com/NVIDIA/cutlass/pull/1121#event-10532195900")
            .unwrap();
        assert_eq!((r.number, r.kind), (1121, Kind::Pull));
        assert_eq!(
            r.url().unwrap(),
            "https://github.com/NVIDIA/cutlass/pull/1121"
        );
        for not in [
            "#",
            "#x",
            "#0",
            "a/b/c#1",
            "-x/y#1",
            "https://gitlab.com/o/r/issues/1",
            "https://github.com/o/r/wiki/1",
            "https://github.com/o/r/issues/",
            "issue#1 ",
        ] {
            assert_eq!(Reference::parse(not), None, "{not}");
        }
    }

    #[test]
    fn only_this_repositorys_issues_are_local() {
        let here = Some("owner/repo");
        let bare = Reference::parse("#5").unwrap();
        assert_eq!(bare.local_issue(here), Some(5));
        assert_eq!(bare.local_issue(None), Some(5));
        let same = Reference::parse("Owner/Repo#5").unwrap();
        assert_eq!(same.local_issue(here), Some(5));
        assert_eq!(same.local_issue(None), None, "unknown: not ours");
        let other = Reference::parse("https://github.com/org/other/issues/8128").unwrap();
        assert_eq!(other.local_issue(here), None);
        let pr = Reference::parse("https://github.com/owner/repo/pull/7").unwrap();
        assert!(pr.is_local(here));
        assert_eq!(pr.local_issue(here), None, "a pull request is never closed");
    }

    #[test]
    fn the_text_after_a_reference_is_kept() {
        let (r, rest) = Reference::at_start("#124: Add tests").unwrap();
        assert_eq!((r.number, rest), (124, "Add tests"));
        let (r, rest) = Reference::at_start("pytorch/pytorch#93586 (@yanboliang)").unwrap();
        assert_eq!((r.number, rest), (93586, "(@yanboliang)"));
        assert_eq!(Reference::at_start("Fix #12 now"), None);
        assert_eq!(
            repo_of_url("https://github.com/owner/repo/issues/1234").as_deref(),
            Some("owner/repo")
        );
    }
}
