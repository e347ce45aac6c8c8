//! Process trees: finding every process an agent started and ending them all.
//!
//! An agent runs in its own process group, but its descendants may leave the
//! group (`setsid`, daemons) and may ignore SIGTERM. The supervisor marks itself
//! a child subreaper, so orphaned descendants are reparented to it instead of
//! to init; a tree is then "every process whose parent chain leads to the
//! supervisor, plus the agent's group, plus every process whose environment
//! carries the task's marker (`PO_STATUS_FILE=…`)". Ending a tree is SIGTERM,
//! a grace period, then SIGKILL, repeated until nothing of it is left.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Ask the kernel to reparent orphaned descendants to this process.
pub fn become_subreaper() -> bool {
    // SAFETY: prctl with integer arguments has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
}

/// One line of `/proc/<pid>/stat`, the parts that matter here.
#[derive(Clone, Copy, Debug)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    /// `Z` for a zombie (dead, waiting to be reaped).
    pub state: char,
}

fn read_stat(pid: i32) -> Option<ProcInfo> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        pgid,
        state,
    })
}

/// Every process visible in `/proc`.
pub fn processes() -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .collect()
}

/// Whether `/proc/<pid>/environ` holds exactly the entry `marker` (`NAME=value`).
pub fn environ_has(pid: i32, marker: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|e| e == marker))
        .unwrap_or(false)
}

/// The environment entry every process of the task in `status_file`
/// inherits (`PO_STATUS_FILE=…`).
pub fn task_marker(status_file: &std::path::Path) -> Vec<u8> {
    format!("PO_STATUS_FILE={}", status_file.display()).into_bytes()
}

/// What belongs to one task's tree.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    /// Descendants of this process (the supervisor), itself excluded.
    pub root: Option<i32>,
    /// The agent's process group.
    pub pgid: Option<i32>,
    /// An environment entry every process of the task inherits.
    pub marker: Option<Vec<u8>>,
    /// A member that gets no SIGTERM, only the final SIGKILL: a sandbox's
    /// outer `bwrap`, whose end would kill the sandbox at once (its
    /// `--die-with-parent`), leaving the agent no grace. Its group is not
    /// signalled as a group either; every member is found one by one.
    pub spared: Option<i32>,
}

impl Tree {
    /// Every process that carries the task's marker, wherever it runs from:
    /// what is left of a task whose supervisor is gone.
    pub fn of_task(status_file: &std::path::Path) -> Tree {
        Tree {
            root: None,
            pgid: None,
            marker: Some(task_marker(status_file)),
            spared: None,
        }
    }

    /// Live (non-zombie) members of the tree right now.
    pub fn members(&self) -> Vec<i32> {
        let me = std::process::id() as i32;
        let procs = processes();
        let mut found: HashSet<i32> = HashSet::new();
        if let Some(root) = self.root {
            let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
            for p in &procs {
                children.entry(p.ppid).or_default().push(p.pid);
            }
            let mut stack = vec![root];
            while let Some(pid) = stack.pop() {
                if let Some(kids) = children.get(&pid) {
                    for &k in kids {
                        if found.insert(k) {
                            stack.push(k);
                        }
                    }
                }
            }
        }
        for p in &procs {
            if self.pgid.is_some_and(|g| g > 1 && p.pgid == g) {
                found.insert(p.pid);
            }
        }
        if let Some(marker) = &self.marker {
            for p in &procs {
                if !found.contains(&p.pid) && environ_has(p.pid, marker) {
                    found.insert(p.pid);
                }
            }
        }
        let zombies: HashSet<i32> = procs
            .iter()
            .filter(|p| p.state == 'Z' || p.state == 'X')
            .map(|p| p.pid)
            .collect();
        let mut out: Vec<i32> = found
            .into_iter()
            .filter(|p| *p != me && Some(*p) != self.root && !zombies.contains(p))
            .collect();
        out.sort_unstable();
        out
    }

    fn signal_all(&self, pids: &[i32], sig: Signal) {
        let spared = |p: i32| sig != Signal::SIGKILL && self.spared == Some(p);
        let group = self
            .pgid
            .filter(|g| *g > 1 && (sig == Signal::SIGKILL || self.spared.is_none()));
        if let Some(g) = group {
            let _ = killpg(Pid::from_raw(g), sig);
        }
        for &p in pids.iter().filter(|p| !spared(**p)) {
            let _ = kill(Pid::from_raw(p), sig);
        }
    }

    /// SIGTERM, up to `grace` for the tree to go, then SIGKILL until nothing
    /// is left. `force` (a second cancel) skips the rest of the grace period.
    /// Returns how many processes were found in the first round.
    pub fn kill(&self, grace: Duration, force: &AtomicBool) -> usize {
        self.kill_unless(grace, &|| force.load(Ordering::SeqCst))
    }

    /// [`Tree::kill`], with `forced()` saying when to skip the grace period.
    pub fn kill_unless(&self, grace: Duration, forced: &dyn Fn() -> bool) -> usize {
        let first = self.members();
        let count = first.len();
        if first.is_empty() {
            return 0;
        }
        if !forced() {
            self.signal_all(&first, Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline && !forced() {
                if self.members().is_empty() {
                    return count;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Whatever is left, including processes forked meanwhile.
        for _ in 0..500 {
            let left = self.members();
            if left.is_empty() {
                break;
            }
            self.signal_all(&left, Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(10));
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parses_this_process() {
        let me = read_stat(std::process::id() as i32).expect("own stat");
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(me.ppid > 0);
    }

    #[test]
    fn a_tree_that_ignores_sigterm_is_killed() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 30 & sleep 30; wait"])
            .env("PO_TEST_MARKER", "tree-kill-test")
            .spawn()
            .unwrap();
        // Wait until the shell has forked its background sleep.
        let tree = Tree {
            root: None,
            pgid: None,
            marker: Some(b"PO_TEST_MARKER=tree-kill-test".to_vec()),
            spared: None,
        };
        for _ in 0..500 {
            if tree.members().len() >= 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(tree.members().len() >= 2, "{:?}", tree.members());
        let force = AtomicBool::new(false);
        tree.kill(Duration::from_millis(200), &force);
        let _ = child.wait();
        assert!(tree.members().is_empty());
    }
}
