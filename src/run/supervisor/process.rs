//! The agent's process tree, behind a trait: start it in its own process
//! group, end the whole tree (SIGTERM, grace, SIGKILL, descendants that left
//! the group included), and reap every child it leaves. [`Real`] does it with
//! [`crate::proctree`] and `waitpid`; the supervisor's unit tests put a
//! double in its place.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::state::ExitStatus;
use crate::proctree::Tree;

/// What reaches a running task's supervisor.
#[derive(Debug)]
pub enum Ev {
    /// The agent ended.
    Exited(ExitStatus),
    /// SIGINT, SIGTERM or SIGHUP: cancel (a second one forces).
    Signal,
    /// Every child has been reaped.
    Reaped,
}

/// A started agent.
pub struct Spawned {
    /// Its pid, which is also its process group.
    pub pid: i32,
    /// Its standard output, when the command asked for a pipe.
    pub stdout: Option<Box<dyn Read + Send>>,
}

/// Starting, ending and reaping one task's processes.
pub trait ProcessTree {
    /// Start `cmd` in a process group of its own. The agent's end
    /// ([`Ev::Exited`]) and, once no child of the supervisor is left,
    /// [`Ev::Reaped`] are sent on `events`.
    fn spawn(&mut self, cmd: Command, events: mpsc::Sender<Ev>) -> std::io::Result<Spawned>;

    /// End every process of the tree: SIGTERM, up to `grace` for it to go,
    /// then SIGKILL until none is left; `forced()` (a second signal) cuts the
    /// grace short. How many processes the first look found.
    fn end(&mut self, grace: Duration, forced: &dyn Fn() -> bool) -> usize;

    /// The commands started from now on run in a sandbox: their first
    /// process is the sandbox's, which must outlive the grace period.
    fn sandboxed(&mut self, _yes: bool) {}
}

/// Real processes: a process group per agent, this supervisor a subreaper.
pub struct Real {
    /// The environment entry every process of the task inherits.
    marker: Vec<u8>,
    pgid: Option<i32>,
    /// The agent runs in a sandbox: its first process (bwrap) gets no
    /// SIGTERM ([`Tree::spared`]).
    sandboxed: bool,
    /// Set while a reaper thread waits for children, shared by the tasks of
    /// one pool supervisor (which must not start a task while it is set: the
    /// reaper takes any child's exit status).
    reaping: Arc<AtomicBool>,
}

impl Real {
    pub fn new(marker: Vec<u8>, reaping: Arc<AtomicBool>) -> Real {
        Real {
            marker,
            pgid: None,
            sandboxed: false,
            reaping,
        }
    }

    fn tree(&self) -> Tree {
        Tree {
            root: Some(std::process::id() as i32),
            pgid: self.pgid,
            marker: Some(self.marker.clone()),
            spared: self.pgid.filter(|_| self.sandboxed),
        }
    }
}

impl ProcessTree for Real {
    fn spawn(&mut self, mut cmd: Command, events: mpsc::Sender<Ev>) -> std::io::Result<Spawned> {
        cmd.process_group(0);
        crate::signals::unblocked(&mut cmd);
        let mut child = cmd.spawn()?;
        let pid = child.id() as i32;
        let stdout = child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>);
        // The reaper below waits for it; `Child` must not.
        drop(child);
        self.pgid = Some(pid);
        reap_children(pid, events, self.reaping.clone());
        Ok(Spawned { pid, stdout })
    }

    fn end(&mut self, grace: Duration, forced: &dyn Fn() -> bool) -> usize {
        self.tree().kill_unless(grace, forced)
    }

    fn sandboxed(&mut self, yes: bool) {
        self.sandboxed = yes;
    }
}

/// Reap every child (the agent and reparented orphans) until none is left;
/// the agent's own end and the last reap are sent as events.
fn reap_children(pid: i32, tx: mpsc::Sender<Ev>, reaping: Arc<AtomicBool>) {
    reaping.store(true, Ordering::SeqCst);
    std::thread::spawn(move || {
        loop {
            match waitpid(Pid::from_raw(-1), None) {
                Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => {
                    let _ = tx.send(Ev::Exited(ExitStatus::Code(code)));
                }
                Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                    let _ = tx.send(Ev::Exited(ExitStatus::Signal(sig as i32)));
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        reaping.store(false, Ordering::SeqCst);
        let _ = tx.send(Ev::Reaped);
    });
}
