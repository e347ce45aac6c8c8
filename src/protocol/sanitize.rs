//! Names made from untrusted text (issue titles, manifest ids, `--id`).
//!
//! Nothing from task text reaches the filesystem or git as given: ids keep only
//! `[A-Za-z0-9._-]`, never start with `-` or `.`, never contain `..`, and are
//! bounded in length; branch components keep only `[A-Za-z0-9_-]`.

use crate::error::{Error, Result};

const MAX_ID: usize = 64;

fn squeeze(raw: &str, keep: impl Fn(char) -> bool, max: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max));
    let mut dash = false;
    for c in raw.chars() {
        let c = if keep(c) { c } else { '-' };
        if c == '-' {
            if !dash && !out.is_empty() {
                out.push('-');
            }
            dash = true;
        } else if c == '.' && out.ends_with('.') {
            // never `..`
        } else {
            out.push(c);
            dash = false;
        }
        if out.len() >= max {
            break;
        }
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '.');
    let trimmed = trimmed.strip_suffix(".lock").unwrap_or(trimmed);
    trimmed.trim_matches(|c| c == '-' || c == '.').to_string()
}

/// An orchestration id safe as a directory name and inside a branch name.
pub fn id(raw: &str) -> Result<String> {
    let out = squeeze(
        raw,
        |c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-',
        MAX_ID,
    );
    if out.is_empty() {
        return Err(Error::usage(format!(
            "use {raw:?} as an orchestration id: nothing usable is left after removing characters \
             outside [A-Za-z0-9._-]; pass --id with letters or digits"
        )));
    }
    Ok(out)
}

/// A branch-name component: `[A-Za-z0-9_-]`, no leading `-`.
pub fn branch_component(raw: &str) -> String {
    let out = squeeze(
        raw,
        |c| c.is_ascii_alphanumeric() || c == '_' || c == '-',
        MAX_ID,
    );
    if out.is_empty() { "x".into() } else { out }
}

/// A lowercase slug for file names made from titles.
pub fn slug(raw: &str, max: usize) -> String {
    let lower = raw.to_ascii_lowercase();
    squeeze(&lower, |c| c.is_ascii_alphanumeric(), max)
}

/// The branch of agent `n`: `feat/issue-<sub-issue>-agent-<n>` when the task
/// has a sub-issue, else named after the orchestration ([`branch_prefix`]).
pub fn branch_name(id: &str, sub_issue: Option<u64>, n: u64) -> String {
    match sub_issue {
        Some(sub) => format!("feat/issue-{sub}-agent-{n}"),
        None => format!("{}-agent-{n}", branch_prefix(id)),
    }
}

/// `feat/issue-1234` for an orchestration named by its issue number,
/// `feat/<id>` for any other id (`feat/TS-0042`, `feat/plan`): a markdown
/// file `issue.md` gives `feat/issue-agent-1`, not `feat/issue-issue-agent-1`.
pub fn branch_prefix(id: &str) -> String {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        format!("feat/issue-{id}")
    } else {
        format!("feat/{}", branch_component(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_ids_are_tamed() {
        for (raw, want) in [
            ("../../etc", "etc"),
            ("/", ""),
            ("a\0b", "a-b"),
            ("--force", "force"),
            ("x\n\x1b[31m", "x-31m"),
            ("TS-0042", "TS-0042"),
            ("1234", "1234"),
            ("a..b", "a.b"),
            ("name.lock", "name"),
        ] {
            match id(raw) {
                Ok(got) => assert_eq!(got, want, "{raw:?}"),
                Err(_) => assert_eq!(want, "", "{raw:?}"),
            }
        }
    }

    #[test]
    fn branch_names_use_sub_issue_or_id() {
        assert_eq!(
            branch_name("1234", Some(1235), 1),
            "feat/issue-1235-agent-1"
        );
        assert_eq!(branch_name("1234", None, 2), "feat/issue-1234-agent-2");
        assert_eq!(branch_name("TS.0042", None, 2), "feat/TS-0042-agent-2");
        assert_eq!(branch_name("@{x}", None, 3), "feat/x-agent-3");
        // A markdown file named issue.md: the word is not doubled.
        assert_eq!(branch_name("issue", None, 1), "feat/issue-agent-1");
        assert_eq!(branch_name("issue", Some(7), 1), "feat/issue-7-agent-1");
    }
}
