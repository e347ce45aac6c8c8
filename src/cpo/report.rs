//! Per-task results from the status files, and `DIR/report.json`: what ran,
//! how each task ended, and the totals, for people and for CI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::plan::Plan;
use crate::error::Result;
use crate::protocol::view::{Reader, Row, TaskView};
use crate::protocol::{State, store};
use crate::timefmt::{self, Timestamp};

/// One task as the status files know it.
#[derive(Clone, Debug, Serialize)]
pub struct TaskResult {
    /// The manifest's task id (`task-001-users`).
    pub id: String,
    pub agent_id: String,
    pub wave: u32,
    /// `pending`, `in_progress`, `completed`, `failed`, `timed_out`, `cancelled`;
    /// `not_started` when no status file exists yet; `unreadable`.
    pub status: String,
    pub attempt: u32,
    pub phase: Option<String>,
    pub progress_percentage: Option<u8>,
    pub branch: Option<String>,
    pub worktree: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    pub start_time: Option<String>,
    pub completion_time: Option<String>,
    pub duration_seconds: Option<f64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub commits: Option<u64>,
    pub files_changed: Option<u64>,
    pub lines_added: Option<u64>,
    pub lines_removed: Option<u64>,
    pub cost_usd: Option<f64>,
    pub pr_number: Option<u64>,
    pub pr_url: Option<String>,
    pub status_file: Option<PathBuf>,
    /// In progress, but nobody holds its liveness lock.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub orphaned: bool,
}

impl TaskResult {
    fn from_view(t: &TaskView) -> TaskResult {
        let s = &t.status;
        TaskResult {
            id: t.label.clone(),
            agent_id: s.agent_id.clone(),
            wave: s.wave,
            status: s.status.as_str().to_string(),
            attempt: s.attempt,
            phase: s.phase.clone(),
            progress_percentage: s.progress_percentage,
            branch: s.branch.clone(),
            worktree: s.worktree.clone(),
            log_file: s.log_file.clone(),
            start_time: s.start_time.as_ref().map(timefmt::format),
            completion_time: s.completion_time.as_ref().map(timefmt::format),
            duration_seconds: t.duration_seconds,
            exit_code: s.exit_code,
            error: s.error.clone(),
            commits: s.metrics.commits,
            files_changed: s.metrics.files_changed,
            lines_added: s.metrics.lines_added,
            lines_removed: s.metrics.lines_removed,
            cost_usd: s.metrics.cost_usd,
            pr_number: s.pr_number,
            pr_url: s.pr_url.clone(),
            status_file: Some(t.file.clone()),
            orphaned: t.inferred.orphaned,
        }
    }

    fn placeholder(id: &str, wave: u32, status: &str) -> TaskResult {
        TaskResult {
            id: id.to_string(),
            agent_id: String::new(),
            wave,
            status: status.to_string(),
            attempt: 0,
            phase: None,
            progress_percentage: None,
            branch: None,
            worktree: None,
            log_file: None,
            start_time: None,
            completion_time: None,
            duration_seconds: None,
            exit_code: None,
            error: None,
            commits: None,
            files_changed: None,
            lines_added: None,
            lines_removed: None,
            cost_usd: None,
            pr_number: None,
            pr_url: None,
            status_file: None,
            orphaned: false,
        }
    }

    pub fn state(&self) -> Option<State> {
        self.status.parse().ok()
    }
}

/// Every task of the plan, in wave order, with what the orchestration
/// directory `orch` (if it exists) says about it. Tasks the status files
/// have but the plan does not (an edited manifest) come last.
pub fn collect(plan: &Plan, orch: Option<&Path>) -> Result<Vec<TaskResult>> {
    let mut by_task: BTreeMap<String, TaskResult> = BTreeMap::new();
    let mut extra = Vec::new();
    if let Some(dir) = orch.filter(|d| d.is_dir()) {
        let view = Reader::new().read(dir);
        if let Some(p) = view.problem {
            return Err(crate::error::Error::system(p));
        }
        for row in &view.rows {
            match row {
                Row::Task(t) => {
                    let r = TaskResult::from_view(t);
                    if plan.tasks().any(|(_, pt)| pt.id == r.id) {
                        by_task.insert(r.id.clone(), r);
                    } else {
                        extra.push(r);
                    }
                }
                Row::Bad(b) => {
                    let mut r = TaskResult::placeholder(&row.label(), 0, "unreadable");
                    r.error = Some(format!(
                        "failed to read status file {}: {}",
                        b.file.display(),
                        b.problem
                    ));
                    r.status_file = Some(b.file.clone());
                    extra.push(r);
                }
            }
        }
    }
    let mut out: Vec<TaskResult> = plan
        .tasks()
        .map(|(w, t)| {
            by_task
                .remove(&t.id)
                .unwrap_or_else(|| TaskResult::placeholder(&t.id, w.number, "not_started"))
        })
        .collect();
    out.extend(extra);
    Ok(out)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    pub tasks: usize,
    pub completed: usize,
    /// Ended without completing: failed, timed out or cancelled.
    pub failed: usize,
    pub timed_out: usize,
    pub cancelled: usize,
    /// Not finished: pending, running, not started or unreadable.
    pub not_finished: usize,
    pub success_rate: f64,
}

impl Totals {
    /// Failed, neither timed out nor cancelled: what a closing block shows
    /// beside those two, so the lines add up.
    pub fn failed_only(&self) -> usize {
        self.failed - self.timed_out - self.cancelled
    }
}

pub fn totals(tasks: &[TaskResult]) -> Totals {
    let mut t = Totals {
        tasks: tasks.len(),
        ..Totals::default()
    };
    for r in tasks {
        match r.state() {
            Some(State::Completed) => t.completed += 1,
            Some(State::Failed) => t.failed += 1,
            Some(State::TimedOut) => {
                t.failed += 1;
                t.timed_out += 1
            }
            Some(State::Cancelled) => {
                t.failed += 1;
                t.cancelled += 1
            }
            _ => t.not_finished += 1,
        }
    }
    t.success_rate = if t.tasks == 0 {
        0.0
    } else {
        (t.completed as f64 * 1000.0 / t.tasks as f64).round() / 10.0
    };
    t
}

/// `DIR/report.json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub tech_spec_id: Option<String>,
    pub name: Option<String>,
    pub orchestration_id: String,
    pub orchestration_dir: PathBuf,
    pub parallel_dir: PathBuf,
    pub logs_dir: PathBuf,
    pub started_at: String,
    pub finished_at: String,
    pub duration_seconds: f64,
    /// po-spawn's exit code, which `cpo run` exits with.
    pub exit_code: i32,
    pub totals: Totals,
    pub waves: Vec<ReportWave>,
    pub tasks: Vec<TaskResult>,
}

#[derive(Debug, Serialize)]
pub struct ReportWave {
    pub number: u32,
    pub tasks: Vec<String>,
    pub completed: usize,
    pub validation: Option<String>,
}

pub struct RunFacts<'a> {
    pub plan: &'a Plan,
    pub id: &'a str,
    pub orch: &'a Path,
    pub parallel_dir: &'a Path,
    pub logs_dir: &'a Path,
    pub started: Timestamp,
    pub exit_code: i32,
}

pub fn build(facts: &RunFacts<'_>, tasks: Vec<TaskResult>) -> Report {
    let finished = timefmt::now();
    let waves = facts
        .plan
        .waves
        .iter()
        .map(|w| {
            let ids: Vec<String> = w.tasks.iter().map(|t| t.id.clone()).collect();
            let completed = tasks
                .iter()
                .filter(|r| ids.contains(&r.id) && r.state() == Some(State::Completed))
                .count();
            ReportWave {
                number: w.number,
                tasks: ids,
                completed,
                validation: w.validation.clone(),
            }
        })
        .collect();
    Report {
        tech_spec_id: facts.plan.tech_spec_id.clone(),
        name: facts.plan.name.clone(),
        orchestration_id: facts.id.to_string(),
        orchestration_dir: facts.orch.to_path_buf(),
        parallel_dir: facts.parallel_dir.to_path_buf(),
        logs_dir: facts.logs_dir.to_path_buf(),
        started_at: timefmt::format(&facts.started),
        finished_at: timefmt::format(&finished),
        duration_seconds: (finished - facts.started).num_milliseconds() as f64 / 1000.0,
        exit_code: facts.exit_code,
        totals: totals(&tasks),
        waves,
        tasks,
    }
}

pub fn write(path: &Path, report: &Report) -> Result<()> {
    store::write_json(path, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AgentStatus, layout};

    #[test]
    fn totals_count_every_unfinished_ending_as_failed() {
        let mk = |s: &str| TaskResult::placeholder("t", 1, s);
        let t = totals(&[
            mk("completed"),
            mk("completed"),
            mk("failed"),
            mk("timed_out"),
            mk("pending"),
        ]);
        assert_eq!(
            (t.tasks, t.completed, t.failed, t.timed_out, t.not_finished),
            (5, 2, 2, 1, 1)
        );
        assert_eq!(t.success_rate, 40.0);
    }

    #[test]
    fn tasks_without_status_files_are_not_started() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Plan::from_value(
            &serde_json::json!({"tech_spec_id": "T", "waves": [{"number": 1, "tasks": [{"id": "a"}]}]}),
            dir.path(),
        );
        let mut s = AgentStatus::new("agent-1", "T");
        s.task_id = Some("a".into());
        s.status = State::Completed;
        let orch = dir.path().join("orch");
        std::fs::create_dir(&orch).unwrap();
        store::write_status(&layout::status_path(&orch, "agent-1"), &s).unwrap();
        let before = collect(&plan, Some(&dir.path().join("none"))).unwrap();
        assert_eq!(before[0].status, "not_started");
        let after = collect(&plan, Some(&orch)).unwrap();
        assert_eq!(
            (after[0].status.as_str(), after[0].agent_id.as_str()),
            ("completed", "agent-1")
        );
    }
}
