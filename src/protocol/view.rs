//! The one reader of an orchestration directory, and the one view of a task
//! that every tool works from: po-watch, po-summarize, cpo, po-serve and the
//! scheduler.
//!
//! A row per status file, bad files included (invariant 5): a file that
//! cannot be read is named with its problem and the others still show.
//! Reading only: files are stat'ed and parsed, never locked for writing.
//!
//! What a reader derives is derived here, once: the label a task is shown
//! by, how long it ran, how its finish is told, the gist of its error, and
//! the states readers infer and never store (`stalled`, `orphaned`; see
//! [`super::infer`]). A reader that
//! reads again and again (po-watch, po-serve) keeps a cache keyed by (device,
//! inode, mtime, size), so a rescan after a change re-parses only the files
//! that changed (writers replace files by rename, which always gives a new
//! inode).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::infer::{Inferred, Liveness};
use super::layout::{self, ORCHESTRATION_FILE};
use super::lifecycle;
use super::runner;
use super::{AgentStatus, Orchestration, State, phase, store};
use crate::error::Error;
use crate::fsx;
use crate::timefmt::{self, Timestamp, opt_rfc3339};

/// One task as a reader sees it: the status file as stored, and what is
/// derived from it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskView {
    pub file: PathBuf,
    pub status: AgentStatus,
    /// `task_id` when the task has one, else `agent_id`.
    pub label: String,
    /// How long the current attempt ran (so far).
    pub duration_seconds: Option<f64>,
    /// What the reader infers on top of the stored state.
    pub inferred: Inferred,
}

impl TaskView {
    /// Derive the view of `status`, read from `file`, at `now`.
    pub fn of(status: AgentStatus, file: PathBuf, inferred: Inferred, now: Timestamp) -> TaskView {
        TaskView {
            label: label(&status),
            duration_seconds: duration(&status, now),
            inferred,
            status,
            file,
        }
    }

    /// The stored state.
    pub fn state(&self) -> State {
        self.status.status
    }

    /// The state to show: the inferred one when there is one, else
    /// `queued` while a launcher says the task waits (a pending cluster
    /// job), else the stored one.
    pub fn shown_state(&self) -> &'static str {
        match self.inferred.name() {
            Some(i) => i,
            None if self.queued().is_some() => "queued",
            None => self.status.status.as_str(),
        }
    }

    /// Why the task waits for its launcher ([`runner::queued`]).
    pub fn queued(&self) -> Option<String> {
        runner::queued(&self.status)
    }

    /// The host the task runs or ran on, when a launcher records one.
    pub fn node(&self) -> Option<&str> {
        runner::node(&self.status)
    }

    /// Where to look when something is wrong: the log, else the status file.
    pub fn look_at(&self) -> &Path {
        self.status.log_file.as_deref().unwrap_or(&self.file)
    }

    /// How its finish is told ([`told`]); `None` while it runs.
    pub fn told(&self) -> Option<(&'static str, String)> {
        told(&self.status, self.duration_seconds)
    }

    /// The phase to show. A completed task whose agent never reported a
    /// phase still holds one its runner recorded (`running`), which would read
    /// as unfinished: it shows none.
    pub fn phase(&self) -> Option<&str> {
        let p = self.status.phase.as_deref()?;
        (self.status.status != State::Completed || !phase::RUNNER.contains(&p)).then_some(p)
    }
}

/// A task as `po-watch --json` and po-serve give it: stable field names.
impl Serialize for TaskView {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            agent_id: &'a str,
            label: &'a str,
            title: &'a str,
            state: State,
            #[serde(flatten)]
            inferred: &'a Inferred,
            wave: u32,
            phase: Option<&'a str>,
            progress: Option<u8>,
            duration_seconds: Option<f64>,
            branch: Option<&'a str>,
            pr_number: Option<u64>,
            pr_url: Option<&'a str>,
            cost_usd: Option<f64>,
            previous_cost_usd: Option<f64>,
            model: Option<&'a str>,
            turns: Option<u64>,
            input_tokens: Option<u64>,
            output_tokens: Option<u64>,
            error: Option<&'a str>,
            attempt: u32,
            log_file: Option<&'a Path>,
            queued: Option<String>,
            node: Option<&'a str>,
            runner_id: Option<String>,
            runner: Option<String>,
            #[serde(with = "opt_rfc3339")]
            start_time: Option<Timestamp>,
            #[serde(with = "opt_rfc3339")]
            last_update: Option<Timestamp>,
            #[serde(with = "opt_rfc3339")]
            completion_time: Option<Timestamp>,
            file: &'a Path,
        }
        let s = &self.status;
        Json {
            agent_id: &s.agent_id,
            label: &self.label,
            title: &s.title,
            state: s.status,
            inferred: &self.inferred,
            wave: s.wave,
            phase: self.phase(),
            progress: s.progress_percentage,
            duration_seconds: self.duration_seconds,
            branch: s.branch.as_deref(),
            pr_number: s.pr_number,
            pr_url: s.pr_url.as_deref(),
            cost_usd: s.metrics.cost_usd,
            previous_cost_usd: s.metrics.previous_cost_usd,
            model: s.metrics.model.as_deref(),
            turns: s.metrics.turns,
            input_tokens: s.metrics.input_tokens,
            output_tokens: s.metrics.output_tokens,
            error: s.error.as_deref(),
            attempt: s.attempt,
            log_file: s.log_file.as_deref(),
            queued: self.queued(),
            node: self.node(),
            runner_id: runner::runner_id(s),
            runner: runner::shown(s),
            start_time: s.start_time,
            last_update: s.last_update,
            completion_time: s.completion_time,
            file: &self.file,
        }
        .serialize(ser)
    }
}

/// What readers flag besides the stored states, counted: `stalled` (and not
/// orphaned), `orphaned`, `queued` (waiting for a launcher, nothing
/// inferred), and `unreadable` files.
pub fn flagged(tasks: &[&TaskView], unreadable: usize) -> [(&'static str, usize); 4] {
    [
        (
            "stalled",
            tasks
                .iter()
                .filter(|t| t.inferred.stalled && !t.inferred.orphaned)
                .count(),
        ),
        (
            "orphaned",
            tasks.iter().filter(|t| t.inferred.orphaned).count(),
        ),
        (
            "queued",
            tasks
                .iter()
                .filter(|t| t.inferred.name().is_none() && t.queued().is_some())
                .count(),
        ),
        ("unreadable", unreadable),
    ]
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
#[derive(Clone, Debug, PartialEq)]
pub struct OrchestrationView {
    /// From `orchestration.json`, else the directory's name.
    pub id: String,
    pub dir: PathBuf,
    pub title: Option<String>,
    /// `orchestration.json`, when it exists and parses.
    pub orchestration: Option<Arc<Orchestration>>,
    /// In agent order.
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

    /// The task with this agent id.
    pub fn task(&self, agent_id: &str) -> Option<&TaskView> {
        self.tasks().find(|t| t.status.agent_id == agent_id)
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

/// Reads orchestration directories.
///
/// [`Reader::new`] reads everything afresh each time and probes the liveness
/// lock of running tasks (`orphaned`); [`Reader::watching`] also infers
/// `stalled` and keeps the inode cache, for readers that read again and again.
pub struct Reader {
    stall_after: Option<Duration>,
    liveness: Option<Liveness>,
    cache: Option<Cache>,
    /// Widens the window between reading a file and probing its lock (tests).
    #[cfg(test)]
    probe_delay: Option<Duration>,
}

/// Parsed files by version, so an unchanged file is not parsed again.
#[derive(Default)]
struct Cache {
    status: HashMap<PathBuf, (FileKey, Parsed)>,
    orchestration: HashMap<PathBuf, (FileKey, Option<Arc<Orchestration>>)>,
}

impl Default for Reader {
    fn default() -> Self {
        Reader::new()
    }
}

impl Reader {
    /// A one-off reader: parses every file, infers `orphaned`.
    pub fn new() -> Reader {
        Reader {
            stall_after: None,
            liveness: Some(Liveness::default()),
            cache: None,
            #[cfg(test)]
            probe_delay: None,
        }
    }

    /// A reader that reads repeatedly: it infers `stalled` after
    /// `stall_after` too, and re-parses only files that changed.
    pub fn watching(stall_after: Duration) -> Reader {
        Reader {
            stall_after: Some(stall_after),
            cache: Some(Cache::default()),
            ..Reader::new()
        }
    }

    /// The same reader for one reading only: it keeps no parsed file for a
    /// next one.
    pub fn once(self) -> Reader {
        Reader {
            cache: None,
            ..self
        }
    }

    /// A reader that infers nothing (the scheduler knows its runners).
    pub fn plain() -> Reader {
        Reader {
            liveness: None,
            ..Reader::new()
        }
    }

    /// Read every status file of `dir`.
    pub fn read(&mut self, dir: &Path) -> OrchestrationView {
        let mut view = self.header(dir);
        match layout::status_files(dir) {
            Ok(files) => self.fill(&mut view, files),
            Err(e) => view.problem = Some(e.to_string()),
        }
        view
    }

    /// Read the status files `files` of `dir` only.
    pub fn read_files(&mut self, dir: &Path, files: &[PathBuf]) -> OrchestrationView {
        let mut view = self.header(dir);
        self.fill(&mut view, files.to_vec());
        view
    }

    /// Read one status file.
    pub fn read_one(&mut self, file: &Path) -> Row {
        self.row(file.to_path_buf(), SystemTime::now(), crate::timefmt::now())
    }

    fn header(&mut self, dir: &Path) -> OrchestrationView {
        let orchestration = self.orchestration(dir);
        OrchestrationView {
            id: orchestration
                .as_ref()
                .map(|o| o.id.clone())
                .unwrap_or_else(|| dir_name(dir)),
            title: orchestration.as_ref().and_then(|o| o.title.clone()),
            orchestration,
            dir: dir.to_path_buf(),
            rows: Vec::new(),
            problem: None,
        }
    }

    fn fill(&mut self, view: &mut OrchestrationView, files: Vec<PathBuf>) {
        let now_sys = SystemTime::now();
        let now = crate::timefmt::now();
        for file in files {
            let row = self.row(file, now_sys, now);
            view.rows.push(row);
        }
        if let Some(cache) = &mut self.cache {
            let present: std::collections::HashSet<&Path> =
                view.rows.iter().map(Row::file).collect();
            let dir = view.dir.as_path();
            cache
                .status
                .retain(|p, _| p.parent() != Some(dir) || present.contains(p.as_path()));
        }
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
            let orphaned = status.status == State::InProgress
                && self.liveness.as_mut().is_some_and(|l| {
                    l.is_orphaned(&file, key.map(|k| (k.ino, k.mtime, k.mtime_nsec)))
                });
            let inferred = if orphaned {
                let still = fs::metadata(&file).ok().map(|m| FileKey::of(&m));
                if still != key && tries < 5 {
                    continue;
                }
                Inferred::orphaned()
            } else {
                match self.stall_after {
                    Some(window) if status.status == State::InProgress => {
                        super::infer::stall(&status, &file, window, now_sys)
                    }
                    _ => Inferred::none(),
                }
            };
            return Row::Task(Box::new(TaskView::of(status, file, inferred, now)));
        }
    }

    /// `orchestration.json` of `dir` (parsed again only when it changed: it
    /// holds the master issue's whole text).
    fn orchestration(&mut self, dir: &Path) -> Option<Arc<Orchestration>> {
        let file = dir.join(ORCHESTRATION_FILE);
        let meta = fs::metadata(&file).ok()?;
        let key = FileKey::of(&meta);
        if let Some(cache) = &self.cache
            && let Some((k, o)) = cache.orchestration.get(&file)
            && *k == key
        {
            return o.clone();
        }
        let parsed = match store::read_json::<Orchestration>(&file) {
            Ok(o) => Some(Arc::new(o)),
            Err(e) => {
                tracing::warn!("failed to {e}");
                None
            }
        };
        if let Some(cache) = &mut self.cache {
            cache.orchestration.insert(file, (key, parsed.clone()));
        }
        parsed
    }

    /// Parse `file` (or reuse the last parse of the same version) and say
    /// which version was read. The file is opened once and its version
    /// taken from the open file: status files are replaced whole, by
    /// rename, so what is read is that version.
    fn parse(&mut self, file: &Path) -> (Parsed, Option<FileKey>) {
        let (mut open, meta) = match fsx::open_versioned(file) {
            Ok(o) => o,
            Err(e) => return (Err(Error::io("read", file)(e).to_string()), None),
        };
        let key = FileKey::of(&meta);
        if let Some(cache) = &self.cache
            && let Some((k, parsed)) = cache.status.get(file)
            && *k == key
        {
            return (parsed.clone(), Some(key));
        }
        let parsed = match fsx::read_sized(&mut open, meta.len(), fsx::STATE_MAX) {
            Ok(bytes) => match store::parse_json::<AgentStatus>(file, &bytes) {
                Ok(s) => Ok(s),
                Err(Error::BadStatus { detail, .. }) => Err(detail),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(Error::io("read", file)(e).to_string()),
        };
        drop(open);
        if let Some(cache) = &mut self.cache {
            cache
                .status
                .insert(file.to_path_buf(), (key, parsed.clone()));
        }
        (parsed, Some(key))
    }
}

/// The directory's name, the id when `orchestration.json` cannot say.
fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// The name a task is shown by: its manifest id when it has one, else its
/// agent id.
pub fn label(s: &AgentStatus) -> String {
    s.task_id
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or(&s.agent_id)
        .to_string()
}

/// How long the task's current attempt ran, in seconds: the recorded
/// duration, else from its start to its end (to `now` while it runs).
pub fn duration(s: &AgentStatus, now: Timestamp) -> Option<f64> {
    if let Some(d) = s.metrics.duration_seconds {
        return Some(d.max(0.0));
    }
    let start = s.start_time?;
    let end = match s.status {
        State::InProgress => now,
        st if st.is_terminal() => s.completion_time.or(s.last_update)?,
        _ => return None,
    };
    Some(lifecycle::seconds_between(start, end))
}

/// How a finished task is told, the same way by every tool: a mark and a
/// phrase, e.g. (`✅`, `completed → PR #12 (3m 05s)`) or
/// (`❌`, `failed after 28m: tests did not pass`). `None` while it runs.
pub fn told(s: &AgentStatus, duration: Option<f64>) -> Option<(&'static str, String)> {
    let after = duration
        .filter(|d| *d >= 1.0)
        .map(|d| format!(" after {}", timefmt::human_duration(d)))
        .unwrap_or_default();
    let error = s
        .error
        .as_deref()
        .and_then(|e| e.lines().next())
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let with = |detail: Option<&str>| match detail {
        Some(d) => format!(": {d}"),
        None => String::new(),
    };
    Some(match s.status {
        State::Pending | State::InProgress => return None,
        State::Completed => {
            let dur = duration
                .map(|d| format!(" ({})", timefmt::human_duration(d)))
                .unwrap_or_default();
            match s.pr_number {
                Some(pr) => ("✅", format!("completed → PR #{pr}{dur}")),
                None => ("✅", format!("completed{dur}")),
            }
        }
        State::Failed => ("❌", format!("failed{after}{}", with(error))),
        State::TimedOut => ("⏱️", format!("timed out{after}{}", with(error))),
        State::Cancelled => {
            let reason = error.map(|e| e.strip_prefix("cancelled:").unwrap_or(e).trim());
            (
                "🚫",
                format!("cancelled{}", with(reason.filter(|r| !r.is_empty()))),
            )
        }
    })
}

/// The gist of an error for titles, tables and checklists: its first line,
/// without a trailing `; log: PATH` (shown elsewhere).
pub fn error_gist(error: &str) -> String {
    let first = error.lines().next().unwrap_or("").trim();
    match first.rfind("; log: ") {
        Some(i) if i > 0 => first[..i].trim_end().to_string(),
        _ => first.to_string(),
    }
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
        let mut reader = Reader::watching(std::time::Duration::from_secs(3600));
        reader.probe_delay = Some(std::time::Duration::from_millis(2));
        let mut running_seen = 0;
        while !runner.is_finished() {
            let view = reader.read(dir.path());
            for t in view.tasks() {
                assert!(!t.inferred.orphaned, "a finishing task was shown orphaned");
                running_seen += usize::from(t.state() == State::InProgress);
            }
        }
        stop.store(true, Ordering::SeqCst);
        runner.join().unwrap();
        assert!(running_seen > 0, "the reader never saw the task running");
    }

    #[test]
    fn every_finish_is_told_in_one_vocabulary() {
        let mut s = AgentStatus::new("agent-1", "7");
        assert_eq!(told(&s, None), None);
        s.status = State::Completed;
        s.pr_number = Some(1240);
        assert_eq!(
            told(&s, Some(765.0)).unwrap(),
            ("✅", "completed → PR #1240 (12m 45s)".to_string())
        );
        s.status = State::Failed;
        s.error = Some("Test timeout".into());
        assert_eq!(
            told(&s, Some(1680.0)).unwrap(),
            ("❌", "failed after 28m 00s: Test timeout".to_string())
        );
        s.status = State::TimedOut;
        s.error = Some("--timeout 2 reached; worktree kept".into());
        assert_eq!(
            told(&s, Some(2.0)).unwrap().1,
            "timed out after 2s: --timeout 2 reached; worktree kept"
        );
        s.error = Some("stalled: no output for 5s".into());
        assert_eq!(
            told(&s, Some(9.0)).unwrap().1,
            "timed out after 9s: stalled: no output for 5s"
        );
        s.status = State::Cancelled;
        s.error = Some("cancelled: dependency agent-2 failed".into());
        assert_eq!(
            told(&s, None).unwrap(),
            ("🚫", "cancelled: dependency agent-2 failed".to_string())
        );
    }

    #[test]
    fn error_gists_drop_the_log_path() {
        assert_eq!(
            error_gist("agent exited with status 3: boom; log: /tmp/a.log\nmore"),
            "agent exited with status 3: boom"
        );
        assert_eq!(error_gist("; log: x"), "; log: x");
    }

    #[test]
    fn labels_and_durations_are_computed_one_way() {
        let mut s = AgentStatus::new("agent-3", "7");
        assert_eq!(label(&s), "agent-3");
        s.task_id = Some("  ".into());
        assert_eq!(label(&s), "agent-3");
        s.task_id = Some("task-001-users".into());
        assert_eq!(label(&s), "task-001-users");

        let t0 = timefmt::now();
        assert_eq!(duration(&s, t0), None);
        s.status = State::InProgress;
        s.start_time = Some(t0);
        assert_eq!(duration(&s, t0 + chrono::Duration::seconds(5)), Some(5.0));
        s.status = State::Failed;
        s.completion_time = Some(t0 - chrono::Duration::seconds(1));
        assert_eq!(
            duration(&s, t0),
            Some(0.0),
            "a clock step is never negative"
        );
        s.metrics.duration_seconds = Some(12.5);
        assert_eq!(duration(&s, t0), Some(12.5));
    }
}
