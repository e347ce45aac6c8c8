//! Watching orchestrations: read status files (never write them), infer what
//! is stalled or orphaned, and show a table, a live view or a stream of events.
//!
//! Reading is [`crate::protocol::view`]'s (with its inode cache); here:
//!
//! * [`table`]: the snapshot table.
//! * [`events`]: changes between readings as one-line events.
//! * [`source`]: inotify on directories, or polling, to know when to read again.
//! * [`conflicts`]: which completed branches conflict (`git merge-tree`).

pub mod conflicts;
pub mod events;
pub mod source;
pub mod table;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::protocol::infer::Inferred;
use crate::protocol::view::{OrchestrationView, Reader};
use crate::protocol::{Runtime, State};

/// How often a running task's liveness lock is looked at again.
const LIVENESS_RECHECK: Duration = Duration::from_secs(2);

/// What to watch: one orchestration directory (which may not exist yet), or
/// every orchestration under a runtime root.
#[derive(Clone, Debug)]
pub enum Scope {
    One(PathBuf),
    All(Runtime),
}

impl Scope {
    /// Several orchestrations: event labels carry the orchestration id.
    pub fn is_all(&self) -> bool {
        matches!(self, Scope::All(_))
    }

    /// Orchestration directories that exist now, newest first.
    pub fn dirs(&self) -> Vec<PathBuf> {
        match self {
            Scope::One(d) if d.is_dir() => vec![d.clone()],
            Scope::One(_) => Vec::new(),
            Scope::All(rt) => rt.orchestrations().unwrap_or_default(),
        }
    }

    /// Directories to watch so that no change is missed: the orchestration
    /// directories, and where the next one would appear (the nearest existing
    /// ancestor of a directory that does not exist yet).
    pub fn watch_dirs(&self) -> Vec<PathBuf> {
        match self {
            Scope::One(d) => vec![nearest_existing(d)],
            Scope::All(rt) => {
                let mut dirs = vec![nearest_existing(&rt.parallel_root())];
                dirs.extend(self.dirs());
                dirs
            }
        }
    }

    pub fn read(&self, reader: &mut Reader) -> Vec<OrchestrationView> {
        self.dirs().iter().map(|d| reader.read(d)).collect()
    }
}

/// `dir` if it exists, else its closest ancestor that does.
pub fn nearest_existing(dir: &Path) -> PathBuf {
    let mut d = dir;
    loop {
        if d.is_dir() {
            return d.to_path_buf();
        }
        match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => d = p,
            _ => return PathBuf::from("/"),
        }
    }
}

/// When to look again without a file event: the earliest moment a running
/// task would become stalled, and a periodic liveness check while any runs.
pub fn next_deadline(views: &[OrchestrationView], stall_after: u64) -> Option<Instant> {
    let now_sys = SystemTime::now();
    let now = Instant::now();
    let mut deadline: Option<Instant> = None;
    let mut consider = |t: Instant| deadline = Some(deadline.map_or(t, |d| d.min(t)));
    for t in views.iter().flat_map(|v| v.tasks()) {
        if t.state() != State::InProgress || t.inferred.orphaned {
            continue;
        }
        consider(now + LIVENESS_RECHECK);
        if let Inferred {
            stalled: false,
            last_activity: Some(last),
            ..
        } = t.inferred
        {
            let due = last + Duration::from_secs(stall_after);
            let wait = due.duration_since(now_sys).unwrap_or_default();
            consider(now + wait + Duration::from_millis(5));
        }
    }
    deadline
}
