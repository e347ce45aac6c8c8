//! What a reader sees of an orchestration: one row per status file, bad files
//! included (invariant 5), with the states a reader infers.
//!
//! Reading only: files are stat'ed and parsed, never locked for writing. A
//! parsed file is cached by (device, inode, mtime, size), so a rescan after a
//! change re-parses only the files that changed (writers replace files by
//! rename, which always gives a new inode).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use super::infer::{Inferred, Liveness};
use crate::error::Error;
use crate::merge::conflicts::Conflict;
use crate::protocol::layout::{self, ORCHESTRATION_FILE};
use crate::protocol::{AgentStatus, Orchestration, State, store};
use crate::timefmt::{Timestamp, opt_rfc3339};

/// One task as a reader sees it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TaskView {
    pub agent_id: String,
    /// `task_id` when the task has one, else `agent_id`.
    pub label: String,
    /// The stored state.
    pub state: State,
    /// What the reader infers on top of it (`stalled`, `orphaned`).
    #[serde(flatten)]
    pub inferred: Inferred,
    pub phase: Option<String>,
    pub progress: Option<u8>,
    pub duration_seconds: Option<f64>,
    pub branch: Option<String>,
    /// The commit the task started from.
    pub base_commit: Option<String>,
    pub pr_number: Option<u64>,
    pub pr_url: Option<String>,
    pub cost_usd: Option<f64>,
    pub error: Option<String>,
    pub attempt: u32,
    pub log_file: Option<PathBuf>,
    #[serde(with = "opt_rfc3339")]
    pub start_time: Option<Timestamp>,
    #[serde(with = "opt_rfc3339")]
    pub last_update: Option<Timestamp>,
    #[serde(with = "opt_rfc3339")]
    pub completion_time: Option<Timestamp>,
    pub file: PathBuf,
}

impl TaskView {
    /// The state to show: the inferred one when there is one.
    pub fn shown_state(&self) -> &'static str {
        self.inferred.name().unwrap_or(self.state.as_str())
    }

    /// Where to look when something is wrong: the log, else the status file.
    pub fn look_at(&self) -> &Path {
        self.log_file.as_deref().unwrap_or(&self.file)
    }
}

/// A status file that could not be read, by name, and why.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BadFile {
    pub file: PathBuf,
    pub problem: String,
}

impl BadFile {
    /// The file's name, `agent-3.status.json`.
    pub fn name(&self) -> String {
        self.file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Row {
    Task(Box<TaskView>),
    Bad(BadFile),
}

impl Row {
    pub fn file(&self) -> &Path {
        match self {
            Row::Task(t) => &t.file,
            Row::Bad(b) => &b.file,
        }
    }

    /// `agent-3` for `…/agent-3.status.json`, readable or not.
    pub fn label(&self) -> String {
        match self {
            Row::Task(t) => t.label.clone(),
            Row::Bad(b) => layout::agent_id_of(&b.file),
        }
    }
}

/// One orchestration directory as read at one instant.
#[derive(Clone, Debug)]
pub struct OrchestrationView {
    pub id: String,
    pub dir: PathBuf,
    pub title: Option<String>,
    pub rows: Vec<Row>,
    /// The directory itself could not be listed.
    pub problem: Option<String>,
    /// Completed branches that do not merge cleanly (filled in by readers
    /// that look, see [`super::conflicts`]).
    pub conflicts: Vec<Conflict>,
}

impl OrchestrationView {
    pub fn tasks(&self) -> impl Iterator<Item = &TaskView> {
        self.rows.iter().filter_map(|r| match r {
            Row::Task(t) => Some(t.as_ref()),
            Row::Bad(_) => None,
        })
    }

    pub fn bad(&self) -> impl Iterator<Item = &BadFile> {
        self.rows.iter().filter_map(|r| match r {
            Row::Bad(b) => Some(b),
            Row::Task(_) => None,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct FileKey {
    dev: u64,
    ino: u64,
    mtime: i64,
    mtime_nsec: i64,
    size: u64,
}

impl FileKey {
    fn of(m: &fs::Metadata) -> FileKey {
        FileKey {
            dev: m.dev(),
            ino: m.ino(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            size: m.size(),
        }
    }
}

type Parsed = Result<AgentStatus, String>;

/// Reads orchestration directories, re-parsing only files that changed.
pub struct Reader {
    stall_after: std::time::Duration,
    cache: HashMap<PathBuf, (FileKey, Parsed)>,
    names: HashMap<PathBuf, (FileKey, (String, Option<String>))>,
    liveness: Liveness,
    /// Widens the window between reading a file and probing its lock (tests).
    #[cfg(test)]
    probe_delay: Option<std::time::Duration>,
}

impl Reader {
    pub fn new(stall_after: std::time::Duration) -> Reader {
        Reader {
            stall_after,
            cache: HashMap::new(),
            names: HashMap::new(),
            liveness: Liveness::default(),
            #[cfg(test)]
            probe_delay: None,
        }
    }

    /// Read every status file of `dir`; a file that cannot be read becomes a
    /// [`Row::Bad`] naming it, and the others still show.
    pub fn read(&mut self, dir: &Path) -> OrchestrationView {
        let (id, title) = self.orchestration_name(dir);
        let mut view = OrchestrationView {
            id,
            dir: dir.to_path_buf(),
            title,
            rows: Vec::new(),
            problem: None,
            conflicts: Vec::new(),
        };
        let files = match layout::status_files(dir) {
            Ok(f) => f,
            Err(e) => {
                view.problem = Some(e.to_string());
                return view;
            }
        };
        let now_sys = SystemTime::now();
        let now = crate::timefmt::now();
        for file in files {
            let row = self.row(file, now_sys, now);
            view.rows.push(row);
        }
        let present: std::collections::HashSet<&Path> = view.rows.iter().map(Row::file).collect();
        self.cache
            .retain(|p, _| p.parent() != Some(dir) || present.contains(p.as_path()));
        view
    }

    /// One status file as a row. A running task whose liveness lock is free
    /// is orphaned only if its file did not change meanwhile: a runner writes
    /// its final state before it lets go of the lock, so a file read just
    /// before that write must not make a finished task look orphaned.
    fn row(&mut self, file: PathBuf, now_sys: SystemTime, now: Timestamp) -> Row {
        let mut tries = 0;
        loop {
            tries += 1;
            let (parsed, key) = self.parse(&file);
            let status = match parsed {
                Ok(s) => s,
                Err(problem) => return Row::Bad(BadFile { file, problem }),
            };
            #[cfg(test)]
            if let Some(d) = self.probe_delay {
                std::thread::sleep(d);
            }
            let inferred = if status.status != State::InProgress {
                Inferred::none()
            } else if self
                .liveness
                .is_orphaned(&file, key.map(|k| (k.ino, k.mtime, k.mtime_nsec)))
            {
                let still = fs::metadata(&file).ok().map(|m| FileKey::of(&m));
                if still != key && tries < 5 {
                    continue;
                }
                Inferred::orphaned()
            } else {
                super::infer::stall(&status, &file, self.stall_after, now_sys)
            };
            return Row::Task(Box::new(task_view(status, file, inferred, now)));
        }
    }

    /// The orchestration's id and title from `orchestration.json` (parsed
    /// again only when it changed: it holds the master issue's whole text),
    /// else the directory name.
    fn orchestration_name(&mut self, dir: &Path) -> (String, Option<String>) {
        let file = dir.join(ORCHESTRATION_FILE);
        let Ok(meta) = fs::metadata(&file) else {
            return (dir_name(dir), None);
        };
        let key = FileKey::of(&meta);
        if let Some((k, name)) = self.names.get(&file)
            && *k == key
        {
            return name.clone();
        }
        let name = match store::read_json::<Orchestration>(&file) {
            Ok(o) => (o.id, o.title),
            Err(_) => (dir_name(dir), None),
        };
        self.names.insert(file, (key, name.clone()));
        name
    }

    /// Parse `file` (or reuse the last parse of the same version) and say
    /// which version was read.
    fn parse(&mut self, file: &Path) -> (Parsed, Option<FileKey>) {
        let meta = match fs::metadata(file) {
            Ok(m) => m,
            Err(e) => return (Err(Error::io("read", file)(e).to_string()), None),
        };
        let key = FileKey::of(&meta);
        if let Some((k, parsed)) = self.cache.get(file)
            && *k == key
        {
            return (parsed.clone(), Some(key));
        }
        let parsed = match store::read_status(file) {
            Ok(s) => Ok(s),
            Err(Error::BadStatus { detail, .. }) => Err(detail),
            Err(e) => Err(e.to_string()),
        };
        // A file replaced between the stat and the read: say nothing about
        // which version this is, so it is neither cached nor trusted.
        let after = fs::metadata(file).ok().map(|m| FileKey::of(&m));
        if after != Some(key) {
            return (parsed, None);
        }
        self.cache.insert(file.to_path_buf(), (key, parsed.clone()));
        (parsed, Some(key))
    }
}

fn task_view(s: AgentStatus, file: PathBuf, inferred: Inferred, now: Timestamp) -> TaskView {
    let duration_seconds = s.metrics.duration_seconds.or_else(|| {
        let start = s.start_time?;
        let end = match s.status {
            State::InProgress => now,
            st if st.is_terminal() => s.completion_time.or(s.last_update)?,
            _ => return None,
        };
        Some(((end - start).num_milliseconds() as f64 / 1000.0).max(0.0))
    });
    TaskView {
        label: s
            .task_id
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| s.agent_id.clone()),
        agent_id: s.agent_id,
        state: s.status,
        inferred,
        phase: s.phase,
        progress: s.progress_percentage,
        duration_seconds,
        branch: s.branch,
        base_commit: s.base_commit,
        pr_number: s.pr_number,
        pr_url: s.pr_url,
        cost_usd: s.metrics.cost_usd,
        error: s.error,
        attempt: s.attempt,
        log_file: s.log_file,
        start_time: s.start_time,
        last_update: s.last_update,
        completion_time: s.completion_time,
        file,
    }
}

/// The directory's name, the id when `orchestration.json` cannot say.
fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A runner that writes its final state and then lets go of the lock, over
    /// and over, while a reader scans: the reader never sees an orphan.
    #[test]
    fn a_task_finishing_while_it_is_read_is_never_orphaned() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent-1.status.json");
        store::write_status(&file, &AgentStatus::new("agent-1", "1")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let runner = {
            let (file, stop) = (file.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut cycles = 0;
                while !stop.load(Ordering::SeqCst) && cycles < 300 {
                    // A reader's probe may hold the free lock for an instant.
                    let lock = loop {
                        match store::hold_liveness(&file).unwrap() {
                            Some(l) => break l,
                            None => std::thread::sleep(std::time::Duration::from_millis(1)),
                        }
                    };
                    for state in [State::InProgress, State::Completed] {
                        store::update_status(&file, |s| {
                            s.status = state;
                            Ok(())
                        })
                        .unwrap();
                    }
                    drop(lock);
                    store::update_status(&file, |s| {
                        s.status = State::Pending;
                        Ok(())
                    })
                    .unwrap();
                    cycles += 1;
                }
            })
        };
        let mut reader = Reader::new(std::time::Duration::from_secs(3600));
        reader.probe_delay = Some(std::time::Duration::from_millis(2));
        let mut running_seen = 0;
        while !runner.is_finished() {
            let view = reader.read(dir.path());
            for t in view.tasks() {
                assert!(!t.inferred.orphaned, "a finishing task was shown orphaned");
                running_seen += usize::from(t.state == State::InProgress);
            }
        }
        stop.store(true, Ordering::SeqCst);
        runner.join().unwrap();
        assert!(running_seen > 0, "the reader never saw the task running");
    }
}
