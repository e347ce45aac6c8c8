//! Step 1 of a task: take it, and make everything its agent needs — the
//! worktree on the task's branch, the ignored files `.worktreeinclude` asks
//! for, the prompt, and the `--setup` command's work.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::state::{ExitStatus, Failed};
use super::{Log, SUPERVISOR_PID_FIELD, Spec};
use crate::error::{Error, Result};
use crate::protocol::lifecycle::{self, Start};
use crate::protocol::{AgentStatus, Orchestration, store};
use crate::run::{prompt, worktree};

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
) -> Result<std::result::Result<Prepared, Failed>> {
    let isolated = spec.worktree.is_some();
    let workdir = spec.worktree.clone().unwrap_or_else(|| spec.repo.clone());
    let start = Start {
        phase: if isolated { "worktree" } else { "starting" }.into(),
        log_file: spec.log_file.clone(),
        workdir: workdir.clone(),
        branch: isolated.then(|| spec.branch.clone()),
        prompt_file: Some(spec.prompt_file.clone()),
        runner: [(
            SUPERVISOR_PID_FIELD.to_string(),
            Value::from(std::process::id()),
        )]
        .into_iter()
        .chain(runner.clone())
        .collect(),
    };
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
        match worktree::ensure_noting(&spec.repo, wt, &spec.branch, &spec.base, &mut |m| {
            log.note(&m)
        }) {
            Ok(worktree::Prepared::Reused) => {
                log.note(&format!(
                    "reusing worktree {} on {}",
                    wt.display(),
                    spec.branch
                ));
                if let Some(b) = task.base_commit.clone() {
                    base = b;
                }
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
            Err(e) => return failed("worktree", format!("failed to {e}")),
        }
        if let Err(e) = worktree::copy_included(&spec.repo, wt, &spec.include_files) {
            return failed("worktree", format!("failed to {e} (.worktreeinclude)"));
        }
    }

    if let Err(e) = write_prompt(spec, &task, &workdir) {
        return failed("prompt", format!("failed to {e}"));
    }

    let env = agent_env(spec, &workdir, &task);
    if let Some(setup) = &spec.setup {
        lifecycle::phase(&spec.status_file, "setup")?;
        if let Err(e) = run_setup(spec, setup, &workdir, &env, log) {
            return failed("setup", e);
        }
    }
    Ok(Ok(Prepared {
        workdir,
        base,
        env,
        deferred_start: defer.then_some(start),
    }))
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
            let orch: Option<Orchestration> = store::read_json(&spec.orchestration_file).ok();
            prompt::render(
                task,
                orch.as_ref(),
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
) -> std::result::Result<(), String> {
    log.note(&format!("setup: sh -c {setup:?}"));
    let status = crate::run::signals::unblocked(
        Command::new("sh")
            .args(["-c", setup])
            .current_dir(workdir)
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
