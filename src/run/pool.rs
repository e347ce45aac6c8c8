//! The scheduler's pool of supervisors: at most one supervisor process per
//! worker slot, each running tasks one after another.
//!
//! A pool supervisor is `po-spawn` re-executed with [`POOL_ENV`] set. The
//! scheduler writes one task spec (a JSON line) to its stdin when it is idle;
//! the supervisor runs the task exactly as a one-task supervisor does and
//! reports `<exit code> <status file>` on [`RESULT_FD`], then reads the next
//! spec. Closing its stdin ends it; so does the scheduler's death (it never
//! starts a task after that).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use super::supervisor::{POOL_ENV, RESULT_FD, Spec};
use crate::error::{Error, Result};

/// What a pool supervisor tells the scheduler.
#[derive(Debug)]
pub enum Report {
    /// It finished its task with this exit code.
    Done { worker: u32, code: i32 },
    /// It is gone (its result fd closed).
    Gone { worker: u32 },
}

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The task it runs now (the scheduler's index).
    task: Option<usize>,
}

pub struct Pool {
    exe: PathBuf,
    workers: HashMap<u32, Worker>,
}

impl Pool {
    pub fn new(exe: PathBuf) -> Pool {
        Pool {
            exe,
            workers: HashMap::new(),
        }
    }

    /// Hand task `idx` to an idle supervisor, starting one when none is idle;
    /// the supervisor's pid. `notify` receives the new supervisor's reports.
    pub fn submit<F>(&mut self, idx: usize, spec: &Spec, notify: F) -> Result<u32>
    where
        F: Fn(Report) + Send + 'static,
    {
        let mut line = serde_json::to_string(spec)
            .map_err(|e| Error::system(format!("serialise the supervisor spec: {e}")))?;
        line.push('\n');
        let mut notify = Some(notify);
        let mut last_error = None;
        for _ in 0..3 {
            let idle = self
                .workers
                .iter()
                .filter(|(_, w)| w.task.is_none() && w.stdin.is_some())
                .map(|(pid, _)| *pid)
                .min();
            let pid = match idle {
                Some(pid) => pid,
                None => match notify.take() {
                    Some(n) => self.start(n)?,
                    None => break,
                },
            };
            let Some(w) = self.workers.get_mut(&pid) else {
                continue;
            };
            let sent = w
                .stdin
                .as_mut()
                .map(|s| s.write_all(line.as_bytes()).and_then(|()| s.flush()));
            match sent {
                Some(Ok(())) => {
                    w.task = Some(idx);
                    return Ok(pid);
                }
                Some(Err(e)) => {
                    // It is gone or going; its report says so.
                    w.stdin = None;
                    last_error = Some(e.to_string());
                }
                None => {}
            }
        }
        Err(Error::system(format!(
            "hand a task to a supervisor: {}",
            last_error.unwrap_or_else(|| "none would take it".into())
        )))
    }

    fn start<F>(&mut self, notify: F) -> Result<u32>
    where
        F: Fn(Report) + Send + 'static,
    {
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
        let stdin = child.stdin.take();
        std::thread::spawn(move || {
            for line in BufReader::new(read).lines() {
                let Ok(line) = line else { break };
                if let Some(code) = line.split_whitespace().next().and_then(|c| c.parse().ok()) {
                    notify(Report::Done { worker: pid, code });
                }
            }
            notify(Report::Gone { worker: pid });
        });
        self.workers.insert(
            pid,
            Worker {
                child,
                stdin,
                task: None,
            },
        );
        Ok(pid)
    }

    /// Apply a report: the task it ends, with its (exit code, signal).
    pub fn report(&mut self, report: Report) -> Option<(usize, Option<i32>, Option<i32>)> {
        match report {
            Report::Done { worker, code } => {
                let idx = self.workers.get_mut(&worker)?.task.take()?;
                Some((idx, Some(code), None))
            }
            Report::Gone { worker } => {
                let mut w = self.workers.remove(&worker)?;
                drop(w.stdin.take());
                let (code, signal) = match w.child.wait() {
                    Ok(s) => (s.code(), s.signal()),
                    Err(_) => (None, None),
                };
                Some((w.task?, code, signal))
            }
        }
    }
}
