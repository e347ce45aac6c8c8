//! The progress `cpo run` prints while po-spawn works, read from the
//! protocol: the status files (a task starts, a task finishes) and the
//! waves' results in `orchestration.json` (a validation runs, passes,
//! fails). Nothing is taken from po-spawn's console.
//!
//! ```text
//! Wave 1:
//!   task-001-users: RUNNING
//! ✅ task-001-users completed (12m 45s)
//! 🔎 Wave 1 validation: pytest
//! ✅ Wave 1 validation passed
//! ```

use std::collections::{HashMap, HashSet};

use crate::protocol::view::{OrchestrationView, TaskView};
use crate::protocol::{State, WaveState};
use crate::text::printable;
use crate::timefmt::Timestamp;

/// What tells one run of a task from another.
type Stamp = (u32, Option<Timestamp>, Option<Timestamp>);

fn stamp(t: &TaskView) -> Stamp {
    (
        t.status.attempt,
        t.status.start_time,
        t.status.completion_time,
    )
}

/// Turns successive readings of one orchestration into the lines a person
/// reads. The first reading is the baseline: what had finished before this
/// run is not told again.
#[derive(Default)]
pub struct Progress {
    /// Per task: its attempt, start and end in the baseline reading.
    before: HashMap<String, Stamp>,
    started: bool,
    /// (task, attempt) told RUNNING / told finished.
    running: HashSet<(String, u32)>,
    finished: HashSet<(String, u32)>,
    /// The wave whose header was printed last.
    wave: Option<u32>,
    /// Wave results seen (in the baseline, or told since), by wave.
    waves: HashMap<u32, (WaveState, Option<Timestamp>)>,
    /// Waves whose validation command was announced.
    validating: HashSet<u32>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }

    /// The lines for what changed since the last reading.
    pub fn lines(&mut self, view: &OrchestrationView) -> Vec<String> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            for t in view.tasks() {
                self.before.insert(t.status.agent_id.clone(), stamp(t));
            }
            for w in view.orchestration.iter().flat_map(|o| &o.waves) {
                if let Some(r) = &w.result {
                    self.waves.insert(w.number, (r.state, r.time));
                }
            }
        }
        let mut tasks: Vec<&TaskView> = view.tasks().collect();
        tasks.sort_by_key(|t| (t.status.wave, t.status.number()));
        for t in tasks {
            if !self.ran_here(t) {
                continue;
            }
            let key = (t.status.agent_id.clone(), t.status.attempt);
            if t.status.start_time.is_some() && !self.running.contains(&key) {
                if self.wave != Some(t.status.wave) {
                    if self.wave.is_some() {
                        out.push(String::new());
                    }
                    out.push(format!("Wave {}:", t.status.wave));
                    self.wave = Some(t.status.wave);
                }
                out.push(format!("  {}: RUNNING", printable(&t.label)));
                self.running.insert(key.clone());
            }
            if t.state().is_terminal()
                && !self.finished.contains(&key)
                && let Some((mark, phrase)) = t.told()
            {
                out.push(format!(
                    "{mark} {} {}",
                    printable(&t.label),
                    printable(&phrase)
                ));
                self.finished.insert(key);
            }
        }
        out.extend(self.wave_lines(view));
        out
    }

    /// Whether the task runs or ended in this run (not merely before it),
    /// so it is told.
    fn ran_here(&self, t: &TaskView) -> bool {
        match t.state() {
            State::Pending => false,
            State::InProgress => true,
            _ => self.before.get(&t.status.agent_id) != Some(&stamp(t)),
        }
    }

    /// Validation lines from the waves' results.
    fn wave_lines(&mut self, view: &OrchestrationView) -> Vec<String> {
        let mut out = Vec::new();
        let Some(orch) = &view.orchestration else {
            return out;
        };
        for w in &orch.waves {
            let Some(result) = &w.result else { continue };
            let seen = (result.state, result.time);
            if self.waves.get(&w.number) == Some(&seen) {
                continue;
            }
            self.waves.insert(w.number, seen);
            if let Some(cmd) = &w.validation
                && self.validating.insert(w.number)
            {
                out.push(format!("🔎 Wave {} validation: {cmd}", w.number));
            }
            match result.state {
                WaveState::Validating => {}
                WaveState::Passed if w.validation.is_some() => {
                    out.push(format!("✅ Wave {} validation passed", w.number));
                }
                WaveState::Passed => {}
                WaveState::Failed => out.push(format!(
                    "❌ Wave {} failed: {}",
                    w.number,
                    printable(result.error.as_deref().unwrap_or("no error recorded"))
                )),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::lifecycle::{self, Outcome, Start};
    use crate::protocol::view::Reader;
    use crate::protocol::{AgentStatus, layout, store};

    fn task(dir: &std::path::Path, n: u64, wave: u32, id: &str) -> std::path::PathBuf {
        let mut s = AgentStatus::new(format!("agent-{n}"), "T");
        s.wave = wave;
        s.task_id = Some(id.into());
        let p = layout::status_path(dir, &s.agent_id);
        store::write_status(&p, &s).unwrap();
        p
    }

    #[test]
    fn tasks_are_told_as_they_start_and_finish_wave_by_wave() {
        let dir = tempfile::tempdir().unwrap();
        let a = task(dir.path(), 1, 1, "task-001-users");
        let b = task(dir.path(), 2, 2, "task-002-orders");
        let mut reader = Reader::new();
        let mut p = Progress::new();
        assert!(p.lines(&reader.read(dir.path())).is_empty());
        lifecycle::start(&a, &Start::default()).unwrap();
        assert_eq!(
            p.lines(&reader.read(dir.path())),
            ["Wave 1:", "  task-001-users: RUNNING"]
        );
        lifecycle::finish(&a, Outcome::of(State::Completed, None)).unwrap();
        // b went from pending to failed between two readings: still told.
        lifecycle::fail(&b, "setup", "setup command failed").unwrap();
        let lines = p.lines(&reader.read(dir.path()));
        assert_eq!(
            lines,
            [
                "✅ task-001-users completed (0s)",
                "❌ task-002-orders failed: setup command failed"
            ],
            "a task that never started is not told RUNNING"
        );
        let c = task(dir.path(), 3, 2, "task-003-admin");
        lifecycle::start(&c, &Start::default()).unwrap();
        assert_eq!(
            p.lines(&reader.read(dir.path())),
            ["", "Wave 2:", "  task-003-admin: RUNNING"]
        );
        assert!(p.lines(&reader.read(dir.path())).is_empty(), "told once");
    }

    #[test]
    fn what_finished_before_the_run_is_not_told_but_a_retry_is() {
        let dir = tempfile::tempdir().unwrap();
        let a = task(dir.path(), 1, 1, "a");
        let b = task(dir.path(), 2, 1, "b");
        lifecycle::start(&a, &Start::default()).unwrap();
        lifecycle::finish(&a, Outcome::of(State::Completed, None)).unwrap();
        lifecycle::start(&b, &Start::default()).unwrap();
        lifecycle::finish(&b, Outcome::of(State::Failed, Some("boom".into()))).unwrap();
        let mut reader = Reader::new();
        let mut p = Progress::new();
        assert!(p.lines(&reader.read(dir.path())).is_empty());
        lifecycle::retry(&b, crate::cost::attempt_cost).unwrap();
        lifecycle::start(&b, &Start::default()).unwrap();
        lifecycle::finish(&b, Outcome::of(State::Completed, None)).unwrap();
        assert_eq!(
            p.lines(&reader.read(dir.path())),
            ["Wave 1:", "  b: RUNNING", "✅ b completed (0s)"]
        );
    }
}
