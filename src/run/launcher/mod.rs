//! Launchers: where each task's supervisor runs. The scheduler decides which
//! task runs when; a launcher starts its supervisor (on this machine, or as
//! a cluster job), ends it, and says whether it still runs. The scheduler
//! never learns how a task ended from a launcher: that is in the status
//! file, which the supervisor writes. A launcher only wakes the scheduler
//! when something may have changed, and says whether a task's runner is
//! still at work.
//!
//! * [`local`]: a pool of supervisor processes on this machine, at most one
//!   per worker slot, each running task after task.
//! * [`slurm`]: one Slurm job per task, on the cluster's nodes.

pub mod local;
pub mod slurm;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::protocol::AgentStatus;
use crate::run::supervisor::Spec;

/// Called by a launcher when a runner may have changed (it finished a task,
/// died, or left the queue): the scheduler looks again.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// One task's runner, as a launcher knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runner {
    /// The launcher's own key.
    pub key: u64,
    /// How people find it: `supervisor pid 1234`, `job 56`.
    pub shown: String,
}

/// Where a runner is with its task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunnerState {
    /// Waiting for resources before it starts (a queued job), and why.
    Queued(String),
    /// At work on the task: preparing, running the agent, or recording.
    Running,
    /// Done with the task, or gone.
    Ended(Ended),
}

/// How a runner ended, in words for the task's error should it have
/// recorded nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// `its supervisor exited with status 9`, `job 56 was cancelled`.
    pub how: String,
    /// Ended by an interrupt (a Ctrl-C that reached it, a cancel).
    pub interrupted: bool,
}

/// Starts, ends and watches supervisors. The scheduler owns one and calls it
/// from one thread.
pub trait Launcher {
    /// Start a supervisor for the task `spec` describes.
    fn start(&mut self, spec: &Spec) -> Result<Runner>;

    /// The runner of a task an earlier po-spawn started, if it still runs it.
    fn adopt(&mut self, status_file: &Path, status: &AgentStatus) -> Option<Runner>;

    /// End a runner's task: cancel it (its whole process tree, its worktree
    /// kept), or with `force`, at once.
    fn end(&mut self, runner: &Runner, force: bool);

    /// Whether `runner` is still at work on its task.
    fn state(&mut self, runner: &Runner) -> RunnerState;

    /// End whatever is left of a task whose runner is gone without recording
    /// a result; how many processes (or jobs) that was.
    fn clean_up(&mut self, status_file: &Path, status: &AgentStatus) -> usize;
}

/// Which launcher runs the supervisors (`--launcher`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Choice {
    /// The local pool.
    #[default]
    Local,
    /// One Slurm job per task, submitted with these options.
    Slurm(slurm::Options),
}

impl Choice {
    pub fn name(&self) -> &'static str {
        match self {
            Choice::Local => "local",
            Choice::Slurm(_) => slurm::NAME,
        }
    }

    /// The dry run's lines about where the supervisors would run, for tasks
    /// of `timeout_secs` ended with `grace_secs`: empty for the local pool.
    pub fn describe(&self, timeout_secs: f64, grace_secs: f64) -> String {
        match self {
            Choice::Local => String::new(),
            Choice::Slurm(opts) => opts.describe(timeout_secs, grace_secs),
        }
    }
}

/// The runner fields a supervisor records when it starts a task: those of
/// the launcher that runs it (a Slurm job's id), the node it runs on, and
/// that it waits no more. The local pool's supervisors record none.
pub fn runner_fields(one_task: bool) -> serde_json::Map<String, serde_json::Value> {
    use crate::protocol::runner;
    if !one_task {
        return serde_json::Map::new();
    }
    let mut m = slurm::runner_fields().unwrap_or_default();
    if !m.contains_key(runner::NODE)
        && let Some(host) = hostname()
    {
        m.insert(runner::NODE.into(), host.into());
    }
    m.insert(runner::QUEUED.into(), serde_json::Value::Null);
    m
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|b| *b == 0)?;
    (r == 0 && end > 0).then(|| String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// What a launcher is made with.
pub struct Site {
    /// po-spawn itself, which a supervisor is.
    pub exe: PathBuf,
    pub waker: Waker,
    /// Between SIGTERM and SIGKILL when ending what a dead runner left.
    pub grace: Duration,
    /// The orchestration directory and its id.
    pub dir: PathBuf,
    pub id: String,
    /// The run's `--timeout`.
    pub timeout_secs: f64,
}

/// The launcher `choice` names.
pub fn make(choice: &Choice, site: Site) -> Result<Box<dyn Launcher>> {
    Ok(match choice {
        Choice::Local => Box::new(local::Local::new(site.exe, site.waker, site.grace)),
        Choice::Slurm(opts) => Box::new(slurm::Slurm::new(opts.clone(), site)?),
    })
}
