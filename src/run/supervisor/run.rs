//! One task under supervision: prepare it, start its agent (again with a
//! fresh session when the agent does not have the one it was told to
//! resume), watch it ([`super::watch`]), judge and record how it ended.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::control::Control;
use super::judge::{self, Verdict};
use super::prepare::{self, Prepared};
use super::process::{Ev, ProcessTree};
use super::state::{Attempt, Ending, ExitStatus, Failed, Ran};
use super::watch::{self, Limits};
use super::{Log, Spec, last_log_line, session_note};
use crate::error::{Error, Result};
use crate::protocol::lifecycle::{self, Outcome};
use crate::protocol::{AgentStatus, State, phase, store};
use crate::run::agent::{self, Agent, Invocation, Launch, Planned, PromptVia, Sessions};
use crate::run::template;

/// One task's supervision: its spec, its agent, the processes, the signals
/// and the attempt's state.
pub struct Supervision<'a, P: ProcessTree> {
    pub(super) spec: &'a Spec,
    pub(super) agent: Box<dyn Agent>,
    pub(super) log: &'a Log,
    pub(super) control: &'a Control,
    pub(super) procs: P,
    /// Fields naming the runner, recorded at the start (a Slurm job's).
    runner: &'a serde_json::Map<String, serde_json::Value>,
    pub(super) tx: mpsc::Sender<Ev>,
    pub(super) rx: mpsc::Receiver<Ev>,
    pub(super) state: Attempt,
    /// A run of a finished task ([`super::again`]): its state stays as it is.
    pub(super) again: bool,
}

impl<'a, P: ProcessTree> Supervision<'a, P> {
    /// The supervision of `spec`'s task; signals reach it from now on.
    pub fn new(
        spec: &'a Spec,
        log: &'a Log,
        control: &'a Control,
        runner: &'a serde_json::Map<String, serde_json::Value>,
        procs: P,
    ) -> Result<Self> {
        let agent = spec.agent.agent()?;
        let (tx, rx) = mpsc::channel();
        control.attach(Some(tx.clone()));
        Ok(Supervision {
            spec,
            agent,
            log,
            control,
            procs,
            runner,
            tx,
            rx,
            state: Attempt::Preparing,
            again: false,
        })
    }

    /// The processes, once the task is over (for the pool to ask whether
    /// children are still being reaped).
    pub fn into_procs(self) -> P {
        self.control.attach(None);
        self.procs
    }

    /// Prepare, run, judge and record the task.
    pub fn run(&mut self) -> Result<()> {
        let spec = self.spec;
        let task = store::read_status(&spec.status_file)?;
        if task.status != State::Pending {
            self.log.note(&format!(
                "{} is {}, not pending: nothing to run",
                task.agent_id, task.status
            ));
            return Ok(());
        }
        let mut prepared =
            match prepare::prepare(spec, &task, self.log, self.runner, self.agent.as_ref())? {
                Ok(p) => p,
                Err(f) => return self.fail(&f),
            };
        let mut ran = if self.control.cancelled() {
            // Cancelled while preparing: the agent never starts.
            self.state.end(Ending::Cancelled);
            Ran {
                status: ExitStatus::NeverStarted,
                ending: Some(Ending::Cancelled),
                stream: Default::default(),
            }
        } else {
            match self.attempt(&task, &mut prepared)? {
                Ok(ran) => ran,
                Err(f) => return self.fail(&f),
            }
        };
        if self.control.one_task && ran.ending.is_none() && !ran.status.success() {
            // Slurm signals every process of a job at once: the agent may have
            // died of the job's signal before this supervisor's signal thread
            // ran. A failed agent waits a moment for a signal of its own.
            if self.control.settle(Duration::from_millis(250)) {
                ran.ending = Some(Ending::Cancelled);
            }
        }
        if let Some(sb) = prepared.sandbox.as_mut() {
            let log = self.log;
            if let Err(e) = sb.finish(&mut |m| log.note(m)) {
                log.note(&e);
                return self.fail(&Failed::new(phase::SANDBOX, e));
            }
        }
        if ran.ending == Some(Ending::Cancelled) && self.control.ended_outside() {
            self.log.note(
                "the job was ended from outside po-spawn (SIGTERM: scancel, Slurm's time \
                 limit, or its node going down); the agent's process tree is ended and \
                 po-spawn records Slurm's reason",
            );
            return Ok(());
        }
        self.record(&prepared, &ran)
    }

    fn fail(&self, f: &Failed) -> Result<()> {
        lifecycle::fail(&self.spec.status_file, f.phase, &f.error).map(|_| ())
    }

    /// The agent's runs of this attempt: one, or two when the session it
    /// was to resume is unknown to it.
    pub(super) fn attempt(
        &mut self,
        task: &AgentStatus,
        prepared: &mut Prepared,
    ) -> Result<std::result::Result<Ran, Failed>> {
        let mut planned = self.first_session(task)?;
        loop {
            let ran = match self.run_once(task, prepared, &planned)? {
                Ok(ran) => ran,
                Err(f) => return Ok(Err(f)),
            };
            match self.restart(task, &planned, &ran)? {
                Some(fresh) => planned = fresh,
                None => return Ok(Ok(ran)),
            }
        }
    }

    /// The session of the first run: the recorded one resumed, else a new one.
    fn first_session(&self, task: &AgentStatus) -> Result<Planned> {
        self.agent
            .sessions()
            .plan(task.metrics.session_id.as_deref(), || {
                self.agent.new_session_id()
            })
            .map_err(Error::io("read", "/dev/urandom"))
    }

    fn new_session_id(&self) -> Result<String> {
        self.agent
            .new_session_id()
            .map_err(Error::io("read", "/dev/urandom"))
    }

    /// A fresh session in place of a resumed one the agent does not have
    /// (another machine, a cleared config): same attempt, recorded as such.
    fn restart(&self, task: &AgentStatus, planned: &Planned, ran: &Ran) -> Result<Option<Planned>> {
        let Planned::Resume(old) = planned else {
            return Ok(None);
        };
        if ran.ending.is_some() || !self.agent.unknown_session(&ran.stream) {
            return Ok(None);
        }
        let fresh = match self.agent.sessions() {
            Sessions::Chosen => Planned::New(self.new_session_id()?),
            _ => Planned::Fresh,
        };
        let note = match fresh.recorded() {
            Some(id) => {
                format!("session {old} is unknown to the agent; starting a new session {id}")
            }
            None => format!("session {old} is unknown to the agent; starting a new session"),
        };
        self.log.note(&note);
        session_note(self.spec, task, &note);
        agent::restart_session(&self.spec.status_file, fresh.recorded())?;
        Ok(Some(fresh))
    }

    /// Start the agent once and watch it to its end. The start deferred by
    /// preparing is recorded with the first run's pid, once.
    fn run_once(
        &mut self,
        task: &AgentStatus,
        prepared: &mut Prepared,
        planned: &Planned,
    ) -> Result<std::result::Result<Ran, Failed>> {
        let spec = self.spec;
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
        let launch = Launch {
            task,
            values: &values,
            session: planned.session(),
        };
        let inv = self.agent.invocation(&launch);
        let env = self.agent.environment(&launch);
        let reader = self.agent.reader();
        self.procs.sandboxed(prepared.sandbox.is_some());
        let spawned = self
            .command(prepared, &inv, &env, reader.is_some())
            .and_then(|cmd| {
                self.procs
                    .spawn(cmd, self.tx.clone())
                    .map_err(|e| self.start_error(&inv.argv[0], &e))
            });
        let spawned = match spawned {
            Ok(s) => s,
            Err(e) => return Ok(Err(Failed::new(phase::STARTING, e))),
        };
        let started = Instant::now();
        self.state = Attempt::Running {
            pgid: spawned.pid,
            started,
        };
        if self.again {
            super::again::started(&spec.status_file, planned.recorded())?;
        } else {
            lifecycle::agent_started(
                &spec.status_file,
                spawned.pid,
                planned.recorded(),
                prepared.deferred_start.take().as_ref(),
            )?;
        }

        // Stream reading and activity tracking (stall detection).
        let activity = Arc::new(AtomicU64::new(watch::now_ms()));
        let stream = match (spawned.stdout, reader) {
            (Some(out), Some(reader)) => {
                let (status_file, log_file) = (spec.status_file.clone(), self.log.handle());
                let (activity, name) = (activity.clone(), self.agent.name().to_string());
                Some(std::thread::spawn(move || {
                    agent::read_stream(out, log_file, &status_file, reader, &name, || {
                        activity.store(watch::now_ms(), Ordering::SeqCst)
                    })
                }))
            }
            _ => None,
        };
        let status = self.watch(&Limits::of(spec, started), &activity);
        let stream = stream.and_then(|r| r.join().ok()).unwrap_or_default();
        Ok(Ok(Ran {
            status,
            ending: self.state.ending(),
            stream,
        }))
    }

    /// The agent's command: in its working directory with its environment,
    /// the prompt as the agent takes it, output to the log (through a pipe
    /// when it has a stream to read). The error, if it cannot be made, as
    /// the task's error.
    fn command(
        &self,
        prepared: &Prepared,
        inv: &Invocation,
        env: &[(String, String)],
        piped: bool,
    ) -> std::result::Result<Command, String> {
        let spec = self.spec;
        let mut argv = inv.argv.clone();
        let stdin = match inv.prompt {
            PromptVia::Argument(at) => {
                let text = crate::fsx::read_to_string(&spec.prompt_file, crate::fsx::SOURCE_MAX)
                    .map_err(|e| format!("read {}: {e}", spec.prompt_file.display()))?;
                if at <= argv.len() {
                    argv.insert(at, text);
                }
                Stdio::null()
            }
            PromptVia::Stdin | PromptVia::File => crate::fsx::open(&spec.prompt_file)
                .map(Stdio::from)
                .map_err(|e| format!("open {}: {e}", spec.prompt_file.display()))?,
        };
        let path = prepared
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        let found = resolve_program(&argv[0], path, &prepared.workdir);
        let mut cmd = match (&prepared.sandbox, found) {
            (Some(sb), found) => {
                let program = found
                    .map(PathBuf::into_os_string)
                    .unwrap_or_else(|| (&argv[0]).into());
                let args: Vec<std::ffi::OsString> = argv[1..].iter().map(Into::into).collect();
                let shown: Vec<std::ffi::OsString> = inv.argv[1..].iter().map(Into::into).collect();
                self.log
                    .note(&format!("sandbox: {}", sb.shown(&program, &shown)));
                sb.command(&program, &args)
            }
            (None, Some(found)) => {
                let mut c = Command::new(found);
                c.arg0(&argv[0]);
                c.args(&argv[1..]);
                c
            }
            (None, None) => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        cmd.current_dir(&prepared.workdir)
            .envs(prepared.env.iter().chain(env).map(|(k, v)| (k, v)))
            .stdin(stdin)
            .stderr(self.log.stdio())
            .stdout(if piped {
                Stdio::piped()
            } else {
                self.log.stdio()
            });
        self.log.note(&format!("agent: {:?}", inv.argv));
        Ok(cmd)
    }

    fn start_error(&self, program: &str, e: &std::io::Error) -> String {
        if e.kind() == std::io::ErrorKind::NotFound {
            let missing = match program.contains('/') {
                true => "it does not exist",
                false => "it is not on PATH",
            };
            format!(
                "start the agent {program:?}: {missing}; {}",
                self.agent.install_hint()
            )
        } else {
            format!(
                "start the agent {program:?}: {e}; {}",
                self.agent.install_hint()
            )
        }
    }

    /// Record the final state, the changes and the metrics; open the pull
    /// request when asked.
    fn record(&self, prepared: &Prepared, ran: &Ran) -> Result<()> {
        let spec = self.spec;
        let Verdict {
            state,
            error,
            retryable,
        } = self.verdict(ran);
        let diff = spec
            .worktree
            .as_deref()
            .and_then(|wt| crate::git::diff_stats(wt, &prepared.base).ok());
        let done = lifecycle::finish(
            &spec.status_file,
            Outcome {
                state,
                error,
                exit_code: ran.status.code(),
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

    pub(super) fn verdict(&self, ran: &Ran) -> Verdict {
        let log = self.spec.log_file.display().to_string();
        let cx = judge::Context {
            timeout_secs: self.spec.timeout_secs,
            stall_secs: self.spec.stall_secs,
            log: &log,
        };
        judge::judge(&cx, self.agent.as_ref(), ran, || {
            last_log_line(&self.spec.log_file)
        })
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
