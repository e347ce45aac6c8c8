//! Step 2 of a task: start the agent in its own process group, record it,
//! read its stream, and reap every child it leaves; then watch it
//! ([`super::watch`]). A Claude session the CLI does not have is started
//! afresh in the same attempt.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::prepare::Prepared;
use super::watch::{self, Limits, Ran};
use super::{AgentSpec, Control, Ev, Log, REAPING, Spec, session_note};
use crate::error::{Error, Result};
use crate::protocol::AgentStatus;
use crate::protocol::lifecycle;
use crate::run::claude;
use crate::run::proctree::Tree;
use crate::run::{signals, template};

/// Run the agent until it ends; how it ended. `None` when it could not
/// start: that failure is recorded in the status file.
pub fn run(
    spec: &Spec,
    task: &AgentStatus,
    prepared: &Prepared,
    log: &Log,
    control: &Control,
    tx: mpsc::Sender<Ev>,
    rx: mpsc::Receiver<Ev>,
) -> Result<Option<Ran>> {
    let claude_mode = matches!(spec.agent, AgentSpec::Claude { .. });
    let mut resume = claude_mode && task.metrics.session_id.is_some();
    let mut session_id = match claude_mode {
        true => Some(match task.metrics.session_id.clone() {
            Some(id) => id,
            None => claude::new_session_id().map_err(Error::io("read", "/dev/urandom"))?,
        }),
        false => None,
    };
    loop {
        let argv = argv(spec, task, prepared, session_id.as_deref(), resume);
        let Some(ran) = run_once(spec, prepared, log, control, &tx, &rx, &argv, &session_id)?
        else {
            return Ok(None);
        };
        if resume
            && ran.ending.is_none()
            && let Some((true, Some(message))) = &ran.stream.finished
            && claude::is_unknown_session(message)
        {
            // The CLI does not have the recorded session (another machine, a
            // cleared config): start afresh, in this same attempt.
            let old = session_id.take().unwrap_or_default();
            let fresh = claude::new_session_id().map_err(Error::io("read", "/dev/urandom"))?;
            let note =
                format!("session {old} is unknown to the agent; starting a new session {fresh}");
            log.note(&note);
            session_note(spec, task, &note);
            claude::restart_session(&spec.status_file, &fresh)?;
            session_id = Some(fresh);
            resume = false;
            continue;
        }
        return Ok(Some(ran));
    }
}

/// The agent's argv: Claude Code's, or the `--agent-cmd` template filled in.
fn argv(
    spec: &Spec,
    task: &AgentStatus,
    prepared: &Prepared,
    session_id: Option<&str>,
    resume: bool,
) -> Vec<String> {
    let (p, w) = (
        spec.prompt_file.to_string_lossy(),
        prepared.workdir.to_string_lossy(),
    );
    let values = template::Values {
        prompt_file: &p,
        worktree: &w,
        agent_id: &task.agent_id,
        branch: &spec.branch,
        id: &spec.orchestration_id,
    };
    spec.agent
        .argv(task, &values, session_id.unwrap_or_default(), resume)
}

/// Start the agent once and watch it to its end.
#[allow(clippy::too_many_arguments)]
fn run_once(
    spec: &Spec,
    prepared: &Prepared,
    log: &Log,
    control: &Control,
    tx: &mpsc::Sender<Ev>,
    rx: &mpsc::Receiver<Ev>,
    argv: &[String],
    session_id: &Option<String>,
) -> Result<Option<Ran>> {
    let claude_mode = matches!(spec.agent, AgentSpec::Claude { .. });
    let mut child = match start(spec, prepared, log, argv, claude_mode) {
        Ok(c) => c,
        Err(e) => {
            lifecycle::fail(&spec.status_file, "starting", &e)?;
            return Ok(None);
        }
    };
    let pid = child.id() as i32;
    let started = Instant::now();
    lifecycle::agent_started(
        &spec.status_file,
        pid,
        session_id.as_deref(),
        prepared.deferred_start.as_ref(),
    )?;

    // Stream reading (claude) and activity tracking (stall detection).
    let activity = Arc::new(AtomicU64::new(watch::now_ms()));
    let reader = child.stdout.take().map(|out| {
        let (status_file, log_file) = (spec.status_file.clone(), log.handle());
        let activity = activity.clone();
        std::thread::spawn(move || {
            claude::read_stream(out, log_file, &status_file, || {
                activity.store(watch::now_ms(), Ordering::SeqCst)
            })
        })
    });
    drop(child);
    reap_children(pid, tx.clone());

    let tree = Tree {
        root: Some(std::process::id() as i32),
        pgid: Some(pid),
        marker: Some(spec.marker()),
    };
    let limits = Limits::of(spec, started);
    let (ending, exited) = watch::wait(
        spec,
        rx,
        &tree,
        &limits,
        &activity,
        &control.cancel,
        &control.force,
        log,
    );
    let stream = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    let (code, signal) = exited.unwrap_or((-1, None));
    Ok(Some(Ran {
        ending,
        code: Some(code),
        signal,
        stream,
    }))
}

/// Start the agent in its own process group, prompt on stdin, output to the
/// log (Claude's stream through a pipe, to be read). The error, if it cannot
/// start, as the task's error.
fn start(
    spec: &Spec,
    prepared: &Prepared,
    log: &Log,
    argv: &[String],
    claude_mode: bool,
) -> std::result::Result<std::process::Child, String> {
    let stdin = File::open(&spec.prompt_file)
        .map_err(|e| format!("open {}: {e}", spec.prompt_file.display()))?;
    let path = prepared
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let mut cmd = match resolve_program(&argv[0], path, &prepared.workdir) {
        Some(found) => {
            let mut c = Command::new(found);
            c.arg0(&argv[0]);
            c
        }
        None => Command::new(&argv[0]),
    };
    cmd.args(&argv[1..])
        .current_dir(&prepared.workdir)
        .envs(prepared.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(stdin))
        .stderr(log.stdio())
        .process_group(0);
    signals::unblocked(&mut cmd);
    if claude_mode {
        cmd.stdout(Stdio::piped());
    } else {
        cmd.stdout(log.stdio());
    }
    log.note(&format!("agent: {argv:?}"));
    cmd.spawn().map_err(|e| {
        if claude_mode && e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "start the agent {:?}: it is not on PATH; install Claude Code (npm install -g \
                 @anthropic-ai/claude-code) or pass --agent-cmd",
                argv[0]
            )
        } else {
            format!(
                "start the agent {:?}: {e}; check --agent-cmd or that it is on PATH",
                argv[0]
            )
        }
    })
}

/// Reap every child (the agent and reparented orphans) until none is left;
/// the agent's own end and the last reap are sent as events.
fn reap_children(pid: i32, tx: mpsc::Sender<Ev>) {
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
