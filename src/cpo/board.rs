//! `cpo status DIR`: each wave's tasks with their states, from the status
//! files (`RUNNING` in the document's words; `orphaned` when nobody holds a
//! running task's liveness lock). Reads only; changes nothing.

use std::collections::BTreeMap;
use std::path::Path;

use super::plan::Plan;
use super::report::{self, TaskResult};
use super::{ParallelDir, Tools};
use crate::error::{Result, exit};
use crate::protocol::{State, phase};
use crate::timefmt;

pub fn command(tools: &Tools, dir: &Path, json: bool, id: Option<&str>) -> Result<i32> {
    let pd = ParallelDir::open(dir)?;
    let plan = Plan::load(&pd.path)?;
    let id = plan.orchestration_id(id)?;
    let runtime = tools.runtime()?;
    let mut orch = runtime.orchestration_dir(&id);
    if !orch.is_dir() {
        // Run from another directory or with --runtime-dir: the report knows.
        if let Some(recorded) = recorded_orchestration(&pd) {
            orch = recorded;
        }
    }
    let tasks = report::collect(&plan, Some(&orch))?;
    if json {
        let value = serde_json::json!({
            "orchestration_id": id,
            "orchestration_dir": orch,
            "totals": report::totals(&tasks),
            "tasks": tasks,
        });
        crate::out::println(&serde_json::to_string_pretty(&value).unwrap_or_default())?;
        return Ok(exit::SUCCESS);
    }
    crate::out::print(&render(&pd, &plan, &id, &orch, &tasks))?;
    Ok(exit::SUCCESS)
}

pub(crate) fn recorded_orchestration(pd: &ParallelDir) -> Option<std::path::PathBuf> {
    let text = crate::fsx::read_to_string(&pd.report(), crate::fsx::STATE_MAX).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let dir = std::path::PathBuf::from(value.get("orchestration_dir")?.as_str()?);
    dir.is_dir().then_some(dir)
}

/// The document's state words.
pub fn label(r: &TaskResult) -> String {
    match r.state() {
        Some(State::Pending) => "PENDING".into(),
        Some(State::InProgress) if r.orphaned => "RUNNING (orphaned: no live supervisor)".into(),
        Some(State::InProgress) => "RUNNING".into(),
        Some(State::Completed) => "COMPLETED".into(),
        Some(State::Failed) => "FAILED".into(),
        Some(State::TimedOut) => "TIMED OUT".into(),
        Some(State::Cancelled) => "CANCELLED".into(),
        None => r.status.replace('_', " ").to_uppercase(),
    }
}

fn detail(r: &TaskResult) -> String {
    let mut parts = Vec::new();
    match r.state() {
        Some(State::InProgress) => {
            if let Some(p) = r.progress_percentage {
                parts.push(format!("{p}%"));
            }
            if let Some(ph) = r
                .phase
                .as_ref()
                .filter(|p| !p.eq_ignore_ascii_case(phase::RUNNING))
            {
                parts.push(ph.clone());
            }
        }
        Some(s) if s.is_terminal() => {
            if let Some(d) = r.duration_seconds {
                parts.push(timefmt::human_duration(d));
            }
            if let Some(c) = r.commits {
                parts.push(format!("{c} commit{}", if c == 1 { "" } else { "s" }));
            }
            if let Some(pr) = r.pr_number {
                parts.push(format!("PR #{pr}"));
            }
            if r.attempt > 1 {
                parts.push(format!("attempt {}", r.attempt));
            }
        }
        _ => {}
    }
    let mut out = if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    };
    if r.state()
        .is_some_and(|s| s.is_terminal() && s != State::Completed)
        || r.status == "unreadable"
    {
        if let Some(e) = &r.error {
            out.push_str(&format!(": {e}"));
        }
        if let Some(log) = &r.log_file {
            out.push_str(&format!(" [log: {}]", log.display()));
        }
    }
    out
}

pub fn render(
    pd: &ParallelDir,
    plan: &Plan,
    id: &str,
    orch: &Path,
    tasks: &[TaskResult],
) -> String {
    let mut out = format!(
        "{}{}: orchestration {id}\n",
        plan.tech_spec_id.as_deref().unwrap_or(id),
        plan.name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    let started = orch.is_dir() && tasks.iter().any(|t| t.status != "not_started");
    if !started {
        out.push_str(&format!(
            "Not started: run 'cpo run {}'\n",
            pd.shown.display()
        ));
    }
    let mut waves: BTreeMap<u32, Vec<&TaskResult>> = BTreeMap::new();
    for t in tasks {
        waves.entry(t.wave).or_default().push(t);
    }
    for (number, list) in &waves {
        if *number == 0 {
            out.push_str("\nOther status files:\n");
        } else {
            out.push_str(&format!("\nWave {number}:\n"));
        }
        for t in list {
            let word = if t.status == "not_started" {
                "NOT STARTED".to_string()
            } else {
                label(t)
            };
            out.push_str(&format!("  {}: {word}{}\n", t.id, detail(t)));
        }
    }
    let totals = report::totals(tasks);
    out.push_str(&format!(
        "\nCompleted: {}/{} tasks\nFailed: {}\n",
        totals.completed,
        totals.tasks,
        crate::text::count(totals.failed_only(), "task")
    ));
    for (n, what) in [
        (totals.timed_out, "Timed out"),
        (totals.cancelled, "Cancelled"),
    ] {
        if n > 0 {
            out.push_str(&format!("{what}: {}\n", crate::text::count(n, "task")));
        }
    }
    if started {
        let running = tasks
            .iter()
            .filter(|t| t.state() == Some(State::InProgress))
            .count();
        if running > 0 {
            out.push_str(&format!("Running: {running} tasks\n"));
        }
        out.push_str(&format!("Logs: {}/\n", pd.shown_join(super::LOGS)));
        if pd.report().is_file() {
            out.push_str(&format!("Report: {}\n", pd.shown_join(super::REPORT)));
        }
    }
    out
}
