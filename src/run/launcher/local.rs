//! The local launcher: a pool of supervisors on this machine, at most one per
//! worker slot, each running tasks one after another.
//!
//! A pool supervisor is `po-spawn` re-executed with [`POOL_ENV`] set. The
//! launcher writes one task spec (a JSON line) to its stdin when it is idle;
//! the supervisor runs the task and says on [`RESULT_FD`] that it is done
//! with it (`<exit code> <status file>`), then reads the next spec. That line
//! only frees the supervisor for another task here: how the task ended is in
//! its status file. Closing its stdin ends it; so does the scheduler's death
//! (it never starts a task after that).
//!
//! A task left running by an earlier po-spawn is adopted through its liveness
//! lock: a thread blocks on the lock and wakes the scheduler when the
//! supervisor lets go of it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{Ended, Launcher, Runner, RunnerState, Waker};
use crate::error::{Error, Result};
use crate::proctree::Tree;
use crate::protocol::{AgentStatus, store};
use crate::run::supervisor::{POOL_ENV, RESULT_FD, SUPERVISOR_PID_FIELD, Spec, describe_exit};

/// A supervisor process of the pool, as its reader thread keeps it.
#[derive(Default)]
struct Worker {
    /// The runner it works for now.
    task: Option<u64>,
    /// Runners it is done with, and the exit code it gave each.
    done: HashMap<u64, i32>,
    /// It is gone: its exit code and signal.
    gone: Option<(Option<i32>, Option<i32>)>,
}

/// How a runner was started.
enum Run {
    /// Handed to pool supervisor `pid`.
    Pool { pid: u32 },
    /// Adopted: a supervisor of an earlier po-spawn runs it; `freed` once it
    /// let go of the task's liveness lock.
    Adopted {
        status_file: PathBuf,
        freed: Arc<Mutex<bool>>,
    },
}

pub struct Local {
    exe: PathBuf,
    waker: Waker,
    workers: Arc<Mutex<HashMap<u32, Worker>>>,
    /// Where to write the next spec for each live supervisor.
    inputs: HashMap<u32, ChildStdin>,
    runs: HashMap<u64, Run>,
    next_key: u64,
    /// Grace between SIGTERM and SIGKILL when ending what a dead runner left.
    grace: Duration,
}

impl Local {
    /// A pool of `exe` (po-spawn itself) supervisors; `waker` is called when
    /// one is done with a task or gone.
    pub fn new(exe: PathBuf, waker: Waker, grace: Duration) -> Local {
        Local {
            exe,
            waker,
            workers: Arc::new(Mutex::new(HashMap::new())),
            inputs: HashMap::new(),
            runs: HashMap::new(),
            next_key: 1,
            grace,
        }
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Worker>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    /// An idle supervisor's pid, if there is one.
    fn idle(&self) -> Option<u32> {
        let workers = self.workers();
        self.inputs
            .keys()
            .filter(|pid| {
                workers
                    .get(pid)
                    .is_some_and(|w| w.task.is_none() && w.gone.is_none())
            })
            .min()
            .copied()
    }

    /// Start a pool supervisor and the thread that reads what it reports.
    fn spawn_worker(&mut self) -> Result<u32> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills `fds`.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(Error::system(format!(
                "create a pipe for a supervisor: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: both fds are new and owned here.
        let (read, write) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let wfd = fds[1];
        let mut cmd = Command::new(&self.exe);
        cmd.env(POOL_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let r = if wfd == RESULT_FD {
                    libc::fcntl(wfd, libc::F_SETFD, 0)
                } else {
                    libc::dup2(wfd, RESULT_FD)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            Error::system(format!("start a supervisor ({}): {e}", self.exe.display()))
        })?;
        drop(write);
        let pid = child.id();
        if let Some(stdin) = child.stdin.take() {
            self.inputs.insert(pid, stdin);
        }
        self.workers().insert(pid, Worker::default());
        let (workers, waker) = (self.workers.clone(), self.waker.clone());
        std::thread::spawn(move || report(read, child, pid, &workers, &waker));
        Ok(pid)
    }

    /// The supervisor of an adopted task, if it is one: never a recycled pid.
    /// Its environment shows it is a pool supervisor, and it holds the task's
    /// liveness lock.
    fn adopted_pid(status_file: &Path) -> Option<i32> {
        let s = store::read_status(status_file).ok()?;
        let pid = s.extra.get(SUPERVISOR_PID_FIELD)?.as_i64()? as i32;
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let pool = format!("{POOL_ENV}=");
        (env.split(|b| *b == 0)
            .any(|e| e.starts_with(pool.as_bytes()))
            && store::is_live(status_file))
        .then_some(pid)
    }
}

/// Read a supervisor's reports until it closes the pipe, then reap it.
fn report(
    read: File,
    mut child: Child,
    pid: u32,
    workers: &Mutex<HashMap<u32, Worker>>,
    waker: &Waker,
) {
    for line in BufReader::new(read).lines() {
        let Ok(line) = line else { break };
        let code = line.split_whitespace().next().and_then(|c| c.parse().ok());
        {
            let mut w = workers.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(w) = w.get_mut(&pid)
                && let Some(task) = w.task.take()
            {
                w.done.insert(task, code.unwrap_or(-1));
            }
        }
        waker();
    }
    let status = child.wait().ok();
    {
        let mut w = workers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = w.get_mut(&pid) {
            w.gone = Some((
                status.and_then(|s| s.code()),
                status.and_then(|s| s.signal()),
            ));
        }
    }
    waker();
}

impl Launcher for Local {
    fn start(&mut self, spec: &Spec) -> Result<Runner> {
        let mut line = serde_json::to_string(spec)
            .map_err(|e| Error::system(format!("serialise the supervisor spec: {e}")))?;
        line.push('\n');
        let mut last_error = None;
        for _ in 0..3 {
            let pid = match self.idle() {
                Some(pid) => pid,
                None => self.spawn_worker()?,
            };
            if !self.inputs.contains_key(&pid) {
                continue;
            }
            // The task is the supervisor's before it can read the spec: its
            // report (which may come before the write returns) finds it.
            let key = self.key();
            if let Some(w) = self.workers().get_mut(&pid) {
                w.task = Some(key);
            }
            let input = self.inputs.get_mut(&pid).expect("checked above");
            match input
                .write_all(line.as_bytes())
                .and_then(|()| input.flush())
            {
                Ok(()) => {
                    self.runs.insert(key, Run::Pool { pid });
                    return Ok(Runner {
                        key,
                        shown: format!("supervisor pid {pid}"),
                    });
                }
                Err(e) => {
                    // It is gone or going; its reader thread records how.
                    if let Some(w) = self.workers().get_mut(&pid)
                        && w.task == Some(key)
                    {
                        w.task = None;
                    }
                    self.inputs.remove(&pid);
                    last_error = Some(e.to_string());
                }
            }
        }
        Err(Error::system(format!(
            "hand a task to a supervisor: {}",
            last_error.unwrap_or_else(|| "none would take it".into())
        )))
    }

    fn adopt(&mut self, status_file: &Path, _status: &AgentStatus) -> Option<Runner> {
        if !store::is_live(status_file) {
            return None;
        }
        let key = self.key();
        let freed = Arc::new(Mutex::new(false));
        let (path, flag, waker) = (status_file.to_path_buf(), freed.clone(), self.waker.clone());
        std::thread::spawn(move || {
            // The lock frees exactly when the supervisor lets go of the task.
            let lock = store::lock_exclusive(&store::liveness_path(&path));
            drop(lock);
            *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
            waker();
        });
        self.runs.insert(
            key,
            Run::Adopted {
                status_file: status_file.to_path_buf(),
                freed,
            },
        );
        Some(Runner {
            key,
            shown: "its supervisor (adopted)".into(),
        })
    }

    fn end(&mut self, runner: &Runner, force: bool) {
        let pid = match self.runs.get(&runner.key) {
            Some(Run::Pool { pid }) => {
                // Reaped only by its reader thread once it exits, so the pid
                // cannot have been recycled while it is in the pool.
                let working = self
                    .workers()
                    .get(pid)
                    .is_some_and(|w| w.task == Some(runner.key) && w.gone.is_none());
                working.then_some(*pid as i32)
            }
            Some(Run::Adopted { status_file, .. }) => Local::adopted_pid(status_file),
            None => None,
        };
        if let Some(pid) = pid {
            tracing::debug!(pid, force, "SIGTERM supervisor");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
        }
    }

    fn state(&mut self, runner: &Runner) -> RunnerState {
        match self.runs.get(&runner.key) {
            None => RunnerState::Ended(Ended {
                how: "its supervisor is unknown to this po-spawn".into(),
                interrupted: false,
            }),
            Some(Run::Adopted { freed, .. }) => {
                if *freed.lock().unwrap_or_else(|e| e.into_inner()) {
                    RunnerState::Ended(Ended {
                        how: "its supervisor (started by an earlier po-spawn) ended".into(),
                        interrupted: false,
                    })
                } else {
                    RunnerState::Running
                }
            }
            Some(Run::Pool { pid }) => {
                let workers = self.workers();
                let Some(w) = workers.get(pid) else {
                    return RunnerState::Running;
                };
                if let Some(&code) = w.done.get(&runner.key) {
                    let how = match code {
                        crate::exit::BUSY => "another supervisor holds its liveness lock".into(),
                        c => format!("its supervisor {}", describe_exit(Some(c), None)),
                    };
                    return RunnerState::Ended(Ended {
                        how,
                        interrupted: false,
                    });
                }
                match w.gone {
                    Some((code, signal)) if w.task == Some(runner.key) => {
                        RunnerState::Ended(Ended {
                            how: format!("its supervisor {}", describe_exit(code, signal)),
                            // Killed by the terminal's Ctrl-C before it left
                            // po-spawn's session.
                            interrupted: signal.is_some_and(|s| {
                                s == libc::SIGINT || s == libc::SIGTERM || s == libc::SIGHUP
                            }),
                        })
                    }
                    _ => RunnerState::Running,
                }
            }
        }
    }

    fn clean_up(&mut self, status_file: &Path, _status: &AgentStatus) -> usize {
        let stop = std::sync::atomic::AtomicBool::new(false);
        Tree::of_task(status_file).kill(self.grace, &stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in pool supervisor: done with each task the moment it reads it.
    fn instant_worker(dir: &Path) -> PathBuf {
        let exe = dir.join("worker");
        std::fs::write(
            &exe,
            "#!/bin/sh\nwhile read -r line; do echo \"0 -\" >&3; done\n",
        )
        .unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        exe
    }

    fn spec(dir: &Path, n: usize) -> Spec {
        Spec {
            status_file: dir.join(format!("agent-{n}.status.json")),
            orchestration_id: "7".into(),
            orchestration_file: dir.join("orchestration.json"),
            prompt_dirs: Vec::new(),
            prompt_file: dir.join("prompt.md"),
            repo: dir.to_path_buf(),
            worktree: None,
            branch: "b".into(),
            base: "HEAD".into(),
            include_files: Vec::new(),
            setup: None,
            agent: crate::run::supervisor::AgentSpec::command(vec!["true".into()]),
            timeout_secs: 10.0,
            stall_secs: None,
            grace_secs: 1.0,
            log_file: dir.join("log"),
            port: 20000,
            port_count: 100,
            bin_dir: None,
            pr: None,
            session_log: None,
            sandbox: None,
        }
    }

    /// A supervisor done with a task before `start` has returned still ends
    /// the task's runner: its report is never lost.
    #[test]
    fn a_task_done_before_its_hand_over_finished_still_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let tx = Mutex::new(tx);
        let waker: Waker = Arc::new(move || {
            let _ = tx.lock().unwrap().send(());
        });
        let mut pool = Local::new(instant_worker(dir.path()), waker, Duration::from_secs(1));
        for n in 0..300 {
            let runner = pool.start(&spec(dir.path(), n)).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while pool.state(&runner) == RunnerState::Running {
                assert!(
                    std::time::Instant::now() < deadline,
                    "task {n}: its runner never ended"
                );
                let _ = rx.recv_timeout(Duration::from_millis(50));
            }
        }
    }
}
