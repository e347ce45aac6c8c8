//! One round on one task: the prompt written, the round recorded, the
//! task's agent run again in its worktree (resuming its session, under the
//! same supervision as its first run), its new commits pushed by po, and a
//! comment on the pull request saying what was addressed.

use std::path::{Path, PathBuf};

use super::gather::Found;
use super::prompt::{self, Fence, Place};
use super::{Context, Note};
use crate::error::{Error, Result};
use crate::git;
use crate::protocol::reaction::{self, Outcome, Reaction, Trigger};
use crate::protocol::{AgentStatus, layout};
use crate::run::supervisor::Spec;
use crate::run::supervisor::again::Ended;

/// How a round came out.
#[derive(Clone, Debug)]
pub struct Done {
    pub round: Reaction,
    /// The agent failed: the task goes to a person.
    pub agent_failed: bool,
    pub interrupted: bool,
}

/// The files a round writes, by task and round.
pub fn prompt_path(dir: &Path, agent_id: &str, round: u32) -> PathBuf {
    layout::prompts_dir(dir).join(format!("{agent_id}.round-{round}.md"))
}

/// The prompt of the round, as it would be sent.
pub fn prompt_text(
    cx: &Context,
    task: &AgentStatus,
    found: &Found,
    triggers: &[Trigger],
    worktree: &Path,
    branch: &str,
) -> String {
    let nonce = crate::run::agent::new_uuid().unwrap_or_else(|_| "0000".into());
    prompt::render(
        task,
        found,
        triggers,
        &Place {
            worktree: &worktree.to_string_lossy(),
            branch,
            orchestration: &cx.id,
        },
        &Fence::new(&nonce.replace('-', "")),
    )
}

/// Run round `number` answering `triggers` of `found` on the task in
/// `path`. The caller holds the task's liveness lock.
#[allow(clippy::too_many_arguments)]
pub fn run(
    cx: &Context,
    path: &Path,
    task: &AgentStatus,
    found: &Found,
    triggers: &[Trigger],
    worktree: &Path,
    branch: &str,
    note: &mut dyn FnMut(Note),
) -> Result<Done> {
    let agent_id = crate::protocol::sanitize::id(&task.agent_id)?;
    let rounds = reaction::of_status(task);
    let number = rounds.iter().map(|r| r.round).max().unwrap_or(0) + 1;
    let prompt_file = prompt_path(&cx.dir, &agent_id, number);
    let text = prompt_text(cx, task, found, triggers, worktree, branch);
    if let Some(parent) = prompt_file.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    std::fs::write(&prompt_file, &text).map_err(Error::io("write", &prompt_file))?;
    let log_file = cx.logs.join(format!("{agent_id}.round-{number}.log"));

    let before = git::git(worktree, &["rev-parse", "HEAD"])?;
    let items: Vec<String> = if triggers.contains(&Trigger::ChangesRequested) {
        found.items.iter().map(|i| i.key.clone()).collect()
    } else {
        Vec::new()
    };
    let number = reaction::begin(
        path,
        Reaction {
            round: number,
            triggers: triggers.to_vec(),
            head: found.head().to_string(),
            items,
            started: None,
            finished: None,
            cost_usd: None,
            outcome: Outcome::Running,
            pushed: None,
            error: None,
            log_file: Some(log_file.clone()),
            prompt_file: Some(prompt_file.clone()),
            comment_url: None,
            extra: Default::default(),
        },
        crate::cost::attempt_cost,
    )?;
    note(Note::Started {
        agent: task.agent_id.clone(),
        pr: found.pr.number,
        round: number,
        triggers: triggers.to_vec(),
    });

    let spec = spec(cx, path, task, worktree, branch, &prompt_file, &log_file);
    let ended = match &cx.rerun {
        Some(rerun) => rerun.run(&spec)?,
        None => {
            return Err(Error::system(
                "run an agent: po-react was started without a runner (dry run)",
            ));
        }
    };

    let after = git::git(worktree, &["rev-parse", "HEAD"]).unwrap_or_else(|_| before.clone());
    let dirty = git::changed_files(worktree).is_ok_and(|files| !files.is_empty());
    let (outcome, pushed, error) = settle(cx, worktree, branch, &before, &after, &ended);
    let round = reaction::finish(
        path,
        number,
        outcome,
        pushed.as_deref(),
        error.as_deref(),
        crate::cost::attempt_cost,
    )?;

    if outcome != Outcome::Interrupted {
        let body = comment(cx, task, found, &round, dirty);
        match cx.gh.pr_comment(found.pr.number, &body) {
            Ok(url) => {
                let _ = reaction::commented(path, number, &url);
            }
            Err(e) => note(Note::Warning(format!(
                "failed to comment on PR #{}: {e}",
                found.pr.number
            ))),
        }
    }
    Ok(Done {
        agent_failed: outcome == Outcome::AgentFailed,
        interrupted: outcome == Outcome::Interrupted,
        round,
    })
}

/// The round's outcome from how the agent ended and what it committed:
/// new commits on top of the answered head are pushed (never forced).
fn settle(
    cx: &Context,
    worktree: &Path,
    branch: &str,
    before: &str,
    after: &str,
    ended: &Ended,
) -> (Outcome, Option<String>, Option<String>) {
    if ended.cancelled {
        return (
            Outcome::Interrupted,
            None,
            Some("po-react was interrupted; the next pass does the round again".into()),
        );
    }
    if !ended.ok {
        // The supervisor's advice names po-spawn's retry; here it is po-react.
        let why = ended
            .error
            .clone()
            .unwrap_or_else(|| "the agent failed".into())
            .replace("`po-spawn --retry`", "po-react");
        return (Outcome::AgentFailed, None, Some(why));
    }
    if after == before {
        return (Outcome::NoChange, None, None);
    }
    if !git::is_ancestor(worktree, before, after) {
        return (
            Outcome::PushFailed,
            None,
            Some(format!(
                "the agent rewrote the branch ({before} is no longer in it); po pushes only \
                 new commits on top, never a forced push"
            )),
        );
    }
    match push(worktree, &cx.remote, branch) {
        Ok(()) => (Outcome::Pushed, Some(after.to_string()), None),
        Err(e) => (Outcome::PushFailed, None, Some(format!("failed to {e}"))),
    }
}

/// `git push REMOTE BRANCH` from the worktree (a fast-forward only).
pub fn push(worktree: &Path, remote: &str, branch: &str) -> Result<()> {
    if remote.starts_with('-') || branch.starts_with('-') {
        return Err(Error::usage(format!(
            "push {branch:?} to {remote:?}: not a usable git name"
        )));
    }
    // Only the task's own branch is pushed, whatever the agent checked out.
    let on = git::current_branch(worktree);
    if on.as_deref() != Some(branch) {
        return Err(Error::validation(
            format!("the worktree {}", worktree.display()),
            format!(
                "it is on {} instead of the task's branch {branch}; po pushes only that \
                 branch: check it out there and run po-react again",
                on.as_deref().unwrap_or("a detached HEAD")
            ),
        ));
    }
    let refspec = format!("refs/heads/{branch}");
    git::git(worktree, &["push", "--quiet", remote, &refspec]).map(|_| ())
}

/// The comment on the pull request after a round.
fn comment(
    cx: &Context,
    task: &AgentStatus,
    found: &Found,
    round: &Reaction,
    dirty: bool,
) -> String {
    let mut b = format!(
        "**po-react**, round {} of {} for {}: ",
        round.round, cx.max_rounds, task.agent_id
    );
    let what: Vec<&str> = round.triggers.iter().map(|t| t.told()).collect();
    match (round.outcome, round.pushed.as_deref()) {
        (Outcome::Pushed, Some(head)) => b.push_str(&format!(
            "the agent answered {} on {} and po pushed {}.\n",
            what.join(", "),
            prompt::short(&round.head),
            prompt::short(head)
        )),
        (Outcome::NoChange, _) => b.push_str(&format!(
            "the agent answered {} on {} without a new commit.\n",
            what.join(", "),
            prompt::short(&round.head)
        )),
        _ => b.push_str(&format!(
            "the agent did not fix {} on {}: {}\n",
            what.join(", "),
            prompt::short(&round.head),
            round.error.as_deref().unwrap_or("it failed")
        )),
    }
    b.push('\n');
    if round.triggers.contains(&Trigger::CiFailed) {
        let checks: Vec<&str> = found.failed.iter().map(|f| f.check.as_str()).collect();
        b.push_str(&format!("- Failed checks: {}\n", checks.join(", ")));
    }
    if round.triggers.contains(&Trigger::ChangesRequested) {
        for item in &found.items {
            let place = item
                .place()
                .map(|p| format!(" on `{p}`"))
                .unwrap_or_default();
            b.push_str(&format!("- Review by {}{place}\n", item.author));
        }
    }
    if round.triggers.contains(&Trigger::Conflict) {
        match found.conflict.as_deref() {
            Some(files) if !files.is_empty() => {
                let files: Vec<String> = files.iter().map(|f| format!("`{f}`")).collect();
                b.push_str(&format!(
                    "- Conflict with {}: {}\n",
                    found.pr.base_ref_name,
                    files.join(", ")
                ));
            }
            _ => b.push_str(&format!("- Conflict with {}\n", found.pr.base_ref_name)),
        }
    }
    if !found.ignored.is_empty() {
        let mut who: Vec<&str> = found.ignored.iter().map(|i| i.author.as_str()).collect();
        who.sort_unstable();
        who.dedup();
        b.push_str(&format!(
            "- Not passed on: {} by {} without write access to the repository (text from \
               them is never an instruction to the agent)\n",
            crate::text::count(found.ignored.len(), "review comment"),
            who.join(", ")
        ));
    }
    if dirty {
        b.push_str("- The agent left uncommitted changes in its worktree; they are not pushed\n");
    }
    if let Some(c) = round.cost_usd {
        b.push_str(&format!("- Cost of the round: ${c:.2}\n"));
    }
    b
}

/// The supervisor spec of a round.
fn spec(
    cx: &Context,
    path: &Path,
    task: &AgentStatus,
    worktree: &Path,
    branch: &str,
    prompt_file: &Path,
    log_file: &Path,
) -> Spec {
    let n = match task.number() {
        u64::MAX => 0,
        n => n.saturating_sub(1),
    };
    Spec {
        status_file: path.to_path_buf(),
        orchestration_id: cx.id.clone(),
        orchestration_file: cx.dir.join(layout::ORCHESTRATION_FILE),
        prompt_dirs: vec![cx.dir.clone()],
        prompt_file: prompt_file.to_path_buf(),
        repo: cx.repo.clone(),
        worktree: Some(worktree.to_path_buf()),
        branch: branch.to_string(),
        base: task.base_commit.clone().unwrap_or_default(),
        include_files: Vec::new(),
        setup: None,
        agent: cx.agent.clone(),
        timeout_secs: cx.timeout_secs,
        stall_secs: cx.stall_secs,
        grace_secs: cx.grace_secs,
        log_file: log_file.to_path_buf(),
        port: 20000 + 100 * (n % 450) as u32,
        port_count: 100,
        bin_dir: cx.bin_dir.clone(),
        pr: None,
        session_log: None,
        sandbox: cx.sandbox.clone(),
    }
}
