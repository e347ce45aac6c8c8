//! The supervisor: a detached process, the only writer of a task's run state
//! while it runs.
//!
//! A launcher starts it (see [`super::launcher`]): the local pool re-executes
//! `po-spawn` with [`POOL_ENV`] set and hands it task specs one at a time on
//! its stdin; a cluster job runs `po-spawn` with [`TASK_ENV`] naming one
//! task's spec file. The process starts in its own session with its output
//! in the running task's agent log, so it outlives the scheduler. It holds each
//! task's liveness lock while it runs it (a second supervisor for the same
//! task gives up with [`exit::BUSY`]) and marks itself a child subreaper.
//!
//! One task is three steps:
//! 1. [`prepare`]: the worktree, the ignored files it needs, the prompt, the
//!    setup command;
//! 2. [`run`]: start the agent ([`crate::run::agent`] says how) in its own
//!    process group ([`process`]) and read its stream; a session the agent
//!    does not have is started afresh in the same attempt;
//! 3. [`watch`]: wait for it, ending the whole tree on timeout, stall or
//!    cancel (SIGTERM; a second SIGTERM forces).
//!
//! The attempt's state ([`state::Attempt`]) goes from preparing to running
//! to ending to exited; [`judge`] turns how it exited and what the stream
//! said into the final state, recorded through
//! [`crate::protocol::lifecycle::finish`], and the pull request is opened
//! when asked. [`Supervision`] holds one task's run; its unit tests drive it
//! with a process double.

pub mod again;
mod control;
mod judge;
mod prepare;
pub mod process;
mod run;
pub mod state;
#[cfg(test)]
mod tests;
mod watch;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::exit;
use crate::proctree;
use crate::protocol::lifecycle;
use crate::protocol::{AgentStatus, store};
pub use crate::run::agent::AgentSpec;
use crate::timefmt;
use control::Control;
use process::Real;
use run::Supervision;
use state::ExitStatus;

/// The environment variable that makes `po-spawn` a pool supervisor: it runs
/// the tasks the scheduler writes to its stdin, one at a time.
pub const POOL_ENV: &str = "PO_SPAWN_POOL";
/// The environment variable that makes `po-spawn` the supervisor of one
/// task, the one whose spec is in the file it names (a Slurm job's).
pub const TASK_ENV: &str = "PO_SPAWN_TASK";
/// The extra status field holding the supervisor's pid.
pub const SUPERVISOR_PID_FIELD: &str = crate::protocol::runner::SUPERVISOR_PID;
/// The fd a pool supervisor reports finished tasks on.
pub const RESULT_FD: i32 = 3;

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
    /// Run the agent and its setup command under the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<crate::run::sandbox::Options>,
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
            file: crate::fsx::append(path, true).ok(),
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

/// What a supervisor keeps from one task to the next.
struct Supervisor {
    control: Control,
    /// Fields naming this supervisor's runner, recorded when a task starts
    /// (its launcher's, and its node).
    runner: serde_json::Map<String, serde_json::Value>,
    /// A reaper thread still waits for children of this process. It reaps
    /// any child, so a pool supervisor whose last agent left unkillable
    /// processes behind must not start another task (its commands' exit
    /// statuses could be taken): it stops, and the scheduler starts a fresh
    /// supervisor.
    reaping: Arc<AtomicBool>,
}

impl Supervisor {
    fn install(one_task: bool) -> Supervisor {
        Supervisor {
            control: Control::install(one_task),
            runner: crate::run::launcher::runner_fields(one_task),
            reaping: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The supervisor of one task, as a Slurm job: run the task whose spec is in
/// `spec_file`, then exit.
fn one_task(spec_file: &Path) -> i32 {
    let spec: Spec = match store::read_json(spec_file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("po-spawn: failed to {}", e.chain());
            return exit::USAGE;
        }
    };
    // Standard input is the job's (/dev/null); the output goes where the
    // pool's does, the task's agent log.
    let sup = Supervisor::install(true);
    redirect_output(Some(&spec.log_file));
    run_task(&spec, &sup)
}

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
    let sup = Supervisor::install(false);
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
        if unsafe { libc::getppid() } != scheduler || sup.control.cancelled() {
            return 0;
        }
        // A lost scheduler makes these writes fail (EPIPE; SIGPIPE is
        // ignored): the result is in the status file all the same.
        match serde_json::from_str::<Spec>(line.trim_end()) {
            Ok(spec) => {
                redirect_output(Some(&spec.log_file));
                let code = run_task(&spec, &sup);
                redirect_output(None);
                let _ = writeln!(results, "{code} {}", spec.status_file.display());
            }
            Err(_) => {
                let _ = writeln!(results, "{} -", exit::USAGE);
            }
        }
        if sup.control.cancelled() || sup.reaping.load(Ordering::SeqCst) {
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
            crate::fsx::append(p, true)
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

/// Run one task; the supervisor's exit code. The task's liveness lock is
/// held from the start until its result is recorded.
fn run_task(spec: &Spec, sup: &Supervisor) -> i32 {
    let _live = match store::hold_liveness(&spec.status_file) {
        Ok(Some(lock)) => lock,
        Ok(None) => return exit::BUSY,
        Err(e) => {
            eprintln!("po-spawn: failed to {}", e.chain());
            return exit::SYSTEM;
        }
    };
    let log = Log::open(&spec.log_file);
    let procs = Real::new(spec.marker(), sup.reaping.clone());
    let done = Supervision::new(spec, &log, &sup.control, &sup.runner, procs).and_then(|mut s| {
        let done = s.run();
        // From here on a signal finds no task: it ends the process.
        s.into_procs();
        done
    });
    match done {
        Ok(()) => 0,
        Err(e) => {
            log.note(&format!("failed to {e}"));
            let _ = lifecycle::abandon(&spec.status_file, &format!("failed to {e}"), false);
            exit::SYSTEM
        }
    }
}

/// "exited with status 3", "was killed by SIGKILL".
pub fn describe_exit(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (_, Some(sig)) => ExitStatus::Signal(sig),
        (Some(c), None) => ExitStatus::Code(c),
        (None, None) => return "ended".into(),
    }
    .describe()
}

/// The last non-empty line the agent wrote, for error messages.
fn last_log_line(path: &Path) -> Option<String> {
    use std::io::{Read, Seek};
    let mut f = crate::fsx::open(path).ok()?;
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
    if let Ok(mut f) = crate::fsx::append(path, false) {
        let _ = writeln!(
            f,
            "{} {}: {note}",
            timefmt::format(&timefmt::now()),
            task.agent_id
        );
    }
}
