//! po's labels, and issues filed with them.
//!
//! `gh issue create --label X` refuses the whole call on a repository without
//! label X, so the labels are created first, once per run, with
//! `gh label create NAME --force` (which also works when they exist). Where
//! that is not allowed, the issues are filed without labels and the caller is
//! told once: an issue is never lost over a label.

use super::{AUTH_ADVICE, Gh, INSTALL_ADVICE, RATE_ADVICE};
use crate::error::{Error, Result};

/// A label po puts on the issues it files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label {
    pub name: &'static str,
    /// Six hex digits, no `#`.
    pub color: &'static str,
    pub description: &'static str,
}

/// Every issue of an orchestration: sub-issues and follow-up issues.
pub const ORCHESTRATION: Label = Label {
    name: "parallel-orchestration",
    color: "5319E7",
    description: "Part of a parallel agent orchestration (po)",
};

/// A sub-task of a master issue, run by one agent.
pub const SUB_ISSUE: Label = Label {
    name: "sub-issue",
    color: "C5DEF5",
    description: "A sub-task of a master issue, run by one agent (po)",
};

/// A pull request po-react stopped answering: a person takes it from here.
pub const NEEDS_PERSON: Label = Label {
    name: "po:needs-human",
    color: "B60205",
    description: "po-react stopped answering this pull request: a person takes it from here",
};

/// Files issues with `labels`, creating the labels before the first one.
pub struct IssueFiler<'g> {
    gh: &'g Gh,
    labels: Vec<Label>,
    /// Whether the labels can be used: unknown until the first issue.
    usable: Option<bool>,
    /// Told once when issues go without labels.
    tell: fn(&str),
}

impl<'g> IssueFiler<'g> {
    /// `tell` gets one line, once, if the issues have to go without labels.
    pub fn new(gh: &'g Gh, labels: &[Label], tell: fn(&str)) -> IssueFiler<'g> {
        IssueFiler {
            gh,
            labels: labels.to_vec(),
            usable: None,
            tell,
        }
    }

    /// The label names, for messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.labels.iter().map(|l| l.name).collect()
    }

    /// `gh issue create` with the labels when they can be had; the issue's number.
    pub fn create(&mut self, title: &str, body: &str) -> Result<u64> {
        if self.usable.is_none() {
            self.usable = Some(self.ensure_labels()?);
        }
        if self.usable == Some(false) {
            return self.gh.issue_create(title, body, &[]);
        }
        let names = self.names();
        match self.gh.issue_create(title, body, &names) {
            Err(Error::Gh { detail, .. }) if is_missing_label(&detail) => {
                self.unlabelled(&gist(&detail));
                self.gh.issue_create(title, body, &[])
            }
            other => other,
        }
    }

    /// Create (or update) every label; false when the repository refuses.
    fn ensure_labels(&mut self) -> Result<bool> {
        for label in &self.labels {
            match self.gh.label_create(label) {
                Ok(()) => {}
                Err(Error::Gh { detail, .. }) if !is_fatal(&detail) => {
                    self.unlabelled(&format!(
                        "`gh label create {}` was refused: {}",
                        label.name,
                        gist(&detail)
                    ));
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn unlabelled(&mut self, why: &str) {
        self.usable = Some(false);
        (self.tell)(&format!(
            "filing issues without the labels {} ({why})",
            self.names().join(", ")
        ));
    }
}

/// gh's refusal of an unknown label: `could not add label: 'X' not found`.
fn is_missing_label(detail: &str) -> bool {
    detail.contains("could not add label") && detail.contains("not found")
}

/// A failure no issue could get past either (no login, rate limit, no gh).
fn is_fatal(detail: &str) -> bool {
    [AUTH_ADVICE, RATE_ADVICE, INSTALL_ADVICE]
        .iter()
        .any(|advice| detail.contains(advice))
}

/// gh's message without the advice po appends.
fn gist(detail: &str) -> String {
    detail
        .split("; ")
        .next()
        .unwrap_or(detail)
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart_from_failures_no_issue_gets_past() {
        assert!(is_missing_label(
            "could not add label: 'sub-issue' not found; see the message above"
        ));
        assert!(!is_fatal(
            "HTTP 403: Resource not accessible by integration (https://api.github.com/repos/o/r/labels); see the message above"
        ));
        assert!(is_fatal(&format!(
            "HTTP 401: Bad credentials; {AUTH_ADVICE}"
        )));
        assert_eq!(
            gist("HTTP 403: Forbidden; see the message above"),
            "HTTP 403: Forbidden"
        );
        for l in [ORCHESTRATION, SUB_ISSUE] {
            assert!(l.color.len() == 6 && l.color.chars().all(|c| c.is_ascii_hexdigit()));
        }
    }
}
