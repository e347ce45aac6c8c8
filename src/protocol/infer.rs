//! The states a reader infers and never stores.
//!
//! * `stalled`: `in_progress`, but neither the log nor the status file changed
//!   for the stall window (`--stall-after`).
//! * `orphaned`: `in_progress`, but nobody holds the task's liveness lock, so
//!   no process is running it (invariant 4).
//!
//! Liveness is [`store::is_live`]: a shared probe on a read-only open that
//! creates nothing. A task found orphaned is not probed
//! again until its status file changes (an adopting scheduler rewrites it), so
//! a watcher does not take a free lock over and over. (`/proc/locks` would
//! avoid the attempt, but reading it takes the kernel's global lock-list lock
//! and waits for an RCU grace period each time: milliseconds, and a stall for
//! every flock user on the machine.)

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::protocol::{AgentStatus, store};

#[derive(Clone, Debug, Default, Serialize)]
pub struct Inferred {
    pub stalled: bool,
    pub orphaned: bool,
    /// Seconds since the last sign of activity (log output or status update).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_seconds: Option<u64>,
    /// When the task last showed activity; the stall deadline counts from here.
    #[serde(skip)]
    pub last_activity: Option<SystemTime>,
}

impl PartialEq for Inferred {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Inferred {
    pub fn none() -> Inferred {
        Inferred::default()
    }

    pub fn orphaned() -> Inferred {
        Inferred {
            orphaned: true,
            ..Inferred::default()
        }
    }

    pub fn name(&self) -> Option<&'static str> {
        if self.orphaned {
            Some("orphaned")
        } else if self.stalled {
            Some("stalled")
        } else {
            None
        }
    }
}

/// Whether an `in_progress` task showed no sign of life for `window`.
pub fn stall(status: &AgentStatus, file: &Path, window: Duration, now: SystemTime) -> Inferred {
    let from_ts = |t: &crate::timefmt::Timestamp| SystemTime::from(*t);
    let candidates = [
        status.last_update.as_ref().map(from_ts),
        status.start_time.as_ref().map(from_ts),
        status
            .log_file
            .as_deref()
            .and_then(|l| fs::metadata(l).and_then(|m| m.modified()).ok()),
    ];
    let last = candidates
        .into_iter()
        .flatten()
        .max()
        .or_else(|| fs::metadata(file).and_then(|m| m.modified()).ok());
    let idle = last.and_then(|l| now.duration_since(l).ok());
    Inferred {
        stalled: idle.is_some_and(|i| i >= window),
        orphaned: false,
        idle_seconds: idle.map(|i| i.as_secs()),
        last_activity: last,
    }
}

/// Identity of a status file version: (inode, mtime seconds, mtime nanoseconds).
pub type Version = (u64, i64, i64);

/// Liveness probes across scans.
#[derive(Default)]
pub struct Liveness {
    /// Status files found orphaned, with the version they had then.
    orphaned: HashMap<PathBuf, Option<Version>>,
}

impl Liveness {
    /// Whether nobody holds the liveness lock of the task in `status_file`.
    pub fn is_orphaned(&mut self, status_file: &Path, version: Option<Version>) -> bool {
        if version.is_some() && self.orphaned.get(status_file) == Some(&version) {
            return true;
        }
        let live = store::is_live(status_file);
        if live {
            self.orphaned.remove(status_file);
        } else {
            self.orphaned.insert(status_file.to_path_buf(), version);
        }
        !live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drop `guard`: its lock is gone at once, even while a process
    /// another test thread forks shares the lock file's descriptor until its
    /// `exec` closes it.
    fn release(guard: store::FileLock, status: &Path) {
        drop(guard);
        assert!(!store::is_live(status), "the lock outlived its guard");
    }

    #[test]
    fn a_probe_sees_a_holder_and_does_not_block_another_probe() {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("agent-1.status.json");
        assert!(!store::is_live(&status));
        assert!(
            !store::liveness_path(&status).exists(),
            "a probe creates nothing"
        );
        let guard = store::hold_liveness(&status).unwrap().unwrap();
        assert!(store::is_live(&status));
        release(guard, &status);
        // Another reader's shared probe in progress is not a runner.
        let other = fs::File::open(store::liveness_path(&status)).unwrap();
        other.lock_shared().unwrap();
        assert!(!store::is_live(&status));
    }

    #[test]
    fn orphaned_until_held_and_an_orphan_is_not_probed_again_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("agent-1.status.json");
        let mut live = Liveness::default();
        assert!(live.is_orphaned(&status, None));
        let guard = store::hold_liveness(&status).unwrap().unwrap();
        assert!(!live.is_orphaned(&status, None));
        release(guard, &status);
        let v1 = Some((1, 2, 3));
        assert!(live.is_orphaned(&status, v1));
        // Same version: remembered, not probed (a holder now is not seen)...
        let guard = store::hold_liveness(&status).unwrap().unwrap();
        assert!(live.is_orphaned(&status, v1));
        // ...until the status file changes.
        assert!(!live.is_orphaned(&status, Some((4, 5, 6))));
        drop(guard);
    }
}
