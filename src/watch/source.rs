//! When to look again: inotify on the directories (not the files, which
//! writers replace by rename), or polling when inotify is unavailable, its
//! limits are hit, or polling is asked for.
//!
//! The caller blocks in [`Changes::wait`] until something relevant changed or
//! a deadline passed; nothing spins while nothing happens.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use notify::event::EventKind;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// How long a burst of events may take before the caller rescans.
const DEBOUNCE: Duration = Duration::from_millis(2);
const DEBOUNCE_MAX: Duration = Duration::from_millis(30);

/// What woke the waiter.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// A file in a watched directory changed (or a poll tick: look again).
    Changed,
    /// The deadline passed with no change.
    Deadline,
}

pub struct Changes {
    rx: Receiver<notify::Result<notify::Event>>,
    /// Kept so `rx` never disconnects while polling.
    _tx: Sender<notify::Result<notify::Event>>,
    watcher: Option<RecommendedWatcher>,
    watched: BTreeSet<PathBuf>,
    poll: Duration,
    next_poll: Option<Instant>,
}

impl Changes {
    /// inotify unless `force_poll`; polling every `poll` otherwise or as the fallback.
    pub fn new(force_poll: bool, poll: Duration) -> Changes {
        let (tx, rx) = mpsc::channel();
        let mut changes = Changes {
            rx,
            _tx: tx.clone(),
            watcher: None,
            watched: BTreeSet::new(),
            poll,
            next_poll: None,
        };
        if force_poll {
            changes.next_poll = Some(Instant::now() + poll);
            return changes;
        }
        let handler = move |res: notify::Result<notify::Event>| {
            if relevant(&res) {
                let _ = tx.send(res);
            }
        };
        match notify::recommended_watcher(handler) {
            Ok(w) => changes.watcher = Some(w),
            Err(e) => changes.fall_back(&e.to_string()),
        }
        changes
    }

    pub fn polling(&self) -> bool {
        self.watcher.is_none()
    }

    /// Watch exactly `dirs` (non-recursively); existing watches are kept.
    pub fn watch(&mut self, dirs: &[PathBuf]) {
        let want: BTreeSet<PathBuf> = dirs.iter().cloned().collect();
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        for gone in self.watched.difference(&want) {
            let _ = w.unwatch(gone);
        }
        let mut failure = None;
        for dir in want.difference(&self.watched) {
            if let Err(e) = w.watch(dir, RecursiveMode::NonRecursive) {
                if matches!(e.kind, notify::ErrorKind::PathNotFound) {
                    continue;
                }
                failure = Some(format!("watch {}: {e}", dir.display()));
                break;
            }
        }
        if let Some(f) = failure {
            self.fall_back(&f);
            return;
        }
        self.watched = want;
    }

    fn fall_back(&mut self, why: &str) {
        if self.watcher.is_some() || self.next_poll.is_none() {
            eprintln!(
                "po-watch: inotify unavailable ({why}); polling every {} ms instead",
                self.poll.as_millis()
            );
        }
        self.watcher = None;
        self.watched.clear();
        self.next_poll = Some(Instant::now());
    }

    /// Block until something changed or `deadline` passed.
    pub fn wait(&mut self, deadline: Option<Instant>) -> Wake {
        loop {
            let poll_at = self.next_poll;
            let until = match (deadline, poll_at) {
                (Some(d), Some(p)) => Some(d.min(p)),
                (d, p) => d.or(p),
            };
            let got = match until {
                Some(t) => self
                    .rx
                    .recv_timeout(t.saturating_duration_since(Instant::now())),
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match got {
                Ok(Ok(_)) => {
                    self.debounce();
                    return Wake::Changed;
                }
                Ok(Err(e)) => {
                    if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                        self.fall_back(&e.to_string());
                    } else {
                        tracing::debug!("watch error: {e}");
                    }
                    return Wake::Changed;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.fall_back("the watcher stopped");
                    return Wake::Changed;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    if let Some(p) = self.next_poll
                        && now >= p
                    {
                        self.next_poll = Some(now + self.poll);
                        return Wake::Changed;
                    }
                    if deadline.is_some_and(|d| now >= d) {
                        return Wake::Deadline;
                    }
                }
            }
        }
    }

    /// Let a burst settle: take events until none came for [`DEBOUNCE`].
    fn debounce(&mut self) {
        let start = Instant::now();
        while start.elapsed() < DEBOUNCE_MAX {
            match self.rx.recv_timeout(DEBOUNCE) {
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
}

/// Renames, creations, writes and removals of files that readers care about.
/// Opens and closes are not (reading a file opens it, which must not wake us),
/// nor temporary files (`.name.tmp-…`) or lock files.
fn relevant(res: &notify::Result<notify::Event>) -> bool {
    let ev = match res {
        Ok(ev) => ev,
        Err(_) => return true,
    };
    if ev.need_rescan() {
        return true;
    }
    if matches!(ev.kind, EventKind::Access(_)) {
        return false;
    }
    if let EventKind::Modify(notify::event::ModifyKind::Metadata(_)) = ev.kind {
        return false;
    }
    ev.paths.iter().any(|p| interesting(p))
}

fn interesting(p: &Path) -> bool {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
        return true;
    };
    !(name.starts_with('.') || name.ends_with(".lock"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, ModifyKind, RenameMode};

    fn ev(kind: EventKind, path: &str) -> notify::Result<notify::Event> {
        Ok(notify::Event::new(kind).add_path(PathBuf::from(path)))
    }

    #[test]
    fn only_renames_and_writes_of_real_files_wake_the_reader() {
        let to = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert!(relevant(&ev(to, "/o/agent-1.status.json")));
        assert!(relevant(&ev(
            EventKind::Create(CreateKind::Folder),
            "/p/1234"
        )));
        assert!(!relevant(&ev(
            EventKind::Access(AccessKind::Any),
            "/o/agent-1.status.json"
        )));
        assert!(!relevant(&ev(to, "/o/.agent-1.status.json.tmp-1-0")));
        assert!(!relevant(&ev(
            EventKind::Create(CreateKind::File),
            "/o/agent-1.live.lock"
        )));
    }

    #[test]
    fn a_rename_into_a_watched_directory_wakes_the_waiter() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Changes::new(false, Duration::from_secs(60));
        c.watch(&[dir.path().to_path_buf()]);
        let target = dir.path().join("agent-1.status.json");
        let tmp = dir.path().join(".agent-1.status.json.tmp");
        std::fs::write(&tmp, "{}").unwrap();
        std::fs::rename(&tmp, &target).unwrap();
        let hang_guard = Instant::now() + Duration::from_secs(30);
        assert_eq!(c.wait(Some(hang_guard)), Wake::Changed);
    }

    #[test]
    fn polling_wakes_on_its_own() {
        let mut c = Changes::new(true, Duration::from_millis(10));
        assert!(c.polling());
        assert_eq!(
            c.wait(Some(Instant::now() + Duration::from_secs(30))),
            Wake::Changed
        );
    }
}
