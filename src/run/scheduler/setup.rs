//! Everything a run settles before its first task starts: which orchestration
//! and tasks, the repository and base commit, the scheduler lock, the logs,
//! and what each task's supervisor is told ([`Context::spec`]).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::json;

use super::{Config, Console, Event, Mode, Parts, Target};
use crate::error::{Error, Result};
use crate::protocol::view::{OrchestrationView, Reader};
use crate::protocol::{AgentStatus, Orchestration, Runtime, layout, sanitize, store};
use crate::run::integration::GitIntegration;
use crate::run::launcher::{self as launchers, Launcher, Waker};
use crate::run::supervisor::{PrSpec, Spec};
use crate::signals;
use crate::timefmt;
use crate::{git, worktree};

/// The orchestration a run works on.
pub struct Setup {
    pub dir: PathBuf,
    pub id: String,
    pub runtime: Runtime,
    pub orchestration: Option<Orchestration>,
    /// The tasks' status files as read (readable or not).
    pub view: OrchestrationView,
    /// Status files were named one by one (they run again when failed).
    pub explicit: bool,
    pub repo: Option<PathBuf>,
    /// What `--base` (default HEAD) resolves to.
    pub base_commit: Option<String>,
    /// The branch pull requests go to.
    pub pr_base: String,
    pub create_pr: bool,
    /// Validation commands by wave.
    pub validations: HashMap<u32, String>,
    pub mode: Mode,
    /// The session of the last run, as `orchestration.json` recorded it.
    pub previous_session: Option<String>,
}

impl Setup {
    pub fn new(cwd_runtime: Runtime, target: &Target, cfg: &Config) -> Result<Setup> {
        let (dir, files, explicit) = resolve(target)?;
        let orch_file = dir.join(layout::ORCHESTRATION_FILE);
        let orchestration: Option<Orchestration> = if orch_file.exists() {
            Some(store::read_json(&orch_file)?)
        } else {
            None
        };
        let id = match &orchestration {
            Some(o) => sanitize::id(&o.id)?,
            None => sanitize::id(&dir.file_name().unwrap_or_default().to_string_lossy())?,
        };
        let runtime = match dir.parent() {
            Some(p) if p.file_name().is_some_and(|n| n == "parallel") => Runtime::at(
                p.parent().unwrap_or(p),
                cwd_runtime.repo.clone().or_else(|| layout::repo_top(p)),
            ),
            _ => cwd_runtime,
        };
        let repo = runtime.repo.clone();
        if cfg.isolated && repo.is_none() {
            return Err(Error::usage(
                "create worktrees: not inside a git repository; run po-spawn in the repository \
                 or pass --isolation none",
            ));
        }
        let source_kind = orchestration
            .as_ref()
            .map(|o| o.source.kind.clone())
            .unwrap_or_default();
        let create_pr = cfg.create_pr.unwrap_or(source_kind == "issue") && cfg.isolated;

        // `--base` and its default (HEAD) mean what they mean where po-spawn
        // was started, which may be a linked worktree of the repository.
        let here = std::env::current_dir()
            .ok()
            .filter(|d| repo.is_some() && git::git_ok(d, &["rev-parse", "--git-dir"]));
        let rev_dir = here.or_else(|| repo.clone());
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
        let validations: HashMap<u32, String> = orchestration
            .as_ref()
            .map(|o| o.validations())
            .unwrap_or_default();
        let view = Reader::plain().read_files(&dir, &files);
        let mode = Mode::of(
            orchestration.as_ref(),
            &validations,
            view.tasks().map(|t| &t.status),
        );
        let previous_session = orchestration
            .as_ref()
            .and_then(|o| o.options.get("last_run")?.get("session")?.as_str())
            .map(str::to_string);
        Ok(Setup {
            previous_session,
            dir,
            id,
            runtime,
            orchestration,
            view,
            explicit,
            repo,
            base_commit,
            pr_base,
            create_pr,
            validations,
            mode,
        })
    }

    pub fn orchestration_file(&self) -> PathBuf {
        self.dir.join(layout::ORCHESTRATION_FILE)
    }

    /// The scheduler lock of the orchestration, held for po-spawn's lifetime.
    pub fn take_spawn_lock(&self) -> Result<store::FileLock> {
        let path = self.dir.join("spawn.lock");
        match store::try_lock_exclusive(&path)? {
            Some(lock) => {
                let mut f = lock.file();
                let _ = f.set_len(0);
                let _ = writeln!(f, "{}", std::process::id());
                Ok(lock)
            }
            None => {
                let holder =
                    crate::fsx::read_to_string(&path, crate::fsx::SMALL_MAX).unwrap_or_default();
                let holder = holder.trim();
                Err(Error::usage(format!(
                    "run orchestration {}: another po-spawn{} is running it (it holds {}); wait \
                     for it, or stop it: its agents keep running and the next po-spawn adopts \
                     them",
                    self.id,
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

    /// This run's log directory: `--log-dir`, else `logs/<session>/`.
    pub fn log_dir(&self, cfg: &Config, session: &str) -> PathBuf {
        let logs = cfg
            .log_dir
            .clone()
            .unwrap_or_else(|| self.runtime.logs_dir(session));
        if logs.is_absolute() {
            logs
        } else {
            std::env::current_dir()
                .map(|c| c.join(&logs))
                .unwrap_or(logs)
        }
    }

    /// Record this run's options in `orchestration.json` (`options.last_run`).
    pub fn record_run(&self, cfg: &Config, session: &str, logs: &Path) {
        if self.orchestration.is_none() {
            return;
        }
        let _ = store::update_json(&self.orchestration_file(), |v| {
            if let Some(opts) = v
                .as_object_mut()
                .map(|o| o.entry("options").or_insert_with(|| json!({})))
                .and_then(|o| o.as_object_mut())
            {
                opts.insert(
                    "last_run".into(),
                    json!({
                        "session": session,
                        "started": timefmt::format(&timefmt::now()),
                        "max_workers": cfg.max_workers,
                        "batch_size": cfg.batch_size,
                        "timeout": cfg.timeout_secs,
                        "isolation": if cfg.isolated { "worktree" } else { "none" },
                        "base": self.base_commit,
                        "create_pr": self.create_pr,
                        "scheduling": self.mode.name(),
                        "log_dir": logs,
                        "budget_usd": cfg.limits.budget_usd,
                        "budget_hard": cfg.limits.hard,
                        "max_turns": cfg.limits.max_turns,
                        "max_total_retries": cfg.limits.max_total_retries,
                    }),
                );
            }
            Ok(())
        });
    }

    /// Everything a run is made of, wired: the session log, signals and
    /// launcher wake-ups as events, the integration of waves, the launcher.
    pub fn wire(self, cfg: &Config, console: Console) -> Result<(Parts, mpsc::Receiver<Event>)> {
        let session = format!(
            "orch-{}-{}",
            self.id,
            chrono::Utc::now().format("%Y%m%d-%H%M")
        );
        let logs = self.log_dir(cfg, &session);
        console.open_session_log(&logs.join("session.log"))?;
        let _ = self.runtime.exclude_from_git();
        self.record_run(cfg, &session, &logs);
        console.log(&self.opening_line(cfg));
        let (tx, rx) = mpsc::channel::<Event>();
        let interrupt = forward_signals(&tx);
        let ctx = self.context(cfg, logs.clone())?;
        let grace = Duration::from_secs_f64(cfg.grace_secs);
        let integration = GitIntegration {
            repo: ctx.repo.clone(),
            scratch: self.runtime.integration_dir(&self.id),
            id: self.id.clone(),
            logs,
            isolated: cfg.isolated,
            validation_timeout: Duration::from_secs_f64(cfg.validation_timeout_secs.max(0.0)),
            grace,
            interrupt,
        };
        let launcher = self.launcher(cfg, waker(tx), grace)?;
        let parts = Parts {
            ctx,
            mode: self.mode,
            validations: self.validations,
            rows: self.view.rows,
            explicit: self.explicit,
            base: self.base_commit.unwrap_or_default(),
            previous_session: self.previous_session,
            launcher,
            integration: Box::new(integration),
            console,
        };
        Ok((parts, rx))
    }

    /// The session log's first line: who runs what, how.
    fn opening_line(&self, cfg: &Config) -> String {
        format!(
            "po-spawn {} (pid {}) on orchestration {} ({}), {} task(s), max_workers={}, \
             timeout={}s, isolation={}, scheduling={}, base={}",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            self.id,
            self.dir.display(),
            self.view.rows.len(),
            cfg.max_workers,
            cfg.timeout_secs,
            if cfg.isolated { "worktree" } else { "none" },
            self.mode.name(),
            self.base_commit.as_deref().unwrap_or("-"),
        )
    }

    /// The launcher `--launcher` names, for this orchestration.
    fn launcher(&self, cfg: &Config, waker: Waker, grace: Duration) -> Result<Box<dyn Launcher>> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::system(format!("find po-spawn's own path: {e}")))?;
        launchers::make(
            &cfg.launcher,
            launchers::Site {
                exe,
                waker,
                grace,
                dir: self.dir.clone(),
                id: self.id.clone(),
                timeout_secs: cfg.timeout_secs,
            },
        )
    }

    /// What every supervisor of this run is told.
    pub fn context(&self, cfg: &Config, logs: PathBuf) -> Result<Context> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::system(format!("find po-spawn's own path: {e}")))?;
        let include_files = match (&self.repo, cfg.isolated) {
            (Some(r), true) => worktree::included_files(r, &self.runtime.root)?,
            _ => Vec::new(),
        };
        Ok(Context {
            cfg: cfg.clone(),
            runtime: self.runtime.clone(),
            id: self.id.clone(),
            dir: self.dir.clone(),
            orchestration_file: self.orchestration_file(),
            repo: self
                .repo
                .clone()
                .unwrap_or_else(|| std::env::current_dir().unwrap_or_default()),
            logs,
            bin_dir: exe.parent().map(Path::to_path_buf),
            include_files,
            prompt_dirs: prompt_dirs(&self.dir, self.orchestration.as_ref()),
            pr: self.create_pr.then(|| PrSpec {
                remote: cfg.remote.clone(),
                base: self.pr_base.clone(),
                runtime_root: self.runtime.root.clone(),
            }),
        })
    }
}

/// What every task of a run shares; makes each task's supervisor [`Spec`].
#[derive(Clone, Debug)]
pub struct Context {
    pub cfg: Config,
    pub runtime: Runtime,
    pub id: String,
    pub dir: PathBuf,
    pub orchestration_file: PathBuf,
    pub repo: PathBuf,
    pub logs: PathBuf,
    pub bin_dir: Option<PathBuf>,
    pub include_files: Vec<PathBuf>,
    pub prompt_dirs: Vec<PathBuf>,
    pub pr: Option<PrSpec>,
}

impl Context {
    /// The supervisor spec of the task in `path`, on `branch` from `base`.
    pub fn spec(&self, path: &Path, s: &AgentStatus, branch: &str, base: &str) -> Spec {
        let agent_id = sanitize::id(&s.agent_id).unwrap_or_else(|_| "agent".into());
        let n = match s.number() {
            u64::MAX => 0,
            n => n.saturating_sub(1),
        };
        let cfg = &self.cfg;
        Spec {
            status_file: path.to_path_buf(),
            orchestration_id: self.id.clone(),
            orchestration_file: self.orchestration_file.clone(),
            prompt_dirs: self.prompt_dirs.clone(),
            prompt_file: layout::prompt_path(&self.dir, &agent_id),
            repo: self.repo.clone(),
            worktree: cfg
                .isolated
                .then(|| self.runtime.worktree_dir(&self.id, &agent_id)),
            branch: branch.to_string(),
            base: base.to_string(),
            include_files: self.include_files.clone(),
            setup: cfg.setup.clone(),
            agent: cfg.agent.clone(),
            timeout_secs: cfg.timeout_secs,
            stall_secs: cfg.stall_secs,
            grace_secs: cfg.grace_secs,
            log_file: self.logs.join(format!("{agent_id}.log")),
            port: 20000 + 100 * (n % 450) as u32,
            port_count: 100,
            bin_dir: self.bin_dir.clone(),
            pr: self.pr.clone(),
            session_log: Some(self.logs.join("session.log")),
            sandbox: cfg.sandbox.clone(),
        }
    }
}

/// Signals reach the scheduler as events; the flag that is returned tells a
/// running validation command that SIGINT or SIGTERM came.
fn forward_signals(tx: &mpsc::Sender<Event>) -> Arc<AtomicBool> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let (tx, flag) = (tx.clone(), interrupt.clone());
    signals::forward(move |sig| {
        if sig != Signal::SIGHUP {
            flag.store(true, Ordering::SeqCst);
        }
        let _ = tx.send(Event::Signal(sig));
    });
    interrupt
}

/// What a launcher calls when a runner may have changed.
fn waker(tx: mpsc::Sender<Event>) -> Waker {
    let tx = Mutex::new(tx);
    Arc::new(move || {
        let _ = tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Event::Wake);
    })
}

/// Resolve the target into an orchestration directory and its status files;
/// whether they were named one by one.
pub fn resolve(target: &Target) -> Result<(PathBuf, Vec<PathBuf>, bool)> {
    let files = match target {
        Target::Dir(dir) => {
            let dir = layout::absolute(dir)?;
            let files = layout::status_files(&dir)?;
            return Ok((dir, files, false));
        }
        Target::Files(files) => files,
    };
    let mut dir: Option<PathBuf> = None;
    let mut out: Vec<PathBuf> = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    for f in files {
        let abs = layout::absolute(f).map_err(|_| {
            Error::usage(format!(
                "read status file {}: it does not exist; pass status files printed by po-parse, \
                 a directory, or --id",
                f.display()
            ))
        })?;
        let parent = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        match &dir {
            None => dir = Some(parent),
            Some(d) if *d != parent => {
                return Err(Error::usage(format!(
                    "run tasks of different orchestrations together: {} is in {} but {} is in \
                     {}; run one po-spawn per orchestration",
                    out[0].display(),
                    d.display(),
                    abs.display(),
                    parent.display()
                )));
            }
            Some(_) => {}
        }
        if seen.insert(abs.clone()) {
            out.push(abs);
        }
    }
    let dir = dir.ok_or_else(|| {
        Error::usage("run: no status files given; pipe them from po-parse or pass --id ID")
    })?;
    Ok((dir, out, true))
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

/// The branch of task `s` in orchestration `id`: the one it records, if
/// safe, else the one po names it.
pub fn branch_of(id: &str, s: &AgentStatus) -> String {
    if let Some(b) = s.branch.as_deref().filter(|b| safe_branch(b)) {
        return b.to_string();
    }
    match s.number() {
        u64::MAX => format!(
            "{}-{}",
            sanitize::branch_prefix(id),
            sanitize::branch_component(&s.agent_id)
        ),
        n => sanitize::branch_name(id, s.sub_issue, n),
    }
}
