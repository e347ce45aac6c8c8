//! The scheduler: which task runs when, under which base, with how many at once.
//!
//! A [`Scheduler`] is a value: the tasks and where each is (waiting, running
//! under a [`Runner`], done), and what the run is doing (its wave, its batch,
//! whether it is stopping). One method, [`Scheduler::handle`], takes each
//! [`Event`] — a launcher's wake-up, a timer, a signal — and moves the run
//! on; [`run`] is the event loop around it. How a task ended is read from its
//! status file only: a launcher says whether a task's runner is still at
//! work, never how the task went.
//!
//! * [`setup`]: the orchestration, the repository, the lock, the logs, the
//!   supervisor specs.
//! * [`plan`]: waves and batches, or a dependency graph: what may start now.
//! * [`console`]: what po-spawn says on stderr and records in the session log.
//! * [`budget`]: spend guardrails: the orchestration's budget, the run's
//!   retry cap.
//! * [`dry_run`]: the plan, printed instead of run.
//! * [`tally`]: where every task is, kept as each moves, so that an event
//!   costs the same however many tasks the run has.
//!
//! Task states at start:
//! * `pending` runs; `completed` is counted and skipped.
//! * `in_progress` whose runner is alive is adopted: its supervisor (left by
//!   an earlier po-spawn) keeps running it and this run waits for it.
//! * `in_progress` with no runner is an orphan: whatever is left of its
//!   process tree is ended and it is recorded `failed`; `--retry` runs it.
//! * `failed`, `timed_out`, `cancelled` run again (attempt + 1, same worktree
//!   and branch) with `--retry`, or when named one by one as status files.
//!
//! No task ever has two live supervisors: only the holder of `spawn.lock`
//! starts supervisors, and a supervisor runs its task only while it holds the
//! task's liveness lock and the task is `pending`.

pub mod budget;
mod console;
mod dry_run;
mod plan;
mod preflight;
pub mod setup;
mod tally;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::integration::Integrate;
use super::launcher::{self as launchers, Ended, Launcher, Runner, RunnerState};
use super::supervisor::{AgentSpec, SUPERVISOR_PID_FIELD};
use crate::error::{Result, exit};
use crate::protocol::view::Row;
use crate::protocol::{AgentStatus, Runtime, State, lifecycle, store};
pub use console::Console;
pub use plan::Mode;
use setup::{Context, Setup};

/// How to run an orchestration (the command line, with the environment applied).
#[derive(Clone, Debug)]
pub struct Config {
    pub max_workers: usize,
    pub batch_size: Option<usize>,
    pub timeout_secs: f64,
    pub stall_secs: Option<f64>,
    pub grace_secs: f64,
    pub agent: AgentSpec,
    pub setup: Option<String>,
    pub isolated: bool,
    pub base: Option<String>,
    pub retry: bool,
    pub retries: u32,
    pub retry_backoff_secs: f64,
    pub dry_run: bool,
    pub create_pr: Option<bool>,
    pub remote: String,
    pub threshold: u32,
    pub status_interval_secs: u64,
    pub validation_timeout_secs: f64,
    pub log_dir: Option<PathBuf>,
    /// Spend guardrails: budget, retry cap, turns.
    pub limits: budget::Limits,
    /// Where supervisors run: the local pool, or Slurm jobs.
    pub launcher: launchers::Choice,
    /// Run each agent under the sandbox (`--sandbox`).
    pub sandbox: Option<crate::run::sandbox::Options>,
}

impl Default for Config {
    /// po-spawn's defaults.
    fn default() -> Config {
        Config {
            max_workers: 5,
            batch_size: None,
            timeout_secs: 1800.0,
            stall_secs: None,
            grace_secs: 10.0,
            agent: AgentSpec::named(crate::run::agent::REGISTERED[0].name),
            setup: None,
            isolated: true,
            base: None,
            retry: false,
            retries: 0,
            retry_backoff_secs: 30.0,
            dry_run: false,
            create_pr: None,
            remote: "origin".into(),
            threshold: exit::DEFAULT_THRESHOLD,
            status_interval_secs: 30,
            validation_timeout_secs: 1800.0,
            log_dir: None,
            limits: budget::Limits::default(),
            launcher: launchers::Choice::Local,
            sandbox: None,
        }
    }
}

/// Which tasks to run.
#[derive(Clone, Debug)]
pub enum Target {
    /// Status files named one by one (arguments or stdin).
    Files(Vec<PathBuf>),
    /// Every task of an orchestration directory.
    Dir(PathBuf),
}

/// What moves a run on.
#[derive(Debug)]
pub enum Event {
    /// A launcher says a runner may have changed: look again.
    Wake,
    /// A timer: progress lines, a retry's backoff.
    Tick,
    /// SIGINT, SIGTERM or SIGHUP reached po-spawn.
    Signal(Signal),
}

/// Where a task is in this run, with what only that place has.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot {
    /// Not started; `not_before`: a retry's backoff ends then.
    Waiting {
        not_before: Option<Instant>,
    },
    /// Its runner works on it; `adopted`: the runner came from an earlier
    /// po-spawn.
    Running {
        runner: Runner,
        adopted: bool,
    },
    Done,
}

impl Slot {
    const WAITING: Slot = Slot::Waiting { not_before: None };
}

struct Task {
    path: PathBuf,
    status: AgentStatus,
    /// Its wave as read at the start (the task list is in this order).
    wave: u32,
    /// How it is shown: its label, control characters made harmless.
    label: String,
    slot: Slot,
    retries_used: u32,
    /// The phase and progress last shown.
    shown: (Option<String>, Option<u8>),
}

impl Task {
    fn new(path: PathBuf, status: AgentStatus) -> Task {
        Task {
            label: crate::text::printable(&crate::protocol::view::label(&status)),
            wave: status.wave,
            path,
            status,
            slot: Slot::WAITING,
            retries_used: 0,
            shown: (None, None),
        }
    }

    fn running(&self) -> Option<&Runner> {
        match &self.slot {
            Slot::Running { runner, .. } => Some(runner),
            _ => None,
        }
    }
}

/// Whether the run is stopping, and how far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stopping {
    /// Running to the end.
    No,
    /// A wave's merge or validation failed: later waves do not run.
    WaveFailed,
    /// SIGINT or SIGTERM: waiting tasks were cancelled and running ones are
    /// being ended; `forced` after the second signal.
    Interrupted { forced: bool },
    /// Leave at once, running tasks or not: SIGHUP (running agents are left
    /// to their supervisors), or a third signal (`interrupted`).
    Leaving { interrupted: bool },
}

impl Stopping {
    fn interrupted(self) -> bool {
        matches!(
            self,
            Stopping::Interrupted { .. } | Stopping::Leaving { interrupted: true }
        )
    }
}

/// The parts a scheduler is made of.
pub struct Parts {
    pub ctx: Context,
    pub mode: Mode,
    pub validations: HashMap<u32, String>,
    /// The tasks' status files as read; unreadable ones are counted.
    pub rows: Vec<Row>,
    /// Status files were named one by one.
    pub explicit: bool,
    /// The first wave's base commit (`--base`).
    pub base: String,
    /// The session of the run before this one, if there was one.
    pub previous_session: Option<String>,
    pub launcher: Box<dyn Launcher>,
    pub integration: Box<dyn Integrate>,
    pub console: Console,
}

/// One run of an orchestration, as a value.
pub struct Scheduler {
    ctx: Context,
    mode: Mode,
    validations: HashMap<u32, String>,
    tasks: Vec<Task>,
    tally: tally::Tally,
    unreadable: usize,
    explicit: bool,
    launcher: Box<dyn Launcher>,
    integration: Box<dyn Integrate>,
    out: Console,
    previous_session: Option<String>,
    /// Tasks this run runs again (retries of an earlier run's failures).
    retried: usize,
    waves: plan::Waves,
    stopping: Stopping,
    last_tick: Instant,
    started: Instant,
    guard: budget::Guard,
}

impl Scheduler {
    pub fn new(parts: Parts) -> Scheduler {
        let mut unreadable = 0;
        let mut tasks = Vec::new();
        for row in parts.rows {
            match row {
                Row::Task(t) => tasks.push(Task::new(t.file, t.status)),
                Row::Bad(b) => {
                    unreadable += 1;
                    parts.console.say(&format!(
                        "po-spawn: failed to read status file {}: {}",
                        b.file.display(),
                        b.problem
                    ));
                }
            }
        }
        tasks.sort_by(|a, b| {
            (a.wave, a.status.number(), &a.path).cmp(&(b.wave, b.status.number(), &b.path))
        });
        let waves = plan::Waves::new(&tasks, parts.base);
        Scheduler {
            ctx: parts.ctx,
            mode: parts.mode,
            validations: parts.validations,
            tally: tally::Tally::new(&tasks),
            tasks,
            unreadable,
            explicit: parts.explicit,
            launcher: parts.launcher,
            integration: parts.integration,
            out: parts.console,
            previous_session: parts.previous_session,
            retried: 0,
            waves,
            stopping: Stopping::No,
            last_tick: Instant::now(),
            started: Instant::now(),
            guard: budget::Guard::default(),
        }
    }

    /// Take over what is on disk (adopt, recover orphans, reset retries),
    /// then start what may start.
    pub fn begin(&mut self) -> Result<()> {
        self.out.started();
        let before: Vec<(State, Option<String>)> = self
            .tasks
            .iter()
            .map(|t| (t.status.status, t.status.error.clone()))
            .collect();
        for idx in 0..self.tasks.len() {
            self.classify(idx)?;
        }
        for idx in 0..self.tasks.len() {
            if self.tasks[idx].slot == Slot::Done {
                self.already_done(idx);
            }
        }
        self.announce(&before);
        self.rebuild_earlier_waves()?;
        self.guard_begin();
        self.advance()
    }

    /// The seed's opening lines: what a retry runs again, how many agents
    /// are deployed, how progress is shown.
    fn announce(&mut self, before: &[(State, Option<String>)]) {
        let retried: Vec<(String, String)> = self
            .tasks
            .iter()
            .zip(before)
            .filter(|(t, (state, _))| state.is_terminal() && matches!(t.slot, Slot::Waiting { .. }))
            .map(|(t, (state, error))| {
                let why = error
                    .as_deref()
                    .map(crate::protocol::view::error_gist)
                    .unwrap_or_else(|| state.to_string());
                (t.label.clone(), why)
            })
            .collect();
        self.retried = retried.len();
        if !retried.is_empty() {
            let completed = before
                .iter()
                .filter(|(s, _)| *s == State::Completed)
                .count();
            let found = self.previous_session.as_deref().unwrap_or(&self.ctx.id);
            self.out
                .retry_mode(found, completed, before.len() + self.unreadable, &retried);
        }
        let deploy = self.tally.waiting.len();
        if deploy == 0 && !self.any_running() {
            self.out.nothing_to_run(self.tasks.len());
            return;
        }
        let cfg = &self.ctx.cfg;
        self.out
            .deployed(deploy, !retried.is_empty(), cfg.max_workers, cfg.batch_size);
        if cfg.batch_size.is_none() {
            self.out.monitoring(self.interval());
        }
    }

    /// Move the run on after `event`.
    pub fn handle(&mut self, event: Event) -> Result<()> {
        // A running task's file is read on a timer (progress, a budget's
        // running spend); on a wake-up only the tasks whose runner ended.
        let all = matches!(event, Event::Tick) || self.budget().is_some();
        match event {
            Event::Signal(sig) => self.signal(sig),
            Event::Wake => {}
            Event::Tick => {
                if self.last_tick.elapsed() >= self.interval() {
                    self.poll(true)?;
                    self.progress();
                    self.spend_progress();
                    self.last_tick = Instant::now();
                }
            }
        }
        self.poll(all)?;
        self.budget_enforce();
        self.advance()
    }

    /// Whether the run is over: nothing runs and nothing more will start.
    pub fn finished(&self) -> bool {
        matches!(self.stopping, Stopping::Leaving { .. })
            || (!self.any_running() && (self.stopping() || self.tally.waiting.is_empty()))
    }

    /// When the loop should look again without an event: the next progress
    /// line or the end of a retry's backoff.
    pub fn next_wakeup(&self) -> Instant {
        let tick = self.last_tick + self.interval();
        let next = self
            .tally
            .backing_off
            .iter()
            .filter_map(|&i| match self.tasks[i].slot {
                Slot::Waiting { not_before } => not_before,
                _ => None,
            })
            .fold(tick, Instant::min);
        self.guard_wakeup(next)
    }

    /// Say how the run went; its exit code.
    pub fn close(&self) -> i32 {
        let total = self.tasks.len() + self.unreadable;
        let mut by_state: HashMap<State, usize> = HashMap::new();
        for t in &self.tasks {
            *by_state.entry(t.status.status).or_default() += 1;
        }
        let count = |s: State| by_state.get(&s).copied().unwrap_or(0);
        let completed = count(State::Completed);
        // Only a run whose own tasks all completed can speak for the rest.
        let elsewhere = match completed == total {
            true => self.unfinished_elsewhere(),
            false => Vec::new(),
        };
        self.out.summary(&console::Totals {
            total,
            completed,
            failed: count(State::Failed) + self.unreadable,
            timed_out: count(State::TimedOut),
            cancelled: count(State::Cancelled),
            pending: count(State::Pending),
            running: count(State::InProgress),
            elsewhere: elsewhere.clone(),
            orchestration: &self.ctx.id,
            took: self.started.elapsed().as_secs_f64(),
            logs: &self.ctx.logs,
        });
        self.spend_close();
        if self.retried > 0 && completed == total && elsewhere.is_empty() {
            self.out.retry_successful();
        }
        let code = match self.stopping {
            Stopping::Interrupted { .. } | Stopping::Leaving { .. } => exit::INTERRUPTED,
            Stopping::WaveFailed => exit::VALIDATION,
            Stopping::No => exit::by_threshold(completed, total, self.ctx.cfg.threshold),
        };
        self.out.log(&format!("exit {code}"));
        code
    }

    /// A signal that arrived while the run was busy (a validation it ended).
    pub fn interrupted_late(&mut self, sig: Signal) {
        if sig != Signal::SIGHUP && matches!(self.stopping, Stopping::No | Stopping::WaveFailed) {
            self.stopping = Stopping::Interrupted { forced: false };
        }
    }

    /// The tasks of the orchestration outside this run that have not
    /// completed (an unreadable file counts, as `failed`).
    fn unfinished_elsewhere(&self) -> Vec<(String, State)> {
        let view = crate::protocol::view::Reader::plain().read(&self.ctx.dir);
        let mut rest: Vec<(String, State)> = view
            .tasks()
            .filter(|t| {
                t.state() != State::Completed && self.tally.find(&t.status.agent_id).is_none()
            })
            .map(|t| (t.status.agent_id.clone(), t.state()))
            .collect();
        rest.extend(
            view.bad()
                .map(|b| (b.file.display().to_string(), State::Failed)),
        );
        rest
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.ctx.cfg.status_interval_secs.max(1))
    }

    fn stopping(&self) -> bool {
        self.stopping != Stopping::No
    }

    /// What the task's file says at start decides what this run does with it.
    fn classify(&mut self, idx: usize) -> Result<()> {
        let t = &self.tasks[idx];
        match t.status.status {
            State::Pending => Ok(()),
            State::InProgress => match self.launcher.adopt(&t.path, &t.status) {
                Some(runner) => {
                    self.out.log(&format!(
                        "adopt {}: its supervisor is alive",
                        t.status.agent_id
                    ));
                    // One that ended already is told when it is recorded.
                    if !matches!(self.launcher.state(&runner), RunnerState::Ended(_)) {
                        self.out.say(&format!("  {}: RUNNING (adopted)", t.label));
                    }
                    self.set_slot(
                        idx,
                        Slot::Running {
                            runner,
                            adopted: true,
                        },
                    );
                    Ok(())
                }
                None => self.orphaned(idx),
            },
            s if s.is_retryable() && (self.ctx.cfg.retry || self.explicit) => {
                self.retry_reset(idx, None)
            }
            _ => {
                self.set_slot(idx, Slot::Done);
                Ok(())
            }
        }
    }

    /// A task `in_progress` whose supervisor died: end what is left of it,
    /// record it failed, and with `--retry` run it again.
    fn orphaned(&mut self, idx: usize) -> Result<()> {
        let t = &self.tasks[idx];
        let ended = self.launcher.clean_up(&t.path, &t.status);
        if ended > 0 {
            self.out.log(&format!(
                "{}: ended {ended} process(es) left by its dead supervisor",
                t.status.agent_id
            ));
        }
        let reason = format!(
            "interrupted: its supervisor{} died before recording a result; \
             `po-spawn --retry` runs it again",
            t.status
                .extra
                .get(SUPERVISOR_PID_FIELD)
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default()
        );
        let status = lifecycle::abandon(&t.path, &reason, false)?;
        self.out.log(&format!("{}: {reason}", status.agent_id));
        self.tasks[idx].status = status;
        if self.ctx.cfg.retry {
            self.retry_reset(idx, None)
        } else {
            self.set_slot(idx, Slot::Done);
            Ok(())
        }
    }

    /// A task this run does not run: say so, open its missing pull request,
    /// print its path.
    fn already_done(&mut self, idx: usize) {
        let t = &self.tasks[idx];
        self.out
            .detail(&format!("  {}: already {}", t.label, t.status.status));
        if t.status.status == State::Completed
            && t.status.pr_number.is_none()
            && let Some(pr) = &self.ctx.pr
        {
            let _ = pr.open(&t.path, &self.ctx.repo);
        }
        self.out.path(&t.path);
    }

    /// Make task `idx` pending again (attempt + 1) and let it wait, until
    /// `not_before` when given.
    fn retry_reset(&mut self, idx: usize, not_before: Option<Instant>) -> Result<()> {
        let t = &mut self.tasks[idx];
        if let Some(s) = lifecycle::retry(&t.path, crate::cost::attempt_cost)? {
            self.out
                .log(&format!("retry {}: attempt {}", s.agent_id, s.attempt));
            t.status = s;
        }
        self.set_slot(idx, Slot::Waiting { not_before });
        Ok(())
    }

    /// Look at the running tasks whose runner ended (and with `all`, at
    /// every running task's file too).
    fn poll(&mut self, all: bool) -> Result<()> {
        let running: Vec<usize> = self.tally.running.iter().copied().collect();
        for idx in running {
            let Some(runner) = self.tasks[idx].running().cloned() else {
                continue;
            };
            let state = self.launcher.state(&runner);
            let running = matches!(state, RunnerState::Running | RunnerState::Queued(_));
            if running && !all {
                continue;
            }
            let status = match store::read_status(&self.tasks[idx].path) {
                Ok(s) => s,
                Err(e) => {
                    self.out.say(&format!("po-spawn: failed to {e}"));
                    self.set_slot(idx, Slot::Done);
                    continue;
                }
            };
            match state {
                RunnerState::Running | RunnerState::Queued(_) => self.tasks[idx].status = status,
                RunnerState::Ended(_) if status.status.is_terminal() => self.done(idx, status)?,
                RunnerState::Ended(ended) => self.runner_lost(idx, &ended)?,
            }
        }
        Ok(())
    }

    /// A runner that ended without recording a result: someone else's
    /// supervisor runs the task now (adopt it), or it is failed (cancelled
    /// when the run is being stopped) and what is left of it is ended.
    fn runner_lost(&mut self, idx: usize, ended: &Ended) -> Result<()> {
        let t = &self.tasks[idx];
        if store::is_live(&t.path)
            && let Some(runner) = self.launcher.adopt(&t.path, &t.status)
        {
            self.out.log(&format!(
                "{}: another supervisor holds its liveness lock; adopting it",
                t.status.agent_id
            ));
            self.set_slot(
                idx,
                Slot::Running {
                    runner,
                    adopted: true,
                },
            );
            return Ok(());
        }
        let interrupted = ended.interrupted || self.stopping.interrupted();
        let reason = if interrupted {
            "cancelled: po-spawn was interrupted; `po-spawn --retry` runs it".to_string()
        } else {
            format!(
                "{} before recording a result; see {}",
                ended.how,
                self.ctx
                    .logs
                    .join(format!("{}.log", t.status.agent_id))
                    .display()
            )
        };
        self.launcher.clean_up(&t.path, &t.status);
        let status = lifecycle::abandon(&t.path, &reason, interrupted)?;
        self.done(idx, status)
    }

    /// A task whose runner is done with it, as its file records it.
    fn done(&mut self, idx: usize, status: AgentStatus) -> Result<()> {
        let adopted = matches!(self.tasks[idx].slot, Slot::Running { adopted: true, .. });
        let t = &mut self.tasks[idx];
        t.status = status;
        self.out.log(&format!(
            "{} finished: {}{}",
            t.status.agent_id,
            t.status.status,
            t.status
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
        self.set_slot(idx, Slot::Done);
        if self.retry_later(idx)? {
            return Ok(());
        }
        let t = &mut self.tasks[idx];
        if adopted
            && t.status.status == State::Completed
            && t.status.pr_number.is_none()
            && t.status.error.is_none()
            && let Some(pr) = &self.ctx.pr
        {
            // An adopted task whose supervisor predates PR creation.
            let _ = pr.open(&t.path, &self.ctx.repo);
            if let Ok(s) = store::read_status(&t.path) {
                t.status = s;
            }
        }
        self.out.finished(&t.label, &t.status);
        self.out.path(&t.path);
        let failed = matches!(t.status.status, State::Failed | State::TimedOut);
        if failed && !self.stopping() && (!self.tally.waiting.is_empty() || self.any_running()) {
            self.out.continuing();
        }
        Ok(())
    }

    /// A retryable failure (a rate limit) tries again with backoff, within
    /// the run's retry cap and its budget: whether task `idx` will.
    fn retry_later(&mut self, idx: usize) -> Result<bool> {
        let (retries, backoff) = (self.ctx.cfg.retries, self.ctx.cfg.retry_backoff_secs);
        let t = &self.tasks[idx];
        if t.status.status != State::Failed
            || t.status.retryable != Some(true)
            || t.retries_used >= retries
            || self.stopping()
            || !self.retry_allowed(idx)
        {
            return Ok(false);
        }
        let t = &mut self.tasks[idx];
        let delay = backoff * 2f64.powi(t.retries_used as i32);
        t.retries_used += 1;
        self.out.retrying(&t.label, t.retries_used, retries, delay);
        let at = Instant::now() + Duration::from_secs_f64(delay.max(0.0));
        self.retry_reset(idx, Some(at))?;
        Ok(true)
    }

    /// SIGHUP leaves the agents to their supervisors; SIGINT and SIGTERM
    /// cancel (a second one forces, a third leaves at once).
    fn signal(&mut self, sig: Signal) {
        if sig == Signal::SIGHUP {
            self.out.hangup();
            self.stopping = Stopping::Leaving {
                interrupted: self.stopping.interrupted(),
            };
            return;
        }
        let force = match self.stopping {
            Stopping::No | Stopping::WaveFailed => {
                self.stopping = Stopping::Interrupted { forced: false };
                self.out.interrupted(sig);
                self.cancel_waiting(
                    "cancelled: po-spawn was interrupted before it started; `po-spawn --retry` \
                     runs it",
                );
                false
            }
            Stopping::Interrupted { forced: false } => {
                self.stopping = Stopping::Interrupted { forced: true };
                self.out.forcing();
                true
            }
            Stopping::Interrupted { forced: true } | Stopping::Leaving { .. } => {
                self.out.leaving();
                self.stopping = Stopping::Leaving { interrupted: true };
                return;
            }
        };
        for &idx in &self.tally.running {
            let t = &self.tasks[idx];
            if let Some(r) = t.running() {
                self.out
                    .log(&format!("end {} ({})", t.status.agent_id, r.shown));
                self.launcher.end(r, force);
            }
        }
    }

    /// Cancel every waiting task with `reason`.
    fn cancel_waiting(&mut self, reason: &str) {
        let waiting: Vec<usize> = self.tally.waiting.iter().copied().collect();
        for idx in waiting {
            self.cancel(idx, reason);
        }
    }

    /// A waiting task that will not run.
    fn cancel(&mut self, idx: usize, reason: &str) {
        let t = &mut self.tasks[idx];
        match lifecycle::cancel(&t.path, reason) {
            Ok(s) => t.status = s,
            Err(e) => self.out.say(&format!("po-spawn: failed to {e}")),
        }
        self.set_slot(idx, Slot::Done);
        let t = &self.tasks[idx];
        self.out.finished(&t.label, &t.status);
        self.out.path(&t.path);
    }

    /// A progress line for each running task whose phase or progress moved.
    fn progress(&mut self) {
        for &idx in &self.tally.running {
            let t = &mut self.tasks[idx];
            let shown = (t.status.phase.clone(), t.status.progress_percentage);
            if shown != t.shown {
                self.out.progress(&t.label, &t.status);
                t.shown = shown;
            }
        }
    }
}

/// Run (or with `dry_run`, describe) the tasks of `target`. Returns the exit code.
pub fn run(cwd_runtime: Runtime, target: Target, cfg: Config, console: Console) -> Result<i32> {
    let setup = Setup::new(cwd_runtime, &target, &cfg)?;
    if cfg.dry_run {
        dry_run::print(&cfg, &setup);
        preflight::check(&cfg, &setup, |w| console.warn(w))?;
        return Ok(exit::SUCCESS);
    }
    let _spawn_lock = setup.take_spawn_lock()?;
    preflight::check(&cfg, &setup, |w| console.warn(w))?;
    let (parts, events) = setup.wire(&cfg, console)?;
    drive(Scheduler::new(parts), &events)
}

/// The event loop: begin, then handle events until the run is over.
pub fn drive(mut scheduler: Scheduler, events: &mpsc::Receiver<Event>) -> Result<i32> {
    scheduler.begin()?;
    while !scheduler.finished() {
        let wait = scheduler
            .next_wakeup()
            .saturating_duration_since(Instant::now());
        let event = match events.recv_timeout(wait) {
            Ok(ev) => ev,
            Err(mpsc::RecvTimeoutError::Timeout) => Event::Tick,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        scheduler.handle(event)?;
    }
    // A Ctrl-C that also ended a validation command counts as an interrupt.
    while let Ok(ev) = events.try_recv() {
        if let Event::Signal(sig) = ev {
            scheduler.interrupted_late(sig);
        }
    }
    Ok(scheduler.close())
}
