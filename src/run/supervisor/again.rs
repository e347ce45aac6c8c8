//! One more run of a finished task's agent: in its worktree, on its branch,
//! resuming its session, with a prompt of its own (po-react's answer to
//! what its pull request got). The same supervision as the task's first run
//! (its own process group, the stream read into the status file, timeout,
//! stall, signals); the task's state does not change, and its liveness lock
//! is the caller's to hold, so two agents never run in one worktree.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::control::Control;
use super::judge::Verdict;
use super::prepare::{Prepared, agent_env, open_sandbox};
use super::process::Real;
use super::run::Supervision;
use super::state::{Ending, ExitStatus};
use super::{Log, Spec};
use crate::error::{Error, Result};
use crate::protocol::{State, store};

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Ended {
    /// The run succeeded (exit 0, and the stream's final event without an
    /// error for an agent that has a stream).
    pub ok: bool,
    /// Why it did not, as a person reads it.
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    /// A signal ended it.
    pub cancelled: bool,
}

/// Runs agents again, one at a time, in this process: it takes SIGINT,
/// SIGTERM and SIGHUP (the first ends a running agent's whole tree and is
/// remembered, a second forces; with no agent running, a second one exits
/// 130 at once) and reaps what the agents leave.
pub struct Rerun {
    control: Control,
    reaping: Arc<AtomicBool>,
}

impl Rerun {
    pub fn install() -> Rerun {
        let control = Control::new(false);
        let handle = control.clone();
        crate::signals::forward(move |sig| {
            if !handle.signal(sig) && handle.forced() {
                std::process::exit(crate::error::exit::INTERRUPTED);
            }
        });
        crate::proctree::become_subreaper();
        Rerun {
            control,
            reaping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A signal arrived.
    pub fn interrupted(&self) -> bool {
        self.control.cancelled()
    }

    /// Run `spec`'s agent once on its task's worktree (`spec.worktree`),
    /// with `spec.prompt_file` as its prompt, resuming the recorded session
    /// (a fresh one when the agent does not have it). The stream's figures
    /// go to the status file as in a first run.
    pub fn run(&self, spec: &Spec) -> Result<Ended> {
        let log = Log::open(&spec.log_file);
        let procs = Real::new(spec.marker(), self.reaping.clone());
        let task = store::read_status(&spec.status_file)?;
        let workdir = spec.worktree.clone().unwrap_or_else(|| spec.repo.clone());
        let mut env = agent_env(spec, &workdir, &task);
        let sandbox = match &spec.sandbox {
            Some(opts) => {
                let agent = spec.agent.agent()?;
                let sb = open_sandbox(spec, opts, &workdir, &env, agent.as_ref())
                    .map_err(|e| Error::system(format!("open the sandbox: {e}")))?;
                env.extend(sb.env());
                Some(sb)
            }
            None => None,
        };
        let mut prepared = Prepared {
            env,
            sandbox,
            workdir,
            base: task
                .base_commit
                .clone()
                .unwrap_or_else(|| spec.base.clone()),
            deferred_start: None,
        };
        log.note(&format!(
            "{} again in {} (pid {})",
            task.agent_id,
            prepared.workdir.display(),
            std::process::id()
        ));
        let runner = serde_json::Map::new();
        let mut s = Supervision::new(spec, &log, &self.control, &runner, procs)?;
        s.again = true;
        let ran = s.attempt(&task, &mut prepared);
        // What the agent committed in the sandbox's copy of its branch
        // moves the real branch now (and its git link files are put back).
        let settled = match prepared.sandbox.as_mut() {
            Some(sb) => sb.finish(&mut |m| log.note(m)),
            None => Ok(()),
        };
        let ended = ran.map(|ran| match ran {
            Err(failed) => Ended {
                ok: false,
                error: Some(failed.error),
                exit_code: None,
                cancelled: false,
            },
            Ok(ran) => {
                let Verdict { state, error, .. } = s.verdict(&ran);
                Ended {
                    ok: state == State::Completed,
                    error,
                    exit_code: ran.status.code(),
                    cancelled: ran.ending == Some(Ending::Cancelled)
                        || ran.status == ExitStatus::NeverStarted,
                }
            }
        });
        let ended = match (ended, settled) {
            (Ok(_), Err(e)) => {
                log.note(&e);
                Ok(Ended {
                    ok: false,
                    error: Some(format!("sandbox: {e}")),
                    exit_code: None,
                    cancelled: false,
                })
            }
            (ended, _) => ended,
        };
        s.into_procs();
        // Nothing else starts while a reaper waits for this run's children.
        let until = Instant::now() + Duration::from_secs(10);
        while self.reaping.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        ended
    }
}

/// The agent of a run again started: the session it resumes or starts is
/// recorded, nothing else (the task keeps its state).
pub(super) fn started(status_file: &Path, session_id: Option<&str>) -> Result<()> {
    if let Some(id) = session_id {
        store::update_status(status_file, |s| {
            s.metrics.session_id = Some(id.to_string());
            Ok(())
        })?;
    }
    Ok(())
}
