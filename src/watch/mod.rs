//! Watching orchestrations: read status files (never write them), infer what
//! is stalled or orphaned, and show a table, a live view or a stream of events.
//!
//! * [`view`]: one reading of an orchestration directory, bad files included.
//! * [`infer`]: `stalled` and `orphaned`, which readers infer and never store.
//! * [`table`]: the snapshot table.
//! * [`events`]: changes between readings as one-line events.
//! * [`source`]: inotify on directories, or polling, to know when to read again.
//! * [`conflicts`]: which completed branches conflict (`git merge-tree`).

pub mod conflicts;
pub mod events;
pub mod infer;
pub mod source;
pub mod table;
pub mod view;

use std::path::{Path, PathBuf};

use crate::protocol::Runtime;
use view::{OrchestrationView, Reader};

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
fn nearest_existing(dir: &Path) -> PathBuf {
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
