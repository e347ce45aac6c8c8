//! Diagnostic follow-up issues: one per failed or timed-out agent, filed once.
//!
//! The issue number is recorded as the status file's `follow_up_issue` inside
//! the status file's lock, and the `gh issue create` call happens while that
//! lock is held: two `po-summarize --follow-up-issues` runs never file the
//! same failure twice. A task that fails again after a retry keeps its issue:
//! the new failure becomes a comment there (`follow_up_attempt` records the
//! attempt reported last), never a second issue.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::markdown::Paths;
use super::summary::{display_agent, error_text};
use crate::error::Result;
use crate::forge::Gh;
use crate::forge::labels::{self, IssueFiler};
use crate::protocol::view::OrchestrationView;
use crate::protocol::view::error_gist;
use crate::protocol::{AgentStatus, State, store};
use crate::text::ellipsize;

/// Labels of a diagnostic issue (the seed's orchestration label).
pub const LABELS: &[labels::Label] = &[labels::ORCHESTRATION];
/// How many lines of the agent's log go into the issue.
pub const LOG_LINES: usize = 30;
/// At most this much of the log's end is read.
const LOG_TAIL_BYTES: u64 = 64 * 1024;
const LINE_MAX: usize = 400;

/// What was done for one failed agent, on which issue.
#[derive(Clone, Debug, PartialEq)]
pub struct Filed {
    pub agent_id: String,
    pub issue: u64,
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A new follow-up issue.
    Filed,
    /// A comment on the task's follow-up issue: attempt `attempt` failed too.
    Commented { attempt: u32 },
}

/// What a task needs: nothing, an issue, or a comment on its issue.
fn needed(s: &AgentStatus) -> Option<Kind> {
    if !matches!(s.status, State::Failed | State::TimedOut) {
        return None;
    }
    match s.follow_up_issue {
        None => Some(Kind::Filed),
        Some(_) if s.attempt > s.follow_up_attempt.unwrap_or(1) => {
            Some(Kind::Commented { attempt: s.attempt })
        }
        Some(_) => None,
    }
}

/// File the missing follow-up issues of `loaded`, and comment on the issues of
/// tasks that failed again; returns what was done. Stops at the first `gh`
/// failure; what was done before it stays recorded. `tell` gets one line if
/// the issues have to go without labels.
pub fn file_all(
    loaded: &OrchestrationView,
    gh: &Gh,
    paths: &Paths,
    tell: fn(&str),
) -> Result<Vec<Filed>> {
    let master = loaded.orchestration.as_ref().and_then(|o| o.master_issue);
    let mut filer = IssueFiler::new(gh, LABELS, tell);
    let mut filed = Vec::new();
    for t in loaded.tasks() {
        let (path, seen) = (&t.file, &t.status);
        if needed(seen).is_none() {
            continue;
        }
        let mut done = None;
        store::update_status(path, |s| {
            match needed(s) {
                None => {}
                Some(Kind::Filed) => {
                    let (title, body) = issue_text(s, &loaded.id, master, paths);
                    let n = filer.create(&title, &body)?;
                    s.follow_up_issue = Some(n);
                    s.follow_up_attempt = Some(s.attempt);
                    done = Some((n, Kind::Filed));
                }
                Some(kind @ Kind::Commented { .. }) => {
                    let n = s.follow_up_issue.expect("a comment goes on the issue");
                    gh.issue_comment(n, &again_text(s, &loaded.id, paths))?;
                    s.follow_up_attempt = Some(s.attempt);
                    done = Some((n, kind));
                }
            }
            Ok(())
        })?;
        if let Some((issue, kind)) = done {
            tracing::info!(agent = %seen.agent_id, issue, ?kind, "follow-up");
            filed.push(Filed {
                agent_id: seen.agent_id.clone(),
                issue,
                kind,
            });
        }
    }
    Ok(filed)
}

/// A code fence longer than any run of backticks in `text`.
fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

fn fenced(text: &str) -> String {
    let f = fence(text);
    format!("{f}\n{}\n{f}", text.trim_end())
}

/// The title and body of the diagnostic issue for one failed task.
pub fn issue_text(
    s: &AgentStatus,
    orchestration_id: &str,
    master: Option<u64>,
    paths: &Paths,
) -> (String, String) {
    let name = display_agent(&s.agent_id);
    let error = error_text(s.error.as_deref(), s.status, s.exit_code);
    let first = error_gist(&error);
    let verb = if s.status == State::TimedOut {
        "timed out"
    } else {
        "failed"
    };
    let title = format!("{name} {verb}: {}", ellipsize(&first, 72));

    let mut b = String::new();
    if let Some(m) = master {
        b.push_str(&format!("**Master Issue**: #{m}\n"));
    }
    if let Some(sub) = s.sub_issue {
        b.push_str(&format!("**Sub-Issue**: #{sub}\n"));
    }
    if !s.title.is_empty() {
        b.push_str(&format!("**Task**: {}\n", ellipsize(s.title.trim(), 200)));
    }
    b.push_str(&format!(
        "**Agent**: {} (attempt {}), {}",
        s.agent_id, s.attempt, s.status
    ));
    exit_and_phase(&mut b, s);
    if let Some(br) = &s.branch {
        b.push_str(&format!("**Branch**: `{br}`\n"));
    }

    error_and_log(&mut b, s, &error, paths);
    let log = s.log_file.as_deref();

    b.push_str("\n## Suggested next steps\n\n");
    let mut n = 0;
    let mut step = |text: String| {
        n += 1;
        b.push_str(&format!("{n}. {text}\n"));
    };
    if let Some(l) = log {
        step(format!("Read the full log: `{}`", paths.show(l)));
    }
    if let Some(w) = &s.worktree {
        step(format!(
            "Inspect the agent's worktree `{}`{}",
            paths.show(w),
            s.branch
                .as_deref()
                .map(|br| format!(" (branch `{br}`)"))
                .unwrap_or_default()
        ));
    }
    if s.status == State::TimedOut {
        step("Split the task or allow more time (`--timeout SECS`)".into());
    }
    step(format!(
        "Fix the cause, then retry: `po-spawn --id {orchestration_id} --retry`"
    ));
    step(format!(
        "Follow the retry: `po-watch {orchestration_id} --follow`"
    ));

    b.push_str(&format!("\n---\nOrchestration ID: {orchestration_id}\n"));
    (title, b)
}

/// The `## Error` and `## Log excerpt` sections.
fn error_and_log(b: &mut String, s: &AgentStatus, error: &str, paths: &Paths) {
    b.push_str("\n## Error\n\n");
    b.push_str(&fenced(&ellipsize(error, 4000)));
    b.push('\n');

    b.push_str("\n## Log excerpt\n\n");
    match s.log_file.as_deref().map(|l| (l, log_tail(l, LOG_LINES))) {
        Some((l, Ok(tail))) if !tail.trim().is_empty() => {
            b.push_str(&format!(
                "The last {} lines of `{}`:\n\n",
                tail.lines().count(),
                paths.show(l)
            ));
            b.push_str(&fenced(&tail));
            b.push('\n');
        }
        Some((l, Ok(_))) => b.push_str(&format!("`{}` is empty.\n", paths.show(l))),
        Some((l, Err(e))) => b.push_str(&format!("`{}` could not be read: {e}\n", paths.show(l))),
        None => b.push_str("No log file was recorded for this task.\n"),
    }
}

/// `, exit status N` to end the agent's line, and the phase it failed in.
fn exit_and_phase(b: &mut String, s: &AgentStatus) {
    if let Some(code) = s.exit_code {
        b.push_str(&format!(", exit status {code}"));
    }
    b.push('\n');
    b.push_str(&format!(
        "**Failed in phase**: {}\n",
        s.phase.as_deref().unwrap_or("unknown (no phase reported)")
    ));
}

/// The comment on a follow-up issue when its task failed again after a retry.
pub fn again_text(s: &AgentStatus, orchestration_id: &str, paths: &Paths) -> String {
    let error = error_text(s.error.as_deref(), s.status, s.exit_code);
    let verb = if s.status == State::TimedOut {
        "timed out"
    } else {
        "failed"
    };
    let mut b = format!(
        "**{} {verb} again** on attempt {}",
        display_agent(&s.agent_id),
        s.attempt
    );
    exit_and_phase(&mut b, s);
    error_and_log(&mut b, s, &error, paths);
    b.push_str(&format!(
        "\nRetry again: `po-spawn --id {orchestration_id} --retry`\n\n---\nOrchestration ID: {orchestration_id}\n"
    ));
    b
}

/// The last `lines` lines of a log, ANSI escapes and other controls removed.
pub fn log_tail(path: &Path, lines: usize) -> std::io::Result<String> {
    let mut f = crate::fsx::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    f.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    if start > 0 && !all.is_empty() {
        all.remove(0); // probably cut in the middle
    }
    while all.last().is_some_and(|l| l.trim().is_empty()) {
        all.pop();
    }
    let keep = &all[all.len().saturating_sub(lines)..];
    Ok(keep
        .iter()
        .map(|l| ellipsize(&strip_controls(l), LINE_MAX))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Remove ANSI escape sequences and control characters (tabs stay).
pub fn strip_controls(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // CSI: parameters and intermediates, then one final byte.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_outgrow_the_backticks_inside() {
        assert_eq!(fence("plain"), "```");
        assert_eq!(fence("a ```` b"), "`````");
    }

    #[test]
    fn colours_and_controls_leave_log_lines() {
        assert_eq!(
            strip_controls("\u{1b}[31merror\u{1b}[0m: x\r\u{7}"),
            "error: x"
        );
    }

    #[test]
    fn the_tail_is_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text + "\n\n").unwrap();
        let tail = log_tail(&p, 30).unwrap();
        assert_eq!(tail.lines().count(), 30);
        assert!(tail.starts_with("line 71\n"));
        assert!(tail.ends_with("line 100"));
    }
}
