//! The task lifecycle: the only code that changes a task's state.
//!
//! ```text
//! pending ──start──▶ in_progress ──finish──▶ completed | failed | timed_out | cancelled
//! pending ──cancel / fail──▶ cancelled | failed          (it never started)
//! in_progress ──abandon──▶ failed | cancelled            (its runner died first)
//! in_progress ──stop_requested──▶ in_progress           (why it will end cancelled)
//! failed | timed_out | cancelled ──retry──▶ pending      (attempt + 1)
//! ```
//!
//! Every change is a read-modify-write under the status file's lock
//! ([`store::update_status`]). Nothing but [`retry`] leaves a terminal state,
//! so a late writer (a supervisor that outlived the scheduler that gave up on
//! it) can never overwrite a recorded result: the change is refused and the
//! file is left as it is. The duration of a run and the label a task is shown
//! by are computed here too, once for every tool.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::schema::{AgentStatus, Metrics, State, phase};
use super::store;
use crate::error::{Error, Result};
use crate::git::DiffStats;
use crate::timefmt::{self, Timestamp};

/// Errors are stored as one line of at most this many characters.
pub const ERROR_MAX: usize = 300;

/// What a runner records when it takes a pending task.
#[derive(Clone, Debug, Default)]
pub struct Start {
    /// The first phase (`worktree`, `starting`).
    pub phase: String,
    pub log_file: PathBuf,
    /// Where the agent runs: its worktree, or the repository.
    pub workdir: PathBuf,
    /// The task's branch (worktree runs only).
    pub branch: Option<String>,
    /// Fields naming the runner (`supervisor_pid`, `launcher`), set as given.
    pub runner: Map<String, Value>,
    /// The prompt the agent gets, recorded when the task names none of its own.
    pub prompt_file: Option<PathBuf>,
}

/// How a run ended, as its supervisor saw it.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub state: State,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    /// A failure that may pass when tried again unchanged (a rate limit).
    pub retryable: bool,
    /// The commit the task's branch started from (worktree runs).
    pub base_commit: Option<String>,
    /// What the task changed against that commit.
    pub diff: Option<DiffStats>,
}

impl Outcome {
    /// An outcome with nothing but a state and an error.
    pub fn of(state: State, error: Option<String>) -> Outcome {
        Outcome {
            state,
            error,
            exit_code: None,
            retryable: false,
            base_commit: None,
            diff: None,
        }
    }
}

/// `pending → in_progress`: the runner holds the task's liveness lock and
/// starts preparing it. Refused for a task that is not pending.
pub fn start(path: &Path, start: &Start) -> Result<AgentStatus> {
    store::update_status(path, |s| {
        if s.status != State::Pending {
            return Err(not_pending(path, s));
        }
        begin(s, start);
        Ok(())
    })
}

/// The agent runs with `pid` (its own process group): record it, and the
/// session it resumes or starts. With `start`, the task is taken in the same
/// write (nothing was prepared before the agent).
pub fn agent_started(
    path: &Path,
    pid: i32,
    session_id: Option<&str>,
    start: Option<&Start>,
) -> Result<AgentStatus> {
    store::update_status(path, |s| {
        if let Some(st) = start {
            if s.status != State::Pending {
                return Err(not_pending(path, s));
            }
            begin(s, st);
        }
        if s.status != State::InProgress {
            return Err(not_running(path, s));
        }
        if let Some(id) = session_id {
            s.metrics.session_id = Some(id.to_string());
        }
        s.pid = Some(pid);
        s.pgid = Some(pid);
        if s.phase
            .as_deref()
            .is_none_or(|p| phase::BEFORE_RUNNING.contains(&p))
        {
            s.phase = Some(phase::RUNNING.into());
        }
        Ok(())
    })
}

/// A running task's phase, as its runner moves through preparing it.
pub fn phase(path: &Path, phase: &str) -> Result<AgentStatus> {
    store::update_status(path, |s| {
        if s.status.is_terminal() {
            return Err(finished(path, s));
        }
        s.phase = Some(phase.to_string());
        Ok(())
    })
}

/// `in_progress → terminal` (or `pending → terminal` for a task that failed
/// before it could start): record the outcome, the time, the duration and the
/// changes. A task already terminal is left as it is and returned.
pub fn finish(path: &Path, outcome: Outcome) -> Result<AgentStatus> {
    if !outcome.state.is_terminal() {
        return Err(Error::system(format!(
            "record {}: {} is not a final state",
            path.display(),
            outcome.state
        )));
    }
    store::update_status(path, |s| {
        if s.status.is_terminal() {
            return Ok(());
        }
        let now = timefmt::now();
        s.status = outcome.state;
        s.error = outcome.error.as_deref().map(one_line);
        s.exit_code = outcome.exit_code;
        s.retryable = outcome.retryable.then_some(true);
        s.completion_time = Some(now);
        s.metrics.duration_seconds = s.start_time.map(|start| seconds_between(start, now));
        if outcome.base_commit.is_some() {
            s.base_commit = outcome.base_commit.clone();
        }
        if let Some(d) = outcome.diff {
            s.metrics.commits = Some(d.commits);
            s.metrics.files_changed = Some(d.files_changed);
            s.metrics.lines_added = Some(d.lines_added);
            s.metrics.lines_removed = Some(d.lines_removed);
        }
        if s.status == State::Completed {
            s.progress_percentage = Some(100);
        }
        // Ended because the scheduler asked (a spending cap): say why.
        let stop = s.stop_reason.take();
        if s.status == State::Cancelled
            && let Some(reason) = stop
        {
            s.error = Some(one_line(&reason));
        }
        Ok(())
    })
}

/// Record why a running task is about to be ended (a spending cap), so that
/// its runner's `cancelled` carries that reason rather than an interrupt's.
/// Its state does not change; a task that is not running is left alone.
pub fn stop_requested(path: &Path, reason: &str) -> Result<AgentStatus> {
    store::update_status(path, |s| {
        if s.status == State::InProgress {
            s.stop_reason = Some(one_line(reason));
        }
        Ok(())
    })
}

/// A task that failed while it was being prepared, in `phase`.
pub fn fail(path: &Path, phase: &str, error: &str) -> Result<AgentStatus> {
    store::update_status(path, |s| {
        if !s.status.is_terminal() {
            s.phase = Some(phase.to_string());
        }
        Ok(())
    })?;
    finish(path, Outcome::of(State::Failed, Some(error.to_string())))
}

/// `pending → cancelled`: a task that will not start (a stop, a dependency
/// that failed, a budget). A task that is running or finished is left alone.
pub fn cancel(path: &Path, reason: &str) -> Result<AgentStatus> {
    let s = store::read_status(path)?;
    if s.status != State::Pending {
        return Ok(s);
    }
    store::update_status(path, |s| {
        if s.status == State::Pending {
            s.status = State::Cancelled;
            s.error = Some(one_line(reason));
            s.completion_time = Some(timefmt::now());
            s.retryable = None;
        }
        Ok(())
    })
}

/// A task whose runner is gone without recording a result: `failed`, or
/// `cancelled` when it was being stopped anyway. Finished tasks are kept.
pub fn abandon(path: &Path, reason: &str, cancelled: bool) -> Result<AgentStatus> {
    let state = if cancelled {
        State::Cancelled
    } else {
        State::Failed
    };
    finish(path, Outcome::of(state, Some(reason.to_string())))
}

/// What an attempt of these figures cost, in USD, when it is known.
pub type Price = fn(&Metrics) -> Option<f64>;

/// `failed | timed_out | cancelled → pending`, attempt + 1. `None` when the
/// task is not in a state a retry leaves.
///
/// What the attempt cost (`price`: its reported cost, else an estimate,
/// [`crate::cost::attempt_cost`]) moves to `metrics.previous_cost_usd`, so
/// a retry's new figures never hide the spend of the attempts before it.
pub fn retry(path: &Path, price: Price) -> Result<Option<AgentStatus>> {
    let mut moved = false;
    let s = store::update_status(path, |s| {
        if !s.status.is_retryable() {
            return Ok(());
        }
        moved = true;
        s.status = State::Pending;
        s.attempt += 1;
        s.error = None;
        s.exit_code = None;
        s.completion_time = None;
        s.pid = None;
        s.pgid = None;
        s.retryable = None;
        s.phase = None;
        s.progress_percentage = Some(0);
        s.stop_reason = None;
        s.metrics.duration_seconds = None;
        settle_attempt_cost(&mut s.metrics, price);
        Ok(())
    })?;
    Ok(moved.then_some(s))
}

/// Move the attempt's cost (reported, else estimated from its tokens) to
/// `previous_cost_usd` and clear the attempt's own figures.
pub(crate) fn settle_attempt_cost(m: &mut Metrics, price: Price) {
    if let Some(cost) = price(m) {
        m.previous_cost_usd = Some(m.previous_cost_usd.unwrap_or(0.0) + cost.max(0.0));
        if m.cost_usd.is_none() && m.session_id.is_some() {
            // An estimate of a run that never reported its figure: once the
            // session is resumed, Claude Code's total counts that run too.
            m.session_cost_usd = Some(m.session_cost_usd.unwrap_or(0.0) + cost.max(0.0));
        }
    }
    m.cost_usd = None;
    m.turns = None;
    m.input_tokens = None;
    m.output_tokens = None;
    m.cache_creation_input_tokens = None;
    m.cache_read_input_tokens = None;
}

/// An error as it is stored: one line, at most [`ERROR_MAX`] characters.
pub fn one_line(s: &str) -> String {
    crate::text::ellipsize(&crate::text::collapse_whitespace(s), ERROR_MAX)
}

pub(super) fn seconds_between(a: Timestamp, b: Timestamp) -> f64 {
    (b - a).num_milliseconds().max(0) as f64 / 1000.0
}

fn begin(s: &mut AgentStatus, start: &Start) {
    s.status = State::InProgress;
    s.start_time = Some(timefmt::now());
    s.completion_time = None;
    s.error = None;
    s.exit_code = None;
    s.retryable = None;
    s.pid = None;
    s.pgid = None;
    s.metrics.duration_seconds = None;
    s.phase = Some(start.phase.clone());
    s.log_file = Some(start.log_file.clone());
    s.worktree = Some(start.workdir.clone());
    if start.branch.is_some() {
        s.branch = start.branch.clone();
    }
    if s.prompt_file.is_none() {
        s.prompt_file = start.prompt_file.clone();
    }
    // The runner of an earlier attempt (another launcher, another node) is
    // not this one's.
    for field in super::runner::FIELDS {
        s.extra.remove(field);
    }
    for (k, v) in &start.runner {
        s.extra.insert(k.clone(), v.clone());
    }
}

fn not_pending(path: &Path, s: &AgentStatus) -> Error {
    Error::validation(
        path.display().to_string(),
        format!(
            "{} is {}, not pending: nothing to start",
            s.agent_id, s.status
        ),
    )
}

fn not_running(path: &Path, s: &AgentStatus) -> Error {
    Error::validation(
        path.display().to_string(),
        format!("{} is {}, not in progress", s.agent_id, s.status),
    )
}

fn finished(path: &Path, s: &AgentStatus) -> Error {
    Error::validation(
        path.display().to_string(),
        format!(
            "{} is {}; a finished task does not change (po-spawn --retry starts it again)",
            s.agent_id, s.status
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(dir: &Path) -> PathBuf {
        let p = dir.join("agent-1.status.json");
        store::write_status(&p, &AgentStatus::new("agent-1", "7")).unwrap();
        p
    }

    fn started(dir: &Path) -> PathBuf {
        let p = task(dir);
        // An earlier attempt ran as a cluster job.
        store::update_status(&p, |s| {
            s.extra.insert("launcher".into(), "slurm".into());
            s.extra.insert("job_id".into(), 56.into());
            s.extra.insert("node".into(), "n01".into());
            Ok(())
        })
        .unwrap();
        start(
            &p,
            &Start {
                phase: "worktree".into(),
                log_file: dir.join("agent-1.log"),
                workdir: dir.to_path_buf(),
                branch: Some("feat/x".into()),
                runner: [("supervisor_pid".to_string(), Value::from(42))]
                    .into_iter()
                    .collect(),
                prompt_file: None,
            },
        )
        .unwrap();
        p
    }

    #[test]
    fn a_run_goes_pending_running_finished_with_its_duration() {
        let dir = tempfile::tempdir().unwrap();
        let p = started(dir.path());
        let s = store::read_status(&p).unwrap();
        assert_eq!(s.status, State::InProgress);
        assert_eq!(s.branch.as_deref(), Some("feat/x"));
        assert_eq!(s.extra["supervisor_pid"], 42);
        assert!(
            !s.extra.contains_key("job_id") && !s.extra.contains_key("node"),
            "an earlier attempt's runner is forgotten: {:?}",
            s.extra
        );
        let s = agent_started(&p, 1234, Some("sess"), None).unwrap();
        assert_eq!((s.pid, s.phase.as_deref()), (Some(1234), Some("running")));
        assert_eq!(s.metrics.session_id.as_deref(), Some("sess"));
        let s = finish(&p, Outcome::of(State::Completed, None)).unwrap();
        assert_eq!(s.status, State::Completed);
        assert_eq!(s.progress_percentage, Some(100));
        assert!(s.completion_time.is_some());
        assert!(s.metrics.duration_seconds.unwrap() >= 0.0);
    }

    #[test]
    fn a_terminal_state_is_never_overwritten_except_by_retry() {
        let dir = tempfile::tempdir().unwrap();
        let p = started(dir.path());
        finish(&p, Outcome::of(State::TimedOut, Some("slow".into()))).unwrap();
        // A late writer: refused silently, the result stays.
        let s = finish(&p, Outcome::of(State::Completed, None)).unwrap();
        assert_eq!(
            (s.status, s.error.as_deref()),
            (State::TimedOut, Some("slow"))
        );
        let s = abandon(&p, "supervisor died", false).unwrap();
        assert_eq!(s.status, State::TimedOut);
        let s = cancel(&p, "stop").unwrap();
        assert_eq!(s.status, State::TimedOut);
        assert!(phase(&p, "testing").is_err());
        assert!(start(&p, &Start::default()).is_err());
        let s = retry(&p, crate::cost::attempt_cost)
            .unwrap()
            .expect("timed out is retryable");
        assert_eq!((s.status, s.attempt, s.error), (State::Pending, 2, None));
    }

    #[test]
    fn completed_tasks_are_not_retried_and_cancel_takes_only_pending_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = started(dir.path());
        assert_eq!(cancel(&p, "stop").unwrap().status, State::InProgress);
        finish(&p, Outcome::of(State::Completed, None)).unwrap();
        assert!(retry(&p, crate::cost::attempt_cost).unwrap().is_none());
        assert_eq!(store::read_status(&p).unwrap().status, State::Completed);

        let other = tempfile::tempdir().unwrap();
        let q = task(other.path());
        let s = cancel(&q, "cancelled: dependency agent-0 failed").unwrap();
        assert_eq!(s.status, State::Cancelled);
        assert!(agent_started(&q, 1, None, None).is_err());
    }

    #[test]
    fn a_retry_keeps_what_the_attempt_cost_and_clears_its_figures() {
        let dir = tempfile::tempdir().unwrap();
        let p = started(dir.path());
        store::update_status(&p, |s| {
            s.metrics.cost_usd = Some(0.25);
            s.metrics.session_cost_usd = Some(0.25);
            s.metrics.session_id = Some("sess".into());
            s.metrics.input_tokens = Some(3500);
            s.metrics.output_tokens = Some(85);
            s.metrics.turns = Some(2);
            Ok(())
        })
        .unwrap();
        finish(&p, Outcome::of(State::Failed, Some("rate limited".into()))).unwrap();
        let s = retry(&p, crate::cost::attempt_cost).unwrap().unwrap();
        let m = &s.metrics;
        assert_eq!((m.previous_cost_usd, m.cost_usd), (Some(0.25), None));
        assert_eq!(
            (m.input_tokens, m.output_tokens, m.turns),
            (None, None, None)
        );
        assert_eq!(
            m.session_cost_usd,
            Some(0.25),
            "the CLI's figure, as it was"
        );

        // The second attempt is killed before it reports a cost: its tokens
        // at its model's price are kept, and the resumed session's total
        // will count that run too.
        start(&p, &Start::default()).unwrap();
        store::update_status(&p, |s| {
            s.metrics.model = Some("claude-sonnet-4-5".into());
            s.metrics.input_tokens = Some(7000);
            s.metrics.cache_creation_input_tokens = Some(600);
            s.metrics.cache_read_input_tokens = Some(4000);
            s.metrics.output_tokens = Some(170);
            Ok(())
        })
        .unwrap();
        finish(&p, Outcome::of(State::TimedOut, None)).unwrap();
        let m = retry(&p, crate::cost::attempt_cost)
            .unwrap()
            .unwrap()
            .metrics;
        assert!(
            (m.previous_cost_usd.unwrap() - 0.2632).abs() < 1e-9,
            "{m:?}"
        );
        assert!((m.session_cost_usd.unwrap() - 0.2632).abs() < 1e-9, "{m:?}");
        assert_eq!(m.cache_read_input_tokens, None);
    }

    #[test]
    fn a_stop_the_scheduler_asked_for_is_the_cancels_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = started(dir.path());
        let s = stop_requested(&p, "cancelled: the budget was spent").unwrap();
        assert_eq!(s.status, State::InProgress, "the state does not change");
        let s = finish(
            &p,
            Outcome::of(State::Cancelled, Some("cancelled: interrupted".into())),
        )
        .unwrap();
        assert_eq!(s.error.as_deref(), Some("cancelled: the budget was spent"));
        assert_eq!(s.stop_reason, None);

        // An agent that completes before it is ended keeps its result.
        let other = tempfile::tempdir().unwrap();
        let q = started(other.path());
        stop_requested(&q, "cancelled: the budget was spent").unwrap();
        let s = finish(&q, Outcome::of(State::Completed, None)).unwrap();
        assert_eq!(
            (s.status, s.error, s.stop_reason),
            (State::Completed, None, None)
        );
        // A finished task is left alone.
        let s = stop_requested(&q, "late").unwrap();
        assert_eq!(s.stop_reason, None);
    }

    #[test]
    fn errors_are_stored_as_one_bounded_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = task(dir.path());
        let long = format!("line one\nline two {}", "x".repeat(1000));
        let s = fail(&p, "setup", &long).unwrap();
        let e = s.error.unwrap();
        assert!(!e.contains('\n'));
        assert!(e.chars().count() <= ERROR_MAX, "{}", e.len());
        assert_eq!(
            (s.status, s.phase.as_deref()),
            (State::Failed, Some("setup"))
        );
    }
}
