//! All GitHub traffic, through the `gh` CLI: argv only (never a shell), JSON
//! output where `gh` has it, one call at a time across processes (a `flock` on
//! `<runtime>/gh.lock`), retried with backoff when GitHub rate-limits.
//!
//! Every title and body po posts goes through [`mentions::quote`] here, in
//! the one place that posts: text copied from issues notifies no one again.

pub mod comment;
pub mod feedback;
pub mod labels;
pub mod mentions;
pub mod pr;
pub mod refs;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::protocol::store;

/// The advice the seed gives for each kind of `gh` failure.
pub const AUTH_ADVICE: &str = "check `gh auth status` (the token needs repo write access)";
pub const RATE_ADVICE: &str = "check `gh api rate_limit` and try again later";
pub const INSTALL_ADVICE: &str =
    "install GitHub CLI (https://cli.github.com), then run `gh auth login` and `gh auth status`";

#[derive(Clone, Debug)]
pub struct Gh {
    program: OsString,
    lock: Option<PathBuf>,
    retries: u32,
    backoff: Duration,
    cwd: Option<PathBuf>,
}

/// `gh issue view N --json number,title,body,url`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub url: String,
}

/// `gh pr view N --json state,number,headRefOid`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrState {
    pub number: u64,
    /// `OPEN`, `CLOSED` or `MERGED`.
    pub state: String,
    /// The commit the pull request's head branch had on GitHub.
    #[serde(default)]
    pub head_ref_oid: Option<String>,
}

/// A comment as `gh issue view N --json comments` gives it.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    /// `https://github.com/o/r/issues/7#issuecomment-123`
    pub url: String,
    #[serde(default)]
    pub body: String,
    /// Whether the logged-in user wrote it (and so may edit it).
    #[serde(default)]
    pub viewer_did_author: bool,
}

impl Comment {
    /// The number the REST API knows the comment by, from its URL.
    pub fn database_id(&self) -> Option<u64> {
        self.url.rsplit_once("#issuecomment-")?.1.parse().ok()
    }
}

impl Gh {
    /// `gh` from `PATH` (or `$PO_GH`), calls serialised on `<runtime root>/gh.lock`.
    pub fn new(runtime_root: Option<&Path>) -> Gh {
        let backoff_ms = std::env::var("PO_GH_BACKOFF_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        Gh {
            program: std::env::var_os("PO_GH").unwrap_or_else(|| "gh".into()),
            lock: runtime_root.map(|r| r.join("gh.lock")),
            retries: 4,
            backoff: Duration::from_millis(backoff_ms),
            cwd: None,
        }
    }

    /// Use `program` instead of `gh` / `$PO_GH` (tests, wrappers).
    pub fn with_program(mut self, program: impl Into<OsString>) -> Gh {
        self.program = program.into();
        self
    }

    /// Run calls in `dir` (so `gh` finds the repository there).
    /// Fail at once instead of backing off when rate limited (a check, not a
    /// task, is asking).
    pub fn no_retries(mut self) -> Gh {
        self.retries = 0;
        self
    }

    /// GitHub API calls left this hour (`gh api rate_limit`, core resource).
    pub fn rate_remaining(&self) -> Result<u64> {
        let out = self.run(&["api", "rate_limit"])?;
        serde_json::from_str::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v.pointer("/resources/core/remaining")?.as_u64())
            .ok_or_else(|| {
                Error::gh(
                    "api rate_limit",
                    "the answer has no resources.core.remaining",
                )
            })
    }

    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> Gh {
        self.cwd = Some(dir.into());
        self
    }

    /// Run `gh ARGS…`, return its stdout. Rate limits are retried with backoff.
    pub fn run<S: AsRef<str>>(&self, args: &[S]) -> Result<String> {
        self.run_with_input(args, None)
    }

    pub fn run_with_input<S: AsRef<str>>(&self, args: &[S], input: Option<&str>) -> Result<String> {
        let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
        let action = args.iter().take(2).copied().collect::<Vec<_>>().join(" ");
        let _guard = match &self.lock {
            Some(l) => {
                if let Some(parent) = l.parent() {
                    std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
                }
                Some(store::lock_exclusive(l)?)
            }
            None => None,
        };
        let mut delay = self.backoff;
        for attempt in 0..=self.retries {
            tracing::debug!(?args, attempt, "gh");
            let mut cmd = Command::new(&self.program);
            cmd.args(&args)
                .stdin(if input.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if let Some(dir) = &self.cwd {
                cmd.current_dir(dir);
            }
            let mut child = cmd.spawn().map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::gh(
                        &action,
                        format!("gh is not installed or not on PATH; {INSTALL_ADVICE}"),
                    )
                } else {
                    Error::gh(&action, format!("cannot start gh: {e}"))
                }
            })?;
            if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
                let _ = stdin.write_all(text.as_bytes());
            }
            let out = child
                .wait_with_output()
                .map_err(|e| Error::gh(&action, format!("gh did not finish: {e}")))?;
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let lower = stderr.to_lowercase();
            if lower.contains("rate limit") {
                if attempt < self.retries {
                    tracing::warn!(?delay, "GitHub rate limit; retrying `gh {action}`");
                    std::thread::sleep(delay);
                    delay *= 2;
                    continue;
                }
                return Err(Error::gh(&action, format!("{stderr}; {RATE_ADVICE}")));
            }
            let advice =
                if lower.contains("auth") || lower.contains("401") || lower.contains("token") {
                    AUTH_ADVICE
                } else {
                    "see the message above"
                };
            let first = stderr.lines().next().unwrap_or("gh exited with an error");
            return Err(Error::gh(&action, format!("{first}; {advice}")));
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// `owner/repo` of the repository `gh` works on here (`gh repo view`).
    pub fn repo_name(&self) -> Result<String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Repo {
            name_with_owner: String,
        }
        let out = self.run(&["repo", "view", "--json", "nameWithOwner"])?;
        serde_json::from_str::<Repo>(&out)
            .map(|r| r.name_with_owner)
            .map_err(|e| Error::gh("repo view", format!("unexpected output: {e}")))
    }

    /// The title of issue (or, with `pull`, pull request) `number` of
    /// `repo` (`owner/repo`).
    pub fn title_in(&self, repo: &str, number: u64, pull: bool) -> Result<String> {
        #[derive(Deserialize)]
        struct Titled {
            title: String,
        }
        let n = number.to_string();
        let what = if pull { "pr" } else { "issue" };
        let out = self.run(&[what, "view", &n, "--repo", repo, "--json", "title"])?;
        serde_json::from_str::<Titled>(&out)
            .map(|t| t.title)
            .map_err(|e| {
                Error::gh(
                    format!("{what} view {n}"),
                    format!("unexpected output: {e}"),
                )
            })
    }

    pub fn issue_view(&self, number: u64) -> Result<Issue> {
        let n = number.to_string();
        let out = self.run(&["issue", "view", &n, "--json", "number,title,body,url"])?;
        serde_json::from_str(&out)
            .map_err(|e| Error::gh(format!("issue view {n}"), format!("unexpected output: {e}")))
    }

    /// `gh issue create`; returns the new issue's number.
    pub fn issue_create(&self, title: &str, body: &str, labels: &[&str]) -> Result<u64> {
        let (title, body) = (mentions::quote(title), mentions::quote(body));
        let mut args = vec!["issue", "create", "--title", &title, "--body", &body];
        for l in labels {
            args.extend(["--label", l]);
        }
        let out = self.run(&args)?;
        number_from_url(&out).ok_or_else(|| {
            Error::gh(
                "issue create",
                format!("no issue URL in its output: {}", out.trim()),
            )
        })
    }

    /// `gh issue comment`; returns the new comment's URL.
    pub fn issue_comment(&self, number: u64, body: &str) -> Result<String> {
        self.comment("issue", number, body)
    }

    /// `gh KIND comment N --body BODY` (`issue` or `pr`), mentions quoted;
    /// the new comment's URL (the last line of gh's output that is one).
    pub(crate) fn comment(&self, kind: &str, number: u64, body: &str) -> Result<String> {
        let n = number.to_string();
        let body = mentions::quote(body);
        let out = self.run(&[kind, "comment", &n, "--body", &body])?;
        Ok(out
            .lines()
            .rev()
            .find(|l| l.contains("://"))
            .unwrap_or("")
            .trim()
            .to_string())
    }

    /// Every comment of issue `number`, oldest first.
    pub fn issue_comments(&self, number: u64) -> Result<Vec<Comment>> {
        #[derive(Deserialize)]
        struct Comments {
            comments: Vec<Comment>,
        }
        let n = number.to_string();
        let out = self.run(&["issue", "view", &n, "--json", "comments"])?;
        serde_json::from_str::<Comments>(&out)
            .map(|c| c.comments)
            .map_err(|e| Error::gh(format!("issue view {n}"), format!("unexpected output: {e}")))
    }

    /// Replace the body of comment `id` (`gh api`, PATCH).
    pub fn comment_edit(&self, id: u64, body: &str) -> Result<()> {
        let endpoint = format!("repos/{{owner}}/{{repo}}/issues/comments/{id}");
        let field = format!("body={}", mentions::quote(body));
        self.run(&["api", "--method", "PATCH", &endpoint, "-f", &field])?;
        Ok(())
    }

    /// `gh pr view SELECTOR --json state,number,headRefOid` (a number or a
    /// head branch): the pull request's state, `None` when there is none.
    pub fn pr_state(&self, selector: &str) -> Result<Option<PrState>> {
        let out = match self.run(&["pr", "view", selector, "--json", "state,number,headRefOid"]) {
            Ok(out) => out,
            Err(Error::Gh { detail, .. })
                if detail.contains("no pull requests found")
                    || detail.contains("Could not resolve to a PullRequest") =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        serde_json::from_str(&out).map(Some).map_err(|e| {
            Error::gh(
                format!("pr view {selector}"),
                format!("unexpected output: {e}"),
            )
        })
    }

    /// `gh label create NAME --force`: create the label, or update it.
    pub fn label_create(&self, label: &labels::Label) -> Result<()> {
        self.run(&[
            "label",
            "create",
            label.name,
            "--force",
            "--color",
            label.color,
            "--description",
            label.description,
        ])?;
        Ok(())
    }

    /// The open pull request from `head` into `base`, if there is one.
    pub fn pr_for_head(&self, head: &str, base: &str) -> Result<Option<(u64, String)>> {
        #[derive(Deserialize)]
        struct Pr {
            number: u64,
            url: String,
        }
        let out = self.run(&[
            "pr",
            "list",
            "--head",
            head,
            "--base",
            base,
            "--state",
            "open",
            "--json",
            "number,url",
        ])?;
        let prs: Vec<Pr> = serde_json::from_str(&out)
            .map_err(|e| Error::gh("pr list", format!("unexpected output: {e}")))?;
        Ok(prs.into_iter().next().map(|p| (p.number, p.url)))
    }

    /// `gh pr create`; returns the PR number and URL.
    pub fn pr_create(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<(u64, String)> {
        let (title, body) = (mentions::quote(title), mentions::quote(body));
        let out = self.run(&[
            "pr", "create", "--head", head, "--base", base, "--title", &title, "--body", &body,
        ])?;
        let url = out
            .lines()
            .rev()
            .find(|l| l.contains("://"))
            .unwrap_or("")
            .trim()
            .to_string();
        let n = number_from_url(&url).ok_or_else(|| {
            Error::gh(
                "pr create",
                format!("no pull-request URL in its output: {}", out.trim()),
            )
        })?;
        Ok((n, url))
    }
}

/// `https://github.com/o/r/issues/12` → 12.
pub fn number_from_url(out: &str) -> Option<u64> {
    out.split_whitespace()
        .rev()
        .find_map(|w| w.trim_end_matches('/').rsplit('/').next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_come_from_the_last_url() {
        assert_eq!(
            number_from_url("https://github.com/o/r/issues/12\n"),
            Some(12)
        );
        assert_eq!(
            number_from_url("Creating…\nhttps://github.com/o/r/pull/7"),
            Some(7)
        );
        assert_eq!(number_from_url("nothing"), None);
    }
}
