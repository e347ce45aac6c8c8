//! Pull requests for finished tasks: push the branch, `gh pr create`, record it.
//!
//! Idempotent: a status file that already has a `pr_number` is left alone, so
//! a retry after a failed push or a failed `gh pr create` just tries again.

use std::path::Path;

use super::Gh;
use super::refs;
use crate::error::{Error, Result};
use crate::git::{git, git_raw};
use crate::protocol::{AgentStatus, Orchestration, layout, store};
use crate::timefmt::human_duration;

/// At most this many lines of `git log` / `git diff --stat` in a PR body.
const MAX_LIST_LINES: usize = 60;
/// GitHub refuses bodies over 65,536 characters; the task text is cut well before.
const MAX_TASK_CHARS: usize = 20_000;

/// The start of the error a failed pull request leaves on a completed task.
pub const PR_ERROR: &str = "open a pull request";

/// [`open_pr`] for a completed task, with `gh` from the runtime root: a
/// failure is recorded as the task's `error` (with how to try again) and
/// returned, never fatal; a success clears an earlier such error.
pub fn open_and_record(
    status_file: &Path,
    repo: &Path,
    remote: &str,
    base: &str,
    runtime_root: &Path,
) -> std::result::Result<(u64, String), String> {
    let gh = Gh::new(Some(runtime_root)).in_dir(repo);
    match open_pr(status_file, repo, remote, base, &gh) {
        Ok(done) => {
            let _ = store::update_status(status_file, |s| {
                if s.error.as_deref().is_some_and(|e| e.starts_with(PR_ERROR)) {
                    s.error = None;
                }
                Ok(())
            });
            Ok(done)
        }
        Err(e) => {
            let err = format!("{PR_ERROR}: failed to {e}");
            let _ = store::update_status(status_file, |s| {
                s.error = Some(crate::protocol::lifecycle::one_line(&format!(
                    "{err}; `po-spawn --create-pr` tries again"
                )));
                s.phase = Some("pr".into());
                Ok(())
            });
            Err(err)
        }
    }
}

/// Push the task's branch to `remote` and open a PR against `base`; record
/// `pr_number` and `pr_url` in the status file under its lock.
pub fn open_pr(
    status_file: &Path,
    repo: &Path,
    remote: &str,
    base: &str,
    gh: &Gh,
) -> Result<(u64, String)> {
    let status = store::read_status(status_file)?;
    if let Some(n) = status.pr_number {
        return Ok((n, status.pr_url.unwrap_or_default()));
    }
    let branch = status.branch.clone().ok_or_else(|| Error::BadStatus {
        path: status_file.to_path_buf(),
        detail: "field `branch` is empty, so there is nothing to push; run the task with \
                 `po-spawn` first"
            .into(),
    })?;
    for (what, value) in [
        ("remote", remote),
        ("base branch", base),
        ("branch", &branch),
    ] {
        if value.is_empty() || value.starts_with('-') {
            return Err(Error::usage(format!(
                "open a pull request: the {what} {value:?} is not a usable git name"
            )));
        }
    }

    let since = status.base_commit.as_deref().unwrap_or(base);
    if let Ok(count) = git(
        repo,
        &["rev-list", "--count", &format!("{since}..{branch}")],
    ) && count.trim() == "0"
    {
        return Err(Error::validation(
            format!("the pull request for {branch}"),
            format!(
                "the branch has no commits beyond {since}, so there is nothing to review; \
                 commit the work on the branch, then run `po-spawn --create-pr` again"
            ),
        ));
    }

    git(repo, &["push", remote, &branch])
        .map_err(|e| Error::system(format!("push {branch} to {remote}: {}", e.chain())))?;

    let orchestration = status_file
        .parent()
        .map(|d| d.join(layout::ORCHESTRATION_FILE))
        .filter(|p| p.exists())
        .and_then(|p| store::read_json::<Orchestration>(&p).ok());
    let master = orchestration.as_ref().and_then(|o| o.master_issue);
    let title = pr_title(&status, master);
    let body = pr_body(&status, master, repo, since, &branch);

    let gh = gh.clone().in_dir(repo);
    let (n, url) = match gh.pr_create(&branch, base, &title, &body) {
        // Opened by an earlier run that stopped before recording it.
        Err(Error::Gh { detail, .. }) if detail.contains("already exists") => {
            gh.pr_for_head(&branch, base)?.ok_or_else(|| {
                Error::gh(
                    "pr create",
                    format!("{detail}; yet `gh pr list --head {branch}` finds no open one"),
                )
            })?
        }
        other => other?,
    };
    store::update_status(status_file, |s| {
        s.pr_number = Some(n);
        s.pr_url = Some(url.clone());
        Ok(())
    })?;
    Ok((n, url))
}

/// The task's title, prefixed `[Master #N]` when there is a master issue.
pub fn pr_title(s: &AgentStatus, master: Option<u64>) -> String {
    let mut title: String = crate::text::one_line(&s.title).chars().take(200).collect();
    if title.is_empty() {
        title = format!("{} of orchestration {}", s.agent_id, orchestration_id(s));
    }
    match master {
        Some(m) if !title.starts_with("[Master #") => format!("[Master #{m}] {title}"),
        _ => title,
    }
}

fn orchestration_id(s: &AgentStatus) -> &str {
    s.orchestration_id.as_deref().unwrap_or("?")
}

fn pr_body(s: &AgentStatus, master: Option<u64>, repo: &Path, since: &str, branch: &str) -> String {
    let mut b = String::new();
    b.push_str(&closing_lines(s));
    if let Some(m) = master {
        b.push_str(&format!("**Master Issue**: #{m}\n"));
    }
    b.push_str(&format!("**Task**: {}\n", pr_title(s, None)));
    let task = s.body.trim();
    if !task.is_empty() {
        let cut: String = task.chars().take(MAX_TASK_CHARS).collect();
        b.push_str(&format!("\n{cut}\n"));
    }

    b.push_str("\n## What the agent changed\n\n");
    let range = format!("{since}..{branch}");
    match git(repo, &["log", "--oneline", "--no-decorate", &range]) {
        Ok(log) if !log.trim().is_empty() => {
            b.push_str("Commits:\n\n");
            b.push_str(&block(&log));
        }
        Ok(_) => b.push_str("No commits on the branch beyond its base.\n"),
        Err(e) => b.push_str(&format!("(failed to {e})\n")),
    }
    // Untrimmed: the stat's first column may be a space.
    if let Ok(stat) = git_raw(repo, &["diff", "--stat", &range])
        && !stat.trim().is_empty()
    {
        b.push_str("\nFiles:\n\n");
        b.push_str(&block(&stat));
    }

    b.push_str("\n## Metrics\n\n");
    let m = &s.metrics;
    b.push_str(&format!(
        "- Agent: {} (attempt {})\n",
        s.agent_id, s.attempt
    ));
    if let Some(d) = m.duration_seconds {
        b.push_str(&format!("- Duration: {}\n", human_duration(d)));
    }
    if m.lines_added.is_some() || m.lines_removed.is_some() {
        b.push_str(&format!(
            "- Lines: +{} −{}{}{}\n",
            m.lines_added.unwrap_or(0),
            m.lines_removed.unwrap_or(0),
            m.files_changed
                .map(|f| format!(" in {f} file{}", plural(f)))
                .unwrap_or_default(),
            m.commits
                .map(|c| format!(", {c} commit{}", plural(c)))
                .unwrap_or_default()
        ));
    }
    if let Some(c) = m.cost_usd {
        b.push_str(&format!("- Cost: ${c:.2}\n"));
    }
    if let Some(t) = m.turns {
        b.push_str(&format!("- Turns: {t}\n"));
    }
    if m.input_tokens.is_some() || m.output_tokens.is_some() {
        b.push_str(&format!(
            "- Tokens: {} in, {} out\n",
            m.input_tokens.unwrap_or(0),
            m.output_tokens.unwrap_or(0)
        ));
    }
    b.push_str(&format!(
        "\n---\nOrchestration ID: {}\n",
        orchestration_id(s)
    ));
    b
}

/// `Closes #N` for the task's sub-issue, an issue of this repository; a
/// reference elsewhere (or to a pull request) only `Refs owner/repo#N`: a pull
/// request here must never close what is not this repository's.
pub fn closing_lines(s: &AgentStatus) -> String {
    let mut b = String::new();
    if let Some(sub) = s.sub_issue {
        b.push_str(&format!("Closes #{sub}\n"));
    }
    // po-parse records a reference only when it is no sub-issue.
    if let Some(r) = refs::of_status(&s.extra) {
        b.push_str(&format!("Refs {r}\n"));
    }
    if !b.is_empty() {
        b.push('\n');
    }
    b
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A fenced block of at most `MAX_LIST_LINES` lines.
fn block(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let mut out = String::from("```\n");
    for l in lines.iter().take(MAX_LIST_LINES) {
        out.push_str(&l.replace("```", "'''"));
        out.push('\n');
    }
    if lines.len() > MAX_LIST_LINES {
        out.push_str(&format!("… {} more\n", lines.len() - MAX_LIST_LINES));
    }
    out.push_str("```\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sub_issue_is_closed_a_reference_elsewhere_is_referred_to() {
        let mut s = AgentStatus::new("agent-1", "7");
        assert_eq!(closing_lines(&s), "");
        s.sub_issue = Some(12);
        assert_eq!(closing_lines(&s), "Closes #12\n\n");
        s.sub_issue = None;
        let r = refs::Reference::parse("https://github.com/org/other/issues/8128").unwrap();
        s.extra
            .insert(refs::STATUS_KEY.into(), serde_json::to_value(&r).unwrap());
        assert_eq!(closing_lines(&s), "Refs org/other#8128\n\n");
        // A sub-issue filed for it here is closed; the other one is only named.
        s.sub_issue = Some(30);
        assert_eq!(closing_lines(&s), "Closes #30\nRefs org/other#8128\n\n");
    }

    #[test]
    fn titles_get_the_master_prefix_once() {
        let mut s = AgentStatus::new("agent-1", "7");
        s.title = "Add\nauth  module".into();
        assert_eq!(pr_title(&s, Some(7)), "[Master #7] Add auth module");
        assert_eq!(pr_title(&s, None), "Add auth module");
        s.title = "[Master #7] Add auth".into();
        assert_eq!(pr_title(&s, Some(7)), "[Master #7] Add auth");
    }
}
