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
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::integration::{GitIntegration, Integrate};
use super::launcher::{self as launchers, Ended, Launcher, Runner, RunnerState};
use super::supervisor::{AgentSpec, SUPERVISOR_PID_FIELD};
use crate::error::{Result, exit};
use crate::protocol::view::Row;
use crate::protocol::{AgentStatus, Runtime, State, lifecycle, store};
use crate::signals;
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

/// Where a task is in this run.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot {
    Waiting,
    Running(Runner),
    Done,
}

struct Task {
    path: PathBuf,
    status: AgentStatus,
    /// How it is shown: its label, control characters made harmless.
    label: String,
    slot: Slot,
    /// This run started or adopted it (its wave's validation is then due).
    ran: bool,
    /// Its runner came from an earlier po-spawn.
    adopted: bool,
    retries_used: u32,
    not_before: Option<Instant>,
    /// The phase and progress last shown.
    shown: (Option<String>, Option<u8>),
}

impl Task {
    fn new(path: PathBuf, status: AgentStatus) -> Task {
        Task {
            label: crate::text::printable(&crate::protocol::view::label(&status)),
            path,
            status,
            slot: Slot::Waiting,
            ran: false,
            adopted: false,
            retries_used: 0,
            not_before: None,
            shown: (None, None),
        }
    }

    fn running(&self) -> Option<&Runner> {
        match &self.slot {
            Slot::Running(r) => Some(r),
            _ => None,
        }
    }
}

/// Why a run stops before its end.
#[derive(Clone, Debug, PartialEq)]
enum Stop {
    /// A signal: running tasks are being cancelled.
    Interrupted(Signal),
    /// A wave's merge or validation failed: later waves do not run.
    WaveFailed(String),
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
    unreadable: usize,
    explicit: bool,
    launcher: Box<dyn Launcher>,
    integration: Box<dyn Integrate>,
    out: Console,
    previous_session: Option<String>,
    /// Tasks this run runs again (retries of an earlier run's failures).
    retried: usize,
    waves: plan::Waves,
    stop: Option<Stop>,
    signals: u32,
    /// Leave at once, running tasks or not (SIGHUP, a third signal).
    leave: bool,
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
        tasks.sort_by_key(|t| (t.status.wave, t.status.number(), t.path.clone()));
        let waves = plan::Waves::new(&tasks, parts.base);
        Scheduler {
            ctx: parts.ctx,
            mode: parts.mode,
            validations: parts.validations,
            tasks,
            unreadable,
            explicit: parts.explicit,
            launcher: parts.launcher,
            integration: parts.integration,
            out: parts.console,
            previous_session: parts.previous_session,
            retried: 0,
            waves,
            stop: None,
            signals: 0,
            leave: false,
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
            .filter(|(t, (state, _))| state.is_terminal() && t.slot == Slot::Waiting)
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
        let deploy = self
            .tasks
            .iter()
            .filter(|t| t.slot == Slot::Waiting)
            .count();
        if deploy == 0 && !self.tasks.iter().any(|t| t.running().is_some()) {
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
        self.leave
            || (!self.tasks.iter().any(|t| t.running().is_some())
                && (self.stop.is_some() || !self.tasks.iter().any(|t| t.slot == Slot::Waiting)))
    }

    /// When the loop should look again without an event: the next progress
    /// line or the end of a retry's backoff.
    pub fn next_wakeup(&self) -> Instant {
        let tick = self.last_tick + self.interval();
        let next = self
            .tasks
            .iter()
            .filter(|t| t.slot == Slot::Waiting)
            .filter_map(|t| t.not_before)
            .fold(tick, Instant::min);
        self.guard_wakeup(next)
    }

    /// Say how the run went; its exit code.
    pub fn close(&self) -> i32 {
        let total = self.tasks.len() + self.unreadable;
        let count = |s: State| self.tasks.iter().filter(|t| t.status.status == s).count();
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
        let code = match &self.stop {
            Some(Stop::Interrupted(_)) => exit::INTERRUPTED,
            _ if self.leave => exit::INTERRUPTED,
            Some(Stop::WaveFailed(_)) => exit::VALIDATION,
            None => exit::by_threshold(completed, total, self.ctx.cfg.threshold),
        };
        self.out.log(&format!("exit {code}"));
        code
    }

    /// A signal that arrived while the run was busy (a validation it ended).
    pub fn interrupted_late(&mut self, sig: Signal) {
        if sig != Signal::SIGHUP && !matches!(self.stop, Some(Stop::Interrupted(_))) {
            self.stop = Some(Stop::Interrupted(sig));
        }
    }

    /// The tasks of the orchestration outside this run that have not
    /// completed (an unreadable file counts, as `failed`).
    fn unfinished_elsewhere(&self) -> Vec<(String, State)> {
        let view = crate::protocol::view::Reader::plain().read(&self.ctx.dir);
        let ours: std::collections::HashSet<&str> = self
            .tasks
            .iter()
            .map(|t| t.status.agent_id.as_str())
            .collect();
        let mut rest: Vec<(String, State)> = view
            .tasks()
            .filter(|t| t.state() != State::Completed && !ours.contains(t.status.agent_id.as_str()))
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
        self.stop.is_some() || self.leave
    }

    /// What the task's file says at start decides what this run does with it.
    fn classify(&mut self, idx: usize) -> Result<()> {
        let cfg_retry = self.ctx.cfg.retry;
        let t = &mut self.tasks[idx];
        match t.status.status {
            State::Pending => {}
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
                    t.slot = Slot::Running(runner);
                    t.ran = true;
                    t.adopted = true;
                }
                None => {
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
                    t.status = lifecycle::abandon(&t.path, &reason, false)?;
                    self.out.log(&format!("{}: {reason}", t.status.agent_id));
                    if cfg_retry {
                        self.retry_reset(idx)?;
                    } else {
                        t.slot = Slot::Done;
                    }
                }
            },
            s if s.is_retryable() && (cfg_retry || self.explicit) => self.retry_reset(idx)?,
            _ => t.slot = Slot::Done,
        }
        Ok(())
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

    fn retry_reset(&mut self, idx: usize) -> Result<()> {
        let t = &mut self.tasks[idx];
        if let Some(s) = lifecycle::retry(&t.path, crate::cost::attempt_cost)? {
            self.out
                .log(&format!("retry {}: attempt {}", s.agent_id, s.attempt));
            t.status = s;
        }
        t.slot = Slot::Waiting;
        Ok(())
    }

    /// Look at every running task: its status file and its runner.
    /// Look at the running tasks whose runner ended (and with `all`, at
    /// every running task's file too).
    fn poll(&mut self, all: bool) -> Result<()> {
        for idx in 0..self.tasks.len() {
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
                    self.tasks[idx].slot = Slot::Done;
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
        let t = &mut self.tasks[idx];
        if store::is_live(&t.path)
            && let Some(runner) = self.launcher.adopt(&t.path, &t.status)
        {
            self.out.log(&format!(
                "{}: another supervisor holds its liveness lock; adopting it",
                t.status.agent_id
            ));
            t.slot = Slot::Running(runner);
            t.adopted = true;
            return Ok(());
        }
        let interrupted = ended.interrupted || matches!(self.stop, Some(Stop::Interrupted(_)));
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
        let stopping = self.stopping();
        let (retries, backoff) = (self.ctx.cfg.retries, self.ctx.cfg.retry_backoff_secs);
        let t = &mut self.tasks[idx];
        t.status = status;
        t.slot = Slot::Done;
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
        // Retryable failures (rate limits) try again with backoff, within the
        // run's retry cap and its budget.
        if t.status.status == State::Failed
            && t.status.retryable == Some(true)
            && t.retries_used < retries
            && !stopping
            && self.retry_allowed(idx)
        {
            let t = &mut self.tasks[idx];
            let delay = backoff * 2f64.powi(t.retries_used as i32);
            t.retries_used += 1;
            self.out.retrying(&t.label, t.retries_used, retries, delay);
            let at = Instant::now() + Duration::from_secs_f64(delay.max(0.0));
            self.retry_reset(idx)?;
            self.tasks[idx].not_before = Some(at);
            return Ok(());
        }
        let t = &mut self.tasks[idx];
        if t.adopted
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
        if failed && !self.stopping() && self.tasks.iter().any(|t| t.slot != Slot::Done) {
            self.out.continuing();
        }
        Ok(())
    }

    /// SIGHUP leaves the agents to their supervisors; SIGINT and SIGTERM
    /// cancel (a second one forces, a third leaves at once).
    fn signal(&mut self, sig: Signal) {
        if sig == Signal::SIGHUP {
            self.out.hangup();
            self.leave = true;
            return;
        }
        self.signals += 1;
        let force = match self.signals {
            1 => {
                self.stop = Some(Stop::Interrupted(sig));
                self.out.interrupted(sig);
                self.cancel_waiting(
                    "cancelled: po-spawn was interrupted before it started; `po-spawn --retry` \
                     runs it",
                );
                false
            }
            2 => {
                self.out.forcing();
                true
            }
            _ => {
                self.out.leaving();
                self.leave = true;
                return;
            }
        };
        for t in &self.tasks {
            if let Some(r) = t.running() {
                self.out
                    .log(&format!("end {} ({})", t.status.agent_id, r.shown));
                self.launcher.end(r, force);
            }
        }
    }

    /// Cancel every waiting task with `reason`.
    fn cancel_waiting(&mut self, reason: &str) {
        for idx in 0..self.tasks.len() {
            if self.tasks[idx].slot == Slot::Waiting {
                self.cancel(idx, reason);
            }
        }
    }

    /// A waiting task that will not run.
    fn cancel(&mut self, idx: usize, reason: &str) {
        let t = &mut self.tasks[idx];
        match lifecycle::cancel(&t.path, reason) {
            Ok(s) => t.status = s,
            Err(e) => self.out.say(&format!("po-spawn: failed to {e}")),
        }
        t.slot = Slot::Done;
        self.out.finished(&t.label, &t.status);
        self.out.path(&t.path);
    }

    /// A progress line for each running task whose phase or progress moved.
    fn progress(&mut self) {
        for t in self.tasks.iter_mut().filter(|t| t.running().is_some()) {
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
    let now = chrono::Utc::now();
    let session = format!("orch-{}-{}", setup.id, now.format("%Y%m%d-%H%M"));
    let logs = setup.log_dir(&cfg, &session);
    console.open_session_log(&logs.join("session.log"))?;
    let _ = setup.runtime.exclude_from_git();
    setup.record_run(&cfg, &session, &logs);
    console.log(&format!(
        "po-spawn {} (pid {}) on orchestration {} ({}), {} task(s), max_workers={}, timeout={}s, \
         isolation={}, scheduling={}, base={}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        setup.id,
        setup.dir.display(),
        setup.view.rows.len(),
        cfg.max_workers,
        cfg.timeout_secs,
        if cfg.isolated { "worktree" } else { "none" },
        setup.mode.name(),
        setup.base_commit.as_deref().unwrap_or("-"),
    ));

    let (tx, rx) = mpsc::channel::<Event>();
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let (tx, interrupt) = (tx.clone(), interrupt.clone());
        signals::forward(move |sig| {
            if sig != Signal::SIGHUP {
                interrupt.store(true, Ordering::SeqCst);
            }
            let _ = tx.send(Event::Signal(sig));
        });
    }
    let ctx = setup.context(&cfg, logs.clone())?;
    let exe = std::env::current_exe()
        .map_err(|e| crate::Error::system(format!("find po-spawn's own path: {e}")))?;
    let waker: super::launcher::Waker = {
        let tx = std::sync::Mutex::new(tx.clone());
        Arc::new(move || {
            let _ = tx
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(Event::Wake);
        })
    };
    let grace = Duration::from_secs_f64(cfg.grace_secs);
    let integration = GitIntegration {
        repo: ctx.repo.clone(),
        scratch: setup
            .runtime
            .root
            .join("worktrees")
            .join(&setup.id)
            .join("integration"),
        id: setup.id.clone(),
        logs,
        isolated: cfg.isolated,
        validation_timeout: Duration::from_secs_f64(cfg.validation_timeout_secs.max(0.0)),
        grace,
        interrupt,
    };
    let launcher = launchers::make(
        &cfg.launcher,
        launchers::Site {
            exe,
            waker,
            grace,
            dir: setup.dir.clone(),
            id: setup.id.clone(),
            timeout_secs: cfg.timeout_secs,
        },
    )?;
    let scheduler = Scheduler::new(Parts {
        ctx,
        mode: setup.mode,
        validations: setup.validations,
        rows: setup.view.rows,
        explicit: setup.explicit,
        base: setup.base_commit.unwrap_or_default(),
        previous_session: setup.previous_session,
        launcher,
        integration: Box::new(integration),
        console,
    });
    drive(scheduler, &rx)
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
