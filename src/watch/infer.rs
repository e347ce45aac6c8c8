//! The states a reader infers and never stores.
//!
//! * `stalled`: `in_progress`, but neither the log nor the status file changed
//!   for the stall window (`--stall-after`).
//! * `orphaned`: `in_progress`, but nobody holds the task's liveness lock, so
//!   no process is running it (invariant 4).
//!
//! Liveness is read from `/proc/locks` first, which takes no lock at all, so a
//! watcher never makes a scheduler's `try_lock` fail by looking. Only when no
//! holder is listed there (or `/proc/locks` is unreadable) is it confirmed with
//! [`store::is_live`]. A task found orphaned is not probed again until its
//! status file changes (an adopting scheduler rewrites it).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
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

/// Liveness probes for one or more scans.
#[derive(Default)]
pub struct Liveness {
    /// Held flock/POSIX locks from `/proc/locks` for this pass: (major, minor, inode).
    held: Option<Option<HashSet<(u64, u64, u64)>>>,
    /// Status files found orphaned, with the version they had then.
    orphaned: HashMap<PathBuf, Option<Version>>,
}

impl Liveness {
    /// Start a new scan: `/proc/locks` is read again (lazily).
    pub fn begin_pass(&mut self) {
        self.held = None;
    }

    /// Whether nobody holds the liveness lock of the task in `status_file`.
    pub fn is_orphaned(&mut self, status_file: &Path, version: Option<Version>) -> bool {
        if version.is_some() && self.orphaned.get(status_file) == Some(&version) {
            return true;
        }
        let live =
            self.listed_as_held(&store::liveness_path(status_file)) || store::is_live(status_file);
        if live {
            self.orphaned.remove(status_file);
        } else {
            self.orphaned.insert(status_file.to_path_buf(), version);
        }
        !live
    }

    fn listed_as_held(&mut self, lock: &Path) -> bool {
        let Ok(meta) = fs::metadata(lock) else {
            return false;
        };
        let held = self.held.get_or_insert_with(read_proc_locks);
        let Some(held) = held else {
            return false;
        };
        let dev = meta.dev();
        held.contains(&(
            u64::from(libc::major(dev)),
            u64::from(libc::minor(dev)),
            meta.ino(),
        ))
    }
}

/// Granted locks listed in `/proc/locks` (waiters, shown with `->`, are skipped).
fn read_proc_locks() -> Option<HashSet<(u64, u64, u64)>> {
    let text = fs::read_to_string("/proc/locks").ok()?;
    Some(parse_proc_locks(&text))
}

fn parse_proc_locks(text: &str) -> HashSet<(u64, u64, u64)> {
    text.lines()
        .filter(|l| !l.contains("->"))
        .filter_map(|l| {
            let field = l.split_whitespace().nth(5)?;
            let mut parts = field.split(':');
            let major = u64::from_str_radix(parts.next()?, 16).ok()?;
            let minor = u64::from_str_radix(parts.next()?, 16).ok()?;
            let ino = parts.next()?.parse().ok()?;
            Some((major, minor, ino))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_locks_lines_are_parsed_and_waiters_skipped() {
        let text = "1: FLOCK  ADVISORY  WRITE 11527 fe:00:10011219 0 EOF\n\
                    2: POSIX  ADVISORY  READ 9 08:1f:77 0 EOF\n\
                    2: -> FLOCK  ADVISORY  WRITE 12 08:01:55 0 EOF\n";
        let held = parse_proc_locks(text);
        assert!(held.contains(&(0xfe, 0, 10011219)));
        assert!(held.contains(&(8, 0x1f, 77)));
        assert!(!held.contains(&(8, 1, 55)));
    }

    #[test]
    fn a_lock_held_in_this_process_is_listed_and_a_free_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("agent-1.status.json");
        let mut live = Liveness::default();
        assert!(live.is_orphaned(&status, None));
        let guard = store::hold_liveness(&status).unwrap().unwrap();
        live.begin_pass();
        assert!(!live.is_orphaned(&status, None));
        if read_proc_locks().is_some() {
            live.begin_pass();
            assert!(live.listed_as_held(&store::liveness_path(&status)));
        }
        drop(guard);
        live.begin_pass();
        assert!(live.is_orphaned(&status, None));
    }
}
