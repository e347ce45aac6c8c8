//! The scheduler: which task runs when, under which base, with how many at once.
//!
//! It holds `parallel/<id>/spawn.lock` for its lifetime (a second po-spawn on
//! the same orchestration is refused), hands each task to a detached
//! supervisor of its pool, at most one per worker slot, each running task
//! after task (see [`super::pool`] and [`super::supervisor`]), and waits for
//! events only: a supervisor reports a task finished or is gone, the liveness
//! lock of a supervisor it adopted is released, a signal arrives, or a timer it
//! set (progress lines, retry backoff) fires.
//!
//! Task states at start:
//! * `pending` runs; `completed` is counted and skipped.
//! * `in_progress` with its liveness lock held is adopted: its supervisor (left
//!   by an earlier po-spawn) keeps running it and this run waits for it.
//! * `in_progress` with a free lock is an orphan (its supervisor died without
//!   recording a result): whatever is left of its process tree is ended and it
//!   is recorded `failed`; `--retry` runs it again.
//! * `failed`, `timed_out`, `cancelled` run again (attempt + 1, same worktree
//!   and branch) with `--retry`, or when named one by one as status files.
//!
//! No task ever has two live supervisors: only the holder of `spawn.lock`
//! starts supervisors, and a supervisor runs its task only while it holds the
//! task's liveness lock and the task is `pending`.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::json;

use super::console::Console;
use super::proctree::Tree;
use super::supervisor::{self, AgentSpec, PrSpec, Spec};
use super::{git, integration, pool, signals, template, worktree};
use crate::error::{Error, Result, exit};
use crate::protocol::{AgentStatus, Orchestration, Runtime, State, layout, sanitize, store};
use crate::timefmt;

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
    pub log_dir: Option<PathBuf>,
}

/// Which tasks to run.
#[derive(Clone, Debug)]
pub enum Target {
    /// Status files named one by one (arguments or stdin).
    Files(Vec<PathBuf>),
    /// Every task of an orchestration directory.
    Dir(PathBuf),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Waiting,
    Running,
    Done,
}

struct Task {
    path: PathBuf,
    status: AgentStatus,
    label: String,
    slot: Slot,
    /// The supervisor this run started (None when adopted).
    child: Option<u32>,
    /// Whether this invocation ran or adopted the task (its wave's validation is then due).
    ran: bool,
    retries_used: u32,
    not_before: Option<Instant>,
    shown: (Option<String>, Option<u8>),
}

enum Ev {
    Exited {
        idx: usize,
        code: Option<i32>,
        signal: Option<i32>,
    },
    LockFreed {
        idx: usize,
    },
    Signal(Signal),
    /// A pool supervisor finished a task or is gone.
    Pool(pool::Report),
}

/// The scheduler lock of an orchestration, held for po-spawn's lifetime.
fn take_spawn_lock(dir: &Path, id: &str) -> Result<store::FileLock> {
    let path = dir.join("spawn.lock");
    match store::try_lock_exclusive(&path)? {
        Some(lock) => {
            let mut f = lock.file();
            let _ = f.set_len(0);
            let _ = writeln!(f, "{}", std::process::id());
            Ok(lock)
        }
        None => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            Err(Error::usage(format!(
                "run orchestration {id}: another po-spawn{} is running it (it holds {}); wait \
                 for it, or stop it: its agents keep running and the next po-spawn adopts them",
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {holder})")
                },
                path.display()
            )))
        }
    }
}

/// Resolve the target into an orchestration directory and its status files.
fn resolve(target: &Target) -> Result<(PathBuf, Vec<PathBuf>, bool)> {
    match target {
        Target::Dir(dir) => {
            let dir = layout::absolute(dir)?;
            Ok((dir.clone(), layout::status_files(&dir)?, false))
        }
        Target::Files(files) => {
            let mut dir: Option<PathBuf> = None;
            let mut first: Option<PathBuf> = None;
            let mut out = Vec::new();
            for f in files {
                let abs = layout::absolute(f).map_err(|_| {
                    Error::usage(format!(
                        "read status file {}: it does not exist; pass status files printed by \
                         po-parse, a directory, or --id",
                        f.display()
                    ))
                })?;
                let parent = abs.parent().map(Path::to_path_buf).unwrap_or_default();
                match &dir {
                    None => {
                        dir = Some(parent);
                        first = Some(abs.clone());
                    }
                    Some(d) if *d != parent => {
                        return Err(Error::usage(format!(
                            "run tasks of different orchestrations together: {} is in {} but \
                             {} is in {}; run one po-spawn per orchestration",
                            first
                                .as_ref()
                                .map(|p| p.display().to_string())
                                .unwrap_or_default(),
                            d.display(),
                            abs.display(),
                            parent.display()
                        )));
                    }
                    Some(_) => {}
                }
                if !out.contains(&abs) {
                    out.push(abs);
                }
            }
            let dir = dir.ok_or_else(|| {
                Error::usage("run: no status files given; pipe them from po-parse or pass --id ID")
            })?;
            Ok((dir, out, true))
        }
    }
}

fn label_of(s: &AgentStatus) -> String {
    let raw = s
        .task_id
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| s.agent_id.clone());
    printable(&raw)
}

/// Task text shown on a terminal: control characters (escape sequences) replaced.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A branch name from a status file, if it is safe to hand to git as an
/// argument: `[A-Za-z0-9/_.-]`, no leading `-`, no `..`, no `.lock` suffix.
fn safe_branch(b: &str) -> bool {
    !b.is_empty()
        && b.len() <= 200
        && !b.starts_with(['-', '/', '.'])
        && !b.ends_with(['/', '.'])
        && !b.ends_with(".lock")
        && !b.contains("..")
        && !b.contains("//")
        && b.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c))
}

fn branch_of(id: &str, s: &AgentStatus, agent_id: &str) -> String {
    if let Some(b) = s.branch.as_deref().filter(|b| safe_branch(b)) {
        return b.to_string();
    }
    match s.number() {
        u64::MAX => format!(
            "{}-{}",
            sanitize::branch_prefix(id),
            sanitize::branch_component(agent_id)
        ),
        n => sanitize::branch_name(id, s.sub_issue, n),
    }
}

fn print_path(path: &Path) {
    let out = std::io::stdout();
    let mut out = out.lock();
    let _ = writeln!(out, "{}", path.display());
    let _ = out.flush();
}

fn agents_range(labels: &[&Task]) -> String {
    let nums: Vec<u64> = labels.iter().map(|t| t.status.number()).collect();
    let contiguous = nums.windows(2).all(|w| w[1] == w[0] + 1) && nums[0] != u64::MAX;
    match (labels.len(), contiguous) {
        (1, _) => format!("Agent {}", short(&labels[0].label)),
        (_, true) => format!("Agents {}-{}", nums[0], nums[nums.len() - 1]),
        _ => format!(
            "Agents {}",
            labels
                .iter()
                .map(|t| short(&t.label))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn short(label: &str) -> String {
    label.strip_prefix("agent-").unwrap_or(label).to_string()
}

/// Run (or with `dry_run`, describe) the tasks of `target`. Returns the exit code.
pub fn run(cwd_runtime: Runtime, target: Target, cfg: Config, console: Console) -> Result<i32> {
    let (dir, files, explicit) = resolve(&target)?;
    let orch_file = dir.join(layout::ORCHESTRATION_FILE);
    let orch: Option<Orchestration> = if orch_file.exists() {
        Some(store::read_json(&orch_file)?)
    } else {
        None
    };
    let id = match &orch {
        Some(o) => sanitize::id(&o.id)?,
        None => sanitize::id(&dir.file_name().unwrap_or_default().to_string_lossy())?,
    };
    let runtime = match dir.parent() {
        Some(p) if p.file_name().is_some_and(|n| n == "parallel") => Runtime::at(
            p.parent().unwrap_or(p),
            cwd_runtime.repo.clone().or_else(|| layout::repo_top(p)),
        ),
        _ => cwd_runtime.clone(),
    };
    let repo = runtime.repo.clone();
    if cfg.isolated && repo.is_none() {
        return Err(Error::usage(
            "create worktrees: not inside a git repository; run po-spawn in the repository or \
             pass --isolation none",
        ));
    }
    let source_kind = orch
        .as_ref()
        .map(|o| o.source.kind.clone())
        .unwrap_or_default();
    let create_pr = cfg.create_pr.unwrap_or(source_kind == "issue") && cfg.isolated;

    let _spawn_lock = if cfg.dry_run {
        None
    } else {
        Some(take_spawn_lock(&dir, &id)?)
    };

    // Load the tasks.
    let mut tasks: Vec<Task> = Vec::new();
    let mut unreadable = 0usize;
    for path in &files {
        match store::read_status(path) {
            Ok(status) => tasks.push(Task {
                path: path.clone(),
                label: label_of(&status),
                status,
                slot: Slot::Waiting,
                child: None,
                ran: false,
                retries_used: 0,
                not_before: None,
                shown: (None, None),
            }),
            Err(e) => {
                unreadable += 1;
                eprintln!("po-spawn: failed to {e}");
            }
        }
    }
    tasks.sort_by_key(|t| (t.status.wave, t.status.number(), t.path.clone()));

    // `--base` and its default (HEAD) mean what they mean where po-spawn was
    // started, which may be a linked worktree of the repository.
    let here = std::env::current_dir()
        .ok()
        .filter(|d| repo.is_some() && git::git_ok(d, &["rev-parse", "--git-dir"]));
    let rev_dir = here.clone().or_else(|| repo.clone());
    let base_commit = match &rev_dir {
        Some(d) => Some(git::resolve_commit(
            d,
            cfg.base.as_deref().unwrap_or("HEAD"),
        )?),
        None => None,
    };
    let pr_base = cfg
        .base
        .clone()
        .or_else(|| rev_dir.as_deref().and_then(git::current_branch))
        .unwrap_or_else(|| "main".into());
    let validations: HashMap<u32, String> = orch
        .as_ref()
        .map(|o| {
            o.waves
                .iter()
                .filter_map(|w| {
                    w.validation
                        .clone()
                        .filter(|v| !v.trim().is_empty())
                        .map(|v| (w.number, v))
                })
                .collect()
        })
        .unwrap_or_default();

    if cfg.dry_run {
        dry_run(&cfg, &runtime, &id, &dir, &tasks, explicit, &validations);
        return Ok(exit::SUCCESS);
    }

    let now = chrono::Utc::now();
    let session = format!("orch-{id}-{}", now.format("%Y%m%d-%H%M"));
    let logs = cfg
        .log_dir
        .clone()
        .unwrap_or_else(|| runtime.logs_dir(&session));
    let logs = if logs.is_absolute() {
        logs
    } else {
        std::env::current_dir()
            .map(|c| c.join(&logs))
            .unwrap_or(logs)
    };
    console.open_session_log(&logs.join("session.log"))?;
    let _ = runtime.exclude_from_git();
    console.log(&format!(
        "po-spawn {} (pid {}) on orchestration {id} ({}), {} task(s), max_workers={}, timeout={}s, isolation={}, base={}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        dir.display(),
        tasks.len(),
        cfg.max_workers,
        cfg.timeout_secs,
        if cfg.isolated { "worktree" } else { "none" },
        base_commit.as_deref().unwrap_or("-"),
    ));
    if orch.is_some() {
        let _ = store::update_json(&orch_file, |v| {
            if let Some(obj) = v.as_object_mut() {
                let opts = obj.entry("options").or_insert_with(|| json!({}));
                if let Some(o) = opts.as_object_mut() {
                    o.insert(
                        "last_run".into(),
                        json!({
                            "session": session,
                            "started": timefmt::format(&now),
                            "max_workers": cfg.max_workers,
                            "batch_size": cfg.batch_size,
                            "timeout": cfg.timeout_secs,
                            "isolation": if cfg.isolated { "worktree" } else { "none" },
                            "base": base_commit,
                            "create_pr": create_pr,
                            "log_dir": logs,
                        }),
                    );
                }
            }
            Ok(())
        });
    }

    let (tx, rx) = mpsc::channel::<Ev>();
    {
        let tx = tx.clone();
        signals::forward(move |sig| {
            let _ = tx.send(Ev::Signal(sig));
        });
    }

    let exe = std::env::current_exe()
        .map_err(|e| Error::system(format!("find po-spawn's own path: {e}")))?;
    let bin_dir = exe.parent().map(Path::to_path_buf);
    let include_files = match (&repo, cfg.isolated) {
        (Some(r), true) => worktree::included_files(r, &runtime.root)?,
        _ => Vec::new(),
    };
    let gate = Gate {
        cfg: &cfg,
        runtime: &runtime,
        id: &id,
        dir: &dir,
        orch_file: &orch_file,
        repo: repo
            .clone()
            .unwrap_or_else(|| std::env::current_dir().unwrap_or_default()),
        logs: &logs,
        bin_dir,
        include_files,
        prompt_dirs: prompt_dirs(&dir, orch.as_ref()),
        pr: create_pr.then(|| PrSpec {
            remote: cfg.remote.clone(),
            base: pr_base.clone(),
            runtime_root: runtime.root.clone(),
        }),
        console: &console,
        tx,
        pool: std::cell::RefCell::new(pool::Pool::new(exe.clone())),
    };

    console.say("=== Parallel Execution Started ===");
    console.say("");

    // Classify what is on disk.
    for (idx, t) in tasks.iter_mut().enumerate() {
        match t.status.status {
            State::Pending => {}
            State::InProgress if store::is_live(&t.path) => {
                console.log(&format!(
                    "adopt {}: its supervisor is alive",
                    t.status.agent_id
                ));
                gate.adopt(idx, t);
            }
            State::InProgress => {
                let reason = orphan(&t.path, &t.status, &console)?;
                t.status = store::read_status(&t.path)?;
                console.log(&format!("{}: {reason}", t.status.agent_id));
                if cfg.retry {
                    retry_reset(t, &console)?;
                } else {
                    t.slot = Slot::Done;
                }
            }
            s if s.is_retryable() && (cfg.retry || explicit) => {
                retry_reset(t, &console)?;
            }
            _ => t.slot = Slot::Done,
        }
    }
    for t in tasks.iter().filter(|t| t.slot == Slot::Done) {
        console.detail(&format!("  {}: already {}", t.label, t.status.status));
        if create_pr
            && t.status.status == State::Completed
            && t.status.pr_number.is_none()
            && let Some(pr) = &gate.pr
        {
            let _ = supervisor::open_pr_for(&t.path, &gate.repo, pr);
        }
        print_path(&t.path);
    }

    // Waves.
    let waves: Vec<u32> = tasks
        .iter()
        .map(|t| t.status.wave)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Tasks of a later wave named on their own still branch from the waves
    // before theirs: rebuild those integration branches from what is on disk.
    let mut first_base = base_commit.clone().unwrap_or_default();
    if cfg.isolated
        && let Some(&first) = waves.first()
        && tasks.iter().any(|t| t.slot == Slot::Waiting)
    {
        let earlier: Vec<Task> = layout::status_files(&dir)?
            .into_iter()
            .filter_map(|p| Some((store::read_status(&p).ok()?, p)))
            .filter(|(s, _)| s.wave < first)
            .map(|(status, path)| Task {
                path,
                label: label_of(&status),
                status,
                slot: Slot::Done,
                child: None,
                ran: false,
                retries_used: 0,
                not_before: None,
                shown: (None, None),
            })
            .collect();
        let earlier_waves: BTreeSet<u32> = earlier.iter().map(|t| t.status.wave).collect();
        for w in earlier_waves {
            console.log(&format!(
                "wave {w} (before this run's tasks): rebuilding its integration"
            ));
            first_base = integrate(&gate, &earlier, w, &first_base, None)?;
        }
    }
    let mut wave_base: HashMap<u32, String> = HashMap::new();
    let mut interrupted: Option<Signal> = None;
    let mut signals_seen = 0;
    let mut wave_failure: Option<String> = None;
    let mut batch_no = 0usize;
    let mut batch: Vec<usize> = Vec::new();
    let mut last_tick = Instant::now();
    let interval = Duration::from_secs(cfg.status_interval_secs.max(1));
    let started = Instant::now();

    let mut wi = 0usize;
    let mut announced: Option<u32> = None;
    while wi < waves.len() {
        let wave = waves[wi];
        let base = match wi {
            0 => first_base.clone(),
            _ => wave_base
                .get(&waves[wi - 1])
                .cloned()
                .or_else(|| base_commit.clone())
                .unwrap_or_default(),
        };
        let stopping = interrupted.is_some() || wave_failure.is_some();
        if !stopping {
            cancel_unsatisfiable(&mut tasks, &dir, &console);
            if announced != Some(wave)
                && tasks
                    .iter()
                    .any(|t| t.status.wave == wave && t.slot != Slot::Done)
            {
                if announced.is_some() {
                    console.say("");
                }
                console.say(&format!("Wave {wave}:"));
                announced = Some(wave);
            }
            // Batches.
            if let Some(size) = cfg.batch_size {
                batch.retain(|&i| tasks[i].slot != Slot::Done);
                if batch.is_empty() {
                    batch = tasks
                        .iter()
                        .enumerate()
                        .filter(|(_, t)| t.status.wave == wave && t.slot == Slot::Waiting)
                        .map(|(i, _)| i)
                        .take(size.max(1))
                        .collect();
                    if !batch.is_empty() {
                        batch_no += 1;
                        let members: Vec<&Task> = batch.iter().map(|&i| &tasks[i]).collect();
                        console.say(&format!("[Batch {batch_no}: {}]", agents_range(&members)));
                    }
                }
            }
            // Launch what may run.
            let mut running = tasks.iter().filter(|t| t.slot == Slot::Running).count();
            let now = Instant::now();
            for idx in 0..tasks.len() {
                if running >= cfg.max_workers {
                    break;
                }
                let t = &tasks[idx];
                if t.slot != Slot::Waiting
                    || t.status.wave != wave
                    || t.not_before.is_some_and(|nb| nb > now)
                    || (cfg.batch_size.is_some() && !batch.contains(&idx))
                    || !deps_met(&tasks, &dir, &tasks[idx].status)
                {
                    continue;
                }
                let branch = branch_of(&id, &tasks[idx].status, &tasks[idx].status.agent_id);
                gate.launch(idx, &mut tasks[idx], &branch, &base);
                if tasks[idx].slot == Slot::Running {
                    running += 1;
                } else {
                    finish_line(&tasks[idx], &console);
                    print_path(&tasks[idx].path);
                }
            }
        }

        let running = tasks.iter().filter(|t| t.slot == Slot::Running).count();
        let open_in_wave = tasks
            .iter()
            .filter(|t| t.status.wave == wave && t.slot != Slot::Done)
            .count();
        if running == 0 && (open_in_wave == 0 || interrupted.is_some() || wave_failure.is_some()) {
            if interrupted.is_some() || wave_failure.is_some() {
                break;
            }
            // The wave is over: integrate it for the next one, and validate.
            let later_work = tasks
                .iter()
                .any(|t| t.status.wave > wave && t.slot != Slot::Done);
            let validation = validations.get(&wave);
            let ran_here = tasks.iter().any(|t| t.status.wave == wave && t.ran);
            if later_work || (validation.is_some() && ran_here) {
                match integrate(&gate, &tasks, wave, &base, validation.map(String::as_str)) {
                    Ok(next) => {
                        wave_base.insert(wave, next);
                    }
                    Err(e) => {
                        console.say(&format!("❌ Wave {wave} failed: {e}"));
                        let reason = format!("wave {wave} did not pass: {e}");
                        wave_failure = Some(reason.clone());
                        for t in tasks.iter_mut().filter(|t| t.slot == Slot::Waiting) {
                            cancel(t, &format!("cancelled: {reason}"), &console);
                        }
                        break;
                    }
                }
            }
            wi += 1;
            continue;
        }
        if running == 0 && interrupted.is_none() {
            // Nothing runs and nothing could start: waiting on a backoff, or
            // tasks whose dependencies will never run before them.
            let next_retry = tasks
                .iter()
                .filter(|t| t.slot == Slot::Waiting && t.status.wave == wave)
                .filter_map(|t| t.not_before)
                .min();
            match next_retry {
                // Wait for the backoff below, still taking signals.
                Some(_) => {}
                None => {
                    for t in tasks
                        .iter_mut()
                        .filter(|t| t.slot == Slot::Waiting && t.status.wave == wave)
                    {
                        let reason = format!(
                            "cancelled: its dependencies ({}) cannot finish before it; put them \
                             in an earlier wave",
                            t.status.depends_on.join(", ")
                        );
                        cancel(t, &reason, &console);
                    }
                    continue;
                }
            }
        }

        // Wait for something to happen.
        let mut wait = interval.saturating_sub(last_tick.elapsed());
        if let Some(nb) = tasks
            .iter()
            .filter(|t| t.slot == Slot::Waiting)
            .filter_map(|t| t.not_before)
            .min()
        {
            wait = wait.min(nb.saturating_duration_since(Instant::now()));
        }
        let ev = match gate_recv(&rx, wait) {
            Some(Ev::Pool(report)) => match gate.pool.borrow_mut().report(report) {
                Some((idx, code, signal)) => Ev::Exited { idx, code, signal },
                None => continue,
            },
            Some(ev) => ev,
            None => {
                progress_tick(&mut tasks, &console);
                last_tick = Instant::now();
                continue;
            }
        };
        match ev {
            Ev::Signal(Signal::SIGHUP) => {
                // The terminal went away: leave the agents to their
                // supervisors (they record their results); the next
                // po-spawn adopts them and starts what is still pending.
                console.say(
                    "⚠️  Hangup: leaving running agents to their supervisors; run po-spawn \
                     again to adopt them and start the pending tasks",
                );
                return Ok(exit::INTERRUPTED);
            }
            Ev::Signal(sig) => {
                signals_seen += 1;
                if interrupted.is_none() {
                    interrupted = Some(sig);
                    console.say(&format!(
                        "\n⚠️  Interrupted ({sig}): cancelling running agents (Ctrl-C again to force)"
                    ));
                    for t in tasks.iter_mut().filter(|t| t.slot == Slot::Waiting) {
                        cancel(
                            t,
                            "cancelled: po-spawn was interrupted before it started; `po-spawn \
                             --retry` runs it",
                            &console,
                        );
                    }
                } else if signals_seen == 2 {
                    console.say("⚠️  Forcing: killing the agents' process trees");
                } else {
                    console.say("⚠️  Leaving now; supervisors finish cancelling on their own");
                    return Ok(exit::INTERRUPTED);
                }
                for t in tasks.iter().filter(|t| t.slot == Slot::Running) {
                    signal_supervisor(t, &console);
                }
            }
            Ev::Exited { idx, code, signal } => {
                if code == Some(supervisor::EXIT_BUSY) {
                    console.log(&format!(
                        "{}: another supervisor holds its liveness lock; adopting it",
                        tasks[idx].status.agent_id
                    ));
                    tasks[idx].child = None;
                    gate.adopt(idx, &mut tasks[idx]);
                    continue;
                }
                gate.finished(
                    idx,
                    &mut tasks[idx],
                    Some((code, signal)),
                    interrupted.is_some(),
                )?;
            }
            Ev::LockFreed { idx } => {
                gate.finished(idx, &mut tasks[idx], None, interrupted.is_some())?;
            }
            Ev::Pool(_) => {}
        }
    }

    // Anything still waiting (a stop in an earlier wave) was cancelled above;
    // wait for whatever still runs (only after a stop).
    while tasks.iter().any(|t| t.slot == Slot::Running) {
        let ev = match rx.recv() {
            Ok(Ev::Pool(report)) => match gate.pool.borrow_mut().report(report) {
                Some((idx, code, signal)) => Ok(Ev::Exited { idx, code, signal }),
                None => continue,
            },
            ev => ev,
        };
        match ev {
            Ok(Ev::Exited { idx, code, signal }) => gate.finished(
                idx,
                &mut tasks[idx],
                Some((code, signal)),
                interrupted.is_some(),
            )?,
            Ok(Ev::LockFreed { idx }) => {
                gate.finished(idx, &mut tasks[idx], None, interrupted.is_some())?
            }
            Ok(Ev::Pool(_)) => {}
            Ok(Ev::Signal(_)) => {
                signals_seen += 1;
                if signals_seen >= 3 {
                    return Ok(exit::INTERRUPTED);
                }
                console.say("⚠️  Forcing: killing the agents' process trees");
                for t in tasks.iter().filter(|t| t.slot == Slot::Running) {
                    signal_supervisor(t, &console);
                }
            }
            Err(_) => break,
        }
    }

    // A Ctrl-C that also ended a validation command counts as an interrupt.
    while let Ok(ev) = rx.try_recv() {
        if let Ev::Signal(sig) = ev
            && sig != Signal::SIGHUP
        {
            interrupted = interrupted.or(Some(sig));
        }
    }

    // The summary.
    let total = tasks.len() + unreadable;
    let count = |s: State| tasks.iter().filter(|t| t.status.status == s).count();
    let completed = count(State::Completed);
    console.say("");
    console.say("=== Execution Complete ===");
    console.say("");
    console.say("Results:");
    console.say(&format!("  Completed: {completed}/{total} tasks"));
    console.say(&format!("  Failed: {} tasks", total - completed));
    for (state, name) in [
        (State::TimedOut, "Timed out"),
        (State::Cancelled, "Cancelled"),
    ] {
        let n = count(state);
        if n > 0 {
            console.say(&format!("    {name}: {n}"));
        }
    }
    let took = timefmt::human_duration(started.elapsed().as_secs_f64());
    if completed == total && total > 0 {
        console.say(&format!("🎉 All agents succeeded! Total duration: {took}"));
    } else {
        console.say(&format!(
            "{completed}/{total} agents succeeded. Total duration: {took}"
        ));
    }
    console.say(&format!("Logs: {}", logs.display()));
    let code = if interrupted.is_some() {
        exit::INTERRUPTED
    } else if wave_failure.is_some() {
        exit::VALIDATION
    } else {
        crate::report::summary::exit_code_for(completed, total, cfg.threshold)
    };
    console.log(&format!("exit {code}"));
    Ok(code)
}

fn gate_recv(rx: &mpsc::Receiver<Ev>, wait: Duration) -> Option<Ev> {
    rx.recv_timeout(wait).ok()
}

fn retry_reset(t: &mut Task, console: &Console) -> Result<()> {
    let status = store::update_status(&t.path, |s| {
        s.reset_for_retry();
        Ok(())
    })?;
    console.log(&format!(
        "retry {}: attempt {}",
        status.agent_id, status.attempt
    ));
    t.status = status;
    t.slot = Slot::Waiting;
    Ok(())
}

/// End what is left of an orphan's tree and record it failed.
fn orphan(path: &Path, s: &AgentStatus, console: &Console) -> Result<String> {
    let marker = format!("PO_STATUS_FILE={}", path.display()).into_bytes();
    let tree = Tree {
        root: None,
        pgid: None,
        marker: Some(marker),
    };
    let ended = tree.kill(
        Duration::from_secs(2),
        &std::sync::atomic::AtomicBool::new(false),
    );
    if ended > 0 {
        console.log(&format!(
            "{}: ended {ended} process(es) left by its dead supervisor",
            s.agent_id
        ));
    }
    let reason = format!(
        "interrupted: its supervisor{} died before recording a result; `po-spawn --retry` runs \
         it again",
        s.extra
            .get(supervisor::SUPERVISOR_PID_FIELD)
            .map(|p| format!(" (pid {p})"))
            .unwrap_or_default()
    );
    store::update_status(path, |st| {
        if !st.status.is_terminal() {
            st.status = State::Failed;
            st.error = Some(reason.clone());
            st.completion_time = Some(timefmt::now());
        }
        Ok(())
    })?;
    Ok(reason)
}

fn cancel(t: &mut Task, reason: &str, console: &Console) {
    match store::update_status(&t.path, |s| {
        if !s.status.is_terminal() {
            s.status = State::Cancelled;
            s.error = Some(reason.to_string());
            s.completion_time = Some(timefmt::now());
        }
        Ok(())
    }) {
        Ok(s) => t.status = s,
        Err(e) => console.say(&format!("po-spawn: failed to {e}")),
    }
    t.slot = Slot::Done;
    finish_line(t, console);
    print_path(&t.path);
}

/// The dependency's state, from this run or from disk.
fn dep_state(tasks: &[Task], dir: &Path, dep: &str) -> Option<(State, bool)> {
    if let Some(t) = tasks.iter().find(|t| t.status.agent_id == dep) {
        return Some((t.status.status, t.slot == Slot::Done));
    }
    store::read_status(&layout::status_path(dir, dep))
        .ok()
        .map(|s| (s.status, s.status.is_terminal()))
}

fn deps_met(tasks: &[Task], dir: &Path, s: &AgentStatus) -> bool {
    s.depends_on
        .iter()
        .all(|d| matches!(dep_state(tasks, dir, d), Some((State::Completed, true))))
}

/// Cancel waiting tasks whose dependencies ended without completing.
fn cancel_unsatisfiable(tasks: &mut [Task], dir: &Path, console: &Console) {
    for i in 0..tasks.len() {
        if tasks[i].slot != Slot::Waiting {
            continue;
        }
        let mut reason = None;
        for d in &tasks[i].status.depends_on {
            let in_run = tasks.iter().any(|t| t.status.agent_id == *d);
            match dep_state(tasks, dir, d) {
                Some((State::Completed, true)) => {}
                Some((state, true)) => {
                    reason = Some(format!("cancelled: dependency {d} {state}"));
                }
                Some((state, false)) if !in_run => {
                    reason = Some(format!(
                        "cancelled: dependency {d} is {state} and not part of this run; run it \
                         first or include it"
                    ));
                }
                None => {
                    reason = Some(format!(
                        "cancelled: dependency {d} has no readable status file in {}",
                        dir.display()
                    ));
                }
                _ => {}
            }
            if reason.is_some() {
                break;
            }
        }
        if let Some(r) = reason {
            cancel(&mut tasks[i], &r, console);
        }
    }
}

fn finish_line(t: &Task, console: &Console) {
    let s = &t.status;
    let dur = s
        .metrics
        .duration_seconds
        .map(timefmt::human_duration)
        .unwrap_or_else(|| "0s".into());
    let err = printable(s.error.as_deref().unwrap_or("no error recorded"));
    let line = match s.status {
        State::Completed => match s.pr_number {
            Some(pr) => format!("✅ {} completed → PR #{pr} ({dur})", t.label),
            None => format!("✅ {} completed ({dur})", t.label),
        },
        State::Failed => format!("❌ {} failed: {err}", t.label),
        State::TimedOut => format!(
            "❌ {} timed out: {}",
            t.label,
            err.strip_prefix("timed out ").unwrap_or(&err)
        ),
        State::Cancelled => format!(
            "⛔ {} cancelled: {}",
            t.label,
            err.strip_prefix("cancelled: ").unwrap_or(&err)
        ),
        other => format!("❔ {} ended {other}", t.label),
    };
    console.say(&line);
    if s.status == State::Completed
        && let Some(e) = &s.error
    {
        console.say(&format!("   ⚠️  {}: {}", t.label, printable(e)));
    }
}

fn progress_tick(tasks: &mut [Task], console: &Console) {
    let clock = chrono::Local::now().format("%H:%M");
    for t in tasks.iter_mut().filter(|t| t.slot == Slot::Running) {
        let Ok(s) = store::read_status(&t.path) else {
            continue;
        };
        let shown = (s.phase.clone(), s.progress_percentage);
        if shown != t.shown {
            console.say(&format!(
                "[{clock}] {}: {} ({}%)",
                t.label,
                s.phase.as_deref().unwrap_or("working"),
                s.progress_percentage.unwrap_or(0)
            ));
            t.shown = shown;
        }
    }
}

/// SIGTERM the supervisor running `t` (it cancels; a second one forces).
fn signal_supervisor(t: &Task, console: &Console) {
    // A pool supervisor this run started is reaped only when the scheduler
    // handles its end, so its pid cannot have been recycled.
    let own = t.child.map(|p| p as i32);
    // Otherwise only a process that is this task's supervisor, never a
    // recycled pid: its environment holds the spec naming this status file,
    // or it is a pool supervisor and the live task records its pid.
    let adopted = || {
        let s = store::read_status(&t.path).ok()?;
        let pid = s.extra.get(supervisor::SUPERVISOR_PID_FIELD)?.as_i64()? as i32;
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let json = serde_json::to_string(&t.path).unwrap_or_default();
        let needle = json.trim_matches('"').as_bytes();
        let pool_env = format!("{}=", supervisor::POOL_ENV);
        env.split(|b| *b == 0)
            .any(|e| {
                (e.starts_with(supervisor::SPEC_ENV.as_bytes()) && contains(e, needle))
                    || (e.starts_with(pool_env.as_bytes()) && store::is_live(&t.path))
            })
            .then_some(pid)
    };
    let pid = own.or_else(adopted);
    match pid {
        Some(pid) => {
            console.log(&format!(
                "SIGTERM supervisor {pid} of {}",
                t.status.agent_id
            ));
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
        }
        None => console.log(&format!(
            "no supervisor pid to signal for {}",
            t.status.agent_id
        )),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Where a relative manifest `prompt_file` is looked up: the orchestration
/// directory, then the source's directory.
fn prompt_dirs(dir: &Path, orch: Option<&Orchestration>) -> Vec<PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    if let Some(o) = orch {
        let p = PathBuf::from(&o.source.value);
        if p.is_dir() {
            dirs.push(p);
        } else if let Some(parent) = p.parent() {
            dirs.push(parent.to_path_buf());
        }
    }
    dirs
}

/// What every launch shares.
struct Gate<'a> {
    cfg: &'a Config,
    runtime: &'a Runtime,
    id: &'a str,
    dir: &'a Path,
    orch_file: &'a Path,
    repo: PathBuf,
    logs: &'a Path,
    bin_dir: Option<PathBuf>,
    include_files: Vec<PathBuf>,
    prompt_dirs: Vec<PathBuf>,
    pr: Option<PrSpec>,
    console: &'a Console,
    tx: mpsc::Sender<Ev>,
    pool: std::cell::RefCell<pool::Pool>,
}

impl Gate<'_> {
    fn spec(&self, t: &Task, branch: &str, base: &str) -> Spec {
        let agent_id = sanitize::id(&t.status.agent_id).unwrap_or_else(|_| "agent".into());
        let n = match t.status.number() {
            u64::MAX => 0,
            n => n.saturating_sub(1),
        };
        Spec {
            status_file: t.path.clone(),
            orchestration_id: self.id.to_string(),
            orchestration_file: self.orch_file.to_path_buf(),
            prompt_dirs: self.prompt_dirs.clone(),
            prompt_file: layout::prompt_path(self.dir, &agent_id),
            repo: self.repo.clone(),
            worktree: self
                .cfg
                .isolated
                .then(|| self.runtime.worktree_dir(self.id, &agent_id)),
            branch: branch.to_string(),
            base: base.to_string(),
            include_files: self.include_files.clone(),
            setup: self.cfg.setup.clone(),
            agent: self.cfg.agent.clone(),
            timeout_secs: self.cfg.timeout_secs,
            stall_secs: self.cfg.stall_secs,
            grace_secs: self.cfg.grace_secs,
            log_file: self.logs.join(format!("{agent_id}.log")),
            port: 20000 + 100 * (n % 450) as u32,
            port_count: 100,
            bin_dir: self.bin_dir.clone(),
            pr: self.pr.clone(),
            session_log: Some(self.logs.join("session.log")),
        }
    }

    fn launch(&self, idx: usize, t: &mut Task, branch: &str, base: &str) {
        let spec = self.spec(t, branch, base);
        let tx = self.tx.clone();
        let notify = move |r| {
            let _ = tx.send(Ev::Pool(r));
        };
        let submitted = self.pool.borrow_mut().submit(idx, &spec, notify);
        match submitted {
            Ok(pid) => {
                t.child = Some(pid);
                t.ran = true;
                t.slot = Slot::Running;
                self.console.say(&format!("  {}: RUNNING", t.label));
                self.console.detail(&format!(
                    "    {} attempt {} · supervisor pid {pid} · {} · {} · log {}",
                    t.status.agent_id,
                    t.status.attempt,
                    spec.worktree.as_deref().unwrap_or(&spec.repo).display(),
                    if self.cfg.isolated {
                        branch
                    } else {
                        "(no worktree)"
                    },
                    spec.log_file.display()
                ));
            }
            Err(e) => {
                self.console
                    .log(&format!("{}: failed to {e}", t.status.agent_id));
                if let Ok(s) = store::update_status(&t.path, |s| {
                    s.status = State::Failed;
                    s.error = Some(format!("failed to {e}"));
                    s.completion_time = Some(timefmt::now());
                    Ok(())
                }) {
                    t.status = s;
                }
                t.slot = Slot::Done;
            }
        }
    }

    /// Wait for a supervisor this run did not start, through its liveness lock.
    fn adopt(&self, idx: usize, t: &mut Task) {
        t.slot = Slot::Running;
        t.ran = true;
        self.console
            .say(&format!("  {}: RUNNING (adopted)", t.label));
        let path = t.path.clone();
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            // The lock frees exactly when the supervisor dies.
            let lock = store::lock_exclusive(&store::liveness_path(&path));
            drop(lock);
            let _ = tx.send(Ev::LockFreed { idx });
        });
    }

    fn finished(
        &self,
        idx: usize,
        t: &mut Task,
        exit: Option<(Option<i32>, Option<i32>)>,
        interrupted: bool,
    ) -> Result<()> {
        t.child = t.child.filter(|_| exit.is_none());
        let mut status = match store::read_status(&t.path) {
            Ok(s) => s,
            Err(e) => {
                self.console.say(&format!("po-spawn: failed to {e}"));
                t.slot = Slot::Done;
                return Ok(());
            }
        };
        if !status.status.is_terminal() {
            if store::is_live(&t.path) {
                // Someone else's supervisor runs it now.
                self.adopt(idx, t);
                return Ok(());
            }
            let how = match exit {
                Some((Some(c), _)) => format!("exited with status {c}"),
                Some((None, Some(s))) => format!("was killed by signal {s}"),
                _ => "died".into(),
            };
            let log = self.logs.join(format!("{}.log", status.agent_id));
            // Killed by the terminal's Ctrl-C before it left po-spawn's session.
            let interrupted = interrupted
                || matches!(exit, Some((None, Some(sig))) if sig == libc::SIGINT || sig == libc::SIGTERM || sig == libc::SIGHUP);
            let reason = if interrupted {
                "cancelled: po-spawn was interrupted; `po-spawn --retry` runs it".to_string()
            } else {
                format!(
                    "its supervisor {how} before recording a result; see {}",
                    log.display()
                )
            };
            let tree = Tree {
                root: None,
                pgid: None,
                marker: Some(format!("PO_STATUS_FILE={}", t.path.display()).into_bytes()),
            };
            tree.kill(
                Duration::from_secs_f64(self.cfg.grace_secs),
                &std::sync::atomic::AtomicBool::new(interrupted),
            );
            status = store::update_status(&t.path, |s| {
                if !s.status.is_terminal() {
                    s.status = if interrupted {
                        State::Cancelled
                    } else {
                        State::Failed
                    };
                    s.error = Some(reason.clone());
                    s.completion_time = Some(timefmt::now());
                }
                Ok(())
            })?;
        }
        t.status = status;
        t.slot = Slot::Done;
        self.console.log(&format!(
            "{} finished: {}{}",
            t.status.agent_id,
            t.status.status,
            t.status
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
        // Retryable failures (rate limits) try again with backoff.
        if t.status.status == State::Failed
            && t.status.retryable == Some(true)
            && t.retries_used < self.cfg.retries
            && !interrupted
        {
            let delay = self.cfg.retry_backoff_secs * 2f64.powi(t.retries_used as i32);
            t.retries_used += 1;
            self.console.say(&format!(
                "🔄 {} failed with a retryable error; retry {}/{} in {}",
                t.label,
                t.retries_used,
                self.cfg.retries,
                timefmt::human_duration(delay)
            ));
            retry_reset(t, self.console)?;
            t.not_before = Some(Instant::now() + Duration::from_secs_f64(delay.max(0.0)));
            return Ok(());
        }
        if t.status.status == State::Completed
            && t.status.pr_number.is_none()
            && t.status.error.is_none()
            && exit.is_none()
            && let Some(pr) = &self.pr
        {
            // An adopted task whose supervisor predates PR creation.
            let _ = supervisor::open_pr_for(&t.path, &self.repo, pr);
            if let Ok(s) = store::read_status(&t.path) {
                t.status = s;
            }
        }
        finish_line(t, self.console);
        print_path(&t.path);
        Ok(())
    }
}

/// Merge wave `wave`'s completed branches into its integration branch and run
/// its validation there; returns the next wave's base commit.
fn integrate(
    gate: &Gate<'_>,
    tasks: &[Task],
    wave: u32,
    base: &str,
    validation: Option<&str>,
) -> Result<String> {
    let console = gate.console;
    if !gate.cfg.isolated {
        if let Some(cmd) = validation {
            console.say(&format!("🔎 Wave {wave} validation: {cmd}"));
            let log = gate.logs.join(format!("wave-{wave}-validation.log"));
            integration::validate(&gate.repo, wave, cmd, &log)?;
            console.say(&format!("✅ Wave {wave} validation passed"));
        }
        return Ok(base.to_string());
    }
    let branch = integration::branch(gate.id, wave);
    let path = gate
        .runtime
        .root
        .join("worktrees")
        .join(gate.id)
        .join("integration");
    let merges: Vec<integration::Merge> = tasks
        .iter()
        .filter(|t| t.status.wave == wave && t.status.status == State::Completed)
        .filter_map(|t| {
            let b = t.status.branch.clone()?;
            git::branch_exists(&gate.repo, &b).then(|| integration::Merge {
                label: t.label.clone(),
                branch: b,
            })
        })
        .collect();
    console.log(&format!(
        "wave {wave}: integrating {} branch(es) into {branch} at {}",
        merges.len(),
        path.display()
    ));
    integration::prepare(&gate.repo, &path, &branch, base)?;
    integration::merge_all(&path, &branch, base, &merges)?;
    if !merges.is_empty() {
        console.detail(&format!(
            "🔀 Wave {wave}: merged {} into {branch}",
            merges
                .iter()
                .map(|m| m.branch.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(cmd) = validation {
        console.say(&format!("🔎 Wave {wave} validation: {cmd}"));
        let log = gate.logs.join(format!("wave-{wave}-validation.log"));
        integration::validate(&path, wave, cmd, &log)?;
        console.say(&format!("✅ Wave {wave} validation passed"));
    }
    git::git(&path, &["rev-parse", "HEAD"])
}

fn dry_run(
    cfg: &Config,
    runtime: &Runtime,
    id: &str,
    dir: &Path,
    tasks: &[Task],
    explicit: bool,
    validations: &HashMap<u32, String>,
) {
    let mut out = String::new();
    out.push_str("🔍 DRY RUN MODE (nothing is started)\n");
    out.push_str(&format!(
        "Orchestration {id}: {} task(s) in {}\n",
        tasks.len(),
        dir.display()
    ));
    out.push_str(&format!(
        "max_workers={} batch_size={} timeout={}s isolation={} base={}\n",
        cfg.max_workers,
        cfg.batch_size
            .map(|b| b.to_string())
            .unwrap_or_else(|| "unlimited".into()),
        cfg.timeout_secs,
        if cfg.isolated { "worktree" } else { "none" },
        cfg.base.as_deref().unwrap_or("HEAD")
    ));
    let mut wave = None;
    for t in tasks {
        if wave != Some(t.status.wave) {
            wave = Some(t.status.wave);
            let from = if t.status.wave == tasks[0].status.wave {
                cfg.base.clone().unwrap_or_else(|| "HEAD".into())
            } else {
                "the previous wave's integration branch".into()
            };
            out.push_str(&format!("\nWave {} (from {from}):\n", t.status.wave));
        }
        let would = match t.status.status {
            State::Pending => "run",
            State::InProgress => "adopt or recover",
            s if s.is_retryable() && (cfg.retry || explicit) => "retry",
            _ => "skip",
        };
        let agent_id = sanitize::id(&t.status.agent_id).unwrap_or_else(|_| "agent".into());
        let branch = branch_of(id, &t.status, &t.status.agent_id);
        let wt = runtime.worktree_dir(id, &agent_id);
        let prompt = layout::prompt_path(dir, &agent_id);
        out.push_str(&format!(
            "  {} [{}, {would}]: {}\n",
            t.label, t.status.status, t.status.title
        ));
        if !t.status.depends_on.is_empty() {
            out.push_str(&format!(
                "    depends on: {}\n",
                t.status.depends_on.join(", ")
            ));
        }
        if cfg.isolated {
            out.push_str(&format!("    branch:   {branch}\n"));
            out.push_str(&format!("    worktree: {}\n", wt.display()));
        }
        out.push_str(&format!("    prompt:   {}\n", prompt.display()));
        let workdir = if cfg.isolated {
            wt.to_string_lossy().into_owned()
        } else {
            "<repository>".into()
        };
        let argv = match &cfg.agent {
            AgentSpec::Command { words } => template::fill(
                words,
                &template::Values {
                    prompt_file: &prompt.to_string_lossy(),
                    worktree: &workdir,
                    agent_id: &t.status.agent_id,
                    branch: &branch,
                    id,
                },
            ),
            AgentSpec::Claude {
                program,
                model,
                max_budget_usd,
            } => {
                let opts = super::claude::ClaudeOptions {
                    program: program.clone(),
                    model: model.clone(),
                    max_budget_usd: *max_budget_usd,
                    agent: t.status.agent.clone(),
                    session_id: t
                        .status
                        .metrics
                        .session_id
                        .clone()
                        .unwrap_or_else(|| "<new session id>".into()),
                    resume: t.status.metrics.session_id.is_some(),
                };
                std::panic::catch_unwind(|| super::claude::argv(&opts))
                    .unwrap_or_else(|_| vec![program.clone(), "…".into()])
            }
        };
        out.push_str(&format!(
            "    command:  {}\n",
            crate::text::shell_words(&argv)
        ));
    }
    for (w, v) in validations {
        out.push_str(&format!("\nWave {w} validation: {v}\n"));
    }
    if cfg.setup.is_some() {
        out.push_str(&format!(
            "\nSetup in each worktree: {}\n",
            cfg.setup.as_deref().unwrap_or_default()
        ));
    }
    out.push_str("\nTo run: drop --dry-run\n");
    let stdout = std::io::stdout();
    let _ = stdout.lock().write_all(out.as_bytes());
}
