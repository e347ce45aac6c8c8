//! The supervisor: a detached process, the only writer of a task's run state
//! while it runs.
//!
//! A launcher starts it (see [`super::launcher`]): the local pool re-executes
//! `po-spawn` with [`POOL_ENV`] set and hands it task specs one at a time on
//! its stdin; a cluster job runs `po-spawn` with [`TASK_ENV`] naming one
//! task's spec file. The process starts in its own session with its output
//! in the running task's agent log, so it outlives the scheduler. It holds each
//! task's liveness lock while it runs it (a second supervisor for the same
//! task gives up with [`EXIT_BUSY`]) and marks itself a child subreaper.
//!
//! One task is three steps:
//! 1. [`prepare`]: the worktree, the ignored files it needs, the prompt, the
//!    setup command;
//! 2. [`agent`]: start the agent in its own process group and read its
//!    stream;
//! 3. [`watch`]: wait for it, ending the whole tree on timeout, stall or
//!    cancel (SIGTERM; a second SIGTERM forces).
//!
//! Then the outcome is recorded ([`crate::protocol::lifecycle::finish`]) and
//! the pull request opened when asked.

mod agent;
mod prepare;
mod watch;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::proctree;
use super::signals;
use crate::error::{Result, exit};
use crate::protocol::lifecycle::{self, Outcome};
use crate::protocol::{AgentStatus, State, store};
use crate::timefmt;
use prepare::Prepared;
use watch::Ending;

/// The environment variable that makes `po-spawn` a pool supervisor: it runs
/// the tasks the scheduler writes to its stdin, one at a time.
pub const POOL_ENV: &str = "PO_SPAWN_POOL";
/// The environment variable that makes `po-spawn` the supervisor of one
/// task, the one whose spec is in the file it names (a Slurm job's).
pub const TASK_ENV: &str = "PO_SPAWN_TASK";
/// A supervisor found the task's liveness lock taken: someone else runs it.
pub const EXIT_BUSY: i32 = 75;
/// The extra status field holding the supervisor's pid.
pub const SUPERVISOR_PID_FIELD: &str = crate::protocol::runner::SUPERVISOR_PID;
/// The fd a pool supervisor reports finished tasks on.
pub const RESULT_FD: i32 = 3;

/// Which agent to run.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentSpec {
    Claude {
        program: String,
        model: Option<String>,
        max_budget_usd: Option<f64>,
        /// Claude Code's `--max-turns`.
        #[serde(default)]
        max_turns: Option<u32>,
    },
    Command {
        /// The template, already split into words.
        words: Vec<String>,
    },
}

impl AgentSpec {
    /// The agent's argv for `task`: Claude Code's (resuming `session` when
    /// `resume`), or the `--agent-cmd` template filled in with `values`.
    pub fn argv(
        &self,
        task: &AgentStatus,
        values: &super::template::Values,
        session: &str,
        resume: bool,
    ) -> Vec<String> {
        match self {
            AgentSpec::Claude {
                program,
                model,
                max_budget_usd,
                max_turns,
            } => super::claude::argv(&super::claude::ClaudeOptions {
                program: program.clone(),
                model: model.clone(),
                max_budget_usd: *max_budget_usd,
                max_turns: *max_turns,
                agent: task.agent.clone(),
                session_id: session.to_string(),
                resume,
            }),
            AgentSpec::Command { words } => super::template::fill(words, values),
        }
    }
}

/// Where a finished task's pull request goes.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PrSpec {
    pub remote: String,
    pub base: String,
    pub runtime_root: PathBuf,
}

impl PrSpec {
    /// Push and open the pull request of the completed task in `status_file`;
    /// a failure becomes the task's `error`, never a crash.
    pub fn open(
        &self,
        status_file: &Path,
        repo: &Path,
    ) -> std::result::Result<(u64, String), String> {
        crate::forge::pr::open_and_record(
            status_file,
            repo,
            &self.remote,
            &self.base,
            &self.runtime_root,
        )
    }
}

/// Everything a supervisor needs to run one task.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Spec {
    pub status_file: PathBuf,
    pub orchestration_id: String,
    pub orchestration_file: PathBuf,
    /// Directories a relative manifest `prompt_file` is looked up in.
    pub prompt_dirs: Vec<PathBuf>,
    pub prompt_file: PathBuf,
    /// The main repository (where `--isolation none` agents run).
    pub repo: PathBuf,
    /// `None` for `--isolation none`.
    pub worktree: Option<PathBuf>,
    pub branch: String,
    /// The commit a new worktree branches from.
    pub base: String,
    /// Ignored files to copy into a new worktree (relative to `repo`).
    pub include_files: Vec<PathBuf>,
    pub setup: Option<String>,
    pub agent: AgentSpec,
    pub timeout_secs: f64,
    pub stall_secs: Option<f64>,
    pub grace_secs: f64,
    pub log_file: PathBuf,
    pub port: u32,
    pub port_count: u32,
    /// Prepended to `PATH` so `po-status` is found inside agents.
    pub bin_dir: Option<PathBuf>,
    pub pr: Option<PrSpec>,
    /// The run's session log, for the supervisor's notes worth a decision line.
    #[serde(default)]
    pub session_log: Option<PathBuf>,
}

impl Spec {
    /// The environment entry every process of this task inherits.
    pub fn marker(&self) -> Vec<u8> {
        proctree::task_marker(&self.status_file)
    }
}

/// Run as a pool supervisor if [`POOL_ENV`] is set, or as the supervisor of
/// one task if [`TASK_ENV`] is; the process's exit code.
pub fn from_env() -> Option<i32> {
    if let Some(spec) = std::env::var_os(TASK_ENV) {
        // SAFETY: nothing else runs yet; the variable must not reach the agent.
        unsafe { std::env::remove_var(TASK_ENV) };
        return Some(one_task(Path::new(&spec)));
    }
    std::env::var_os(POOL_ENV)?;
    // Leave po-spawn's session (and its terminal) first of all. A new
    // process is not a group leader yet, so setsid succeeds.
    // SAFETY: setsid has no memory effects.
    unsafe { libc::setsid() };
    // SAFETY: nothing else runs yet; the variable must not reach the agent.
    unsafe { std::env::remove_var(POOL_ENV) };
    Some(pool())
}

/// Signals that reach the supervisor, for the task running now.
enum Ev {
    /// The agent exited (or was killed by `signal`).
    Exited { code: i32, signal: Option<i32> },
    /// SIGINT, SIGTERM or SIGHUP: cancel (a second one forces).
    Signal,
    /// Every child has been reaped.
    Reaped,
}

/// Appends `po-spawn:` notes to the agent log.
struct Log {
    file: Option<File>,
}

impl Log {
    fn open(path: &Path) -> Log {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        Log {
            file: OpenOptions::new().create(true).append(true).open(path).ok(),
        }
    }

    fn note(&self, msg: &str) {
        if let Some(mut f) = self.file.as_ref() {
            let _ = writeln!(f, "po-spawn: {msg}");
        }
    }

    /// Another handle on the log, for a child's output.
    fn stdio(&self) -> std::process::Stdio {
        self.file
            .as_ref()
            .and_then(|f| f.try_clone().ok())
            .map(std::process::Stdio::from)
            .unwrap_or_else(std::process::Stdio::null)
    }

    fn handle(&self) -> Option<File> {
        self.file.as_ref().and_then(|f| f.try_clone().ok())
    }
}

/// What the signal thread shares with the task running now.
struct Control {
    cancel: Arc<AtomicBool>,
    force: Arc<AtomicBool>,
    /// The running task's event channel; `None` between tasks.
    events: Arc<Mutex<Option<mpsc::Sender<Ev>>>>,
    /// The first signal was a one-task supervisor's SIGTERM: Slurm ends the
    /// job from outside po-spawn.
    outside: Arc<AtomicBool>,
    /// Fields naming this supervisor's runner, recorded when a task starts
    /// (its Slurm job and node).
    runner: serde_json::Map<String, serde_json::Value>,
    /// The supervisor of one task, in a Slurm job.
    one_task: bool,
}

impl Control {
    /// Take SIGINT, SIGTERM and SIGHUP: the first cancels the running task,
    /// the second forces. A signal between tasks (a pool supervisor waiting
    /// for its next task) ends the process at once: it runs nothing.
    ///
    /// A `one_task` supervisor runs as a Slurm job: po-spawn cancels it with
    /// SIGINT (`scancel --batch --signal=INT`), so a SIGTERM that comes first
    /// is Slurm ending the job (`scancel`, its time limit, a node going
    /// down). The tree is ended all the same, but the result is left to
    /// po-spawn, which records Slurm's reason.
    fn install(one_task: bool) -> Control {
        let c = Control {
            cancel: Arc::new(AtomicBool::new(false)),
            force: Arc::new(AtomicBool::new(false)),
            events: Arc::new(Mutex::new(None)),
            outside: Arc::new(AtomicBool::new(false)),
            runner: if one_task {
                job_fields()
            } else {
                serde_json::Map::new()
            },
            one_task,
        };
        let (cancel, force, events) = (c.cancel.clone(), c.force.clone(), c.events.clone());
        let outside = c.outside.clone();
        signals::forward(move |sig| {
            if one_task
                && sig == nix::sys::signal::Signal::SIGTERM
                && !cancel.load(Ordering::SeqCst)
            {
                outside.store(true, Ordering::SeqCst);
            }
            if cancel.swap(true, Ordering::SeqCst) {
                force.store(true, Ordering::SeqCst);
            }
            let guard = events.lock().unwrap_or_else(|e| e.into_inner());
            match guard.as_ref() {
                Some(tx) => {
                    let _ = tx.send(Ev::Signal);
                }
                None => std::process::exit(0),
            }
        });
        proctree::become_subreaper();
        c
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    fn ended_outside(&self) -> bool {
        self.outside.load(Ordering::SeqCst)
    }

    /// Whether a signal arrives within `wait` (or came already).
    fn settle(&self, wait: std::time::Duration) -> bool {
        let until = std::time::Instant::now() + wait;
        while !self.cancelled() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        self.cancelled()
    }
}

/// The runner fields of a one-task supervisor: its Slurm job, the node it
/// runs on, and that it waits no more.
fn job_fields() -> serde_json::Map<String, serde_json::Value> {
    use crate::protocol::runner;
    use serde_json::Value;
    let mut m = serde_json::Map::new();
    if let Some(job) = std::env::var("SLURM_JOB_ID")
        .ok()
        .and_then(|j| j.trim().parse::<u64>().ok())
    {
        m.insert(runner::LAUNCHER.into(), Value::from("slurm"));
        m.insert(runner::JOB_ID.into(), Value::from(job));
    }
    // Slurm's name for the node (a one-node job's node list is that name),
    // else the host's.
    let node = std::env::var("SLURMD_NODENAME")
        .ok()
        .or_else(|| {
            std::env::var("SLURM_JOB_NODELIST")
                .ok()
                .filter(|l| !l.contains([',', '[']))
        })
        .filter(|n| !n.trim().is_empty())
        .or_else(hostname);
    if let Some(node) = node {
        m.insert(runner::NODE.into(), Value::from(node));
    }
    m.insert(runner::QUEUED.into(), Value::Null);
    m
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|b| *b == 0)?;
    (r == 0 && end > 0).then(|| String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The supervisor of one task, as a Slurm job: run the task whose spec is in
/// `spec_file`, then exit.
fn one_task(spec_file: &Path) -> i32 {
    let spec: Spec = match store::read_json(spec_file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("po-spawn: failed to {e}");
            return exit::USAGE;
        }
    };
    // Standard input is the job's (/dev/null); the output goes where the
    // pool's does, the task's agent log.
    let control = Control::install(true);
    redirect_output(Some(&spec.log_file));
    run_task(&spec, &control)
}

/// Whether a reaper thread still waits for children of this process. It reaps
/// any child, so a pool supervisor whose last agent left unkillable processes
/// behind must not start another task (its commands' exit statuses could be
/// taken): it stops, and the scheduler starts a fresh supervisor.
static REAPING: AtomicBool = AtomicBool::new(false);

/// A pool supervisor: run the tasks whose specs arrive on stdin (one JSON line
/// each), one after another, and report each on [`RESULT_FD`] as
/// `<exit code> <status file>`. It stops at end of input, when its scheduler
/// is gone (it never starts a task after that), and after a task it was told
/// to cancel.
fn pool() -> i32 {
    use std::os::fd::FromRawFd;
    // SAFETY: getppid has no memory effects.
    let scheduler = unsafe { libc::getppid() };
    // Specs are read from a private copy of stdin; what the supervisor
    // starts gets /dev/null, never the scheduler's pipe or the result fd.
    // SAFETY: plain descriptor calls on fds this process owns.
    let (input, results) = unsafe {
        let input = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 10);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::close(null);
        }
        libc::fcntl(RESULT_FD, libc::F_SETFD, libc::FD_CLOEXEC);
        if input < 0 {
            return exit::SYSTEM;
        }
        (File::from_raw_fd(input), File::from_raw_fd(RESULT_FD))
    };
    let control = Control::install(false);
    let mut input = BufReader::new(input);
    let mut results = results;
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return 0,
            Ok(_) => {}
        }
        // SAFETY: getppid has no memory effects.
        if unsafe { libc::getppid() } != scheduler || control.cancelled() {
            return 0;
        }
        // A lost scheduler makes these writes fail (EPIPE; SIGPIPE is
        // ignored): the result is in the status file all the same.
        match serde_json::from_str::<Spec>(line.trim_end()) {
            Ok(spec) => {
                redirect_output(Some(&spec.log_file));
                let code = run_task(&spec, &control);
                redirect_output(None);
                let _ = writeln!(results, "{code} {}", spec.status_file.display());
            }
            Err(_) => {
                let _ = writeln!(results, "{} -", exit::USAGE);
            }
        }
        if control.cancelled() || REAPING.load(Ordering::SeqCst) {
            return 0;
        }
    }
}

/// Point stdout and stderr at `path` (appending), or at `/dev/null`.
fn redirect_output(path: Option<&Path>) {
    let file = match path {
        Some(p) => {
            if let Some(parent) = p.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            OpenOptions::new().create(true).append(true).open(p)
        }
        None => OpenOptions::new().write(true).open("/dev/null"),
    };
    if let Ok(f) = file {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto the standard descriptors; `f` stays open meanwhile.
        unsafe {
            libc::dup2(f.as_raw_fd(), 1);
            libc::dup2(f.as_raw_fd(), 2);
        }
    }
}

/// Run one task under `control`; the supervisor's exit code. The task's
/// liveness lock is held from the start until its result is recorded.
fn run_task(spec: &Spec, control: &Control) -> i32 {
    let (tx, rx) = mpsc::channel::<Ev>();
    *control.events.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx.clone());
    let code = run_held(spec, control, tx, rx);
    *control.events.lock().unwrap_or_else(|e| e.into_inner()) = None;
    code
}

fn run_held(spec: &Spec, control: &Control, tx: mpsc::Sender<Ev>, rx: mpsc::Receiver<Ev>) -> i32 {
    let _live = match store::hold_liveness(&spec.status_file) {
        Ok(Some(lock)) => lock,
        Ok(None) => return EXIT_BUSY,
        Err(e) => {
            eprintln!("po-spawn: failed to {e}");
            return exit::SYSTEM;
        }
    };
    let log = Log::open(&spec.log_file);
    match supervise(spec, &log, control, tx, rx) {
        Ok(()) => 0,
        Err(e) => {
            log.note(&format!("failed to {e}"));
            let _ = lifecycle::abandon(&spec.status_file, &format!("failed to {e}"), false);
            exit::SYSTEM
        }
    }
}

/// The three steps of one task, then its outcome.
fn supervise(
    spec: &Spec,
    log: &Log,
    control: &Control,
    tx: mpsc::Sender<Ev>,
    rx: mpsc::Receiver<Ev>,
) -> Result<()> {
    let task = store::read_status(&spec.status_file)?;
    if task.status != State::Pending {
        log.note(&format!(
            "{} is {}, not pending: nothing to run",
            task.agent_id, task.status
        ));
        return Ok(());
    }
    let prepared = match prepare::prepare(spec, &task, log, &control.runner)? {
        Some(p) => p,
        // Failed while preparing: recorded.
        None => return Ok(()),
    };
    let ran = if control.cancelled() {
        // Cancelled while preparing: the agent never starts.
        watch::Ran::ended(Ending::Cancelled)
    } else {
        match agent::run(spec, &task, &prepared, log, control, tx, rx)? {
            Some(ran) => ran,
            // It could not start: recorded.
            None => return Ok(()),
        }
    };
    let mut ran = ran;
    if control.one_task && ran.ending.is_none() && ran.code != Some(0) {
        // Slurm signals every process of a job at once: the agent may have
        // died of the job's signal before this supervisor's signal thread
        // ran. A failed agent waits a moment for a signal of its own.
        if control.settle(std::time::Duration::from_millis(250)) {
            ran.ending = Some(Ending::Cancelled);
        }
    }
    if ran.ending == Some(Ending::Cancelled) && control.ended_outside() {
        log.note(
            "the job was ended from outside po-spawn (SIGTERM: scancel, Slurm's time limit, or \
             its node going down); the agent's process tree is ended and po-spawn records \
             Slurm's reason",
        );
        return Ok(());
    }
    record(spec, &prepared, ran)
}

/// Record the final state, the changes and the metrics; open the pull
/// request when asked.
fn record(spec: &Spec, prepared: &Prepared, ran: watch::Ran) -> Result<()> {
    let (state, error) = judge(spec, &ran);
    let diff = spec
        .worktree
        .as_deref()
        .and_then(|wt| super::git::diff_stats(wt, &prepared.base).ok());
    let retryable =
        state == State::Failed && ran.stream.api_error.as_ref().is_some_and(|(_, r)| *r);
    let done = lifecycle::finish(
        &spec.status_file,
        Outcome {
            state,
            error,
            exit_code: ran.code,
            retryable,
            base_commit: spec.worktree.is_some().then(|| prepared.base.clone()),
            diff,
        },
    )?;
    if done.status == State::Completed
        && done.pr_number.is_none()
        && let Some(pr) = &spec.pr
    {
        let _ = pr.open(&spec.status_file, &spec.repo);
    }
    Ok(())
}

/// The state and error a run ends in.
fn judge(spec: &Spec, ran: &watch::Ran) -> (State, Option<String>) {
    let log_path = spec.log_file.display();
    match &ran.ending {
        Some(Ending::Cancelled) => (
            State::Cancelled,
            Some("cancelled: po-spawn was interrupted; `po-spawn --retry` runs it again".into()),
        ),
        Some(Ending::TimedOut) => (
            State::TimedOut,
            Some(format!(
                "--timeout {} reached; worktree and commits kept; raise --timeout and run \
                 `po-spawn --retry`; log: {log_path}",
                spec.timeout_secs
            )),
        ),
        Some(Ending::Stalled) => (
            State::TimedOut,
            Some(format!(
                "stalled: no output and no status update for {}s (--stall-timeout); see \
                 {log_path}",
                spec.stall_secs.unwrap_or_default()
            )),
        ),
        None => {
            let claude_error = ran.stream.finished.as_ref().filter(|f| f.0);
            if ran.code == Some(0) && claude_error.is_none() {
                return (State::Completed, None);
            }
            let what = describe_exit(ran.code, ran.signal);
            let detail = ran
                .stream
                .api_error
                .as_ref()
                .map(|(m, _)| format!("API error: {m}"))
                .or_else(|| claude_error.and_then(|f| f.1.clone()))
                .or_else(|| last_log_line(&spec.log_file));
            let error = match detail {
                Some(d) => format!("agent {what}: {d}; log: {log_path}"),
                None => format!("agent {what}; log: {log_path}"),
            };
            (State::Failed, Some(error))
        }
    }
}

/// "exited with status 3", "was killed by SIGKILL".
pub fn describe_exit(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (_, Some(sig)) => format!(
            "was killed by {}",
            nix::sys::signal::Signal::try_from(sig)
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|_| format!("signal {sig}"))
        ),
        (Some(c), None) => format!("exited with status {c}"),
        (None, None) => "ended".into(),
    }
}

/// The last non-empty line the agent wrote, for error messages.
fn last_log_line(path: &Path) -> Option<String> {
    use std::io::{Read, Seek};
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(std::io::SeekFrom::Start(len.saturating_sub(4096)))
        .ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("po-spawn:"))
        .map(|l| lifecycle::one_line(l).chars().take(160).collect())
}

/// Append a line to the run's session log, in the scheduler's format.
fn session_note(spec: &Spec, task: &AgentStatus, note: &str) {
    let Some(path) = &spec.session_log else {
        return;
    };
    if let Ok(mut f) = OpenOptions::new().append(true).open(path) {
        let _ = writeln!(
            f,
            "{} {}: {note}",
            timefmt::format(&timefmt::now()),
            task.agent_id
        );
    }
}
