//! What a task's pull request got back, read through `gh` (and local git for
//! the files that conflict): the failed checks on its head with an excerpt
//! of their logs, the review items of people with write access (and who
//! else spoke, ignored), and whether it still merges into its base.

use std::collections::HashMap;
use std::path::Path;

use crate::error::Result;
use crate::forge::Gh;
use crate::forge::feedback::{PullState, ReviewComment};
use crate::git;
use crate::protocol::reaction::{self, Reaction, Trigger};

/// At most this many characters of one run's failed log reach the prompt
/// (its end, where the failure is).
pub const LOG_EXCERPT_CHARS: usize = 6_000;
/// At most this many characters of failed logs in one prompt.
pub const LOGS_TOTAL_CHARS: usize = 16_000;
/// At most this many characters of one review item.
pub const ITEM_CHARS: usize = 4_000;

/// A check that failed on the head commit.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub check: String,
    pub run: Option<u64>,
}

/// A failed run's log, trimmed.
#[derive(Clone, Debug, PartialEq)]
pub struct Log {
    pub run: u64,
    pub excerpt: String,
    /// Lines cut from its start.
    pub cut: bool,
}

/// A review item: a review (asking for changes, or commenting) or an
/// inline comment on a line.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// `review:ID` or `comment:ID`.
    pub key: String,
    pub author: String,
    /// `CHANGES_REQUESTED`, `COMMENTED`; none for an inline comment.
    pub state: Option<String>,
    pub body: String,
    pub path: Option<String>,
    pub line: Option<u64>,
}

impl Item {
    /// `src/lib.rs:12`, `src/lib.rs`, or none.
    pub fn place(&self) -> Option<String> {
        let path = self.path.as_deref()?;
        Some(match self.line {
            Some(l) => format!("{path}:{l}"),
            None => path.to_string(),
        })
    }
}

/// Everything found on one pull request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    pub pr: PullState,
    /// Checks still running on the head.
    pub pending: Vec<String>,
    pub failed: Vec<Failure>,
    /// The failed runs' logs (read only when the failure is to be answered).
    pub logs: Vec<Log>,
    /// Review items of people with write access, not answered yet.
    pub items: Vec<Item>,
    /// Review items of people without write access: never instructions.
    pub ignored: Vec<Item>,
    /// The pull request does not merge into its base: the files that
    /// conflict (none known when git could not say).
    pub conflict: Option<Vec<String>>,
    /// The base's commit, fetched for the agent to merge.
    pub base_commit: Option<String>,
}

impl Found {
    pub fn open(&self) -> bool {
        self.pr.state == "OPEN"
    }

    pub fn head(&self) -> &str {
        &self.pr.head_ref_oid
    }
}

/// Who may write, asked once a pass per login.
#[derive(Default)]
pub struct Writers {
    known: HashMap<String, bool>,
}

impl Writers {
    pub fn can_write(&mut self, gh: &Gh, login: &str) -> Result<bool> {
        if let Some(w) = self.known.get(login) {
            return Ok(*w);
        }
        let w = gh.can_write(login)?;
        self.known.insert(login.to_string(), w);
        Ok(w)
    }
}

/// What to read beyond the pull request's state.
pub struct Ask<'a> {
    pub gh: &'a Gh,
    pub writers: &'a mut Writers,
    pub rounds: &'a [Reaction],
    /// The task's worktree (for fetching the base and the trial merge).
    pub worktree: &'a Path,
    pub remote: &'a str,
}

/// Read pull request `number` and what it got back.
pub fn gather(ask: &mut Ask, number: u64) -> Result<Found> {
    let pr = ask.gh.pr_feedback(number)?;
    let mut found = Found {
        pr,
        ..Found::default()
    };
    if !found.open() {
        return Ok(found);
    }
    let head = found.pr.head_ref_oid.clone();
    for c in &found.pr.status_check_rollup {
        if c.pending() {
            found.pending.push(c.label());
        } else if c.failed() {
            found.failed.push(Failure {
                check: c.label(),
                run: c.run_id(),
            });
        }
    }
    if !found.failed.is_empty()
        && found.pending.is_empty()
        && !reaction::answered(ask.rounds, &head, Trigger::CiFailed)
    {
        found.logs = logs(ask.gh, &found.failed)?;
    }

    items(ask, &mut found, number)?;

    if found.pr.mergeable == "CONFLICTING"
        && !reaction::answered(ask.rounds, &head, Trigger::Conflict)
    {
        let (base, files) = conflicts(ask, &found.pr);
        found.base_commit = base;
        found.conflict = Some(files);
    }
    Ok(found)
}

/// The failed logs of each failed run, once a run, trimmed to their ends.
fn logs(gh: &Gh, failed: &[Failure]) -> Result<Vec<Log>> {
    let mut runs: Vec<u64> = failed.iter().filter_map(|f| f.run).collect();
    runs.sort_unstable();
    runs.dedup();
    let mut out = Vec::new();
    let mut left = LOGS_TOTAL_CHARS;
    for run in runs {
        if left < 200 {
            break;
        }
        let text = plain_log(&gh.run_log_failed(run)?);
        let (excerpt, cut) = tail(&text, LOG_EXCERPT_CHARS.min(left));
        left = left.saturating_sub(excerpt.len());
        out.push(Log { run, excerpt, cut });
    }
    Ok(out)
}

/// `gh run view --log-failed` lines (`JOB<TAB>STEP<TAB>TIMESTAMP text`)
/// as text, with a `== JOB / STEP` line where the job or step changes and
/// no timestamps: the same failure in fewer characters.
pub fn plain_log(log: &str) -> String {
    let mut out = String::new();
    let mut last: Option<(String, String)> = None;
    for line in log.lines() {
        let mut parts = line.splitn(3, '\t');
        let (Some(job), Some(step), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let text = match rest.split_once(' ') {
            Some((ts, text)) if ts.len() >= 20 && ts.as_bytes()[4] == b'-' => text,
            _ => rest,
        };
        let here = (job.to_string(), step.to_string());
        if last.as_ref() != Some(&here) {
            out.push_str(&format!("== {job} / {step}\n"));
            last = Some(here);
        }
        out.push_str(text);
        out.push('\n');
    }
    out
}

/// The last `max` characters of `text`, from a line start; whether any was cut.
pub fn tail(text: &str, max: usize) -> (String, bool) {
    let text = text.trim_end();
    let chars = text.chars().count();
    if chars <= max {
        return (text.to_string(), false);
    }
    let skip = chars - max;
    let rest: String = text.chars().skip(skip).collect();
    let rest = match rest.find('\n') {
        Some(i) if i + 1 < rest.len() => rest[i + 1..].to_string(),
        _ => rest,
    };
    (rest, true)
}

/// Reviews asking for changes or commenting, and inline comments, not
/// answered yet: those of writers to answer, the others to say were ignored.
fn items(ask: &mut Ask, found: &mut Found, number: u64) -> Result<()> {
    let mut all: Vec<Item> = Vec::new();
    for r in &found.pr.reviews {
        let wanted = match r.state.as_str() {
            "CHANGES_REQUESTED" => true,
            "COMMENTED" => !r.body.trim().is_empty(),
            _ => false,
        };
        if wanted && !r.id.is_empty() {
            all.push(Item {
                key: format!("review:{}", r.id),
                author: r
                    .author
                    .as_ref()
                    .map(|a| a.login.clone())
                    .unwrap_or_default(),
                state: Some(r.state.clone()),
                body: clip(&r.body),
                path: None,
                line: None,
            });
        }
    }
    let comments: Vec<ReviewComment> = ask.gh.review_comments(number)?;
    for c in comments {
        all.push(Item {
            key: format!("comment:{}", c.id),
            author: c.user.as_ref().map(|u| u.login.clone()).unwrap_or_default(),
            state: None,
            body: clip(&c.body),
            path: c.path.clone(),
            line: c.line.or(c.original_line),
        });
    }
    for item in all {
        if reaction::item_answered(ask.rounds, &item.key) {
            continue;
        }
        if !item.author.is_empty() && ask.writers.can_write(ask.gh, &item.author)? {
            found.items.push(item);
        } else {
            found.ignored.push(item);
        }
    }
    Ok(())
}

fn clip(body: &str) -> String {
    crate::text::ellipsize(body.trim(), ITEM_CHARS)
}

/// The base's commit (fetched into the worktree) and the files that
/// conflict with the pull request's head, by a merge that touches no
/// worktree (`git merge-tree`).
fn conflicts(ask: &Ask, pr: &PullState) -> (Option<String>, Vec<String>) {
    let wt = ask.worktree;
    let fetch = |branch: &str| -> Option<String> {
        if branch.is_empty() || branch.starts_with('-') {
            return None;
        }
        git::git(wt, &["fetch", "--quiet", ask.remote, branch]).ok()?;
        git::git(wt, &["rev-parse", "FETCH_HEAD"]).ok()
    };
    let Some(base) = fetch(&pr.base_ref_name) else {
        return (None, Vec::new());
    };
    let head = if git::git_ok(
        wt,
        &["cat-file", "-e", &format!("{}^{{commit}}", pr.head_ref_oid)],
    ) {
        Some(pr.head_ref_oid.clone())
    } else {
        fetch(&pr.head_ref_name)
    };
    let files = head
        .and_then(|h| git::merge_tree(wt, &h, &base).ok())
        .map(|m| m.conflicts)
        .unwrap_or_default();
    (Some(base), files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_logs_lose_their_timestamps_and_name_each_step_once() {
        let log = "test\tRun tests\t2026-01-01T00:00:00.0000000Z running 3 tests\n\
                   test\tRun tests\t2026-01-01T00:00:01.0000000Z error: failed\n\
                   lint\tclippy\t2026-01-01T00:00:02.0000000Z warning: x\n";
        assert_eq!(
            plain_log(log),
            "== test / Run tests\nrunning 3 tests\nerror: failed\n== lint / clippy\nwarning: x\n"
        );
    }

    #[test]
    fn a_log_keeps_its_end_from_a_line_start() {
        let log = (1..=100).map(|i| format!("line {i}\n")).collect::<String>();
        let (t, cut) = tail(&log, 30);
        assert!(cut);
        assert!(t.ends_with("line 100"), "{t}");
        assert!(t.starts_with("line "), "{t}");
        assert!(t.chars().count() <= 30);
        assert_eq!(tail("short\n", 30), ("short".into(), false));
    }
}
