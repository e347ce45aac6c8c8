//! The supervisor: a detached process, the only writer of a task's run state
//! while it runs.
//!
//! The scheduler re-executes `po-spawn` with [`POOL_ENV`] set (see
//! [`super::pool`]) and hands it task specs one at a time; with [`SPEC_ENV`]
//! set to a JSON [`Spec`] instead, it runs that one task. The process starts
//! in its own session with its output in the running task's agent log, so it
//! outlives the scheduler. It holds each task's liveness lock while it runs it
//! (a second supervisor for the same task reports [`EXIT_BUSY`]), marks
//! itself a child subreaper, prepares the worktree, runs `--setup`, starts the
//! agent in its own process group and waits for it, ending the whole tree on
//! timeout, stall or cancel (SIGTERM; a second SIGTERM forces). Then it records
//! the final state, exit code, completion time and metrics, and opens the pull
//! request when asked.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::claude::{self, ClaudeOptions, StreamParser, StreamUpdate};
use super::proctree::{self, Tree};
use super::{git, prompt, signals, template, worktree};
use crate::error::{Error, Result};
use crate::protocol::{AgentStatus, Orchestration, State, store};
use crate::timefmt;

/// The environment variable that turns `po-spawn` into a supervisor.
pub const SPEC_ENV: &str = "PO_SPAWN_SUPERVISE";
/// The environment variable that makes `po-spawn` a pool supervisor: it runs
/// the tasks the scheduler writes to its stdin, one at a time.
pub const POOL_ENV: &str = "PO_SPAWN_POOL";
/// A supervisor found the task's liveness lock taken: someone else runs it.
pub const EXIT_BUSY: i32 = 75;
/// The extra status field holding the supervisor's pid.
pub const SUPERVISOR_PID_FIELD: &str = "supervisor_pid";

/// Which agent to run.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentSpec {
    Claude {
        program: String,
        model: Option<String>,
        max_budget_usd: Option<f64>,
    },
    Command {
        /// The template, already split into words.
        words: Vec<String>,
    },
}

/// Where a finished task's pull request goes.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PrSpec {
    pub remote: String,
    pub base: String,
    pub runtime_root: PathBuf,
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

/// Run as a supervisor if [`SPEC_ENV`] or [`POOL_ENV`] is set; the process's exit code.
pub fn from_env() -> Option<i32> {
    if std::env::var_os(POOL_ENV).is_some() {
        // Leave po-spawn's session (and its terminal) first of all.
        // SAFETY: setsid has no memory effects.
        unsafe { libc::setsid() };
        // SAFETY: nothing else runs yet; the variable must not reach the agent.
        unsafe { std::env::remove_var(POOL_ENV) };
        return Some(pool());
    }
    let raw = std::env::var(SPEC_ENV).ok()?;
    // Leave po-spawn's session (and its terminal) first of all. A new
    // process is not a group leader yet, so setsid succeeds.
    // SAFETY: setsid has no memory effects.
    unsafe { libc::setsid() };
    // SAFETY: nothing else runs yet; the variable must not reach the agent.
    unsafe { std::env::remove_var(SPEC_ENV) };
    Some(match serde_json::from_str::<Spec>(&raw) {
        Ok(spec) => run(spec),
        Err(e) => {
            eprintln!("po-spawn: failed to read the supervisor spec in ${SPEC_ENV}: {e}");
            crate::exit::USAGE
        }
    })
}

enum Ev {
    Exited { code: i32, signal: Option<i32> },
    Signal,
    Reaped,
}

/// How the run is ending, when something other than the agent ends it.
#[derive(Clone, Debug)]
enum Ending {
    Cancelled,
    TimedOut,
    Stalled,
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
}

impl Control {
    /// Take SIGINT, SIGTERM and SIGHUP: the first cancels the running task,
    /// the second forces. A signal between tasks (a pool supervisor waiting
    /// for its next task) ends the process at once: it runs nothing.
    fn install() -> Control {
        let c = Control {
            cancel: Arc::new(AtomicBool::new(false)),
            force: Arc::new(AtomicBool::new(false)),
            events: Arc::new(Mutex::new(None)),
        };
        let (cancel, force, events) = (c.cancel.clone(), c.force.clone(), c.events.clone());
        signals::forward(move |_sig| {
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
}

/// Run one task to its end. Returns the supervisor's exit code.
pub fn run(spec: Spec) -> i32 {
    let control = Control::install();
    run_task(&spec, &control)
}

/// Run one task under `control`; its exit code. The task's liveness lock is
/// held from the start and released when its result is recorded.
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
            return crate::exit::SYSTEM;
        }
    };
    let log = Log::open(&spec.log_file);
    match supervise(spec, &log, tx, rx, &control.cancel, &control.force) {
        Ok(()) => 0,
        Err(e) => {
            let msg = format!("{e}");
            log.note(&format!("failed to {msg}"));
            let _ = store::update_status(&spec.status_file, |s| {
                if !s.status.is_terminal() {
                    s.status = State::Failed;
                    s.error = Some(one_line(&format!("failed to {msg}")));
                    s.completion_time = Some(timefmt::now());
                }
                Ok(())
            });
            crate::exit::SYSTEM
        }
    }
}

/// Whether a reaper thread still waits for children of this process. It reaps
/// any child, so a pool supervisor whose last agent left unkillable processes
/// behind must not start another task (its commands' exit statuses could be
/// taken): it stops, and the scheduler starts a fresh supervisor.
static REAPING: AtomicBool = AtomicBool::new(false);

/// The fd a pool supervisor reports finished tasks on.
pub const RESULT_FD: i32 = 3;

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

/// A pool supervisor: run the tasks whose specs arrive on stdin (one JSON line
/// each), one after another, each exactly as [`run`] does, and report each on
/// [`RESULT_FD`] as `<exit code> <status file>`. It stops at end of input,
/// when its scheduler is gone (it never starts a task after that), and after
/// a task it was told to cancel.
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
            return crate::exit::SYSTEM;
        }
        (File::from_raw_fd(input), File::from_raw_fd(RESULT_FD))
    };
    let control = Control::install();
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
                let _ = writeln!(results, "{} -", crate::exit::USAGE);
            }
        }
        if control.cancelled() || REAPING.load(Ordering::SeqCst) {
            return 0;
        }
    }
}

/// Append a line to the run's session log, in the scheduler's format.
fn session_note(spec: &Spec, agent_id: &str, note: &str) {
    let Some(path) = &spec.session_log else {
        return;
    };
    if let Ok(mut f) = OpenOptions::new().append(true).open(path) {
        let _ = writeln!(f, "{} {agent_id}: {note}", timefmt::format(&timefmt::now()));
    }
}

/// An error as one line of at most 300 characters.
fn one_line(s: &str) -> String {
    crate::text::ellipsize(&crate::text::collapse_whitespace(s), 300)
}

/// The last non-empty line the agent wrote, for error messages.
fn last_log_line(path: &Path) -> Option<String> {
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(4096);
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("po-spawn:"))
        .map(|l| one_line(l).chars().take(160).collect())
}

fn fail(spec: &Spec, phase: &str, error: String) -> Result<()> {
    store::update_status(&spec.status_file, |s| {
        s.status = State::Failed;
        s.phase = Some(phase.to_string());
        s.error = Some(one_line(&error));
        s.completion_time = Some(timefmt::now());
        if let Some(start) = s.start_time {
            s.metrics.duration_seconds =
                Some((timefmt::now() - start).num_milliseconds() as f64 / 1000.0);
        }
        Ok(())
    })?;
    Ok(())
}

fn supervise(
    spec: &Spec,
    log: &Log,
    tx: mpsc::Sender<Ev>,
    rx: mpsc::Receiver<Ev>,
    cancel: &AtomicBool,
    force: &Arc<AtomicBool>,
) -> Result<()> {
    let task = store::read_status(&spec.status_file)?;
    if task.status != State::Pending {
        log.note(&format!(
            "{} is {}, not pending: nothing to run",
            task.agent_id, task.status
        ));
        return Ok(());
    }
    let started_at = timefmt::now();
    let isolated = spec.worktree.is_some();
    let workdir = spec.worktree.clone().unwrap_or_else(|| spec.repo.clone());
    let resume =
        matches!(spec.agent, AgentSpec::Claude { .. }) && task.metrics.session_id.is_some();
    let session_id = match &spec.agent {
        AgentSpec::Claude { .. } => Some(match task.metrics.session_id.clone() {
            Some(id) => id,
            None => claude::new_session_id().map_err(Error::io("read", "/dev/urandom"))?,
        }),
        AgentSpec::Command { .. } => None,
    };
    let me = std::process::id();
    let start = |s: &mut AgentStatus| {
        s.status = State::InProgress;
        s.start_time = Some(started_at);
        s.completion_time = None;
        s.error = None;
        s.exit_code = None;
        s.pid = None;
        s.pgid = None;
        s.phase = Some(if isolated { "worktree" } else { "starting" }.into());
        s.log_file = Some(spec.log_file.clone());
        s.worktree = Some(workdir.clone());
        s.branch = Some(spec.branch.clone())
            .filter(|_| isolated)
            .or(s.branch.take());
        s.extra
            .insert(SUPERVISOR_PID_FIELD.into(), serde_json::Value::from(me));
    };
    // With nothing to prepare the start is recorded together with the
    // agent's pid: one write fewer per task (the liveness lock is held already).
    let defer_start = !isolated && spec.setup.is_none();
    let task = if defer_start {
        task
    } else {
        store::update_status(&spec.status_file, |s| {
            start(s);
            Ok(())
        })?
    };
    log.note(&format!(
        "{} attempt {} in {} (supervisor pid {me})",
        task.agent_id,
        task.attempt,
        workdir.display()
    ));

    // The worktree.
    let mut base = spec.base.clone();
    if let Some(wt) = &spec.worktree {
        match worktree::ensure(&spec.repo, wt, &spec.branch, &spec.base) {
            Ok(worktree::Prepared::Reused) => {
                log.note(&format!(
                    "reusing worktree {} on {}",
                    wt.display(),
                    spec.branch
                ));
                if let Some(b) = task.base_commit.clone() {
                    base = b;
                }
            }
            Ok(worktree::Prepared::Created) => {
                log.note(&format!(
                    "created worktree {} on {}",
                    wt.display(),
                    spec.branch
                ));
            }
            Ok(worktree::Prepared::Pooled) => {
                log.note(&format!(
                    "worktree {} on {}, from the pool",
                    wt.display(),
                    spec.branch
                ));
            }
            Err(e) => return fail(spec, "worktree", format!("failed to {e}")),
        }
        if let Err(e) = worktree::copy_included(&spec.repo, wt, &spec.include_files) {
            return fail(
                spec,
                "worktree",
                format!("failed to {e} (.worktreeinclude)"),
            );
        }
    }

    // The prompt.
    let orch: Option<Orchestration> = store::read_json(&spec.orchestration_file).ok();
    let text = match &task.prompt_file {
        Some(own) => match prompt::own_prompt(own, &spec.prompt_dirs) {
            Ok(t) => t,
            Err(e) => return fail(spec, "prompt", format!("failed to {e}")),
        },
        None => prompt::render(
            &task,
            orch.as_ref(),
            &prompt::Place {
                worktree: &workdir,
                branch: Some(spec.branch.as_str()).filter(|_| isolated),
                isolated,
            },
        ),
    };
    if let Some(parent) = spec.prompt_file.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    std::fs::write(&spec.prompt_file, text).map_err(Error::io("write", &spec.prompt_file))?;

    let env = agent_env(spec, &workdir, &task);
    let tree_marker = format!("PO_STATUS_FILE={}", spec.status_file.display()).into_bytes();

    // The setup command.
    if let Some(setup) = &spec.setup {
        store::update_status(&spec.status_file, |s| {
            s.phase = Some("setup".into());
            Ok(())
        })?;
        log.note(&format!("setup: sh -c {setup:?}"));
        let status = Command::new("sh")
            .args(["-c", setup])
            .current_dir(&workdir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.handle().map(Stdio::from).unwrap_or_else(Stdio::null))
            .stderr(log.handle().map(Stdio::from).unwrap_or_else(Stdio::null))
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                return fail(
                    spec,
                    "setup",
                    format!(
                        "setup command {setup:?} {}; its output is in {}",
                        describe_exit(s.code(), s.signal()),
                        spec.log_file.display()
                    ),
                );
            }
            Err(e) => return fail(spec, "setup", format!("start setup command {setup:?}: {e}")),
        }
    }
    if cancel.load(Ordering::SeqCst) {
        // Cancelled while preparing: the agent never starts.
        return finish(spec, &base, Outcome::ended(Ending::Cancelled), None);
    }

    let (mut resume, mut session_id) = (resume, session_id);
    loop {
        // The agent.
        let (argv, claude_mode) = match &spec.agent {
            AgentSpec::Claude {
                program,
                model,
                max_budget_usd,
            } => {
                let opts = ClaudeOptions {
                    program: program.clone(),
                    model: model.clone(),
                    max_budget_usd: *max_budget_usd,
                    agent: task.agent.clone(),
                    session_id: session_id.clone().unwrap_or_default(),
                    resume,
                };
                match std::panic::catch_unwind(|| claude::argv(&opts)) {
                    Ok(a) => (a, true),
                    Err(_) => {
                        return fail(
                            spec,
                            "starting",
                            "build the Claude Code command line: the adapter is not available in \
                             this build; use --agent-cmd"
                                .into(),
                        );
                    }
                }
            }
            AgentSpec::Command { words } => {
                let (p, w) = (
                    spec.prompt_file.to_string_lossy().into_owned(),
                    workdir.to_string_lossy().into_owned(),
                );
                let values = template::Values {
                    prompt_file: &p,
                    worktree: &w,
                    agent_id: &task.agent_id,
                    branch: &spec.branch,
                    id: &spec.orchestration_id,
                };
                (template::fill(words, &values), false)
            }
        };
        let stdin = File::open(&spec.prompt_file).map_err(Error::io("open", &spec.prompt_file))?;
        let agent_path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str());
        let mut cmd = match resolve_program(&argv[0], agent_path.unwrap_or_default(), &workdir) {
            Some(found) => {
                let mut c = Command::new(found);
                c.arg0(&argv[0]);
                c
            }
            None => Command::new(&argv[0]),
        };
        cmd.args(&argv[1..])
            .current_dir(&workdir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(stdin))
            .stderr(log.handle().map(Stdio::from).unwrap_or_else(Stdio::null))
            .process_group(0);
        if claude_mode {
            cmd.stdout(Stdio::piped());
        } else {
            cmd.stdout(log.handle().map(Stdio::from).unwrap_or_else(Stdio::null));
        }
        log.note(&format!("agent: {argv:?}"));
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return fail(
                    spec,
                    "starting",
                    if claude_mode && e.kind() == std::io::ErrorKind::NotFound {
                        format!(
                            "start the agent {:?}: it is not on PATH; install Claude Code \
                             (npm install -g @anthropic-ai/claude-code) or pass --agent-cmd",
                            argv[0]
                        )
                    } else {
                        format!(
                            "start the agent {:?}: {e}; check --agent-cmd or that it is on PATH",
                            argv[0]
                        )
                    },
                );
            }
        };
        let pid = child.id() as i32;
        let agent_started = Instant::now();
        store::update_status(&spec.status_file, |s| {
            if defer_start {
                start(s);
            }
            // Recorded once the agent runs, so a retry resumes only a session
            // that exists.
            if let Some(id) = &session_id {
                s.metrics.session_id = Some(id.clone());
            }
            s.pid = Some(pid);
            s.pgid = Some(pid);
            if s.phase
                .as_deref()
                .is_some_and(|p| p == "worktree" || p == "setup" || p == "starting")
            {
                s.phase = Some("running".into());
            }
            Ok(())
        })?;

        // Stream reading (claude) and activity tracking (stall detection).
        let activity = Arc::new(AtomicU64::new(now_ms()));
        let stream_state = Arc::new(Mutex::new(StreamState::default()));
        let reader = child.stdout.take().map(|out| {
            let (status_file, log_file) = (spec.status_file.clone(), log.handle());
            let (activity, state) = (activity.clone(), stream_state.clone());
            std::thread::spawn(move || read_stream(out, log_file, &status_file, &activity, &state))
        });
        drop(child);

        // Reap every child (the agent and reparented orphans) until none is left.
        {
            let tx = tx.clone();
            REAPING.store(true, Ordering::SeqCst);
            std::thread::spawn(move || {
                loop {
                    match waitpid(Pid::from_raw(-1), None) {
                        Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => {
                            let _ = tx.send(Ev::Exited { code, signal: None });
                        }
                        Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                            let _ = tx.send(Ev::Exited {
                                code: 128 + sig as i32,
                                signal: Some(sig as i32),
                            });
                        }
                        Ok(_) => {}
                        Err(nix::errno::Errno::EINTR) => {}
                        Err(_) => break,
                    }
                }
                REAPING.store(false, Ordering::SeqCst);
                let _ = tx.send(Ev::Reaped);
            });
        }

        let tree = Tree {
            root: Some(std::process::id() as i32),
            pgid: Some(pid),
            marker: Some(tree_marker.clone()),
        };
        let grace = Duration::from_secs_f64(spec.grace_secs.max(0.0));
        let deadline = agent_started + Duration::from_secs_f64(spec.timeout_secs.max(0.0));
        let stall = spec.stall_secs.map(|s| Duration::from_secs_f64(s.max(0.1)));
        let mut ending: Option<Ending> = None;
        let mut exited: Option<(i32, Option<i32>)> = None;
        let mut reaped = false;
        if cancel.load(Ordering::SeqCst) {
            ending = Some(Ending::Cancelled);
            tree.kill(grace, force);
        }
        while exited.is_none() {
            let now = Instant::now();
            let wait = if ending.is_some() {
                Duration::from_secs(3600)
            } else {
                let mut w = deadline.saturating_duration_since(now);
                if let Some(st) = stall {
                    w = w.min((st / 4).clamp(Duration::from_millis(100), Duration::from_secs(5)));
                }
                w
            };
            match rx.recv_timeout(wait) {
                Ok(Ev::Exited { code, signal }) => exited = Some((code, signal)),
                Ok(Ev::Reaped) => reaped = true,
                Ok(Ev::Signal) => {
                    if ending.is_none() {
                        log.note("cancelled: ending the agent's process tree");
                        ending = Some(Ending::Cancelled);
                        tree.kill(grace, force);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if ending.is_some() {
                        continue;
                    }
                    if Instant::now() >= deadline {
                        log.note(&format!(
                            "timeout after {}s: ending the agent's process tree",
                            spec.timeout_secs
                        ));
                        ending = Some(Ending::TimedOut);
                        tree.kill(grace, force);
                    } else if let Some(st) = stall
                        && idle_for(spec, &activity) >= st
                    {
                        log.note(&format!(
                            "no output and no status update for {}s: ending the agent's process tree",
                            st.as_secs_f64()
                        ));
                        ending = Some(Ending::Stalled);
                        tree.kill(grace, force);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // Whatever the agent left behind goes too: no task keeps processes alive
        // after its result is recorded. Orphaned descendants are reparented to
        // this subreaper, so once the reaper finds no child left there is nothing
        // to look for, and the /proc scan is skipped.
        if !reaped && ending.is_none() {
            let until = Instant::now() + Duration::from_millis(100);
            while let Ok(ev) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                if matches!(ev, Ev::Reaped) {
                    reaped = true;
                    break;
                }
            }
        }
        if !reaped {
            let leftover = tree.kill(grace, force);
            if leftover > 0 {
                log.note(&format!(
                    "ended {leftover} leftover process(es) of the agent"
                ));
            }
            // Every child is gone or being reaped; wait for the reaper to see it.
            let until = Instant::now() + Duration::from_secs(10);
            while let Ok(ev) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                if matches!(ev, Ev::Reaped) {
                    break;
                }
            }
        }
        if let Some(r) = reader {
            let _ = r.join();
        }
        let (code, signal) = exited.unwrap_or((-1, None));
        let outcome = Outcome {
            ending,
            code: Some(code),
            signal,
            stream: std::mem::take(&mut *stream_state.lock().unwrap_or_else(|e| e.into_inner())),
        };
        if resume
            && outcome.ending.is_none()
            && let Some((true, Some(message))) = &outcome.stream.finished
            && claude::is_unknown_session(message)
        {
            // The CLI does not have the recorded session (another machine, a
            // cleared config): start afresh, in this same attempt.
            let old = session_id.take().unwrap_or_default();
            let fresh = claude::new_session_id().map_err(Error::io("read", "/dev/urandom"))?;
            let note =
                format!("session {old} is unknown to the agent; starting a new session {fresh}");
            log.note(&note);
            session_note(spec, &task.agent_id, &note);
            store::update_status(&spec.status_file, |s| {
                s.error = None;
                s.retryable = None;
                s.exit_code = None;
                s.metrics.session_id = Some(fresh.clone());
                Ok(())
            })?;
            session_id = Some(fresh);
            resume = false;
            continue;
        }
        return finish(spec, &base, outcome, Some(agent_started));
    }
}

/// A bare program name looked up the way `execvp` would in the agent's
/// `PATH` (relative entries from its working directory). Started by path, the
/// agent comes from posix_spawn; by name with a changed `PATH`, the standard
/// library has to fork and exec, which costs more per task.
fn resolve_program(program: &str, path: &str, workdir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.is_empty() || program.contains('/') {
        return None;
    }
    path.split(':')
        .map(|d| {
            workdir
                .join(if d.is_empty() { "." } else { d })
                .join(program)
        })
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn mtime_ms(p: &Path) -> u64 {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Time since the agent last wrote output or its status file changed.
fn idle_for(spec: &Spec, activity: &AtomicU64) -> Duration {
    let last = activity
        .load(Ordering::SeqCst)
        .max(mtime_ms(&spec.log_file))
        .max(mtime_ms(&spec.status_file));
    Duration::from_millis(now_ms().saturating_sub(last))
}

/// What the Claude stream said that matters for the final state.
#[derive(Default, Debug)]
struct StreamState {
    api_error: Option<(String, bool)>,
    finished: Option<(bool, Option<String>)>,
}

/// Read the agent's stdout line by line: append each line to the log, feed the
/// stream parser, apply what it learns to the status file (at most every
/// 250 ms, and once at the end).
fn read_stream(
    out: std::process::ChildStdout,
    mut log: Option<File>,
    status_file: &Path,
    activity: &AtomicU64,
    state: &Mutex<StreamState>,
) {
    let mut reader = BufReader::new(out);
    let mut parser = StreamParser::new();
    let mut pending: Vec<StreamUpdate> = Vec::new();
    let mut last_flush = Instant::now();
    let mut buf = Vec::new();
    let flush = |pending: &mut Vec<StreamUpdate>| {
        if pending.is_empty() {
            return;
        }
        let updates = std::mem::take(pending);
        let _ = store::update_status(status_file, |s| {
            for u in &updates {
                claude::apply(s, u);
            }
            Ok(())
        });
    };
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        activity.store(now_ms(), Ordering::SeqCst);
        if let Some(f) = log.as_mut() {
            let _ = f.write_all(&buf);
        }
        let line = String::from_utf8_lossy(&buf);
        for u in parser.feed_line(line.trim_end_matches(['\n', '\r'])) {
            if let Ok(mut st) = state.lock() {
                match &u {
                    StreamUpdate::ApiError { message, retryable } => {
                        st.api_error = Some((message.clone(), *retryable));
                    }
                    StreamUpdate::Finished { is_error, message } => {
                        st.finished = Some((*is_error, message.clone()));
                    }
                    _ => {}
                }
            }
            pending.push(u);
        }
        if last_flush.elapsed() >= Duration::from_millis(250) {
            flush(&mut pending);
            last_flush = Instant::now();
        }
    }
    flush(&mut pending);
}

struct Outcome {
    ending: Option<Ending>,
    code: Option<i32>,
    signal: Option<i32>,
    stream: StreamState,
}

impl Outcome {
    fn ended(ending: Ending) -> Outcome {
        Outcome {
            ending: Some(ending),
            code: None,
            signal: None,
            stream: StreamState::default(),
        }
    }
}

fn describe_exit(code: Option<i32>, signal: Option<i32>) -> String {
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

/// Record the final state, metrics, and open the pull request when asked.
fn finish(spec: &Spec, base: &str, outcome: Outcome, agent_started: Option<Instant>) -> Result<()> {
    let log_path = spec.log_file.display().to_string();
    let ran = agent_started
        .map(|t| t.elapsed().as_secs_f64())
        .unwrap_or(0.0);
    let (state, error) = match &outcome.ending {
        Some(Ending::Cancelled) => (
            State::Cancelled,
            Some("cancelled: po-spawn was interrupted; `po-spawn --retry` runs it again".into()),
        ),
        Some(Ending::TimedOut) => (
            State::TimedOut,
            Some(format!(
                "timed out after {} (--timeout {}); worktree and commits kept; raise --timeout \
                 and run `po-spawn --retry`; log: {log_path}",
                timefmt::human_duration(ran),
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
            let claude_error = outcome.stream.finished.as_ref().filter(|f| f.0);
            if outcome.code == Some(0) && claude_error.is_none() {
                (State::Completed, None)
            } else {
                let what = describe_exit(outcome.code, outcome.signal);
                let detail = outcome
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
    };
    let retryable =
        outcome.stream.api_error.as_ref().is_some_and(|(_, r)| *r) && state == State::Failed;
    let stats = match &spec.worktree {
        Some(wt) => git::diff_stats(wt, base).ok(),
        None => None,
    };
    let base_commit = base.to_string();
    let done = store::update_status(&spec.status_file, |s| {
        s.status = state;
        s.error = error.as_deref().map(one_line);
        s.exit_code = outcome.code;
        let now = timefmt::now();
        s.completion_time = Some(now);
        if spec.worktree.is_some() {
            s.base_commit = Some(base_commit.clone());
        }
        if let Some(start) = s.start_time {
            s.metrics.duration_seconds =
                Some((now - start).num_milliseconds().max(0) as f64 / 1000.0);
        }
        if let Some(st) = stats {
            s.metrics.commits = Some(st.commits);
            s.metrics.files_changed = Some(st.files_changed);
            s.metrics.lines_added = Some(st.lines_added);
            s.metrics.lines_removed = Some(st.lines_removed);
        }
        if state == State::Completed {
            s.progress_percentage = Some(100);
        }
        s.retryable = retryable.then_some(true);
        Ok(())
    })?;
    if state == State::Completed
        && let Some(pr) = &spec.pr
    {
        open_pr(spec, pr, &done);
    }
    Ok(())
}

const PR_ERROR: &str = "open a pull request";

/// Push and open the pull request; a failure is the task's `error`, never a crash.
pub fn open_pr_for(
    status_file: &Path,
    repo: &Path,
    pr: &PrSpec,
) -> std::result::Result<(u64, String), String> {
    let gh = crate::forge::Gh::new(Some(&pr.runtime_root)).in_dir(repo);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::forge::pr::open_pr(status_file, repo, &pr.remote, &pr.base, &gh)
    }));
    let err = match result {
        Ok(Ok(done)) => {
            // A PR that failed before and worked now: its old error goes.
            let _ = store::update_status(status_file, |s| {
                if s.error.as_deref().is_some_and(|e| e.starts_with(PR_ERROR)) {
                    s.error = None;
                }
                Ok(())
            });
            return Ok(done);
        }
        Ok(Err(e)) => format!("{PR_ERROR}: failed to {e}"),
        Err(_) => format!("{PR_ERROR}: not available in this build"),
    };
    let _ = store::update_status(status_file, |s| {
        s.error = Some(one_line(&format!(
            "{err}; `po-spawn --create-pr` tries again"
        )));
        s.phase = Some("pr".into());
        Ok(())
    });
    Err(err)
}

fn open_pr(spec: &Spec, pr: &PrSpec, done: &AgentStatus) {
    if done.pr_number.is_some() {
        return;
    }
    let _ = open_pr_for(&spec.status_file, &spec.repo, pr);
}

/// The environment every agent (and `--setup`) gets.
fn agent_env(spec: &Spec, workdir: &Path, task: &AgentStatus) -> Vec<(String, String)> {
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(bin) = &spec.bin_dir {
        let mut joined = bin.as_os_str().to_owned();
        if !path.is_empty() {
            joined.push(":");
            joined.push(&path);
        }
        path = joined;
    }
    vec![
        (
            "PO_STATUS_FILE".into(),
            spec.status_file.to_string_lossy().into_owned(),
        ),
        ("PO_AGENT_ID".into(), task.agent_id.clone()),
        ("PO_ORCHESTRATION_ID".into(), spec.orchestration_id.clone()),
        ("PO_WORKTREE".into(), workdir.to_string_lossy().into_owned()),
        ("PO_BRANCH".into(), spec.branch.clone()),
        ("PO_PORT".into(), spec.port.to_string()),
        ("PO_PORT_COUNT".into(), spec.port_count.to_string()),
        ("PATH".into(), path.to_string_lossy().into_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn bare_names_resolve_like_execvp_and_paths_stay_as_given() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("work/bin"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        // Not executable in the first directory, executable in the second
        // (a relative entry, from the agent's working directory).
        std::fs::write(a.join("tool"), "").unwrap();
        std::fs::write(b.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(b.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let workdir = tmp.path().join("work");
        let path = format!("{}:bin", a.display());
        assert_eq!(
            resolve_program("tool", &path, &workdir),
            Some(workdir.join("bin").join("tool"))
        );
        assert_eq!(resolve_program("missing", &path, &workdir), None);
        assert_eq!(resolve_program("./tool", &path, &workdir), None);
        assert_eq!(resolve_program("", &path, &workdir), None);
    }
}
