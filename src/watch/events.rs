//! Changes between two readings, as the seed's one-line events:
//!
//! ```text
//! [12:05] agent-1: Implementing feature (45%)
//! [12:12] agent-2: ✅ completed → PR #1241
//! ```
//!
//! or as JSON lines with stable field names. An orchestration with a budget
//! (`po-spawn --budget-usd`) also has a line when its spend moves:
//!
//! ```text
//! [12:14] 1234: 💰 spent $3.20 of $5.00 budget
//! ```

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use chrono::Local;
use serde_json::{Value, json};

use crate::cost::{self, Total};
use crate::protocol::State;
use crate::protocol::layout;
use crate::protocol::view::{OrchestrationView, Row, TaskView};
use crate::text::printable;
use crate::timefmt::{self, Timestamp, human_duration};

/// One change of one task.
#[derive(Clone, Debug)]
pub struct Event {
    /// When it changed: the status file's `last_update`, or when it was seen.
    pub time: Timestamp,
    pub orchestration: String,
    /// What the line starts with: the task label, prefixed by the
    /// orchestration id when several are watched.
    pub label: String,
    /// `started`, `progress`, `pending`, `queued`, `completed`, `failed`,
    /// `timed_out`, `cancelled`, `stalled`, `orphaned`, `unreadable` or
    /// `removed`; `spend` for the orchestration's spend against its budget.
    pub kind: &'static str,
    pub text: String,
    pub file: PathBuf,
    pub task: Option<TaskView>,
    pub problem: Option<String>,
    /// A `spend` event: the orchestration's spend and its budget.
    pub spend: Option<(Total, f64)>,
}

impl Event {
    /// `[12:05] agent-1: Implementing feature (45%)`, local time unless `utc`.
    pub fn line(&self, utc: bool) -> String {
        let hm = if utc {
            self.time.format("%H:%M").to_string()
        } else {
            self.time.with_timezone(&Local).format("%H:%M").to_string()
        };
        format!(
            "[{hm}] {}: {}",
            printable(&self.label),
            printable(&self.text)
        )
    }

    /// The event as one JSON object (one line of `--events --json`).
    pub fn json(&self) -> Value {
        let t = self.task.as_ref();
        let agent_id = match (t, &self.spend) {
            (Some(t), _) => Some(t.status.agent_id.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(layout::agent_id_of(&self.file)),
        };
        json!({
            "time": timefmt::format(&self.time),
            "orchestration": self.orchestration,
            "agent_id": agent_id,
            "label": self.label,
            "event": self.kind,
            "text": self.text,
            "state": t.map(|t| t.state().as_str()),
            "stalled": t.is_some_and(|t| t.inferred.stalled),
            "orphaned": t.is_some_and(|t| t.inferred.orphaned),
            "queued": t.and_then(|t| t.queued()),
            "node": t.and_then(|t| t.node().map(str::to_string)),
            "phase": t.and_then(|t| t.phase().map(str::to_string)),
            "progress": t.and_then(|t| t.status.progress_percentage),
            "pr_number": t.and_then(|t| t.status.pr_number),
            "pr_url": t.and_then(|t| t.status.pr_url.clone()),
            "error": t.and_then(|t| t.status.error.clone()),
            "duration_seconds": t.and_then(|t| t.duration_seconds),
            "log_file": t.and_then(|t| t.status.log_file.clone()),
            "file": self.file,
            "problem": self.problem,
            "spent_usd": self.spend.map(|(t, _)| t.spent),
            "committed_usd": self.spend.map(|(t, _)| t.committed),
            "budget_usd": self.spend.map(|(_, b)| b),
        })
    }
}

/// What a line depends on; an event is due when it differs.
#[derive(Clone, Debug, PartialEq)]
struct Sig {
    state: Option<State>,
    inferred: Option<&'static str>,
    queued: Option<String>,
    phase: Option<String>,
    progress: Option<u8>,
    pr_number: Option<u64>,
    error: Option<String>,
    attempt: u32,
    problem: Option<String>,
}

impl Sig {
    fn of(row: &Row) -> Sig {
        match row {
            Row::Task(t) => Sig {
                state: Some(t.state()),
                inferred: t.inferred.name(),
                queued: t.queued(),
                phase: t.phase().map(str::to_string),
                progress: t.status.progress_percentage,
                pr_number: t.status.pr_number,
                error: t.status.error.clone(),
                attempt: t.status.attempt,
                problem: None,
            },
            Row::Bad(b) => Sig {
                state: None,
                inferred: None,
                queued: None,
                phase: None,
                progress: None,
                pr_number: None,
                error: None,
                attempt: 0,
                problem: Some(b.problem.clone()),
            },
        }
    }
}

/// Remembers the last reading and turns each new one into events.
#[derive(Default)]
pub struct Tracker {
    last: HashMap<PathBuf, Sig>,
    /// By orchestration directory: the spend last told (spent in 1/10,000
    /// dollars, whether the budget was reached).
    spend: HashMap<PathBuf, (u64, bool)>,
    started: bool,
}

impl Tracker {
    /// Events for everything that changed since the last call. The first call
    /// reports the current state of every task once.
    pub fn changes(&mut self, views: &[OrchestrationView], prefix_ids: bool) -> Vec<Event> {
        let initial = !self.started;
        self.started = true;
        let now = timefmt::now();
        let mut events = Vec::new();
        let mut seen = HashSet::new();
        for v in views {
            for row in &v.rows {
                let file = row.file().to_path_buf();
                seen.insert(file.clone());
                let sig = Sig::of(row);
                let prev = self.last.get(&file);
                if prev == Some(&sig) {
                    continue;
                }
                let label = if prefix_ids {
                    format!("{}/{}", v.id, row.label())
                } else {
                    row.label()
                };
                let (kind, text, time) = match row {
                    Row::Task(t) => {
                        let (kind, text, inferred) = describe(prev, t, initial);
                        let time = if inferred {
                            now
                        } else {
                            t.status.last_update.unwrap_or(now)
                        };
                        (kind, text, time)
                    }
                    Row::Bad(b) => (
                        "unreadable",
                        format!("⚠️ unreadable {}: {}", b.name(), b.problem),
                        now,
                    ),
                };
                events.push(Event {
                    time,
                    orchestration: v.id.clone(),
                    label,
                    kind,
                    text,
                    file: file.clone(),
                    task: match row {
                        Row::Task(t) => Some(t.as_ref().clone()),
                        Row::Bad(_) => None,
                    },
                    problem: match row {
                        Row::Bad(b) => Some(b.problem.clone()),
                        Row::Task(_) => None,
                    },
                    spend: None,
                });
                self.last.insert(file, sig);
            }
            if let Some(e) = self.spend_event(v, now) {
                events.push(e);
            }
        }
        let dirs: HashSet<&std::path::Path> = views.iter().map(|v| v.dir.as_path()).collect();
        let gone: Vec<PathBuf> = self
            .last
            .keys()
            .filter(|p| !seen.contains(*p))
            .filter(|p| p.parent().is_some_and(|d| dirs.contains(d)))
            .cloned()
            .collect();
        for file in gone {
            self.last.remove(&file);
            let v = views
                .iter()
                .find(|v| Some(v.dir.as_path()) == file.parent())
                .expect("filtered by parent");
            let agent = layout::agent_id_of(&file);
            events.push(Event {
                time: now,
                orchestration: v.id.clone(),
                label: if prefix_ids {
                    format!("{}/{agent}", v.id)
                } else {
                    agent
                },
                kind: "removed",
                text: "removed".into(),
                file,
                task: None,
                problem: None,
                spend: None,
            });
        }
        events
    }

    /// A `spend` event when an orchestration with a budget spent more (or
    /// reached it) since the last reading. Running agents' figures move
    /// with every report: they show in the line, but do not make one.
    fn spend_event(&mut self, v: &OrchestrationView, now: Timestamp) -> Option<Event> {
        let budget = cost::budget_of(v.orchestration.as_deref()?)?;
        let total = Total::of(v.tasks().map(|t| &t.status));
        let key = ((total.spent * 1e4).round() as u64, total.sum() >= budget);
        if self.spend.insert(v.dir.clone(), key) == Some(key) {
            return None;
        }
        Some(Event {
            time: now,
            orchestration: v.id.clone(),
            label: v.id.clone(),
            kind: "spend",
            text: format!("💰 {}", total.against(budget)),
            file: v.dir.join(layout::ORCHESTRATION_FILE),
            task: None,
            problem: None,
            spend: Some((total, budget)),
        })
    }
}

/// The event kind and text for a task whose line changed, and whether the
/// change is an inference (timed by the reader, not by the file).
fn describe(prev: Option<&Sig>, t: &TaskView, initial: bool) -> (&'static str, String, bool) {
    let prev_inferred = prev.and_then(|p| p.inferred);
    match t.inferred.name() {
        Some("orphaned") if prev_inferred != Some("orphaned") => {
            return (
                "orphaned",
                format!(
                    "⚠️ orphaned: in_progress but no process holds its liveness lock; see {}",
                    t.look_at().display()
                ),
                true,
            );
        }
        Some("stalled") if prev_inferred != Some("stalled") => {
            let idle = t.inferred.idle_seconds.unwrap_or(0) as f64;
            return (
                "stalled",
                format!(
                    "⚠️ stalled: no output or update for {}; see {}",
                    human_duration(idle),
                    t.look_at().display()
                ),
                true,
            );
        }
        _ => {}
    }
    match t.state() {
        State::Pending if t.queued().is_some() => {
            let why = t.queued().unwrap_or_default();
            (
                "queued",
                format!("queued: {}", super::table::waiting(t, &why)),
                false,
            )
        }
        State::Pending => {
            let mut text = "pending".to_string();
            if t.status.attempt > 1 {
                text.push_str(&format!(" (attempt {})", t.status.attempt));
            }
            if let Some(d) = doing(t) {
                text.push_str(&format!(": {d}"));
            }
            ("pending", text, false)
        }
        State::InProgress => {
            let now_running = match prev.and_then(|p| p.state) {
                Some(s) => s != State::InProgress,
                None => !initial,
            };
            let on = t.node().map(|n| format!(" on {n}")).unwrap_or_default();
            match (now_running, doing(t)) {
                (true, Some(d)) => ("started", format!("started{on}: {d}"), false),
                (true, None) => ("started", format!("started{on}"), false),
                (false, Some(d)) => ("progress", d, false),
                (false, None) => ("progress", "in progress".into(), false),
            }
        }
        State::Completed | State::Failed | State::TimedOut | State::Cancelled => {
            let (mark, phrase) = t.told().unwrap_or(("", t.state().to_string()));
            (t.state().as_str(), format!("{mark} {phrase}"), false)
        }
    }
}

/// What the task reports doing: `Implementing feature (45%)`, `Setup`, `20%`.
fn doing(t: &TaskView) -> Option<String> {
    match (t.phase(), t.status.progress_percentage) {
        (Some(p), Some(n)) => Some(format!("{p} ({n}%)")),
        (Some(p), None) => Some(p.to_string()),
        (None, Some(n)) if n > 0 => Some(format!("{n}%")),
        _ => None,
    }
}

/// The summary's exit code once every task is terminal (the same rule as
/// po-summarize): 0 all completed, 1 at or above `threshold` percent, 2 below.
pub fn outcome_code(views: &[OrchestrationView], threshold: u32) -> i32 {
    let tasks: Vec<&TaskView> = views.iter().flat_map(|v| v.tasks()).collect();
    let done = tasks
        .iter()
        .filter(|t| t.state() == State::Completed)
        .count();
    crate::exit::by_threshold(done, tasks.len(), threshold)
}

/// Whether `--until-done` may stop: at least one task, every one terminal,
/// and no file that cannot be read (its state is unknown).
pub fn all_terminal(views: &[OrchestrationView]) -> bool {
    let rows: Vec<&Row> = views.iter().flat_map(|v| &v.rows).collect();
    !rows.is_empty()
        && rows
            .iter()
            .all(|r| matches!(r, Row::Task(t) if t.state().is_terminal()))
}
