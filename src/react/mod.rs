//! po-react: the tasks' pull requests, answered. For each completed task
//! with an open pull request, a pass reads what came back ([`gather`]),
//! decides ([`decide`]), and runs a round ([`round`]: the task's agent again
//! in its worktree, resuming its session, with a prompt of what was found
//! ([`prompt`]); po pushes its commits and comments) or hands the task to a
//! person ([`escalate`]). Each round is recorded in the task's status file
//! ([`crate::protocol::reaction`]), so a pass never answers the same head
//! twice, and a pass killed at any point is finished or redone by the next.

pub mod decide;
pub mod escalate;
pub mod gather;
pub mod prompt;
pub mod round;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result, exit};
use crate::forge::Gh;
use crate::git;
use crate::protocol::reaction::{self, Trigger};
use crate::protocol::view::Reader;
use crate::protocol::{AgentStatus, State, layout, store};
use crate::run::agent::AgentSpec;
use crate::run::supervisor::again::Rerun;
use decide::{Decision, Limits};
use gather::Found;

/// What a pass works with.
pub struct Context {
    pub id: String,
    pub dir: PathBuf,
    pub repo: PathBuf,
    /// Where the rounds' agent logs go.
    pub logs: PathBuf,
    pub gh: Gh,
    /// Runs agents; `None` in a dry run.
    pub rerun: Option<Rerun>,
    pub agent: AgentSpec,
    pub timeout_secs: f64,
    pub stall_secs: Option<f64>,
    pub grace_secs: f64,
    pub max_rounds: u32,
    pub budget_usd: Option<f64>,
    pub remote: String,
    pub bin_dir: Option<PathBuf>,
    pub dry_run: bool,
    /// The rounds' agents run under this sandbox.
    pub sandbox: Option<crate::run::sandbox::Options>,
}

/// What a pass tells as it goes (stderr).
#[derive(Clone, Debug)]
pub enum Note {
    Started {
        agent: String,
        pr: u64,
        round: u32,
        triggers: Vec<Trigger>,
    },
    Warning(String),
}

/// What one pass did.
#[derive(Clone, Debug, Default)]
pub struct Pass {
    /// One line a task with a pull request (stdout).
    pub lines: Vec<String>,
    /// Pull requests still open and not handed to a person.
    pub open: usize,
    /// Tasks handed to a person (this pass or before) whose PR is open.
    pub escalated: usize,
    /// Tasks not finished yet (they may open a pull request later).
    pub unfinished: usize,
    pub gh_errors: usize,
    pub errors: usize,
    pub interrupted: bool,
}

impl Pass {
    /// Every pull request is merged, closed or with a person, and no task
    /// is left to open one.
    pub fn settled(&self) -> bool {
        self.open == 0 && self.unfinished == 0
    }

    /// The suite's exit code for this pass.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            exit::INTERRUPTED
        } else if self.gh_errors > 0 {
            exit::GITHUB
        } else if self.errors > 0 {
            exit::SYSTEM
        } else if self.escalated > 0 {
            exit::PARTIAL
        } else {
            exit::SUCCESS
        }
    }
}

/// One pass over the orchestration's tasks. `writers` keeps who may write
/// from one pass to the next (one look-up per reviewer and process).
pub fn pass(
    cx: &Context,
    writers: &mut gather::Writers,
    note: &mut dyn FnMut(Note),
) -> Result<Pass> {
    let mut out = Pass::default();
    for path in layout::status_files(&cx.dir)? {
        if cx.rerun.as_ref().is_some_and(|r| r.interrupted()) {
            out.interrupted = true;
            break;
        }
        let task = match store::read_status(&path) {
            Ok(t) => t,
            Err(e) => {
                note(Note::Warning(format!(
                    "failed to {e}; that task is skipped"
                )));
                out.errors += 1;
                continue;
            }
        };
        if !task.status.is_terminal() {
            out.unfinished += 1;
            continue;
        }
        let Some(pr) = task.pr_number else {
            continue;
        };
        match one(cx, &path, &task, pr, writers, note) {
            Ok(Some(told)) => {
                out.lines
                    .push(format!("{} PR #{pr}: {}", task.agent_id, told.line));
                match told.kind {
                    Kind::Open => out.open += 1,
                    Kind::Escalated => out.escalated += 1,
                    Kind::Closed => {}
                    Kind::Interrupted => {
                        out.interrupted = true;
                        break;
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                let gh = matches!(e, Error::Gh { .. });
                note(Note::Warning(format!(
                    "{} PR #{pr}: failed to {e}",
                    task.agent_id
                )));
                out.lines
                    .push(format!("{} PR #{pr}: error: failed to {e}", task.agent_id));
                out.open += 1;
                if gh {
                    out.gh_errors += 1;
                } else {
                    out.errors += 1;
                }
            }
        }
    }
    Ok(out)
}

enum Kind {
    Open,
    Closed,
    Escalated,
    Interrupted,
}

struct Told {
    line: String,
    kind: Kind,
}

fn told(kind: Kind, line: impl Into<String>) -> Option<Told> {
    Some(Told {
        line: line.into(),
        kind,
    })
}

/// The task in `path`, whose pull request is `pr`.
fn one(
    cx: &Context,
    path: &Path,
    task: &AgentStatus,
    pr: u64,
    writers: &mut gather::Writers,
    note: &mut dyn FnMut(Note),
) -> Result<Option<Told>> {
    if let Some(esc) = reaction::escalation(task) {
        return Ok(told(
            Kind::Escalated,
            format!("needs a person: {}", esc.reason),
        ));
    }
    if task.status != State::Completed {
        return Ok(None);
    }
    let Some(worktree) = task.worktree.clone().filter(|w| w.is_dir()) else {
        return Ok(told(
            Kind::Open,
            "its worktree is gone, so no round can run there; run `po-spawn --retry` or answer \
             it by hand",
        ));
    };
    let branch = crate::run::scheduler::setup::branch_of(&cx.id, task);
    // Only one agent in a worktree: the task's liveness lock, for the pass.
    let _live = if cx.dry_run {
        None
    } else {
        match store::hold_liveness(path)? {
            Some(l) => Some(l),
            None => return Ok(told(Kind::Open, "busy: another process runs this task")),
        }
    };
    if !cx.dry_run {
        end_left_round(cx, path, task, note)?;
    }
    let task = store::read_status(path)?;
    let rounds = reaction::of_status(&task);
    let found = gather::gather(
        &mut gather::Ask {
            gh: &cx.gh,
            writers,
            rounds: &rounds,
            worktree: &worktree,
            remote: &cx.remote,
        },
        pr,
    )?;
    if !found.open() {
        return Ok(told(Kind::Closed, found.pr.state.to_lowercase()));
    }
    note_ignored(&task, pr, &found, note);
    let pass = TaskPass {
        cx,
        path,
        pr,
        worktree: &worktree,
        branch: &branch,
    };

    // The task's branch and the pull request's head must agree first.
    match sync(cx, &worktree, &branch, &found)? {
        Sync::Same => pass.decide(&task, &found, &rounds, note),
        Sync::Pushed(head) => Ok(told(
            Kind::Open,
            format!(
                "pushed {} (commits an earlier round left unpushed)",
                prompt::short(&head)
            ),
        )),
        Sync::WouldPush => Ok(told(
            Kind::Open,
            "would push the commits an earlier round left unpushed",
        )),
        Sync::Diverged(why) => {
            let reason = format!("the task's branch and the pull request's head diverged ({why})");
            escalate_or_tell(cx, path, &task, pr, &reason, &[], note)
        }
    }
}

/// A round an earlier po-react left running (it is gone: this one holds the
/// lock): what is left of its agent is ended first, so no two agents share
/// the worktree, and the round is recorded interrupted.
fn end_left_round(
    cx: &Context,
    path: &Path,
    task: &AgentStatus,
    note: &mut dyn FnMut(Note),
) -> Result<()> {
    let running = reaction::of_status(task)
        .iter()
        .any(|r| r.outcome == reaction::Outcome::Running);
    if !running {
        return Ok(());
    }
    let grace = std::time::Duration::from_secs_f64(cx.grace_secs);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let ended = crate::proctree::Tree::of_task(path).kill(grace, &stop);
    reaction::interrupted(path, crate::cost::attempt_cost)?;
    note(Note::Warning(format!(
        "{}: a round an earlier po-react left running is recorded interrupted{}",
        task.agent_id,
        if ended > 0 {
            format!(" (ended {} of its agent's processes)", ended)
        } else {
            String::new()
        }
    )));
    Ok(())
}

/// A warning for each comment or review left out for its author.
fn note_ignored(task: &AgentStatus, pr: u64, found: &Found, note: &mut dyn FnMut(Note)) {
    for item in &found.ignored {
        note(Note::Warning(format!(
            "{} PR #{pr}: ignored {} by {} (no write access to the repository)",
            task.agent_id,
            item.key,
            if item.author.is_empty() {
                "an unknown author"
            } else {
                &item.author
            }
        )));
    }
}

/// One task's pass once its branch and pull request agree.
struct TaskPass<'a> {
    cx: &'a Context,
    path: &'a Path,
    pr: u64,
    worktree: &'a Path,
    branch: &'a str,
}

impl TaskPass<'_> {
    /// Decide what the pull request asks for, and do it.
    fn decide(
        &self,
        task: &AgentStatus,
        found: &Found,
        rounds: &[reaction::Reaction],
        note: &mut dyn FnMut(Note),
    ) -> Result<Option<Told>> {
        let cx = self.cx;
        let spent = {
            let view = Reader::plain().read(&cx.dir);
            let t = crate::cost::Total::of(view.tasks().map(|t| &t.status));
            t.spent + t.committed
        };
        let limits = Limits {
            max_rounds: cx.max_rounds,
            budget: cx.budget_usd.map(|b| (b, spent)),
        };
        match decide::decide(found, rounds, limits) {
            Decision::Closed(state) => Ok(told(Kind::Closed, state)),
            Decision::Nothing(why) => Ok(told(Kind::Open, format!("nothing to do: {why}"))),
            Decision::Escalate { reason, triggers } => {
                escalate_or_tell(cx, self.path, task, self.pr, &reason, &triggers, note)
            }
            Decision::React { round, triggers } if cx.dry_run => Ok(told(
                Kind::Open,
                self.would_run(task, found, round, &triggers),
            )),
            Decision::React { triggers, .. } => self.round(task, found, &triggers, note),
        }
    }

    /// What round `round` would do, with its prompt (a dry run).
    fn would_run(
        &self,
        task: &AgentStatus,
        found: &Found,
        round: u32,
        triggers: &[Trigger],
    ) -> String {
        let cx = self.cx;
        let names: Vec<&str> = triggers.iter().map(|t| t.as_str()).collect();
        let text = round::prompt_text(cx, task, found, triggers, self.worktree, self.branch);
        let session = task
            .metrics
            .session_id
            .as_deref()
            .map(|s| format!("resuming session {s}"))
            .unwrap_or_else(|| "in a new session (none recorded)".into());
        let program = match cx.agent.agent() {
            Ok(a) => a.name().to_string(),
            Err(_) => cx.agent.kind.clone(),
        };
        let mut line = format!(
            "would run round {round} ({}) on {}: agent {program} {session} in {} on {}\n",
            names.join(", "),
            prompt::short(found.head()),
            self.worktree.display(),
            self.branch
        );
        for l in text.lines() {
            line.push_str("    ");
            line.push_str(l);
            line.push('\n');
        }
        line.trim_end().to_string()
    }

    /// Run a round; a failed agent hands the task to a person.
    fn round(
        &self,
        task: &AgentStatus,
        found: &Found,
        triggers: &[Trigger],
        note: &mut dyn FnMut(Note),
    ) -> Result<Option<Told>> {
        let (cx, path) = (self.cx, self.path);
        let names: Vec<&str> = triggers.iter().map(|t| t.as_str()).collect();
        let done = round::run(
            cx,
            path,
            task,
            found,
            triggers,
            self.worktree,
            self.branch,
            note,
        )?;
        if done.interrupted {
            return Ok(told(
                Kind::Interrupted,
                format!("round {} interrupted", done.round.round),
            ));
        }
        let r = &done.round;
        let what = match (r.outcome, r.pushed.as_deref()) {
            (reaction::Outcome::Pushed, Some(h)) => format!("pushed {}", prompt::short(h)),
            (o, _) => o.as_str().replace('_', " "),
        };
        let line = format!("round {} ({}): {what}", r.round, names.join(", "));
        if !done.agent_failed {
            return Ok(told(Kind::Open, line));
        }
        let reason = format!(
            "the agent failed in round {}: {}",
            r.round,
            r.error.as_deref().unwrap_or("no error recorded")
        );
        let task = store::read_status(path)?;
        let mut t = escalate_or_tell(cx, path, &task, self.pr, &reason, triggers, note)?;
        if let Some(t) = t.as_mut() {
            t.line = format!("{line}; {}", t.line);
        }
        Ok(t)
    }
}

fn escalate_or_tell(
    cx: &Context,
    path: &Path,
    task: &AgentStatus,
    pr: u64,
    reason: &str,
    triggers: &[Trigger],
    note: &mut dyn FnMut(Note),
) -> Result<Option<Told>> {
    if cx.dry_run {
        return Ok(told(
            Kind::Escalated,
            format!("would hand it to a person: {reason}"),
        ));
    }
    for w in escalate::escalate(cx, path, task, pr, reason, triggers)? {
        note(Note::Warning(w));
    }
    Ok(told(Kind::Escalated, format!("needs a person: {reason}")))
}

enum Sync {
    Same,
    Pushed(String),
    WouldPush,
    Diverged(String),
}

/// Bring the task's branch and the pull request's head together: commits
/// pushed on GitHub are fast-forwarded into the worktree; commits of an
/// earlier round left unpushed are pushed.
fn sync(cx: &Context, worktree: &Path, branch: &str, found: &gather::Found) -> Result<Sync> {
    let head = found.head();
    let local = git::git(worktree, &["rev-parse", "HEAD"])?;
    if local == head || head.is_empty() {
        return Ok(Sync::Same);
    }
    let have = |oid: &str| git::git_ok(worktree, &["cat-file", "-e", &format!("{oid}^{{commit}}")]);
    if !have(head) {
        let r = &found.pr.head_ref_name;
        if !r.is_empty() && !r.starts_with('-') {
            let _ = git::git(worktree, &["fetch", "--quiet", &cx.remote, r]);
        }
    }
    if !have(head) {
        return Ok(Sync::Diverged(format!(
            "its head {} is not in the repository",
            prompt::short(head)
        )));
    }
    if git::is_ancestor(worktree, head, &local) {
        if cx.dry_run {
            return Ok(Sync::WouldPush);
        }
        round::push(worktree, &cx.remote, branch)?;
        return Ok(Sync::Pushed(local));
    }
    if git::is_ancestor(worktree, &local, head) {
        if !cx.dry_run {
            git::git(worktree, &["merge", "--ff-only", "--quiet", head])?;
        }
        return Ok(Sync::Same);
    }
    Ok(Sync::Diverged(format!(
        "{} on GitHub, {} here",
        prompt::short(head),
        prompt::short(&local)
    )))
}
