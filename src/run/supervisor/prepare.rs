//! Step 1 of a task: take it, and make everything its agent needs — the
//! worktree on the task's branch, the ignored files `.worktreeinclude` asks
//! for, the prompt, and the `--setup` command's work.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::state::{ExitStatus, Failed};
use super::{Log, SUPERVISOR_PID_FIELD, Spec};
use crate::error::{Error, Result};
use crate::protocol::AgentStatus;
use crate::protocol::lifecycle::{self, Start};
use crate::protocol::phase;
use crate::run::agent::Agent;
use crate::run::prompt;
use crate::run::sandbox::{self, Sandbox};
use crate::worktree;

/// A task ready for its agent.
pub struct Prepared {
    /// Where the agent runs: the worktree, or the repository.
    pub workdir: PathBuf,
    /// The commit the task's branch started from.
    pub base: String,
    /// The environment the agent (and the setup command) get.
    pub env: Vec<(String, String)>,
    /// The start not recorded yet: it is recorded with the agent's pid, one
    /// write fewer when there is nothing to prepare.
    pub deferred_start: Option<Start>,
    /// The sandbox the setup command ran in and the agent runs in.
    pub sandbox: Option<Sandbox>,
}

/// Take the task and prepare it; a failure of the task's own (a worktree
/// that cannot be made, a failing setup command) is the inner error, for the
/// caller to record.
/// `runner` holds fields naming the runner beyond the supervisor's pid (its
/// Slurm job and node), recorded with the start.
pub fn prepare(
    spec: &Spec,
    task: &AgentStatus,
    log: &Log,
    runner: &serde_json::Map<String, Value>,
    agent: &dyn Agent,
) -> Result<std::result::Result<Prepared, Failed>> {
    let isolated = spec.worktree.is_some();
    let workdir = spec.worktree.clone().unwrap_or_else(|| spec.repo.clone());
    let start = start_of(spec, &workdir, runner);
    let defer = !isolated && spec.setup.is_none();
    let task = if defer {
        task.clone()
    } else {
        lifecycle::start(&spec.status_file, &start)?
    };
    log.note(&format!(
        "{} attempt {} in {} (supervisor pid {})",
        task.agent_id,
        task.attempt,
        workdir.display(),
        std::process::id()
    ));
    let failed = |phase: &'static str, error: String| Ok(Err(Failed::new(phase, error)));

    let mut base = spec.base.clone();
    if let Some(wt) = &spec.worktree {
        match make_worktree(spec, wt, &task, log) {
            Ok(Some(reused_base)) => base = reused_base,
            Ok(None) => {}
            Err(e) => return failed(phase::WORKTREE, e),
        }
    }

    if let Err(e) = write_prompt(spec, &task, &workdir) {
        return failed(phase::PROMPT, format!("failed to {e}"));
    }

    let mut env = agent_env(spec, &workdir, &task);
    let sandbox = match &spec.sandbox {
        Some(opts) => match open_sandbox(spec, opts, &workdir, &env, agent) {
            Ok(sb) => {
                env.extend(sb.env());
                Some(sb)
            }
            Err(e) => return failed(phase::SANDBOX, format!("failed to {e}")),
        },
        None => None,
    };
    if let Some(setup) = &spec.setup {
        lifecycle::phase(&spec.status_file, phase::SETUP)?;
        if let Err(e) = run_setup(spec, setup, &workdir, &env, log, sandbox.as_ref()) {
            return failed(phase::SETUP, e);
        }
    }
    Ok(Ok(Prepared {
        workdir,
        base,
        env,
        deferred_start: defer.then_some(start),
        sandbox,
    }))
}

/// How the task's start is recorded: its first phase, where it runs, and
/// its runner (the supervisor's pid, and `runner`'s fields).
fn start_of(spec: &Spec, workdir: &Path, runner: &serde_json::Map<String, Value>) -> Start {
    let isolated = spec.worktree.is_some();
    Start {
        phase: if isolated {
            phase::WORKTREE
        } else {
            phase::STARTING
        }
        .into(),
        log_file: spec.log_file.clone(),
        workdir: workdir.to_path_buf(),
        branch: isolated.then(|| spec.branch.clone()),
        prompt_file: Some(spec.prompt_file.clone()),
        runner: [(
            SUPERVISOR_PID_FIELD.to_string(),
            Value::from(std::process::id()),
        )]
        .into_iter()
        .chain(runner.clone())
        .collect(),
    }
}

/// Make (or reuse, or take from the pool) the task's worktree and copy the
/// `.worktreeinclude` files in; a reused worktree's recorded base, or the
/// task's failure.
fn make_worktree(
    spec: &Spec,
    wt: &Path,
    task: &AgentStatus,
    log: &Log,
) -> std::result::Result<Option<String>, String> {
    let mut base = None;
    match worktree::ensure_noting(&spec.repo, wt, &spec.branch, &spec.base, &mut |m| {
        log.note(&m)
    }) {
        Ok(worktree::Prepared::Reused) => {
            log.note(&format!(
                "reusing worktree {} on {}",
                wt.display(),
                spec.branch
            ));
            base = task.base_commit.clone();
            for lock in worktree::clear_stale_locks(wt) {
                log.note(&format!(
                    "removed {} that a killed attempt left",
                    lock.display()
                ));
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
        Err(e) => return Err(format!("failed to {e}")),
    }
    if let Err(e) = worktree::copy_included(&spec.repo, wt, &spec.include_files) {
        return Err(format!("failed to {e} (.worktreeinclude)"));
    }
    Ok(base)
}

/// The task's sandbox: its policy from the task's paths and the agent's own
/// state, `bwrap` from the agents' `PATH`.
pub(super) fn open_sandbox(
    spec: &Spec,
    opts: &sandbox::Options,
    workdir: &std::path::Path,
    env: &[(String, String)],
    agent: &dyn Agent,
) -> std::result::Result<Sandbox, String> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let state = home
        .as_deref()
        .map(|h| agent.state_paths(h))
        .unwrap_or_default();
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .unwrap_or_default();
    let program = std::path::Path::new(agent.program());
    Sandbox::open(
        &sandbox::Place {
            options: opts,
            workdir,
            worktree: spec.worktree.as_deref(),
            repo: &spec.repo,
            branch: &spec.branch,
            status_file: &spec.status_file,
            log_file: &spec.log_file,
            home: home.as_deref(),
            agent_state: &state,
            program: program.is_absolute().then_some(program),
        },
        &path,
    )
}

/// The exact prompt the agent gets: the manifest's own prompt file, or one
/// made from the task and its orchestration (which the status file's
/// `prompt_file` then names: made again on a retry).
fn write_prompt(spec: &Spec, task: &AgentStatus, workdir: &std::path::Path) -> Result<()> {
    let isolated = spec.worktree.is_some();
    let own = task
        .prompt_file
        .as_ref()
        .filter(|p| **p != spec.prompt_file);
    let text = match own {
        Some(own) => prompt::own_prompt(own, &spec.prompt_dirs)?,
        None => {
            let orch = prompt::orchestration(&spec.orchestration_file);
            prompt::render(
                task,
                orch.as_deref(),
                &prompt::Place {
                    worktree: workdir,
                    branch: Some(spec.branch.as_str()).filter(|_| isolated),
                    isolated,
                },
            )
        }
    };
    if let Some(parent) = spec.prompt_file.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    std::fs::write(&spec.prompt_file, text).map_err(Error::io("write", &spec.prompt_file))
}

/// `sh -c SETUP` in the worktree, its output in the agent log.
fn run_setup(
    spec: &Spec,
    setup: &str,
    workdir: &std::path::Path,
    env: &[(String, String)],
    log: &Log,
    sandbox: Option<&Sandbox>,
) -> std::result::Result<(), String> {
    let args = ["-c".into(), setup.into()];
    let mut cmd = match sandbox {
        Some(sb) => {
            log.note(&format!(
                "setup in the sandbox: {}",
                sb.shown("sh".as_ref(), &args)
            ));
            sb.command("sh".as_ref(), &args)
        }
        None => {
            log.note(&format!("setup: sh -c {setup:?}"));
            let mut c = Command::new("sh");
            c.args(&args);
            c
        }
    };
    let status = crate::signals::unblocked(
        cmd.current_dir(workdir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.stdio())
            .stderr(log.stdio()),
    )
    .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!(
            "setup command {setup:?} {}; its output is in {}",
            match (s.code(), s.signal()) {
                (Some(c), _) => ExitStatus::Code(c),
                (None, Some(sig)) => ExitStatus::Signal(sig),
                (None, None) => ExitStatus::Unknown,
            }
            .describe(),
            spec.log_file.display()
        )),
        Err(e) => Err(format!("start setup command {setup:?}: {e}")),
    }
}

/// The environment every agent (and `--setup`) gets.
pub(super) fn agent_env(
    spec: &Spec,
    workdir: &std::path::Path,
    task: &AgentStatus,
) -> Vec<(String, String)> {
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
