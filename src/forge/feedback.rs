//! What a pull request got back, through `gh`: its head, checks, reviews,
//! inline review comments and mergeability, the failed runs' logs, and who
//! may write to the repository; and the notes po leaves on it (a comment, a
//! label).
//!
//! Calls per pull request and pass (the rest of po-react is local git):
//! `gh pr view --json …` (one GraphQL call) and `gh api …/pulls/N/comments`
//! (one REST call a page of 100); then only when there is something to
//! answer: one `gh api …/collaborators/LOGIN/permission` per reviewer (once
//! per po-react process), one `gh run view RUN --log-failed` per failed run,
//! and `gh pr comment` after a round.

use serde::Deserialize;

use super::Gh;
use crate::error::{Error, Result};

/// The `--json` fields po-react reads (each one `gh pr view` knows).
pub const PR_FIELDS: &str = "number,state,url,headRefName,headRefOid,baseRefName,mergeable,\
                             mergeStateStatus,reviews,statusCheckRollup,labels";

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Login {
    #[serde(default)]
    pub login: String,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Oid {
    #[serde(default)]
    pub oid: String,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Named {
    #[serde(default)]
    pub name: String,
}

/// A review, as `gh pr view --json reviews` gives it.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub author: Option<Login>,
    /// `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED`, `PENDING`.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub submitted_at: Option<String>,
    #[serde(default)]
    pub commit: Option<Oid>,
}

/// One entry of `statusCheckRollup`: a check run (GitHub Actions and other
/// apps) or a commit status.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    #[serde(default, rename = "__typename")]
    pub typename: String,
    /// A check run's name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub workflow_name: Option<String>,
    /// A check run's `QUEUED`, `IN_PROGRESS`, `COMPLETED`, …
    #[serde(default)]
    pub status: Option<String>,
    /// A completed check run's `SUCCESS`, `FAILURE`, `TIMED_OUT`, …
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub details_url: Option<String>,
    /// A commit status's context and state (`PENDING`, `SUCCESS`, `FAILURE`, `ERROR`).
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub target_url: Option<String>,
}

impl Check {
    pub fn label(&self) -> String {
        let name = self
            .name
            .clone()
            .or_else(|| self.context.clone())
            .unwrap_or_else(|| "check".into());
        match self.workflow_name.as_deref().filter(|w| !w.is_empty()) {
            Some(w) if w != name => format!("{w} / {name}"),
            _ => name,
        }
    }

    /// Still running (or waiting to).
    pub fn pending(&self) -> bool {
        match self.typename.as_str() {
            "StatusContext" => matches!(self.state.as_deref(), Some("PENDING" | "EXPECTED")),
            _ => self.status.as_deref().is_some_and(|s| s != "COMPLETED"),
        }
    }

    /// Finished and failed.
    pub fn failed(&self) -> bool {
        match self.typename.as_str() {
            "StatusContext" => matches!(self.state.as_deref(), Some("FAILURE" | "ERROR")),
            _ => {
                !self.pending()
                    && matches!(
                        self.conclusion.as_deref(),
                        Some(
                            "FAILURE"
                                | "TIMED_OUT"
                                | "CANCELLED"
                                | "ACTION_REQUIRED"
                                | "STARTUP_FAILURE"
                        )
                    )
            }
        }
    }

    /// The Actions run it belongs to (`…/actions/runs/RUN/job/JOB`).
    pub fn run_id(&self) -> Option<u64> {
        let url = self.details_url.as_deref().or(self.target_url.as_deref())?;
        let (_, rest) = url.split_once("/actions/runs/")?;
        rest.split('/').next()?.parse().ok()
    }
}

/// `gh pr view N --json` [`PR_FIELDS`].
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PullState {
    pub number: u64,
    /// `OPEN`, `CLOSED`, `MERGED`.
    pub state: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub head_ref_name: String,
    #[serde(default)]
    pub head_ref_oid: String,
    #[serde(default)]
    pub base_ref_name: String,
    /// `MERGEABLE`, `CONFLICTING`, `UNKNOWN` (GitHub has not computed it yet).
    #[serde(default)]
    pub mergeable: String,
    #[serde(default)]
    pub merge_state_status: String,
    #[serde(default)]
    pub reviews: Vec<Review>,
    #[serde(default)]
    pub status_check_rollup: Vec<Check>,
    #[serde(default)]
    pub labels: Vec<Named>,
}

/// An inline review comment (`gh api repos/O/R/pulls/N/comments`).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ReviewComment {
    pub id: u64,
    #[serde(default)]
    pub user: Option<Login>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub original_line: Option<u64>,
    #[serde(default)]
    pub commit_id: Option<String>,
    #[serde(default)]
    pub in_reply_to_id: Option<u64>,
}

/// A GitHub login po may put in an API path: letters, digits and `-`
/// (and an app's `[bot]` suffix); anything else is nobody's.
pub fn safe_login(login: &str) -> bool {
    let core = login.strip_suffix("[bot]").unwrap_or(login);
    !core.is_empty()
        && core.len() <= 39
        && !core.starts_with('-')
        && core.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl Gh {
    /// The pull request's head, checks, reviews and mergeability.
    pub fn pr_feedback(&self, number: u64) -> Result<PullState> {
        let n = number.to_string();
        let out = self.run(&["pr", "view", &n, "--json", PR_FIELDS])?;
        serde_json::from_str(&out)
            .map_err(|e| Error::gh(format!("pr view {n}"), format!("unexpected output: {e}")))
    }

    /// Every inline review comment of pull request `number`, oldest first.
    pub fn review_comments(&self, number: u64) -> Result<Vec<ReviewComment>> {
        let endpoint = format!("repos/{{owner}}/{{repo}}/pulls/{number}/comments?per_page=100");
        let out = self.run(&["api", "--paginate", &endpoint])?;
        // `--paginate` prints one JSON array a page.
        let mut all = Vec::new();
        for page in serde_json::Deserializer::from_str(&out).into_iter::<Vec<ReviewComment>>() {
            all.extend(page.map_err(|e| {
                Error::gh(
                    format!("api pulls/{number}/comments"),
                    format!("unexpected output: {e}"),
                )
            })?);
        }
        Ok(all)
    }

    /// Whether `login` may write to the repository (admin, maintain or
    /// write); no for a login that is not a collaborator.
    pub fn can_write(&self, login: &str) -> Result<bool> {
        #[derive(Deserialize)]
        struct Permission {
            #[serde(default)]
            permission: String,
            #[serde(default)]
            role_name: String,
        }
        if !safe_login(login) {
            return Ok(false);
        }
        let endpoint = format!("repos/{{owner}}/{{repo}}/collaborators/{login}/permission");
        let out = match self.run(&["api", &endpoint]) {
            Ok(out) => out,
            Err(Error::Gh { detail, .. }) if detail.contains("404") => return Ok(false),
            Err(e) => return Err(e),
        };
        let p: Permission = serde_json::from_str(&out).map_err(|e| {
            Error::gh(
                format!("api collaborators/{login}/permission"),
                format!("unexpected output: {e}"),
            )
        })?;
        Ok(
            matches!(p.permission.as_str(), "admin" | "maintain" | "write")
                || matches!(p.role_name.as_str(), "admin" | "maintain" | "write"),
        )
    }

    /// The log lines of the failed jobs of Actions run `run`.
    pub fn run_log_failed(&self, run: u64) -> Result<String> {
        let r = run.to_string();
        self.run(&["run", "view", &r, "--log-failed"])
    }

    /// `gh pr comment N --body BODY`; the new comment's URL.
    pub fn pr_comment(&self, number: u64, body: &str) -> Result<String> {
        self.comment("pr", number, body)
    }

    /// Put `label` on pull request `number`, creating the label first.
    pub fn pr_add_label(&self, number: u64, label: &super::labels::Label) -> Result<()> {
        self.label_create(label)?;
        let n = number.to_string();
        self.run(&["pr", "edit", &n, "--add-label", label.name])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_read_as_gh_gives_them() {
        let state: PullState = serde_json::from_str(
            r#"{"number":7,"state":"OPEN","headRefOid":"abc","mergeable":"CONFLICTING",
            "statusCheckRollup":[
              {"__typename":"CheckRun","name":"test","workflowName":"CI","status":"COMPLETED",
               "conclusion":"FAILURE","detailsUrl":"https://github.com/o/r/actions/runs/42/job/9"},
              {"__typename":"CheckRun","name":"lint","status":"IN_PROGRESS","conclusion":""},
              {"__typename":"StatusContext","context":"ci/other","state":"ERROR",
               "targetUrl":"https://ci.example/1"}]}"#,
        )
        .unwrap();
        let c = &state.status_check_rollup;
        assert!(c[0].failed() && !c[0].pending());
        assert_eq!(c[0].run_id(), Some(42));
        assert_eq!(c[0].label(), "CI / test");
        assert!(c[1].pending() && !c[1].failed());
        assert!(c[2].failed());
        assert_eq!(c[2].run_id(), None);
    }

    #[test]
    fn only_plain_logins_reach_an_api_path() {
        assert!(safe_login("octo-cat"));
        assert!(safe_login("dependabot[bot]"));
        assert!(!safe_login("../../orgs/x"));
        assert!(!safe_login("a/b"));
        assert!(!safe_login(""));
        assert!(!safe_login("-x"));
    }
}
