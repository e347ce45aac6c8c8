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
    liveness: Liveness,
}

impl Reader {
    pub fn new(stall_after: std::time::Duration) -> Reader {
        Reader {
            stall_after,
            cache: HashMap::new(),
            liveness: Liveness::default(),
        }
    }

    /// Read every status file of `dir`; a file that cannot be read becomes a
    /// [`Row::Bad`] naming it, and the others still show.
    pub fn read(&mut self, dir: &Path) -> OrchestrationView {
        let (id, title) = orchestration_name(dir);
        let mut view = OrchestrationView {
            id,
            dir: dir.to_path_buf(),
            title,
            rows: Vec::new(),
            problem: None,
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
        self.liveness.begin_pass();
        for file in files {
            let row = match self.parse(&file) {
                Ok(status) => {
                    let inferred = if status.status == State::InProgress {
                        let key = fs::metadata(&file).ok().map(|m| FileKey::of(&m));
                        if self
                            .liveness
                            .is_orphaned(&file, key.map(|k| (k.ino, k.mtime, k.mtime_nsec)))
                        {
                            Inferred::orphaned()
                        } else {
                            super::infer::stall(&status, &file, self.stall_after, now_sys)
                        }
                    } else {
                        Inferred::none()
                    };
                    Row::Task(Box::new(task_view(status, file, inferred, now)))
                }
                Err(problem) => Row::Bad(BadFile { file, problem }),
            };
            view.rows.push(row);
        }
        let present: std::collections::HashSet<&Path> = view.rows.iter().map(Row::file).collect();
        self.cache
            .retain(|p, _| p.parent() != Some(dir) || present.contains(p.as_path()));
        view
    }

    fn parse(&mut self, file: &Path) -> Parsed {
        let meta = match fs::metadata(file) {
            Ok(m) => m,
            Err(e) => return Err(Error::io("read", file)(e).to_string()),
        };
        let key = FileKey::of(&meta);
        if let Some((k, parsed)) = self.cache.get(file)
            && *k == key
        {
            return parsed.clone();
        }
        let parsed = match store::read_status(file) {
            Ok(s) => Ok(s),
            Err(Error::BadStatus { detail, .. }) => Err(detail),
            Err(e) => Err(e.to_string()),
        };
        self.cache.insert(file.to_path_buf(), (key, parsed.clone()));
        parsed
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

/// The orchestration's id and title from `orchestration.json`, else the directory name.
fn orchestration_name(dir: &Path) -> (String, Option<String>) {
    let fallback = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    match store::read_json::<Orchestration>(&dir.join(ORCHESTRATION_FILE)) {
        Ok(o) => (o.id, o.title),
        Err(_) => (fallback, None),
    }
}
