//! The dry-run report, as the issue-driven seed shows it, and its JSON twin.

use std::fmt::Write;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::{Plan, agent_id};
use crate::text::collapse_whitespace;

/// `[3, 4]` → "Tasks 3-4"; `[1, 3, 4, 5]` → "Tasks 1, 3-5"; `[2]` → "Task 2".
pub fn tasks_phrase(ns: &[usize]) -> String {
    let word = if ns.len() == 1 { "Task" } else { "Tasks" };
    format!("{word} {}", ranges(ns))
}

/// Ascending numbers as compressed ranges: `1, 3-5`.
pub fn ranges(ns: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ns.len() {
        let start = ns[i];
        let mut end = start;
        while i + 1 < ns.len() && ns[i + 1] == end + 1 {
            i += 1;
            end = ns[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(", ")
}

/// One line of advice from what the plan found.
pub fn recommendation(plan: &Plan) -> String {
    if !plan.warnings.is_empty() {
        "Proceed with caution: review the warnings above (tasks that touch the same files may \
         conflict when their branches are merged)"
            .into()
    } else if plan.waves.len() > 1 {
        format!(
            "Proceed with orchestration: dependent tasks run in later waves ({} waves)",
            plan.waves.len()
        )
    } else {
        "Proceed with orchestration".into()
    }
}

/// The dry-run report. `from` completes "Parsed N sub-tasks from …";
/// `run` is the command line that runs it.
pub fn dry_run_text(plan: &Plan, from: &str, run: &str) -> String {
    let mut s = String::new();
    let n = plan.tasks.len();
    let _ = writeln!(s, "🔍 DRY RUN MODE");
    let _ = writeln!(
        s,
        "🚀 Parsed {n} sub-task{} from {from}",
        if n == 1 { "" } else { "s" }
    );
    let _ = writeln!(s, "\nSub-tasks identified:");
    for t in &plan.tasks {
        let mut extra = Vec::new();
        if let Some(sub) = t.sub_issue {
            extra.push(format!("#{sub}"));
        }
        if let Some(agent) = &t.agent {
            extra.push(agent.clone());
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(" [{}]", extra.join(", "))
        };
        let _ = writeln!(
            s,
            "{}. {}{extra} (estimated complexity: {})",
            t.n,
            collapse_whitespace(&t.title),
            t.complexity.as_str()
        );
    }
    if !plan.skipped.is_empty() {
        let _ = writeln!(s, "\nSkipped:");
        for k in &plan.skipped {
            let _ = writeln!(
                s,
                "- {} (line {}, {})",
                collapse_whitespace(&k.title),
                k.line,
                k.reason
            );
        }
    }
    let _ = writeln!(s, "\nIndependence validation:");
    if plan.overlaps.is_empty() {
        let _ = writeln!(s, "✅ No file conflicts detected");
    }
    if plan.dependencies.is_empty() {
        let _ = writeln!(s, "✅ No sequential dependencies");
    } else {
        for d in &plan.dependencies {
            let _ = writeln!(
                s,
                "⚠️  Task {} depends on task {} (\"{}\")",
                d.task + 1,
                d.on + 1,
                collapse_whitespace(&d.phrase)
            );
        }
    }
    for w in &plan.warnings {
        let _ = writeln!(s, "⚠️  {w}");
    }
    if !plan.skipped.is_empty() {
        let _ = writeln!(
            s,
            "✅ {} checked item{} skipped (already done)",
            plan.skipped.len(),
            if plan.skipped.len() == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(s, "\nWaves: {}", plan.waves.len());
    for w in &plan.waves {
        let _ = write!(
            s,
            "  Wave {}: {}",
            w.number,
            tasks_phrase(&w.tasks).to_lowercase()
        );
        if let Some(v) = &w.validation {
            let _ = write!(s, " (validation: {})", collapse_whitespace(v));
        }
        s.push('\n');
    }
    let _ = writeln!(s, "\nEstimated PRs: {n}");
    let _ = writeln!(s, "\nRecommendation: {}", recommendation(plan));
    let _ = writeln!(s, "To run: {run}");
    s
}

/// Everything the dry run shows, as JSON; `status_files` are given when the
/// orchestration was written.
pub fn json(
    plan: &Plan,
    id: &str,
    source: &crate::protocol::Source,
    dry_run: bool,
    status_files: Option<&[PathBuf]>,
) -> Value {
    let tasks: Vec<Value> = plan
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut v = json!({
                "n": t.n,
                "agent_id": t.agent_id(),
                "title": t.title,
                "complexity": t.complexity,
                "wave": t.wave,
                "depends_on": t.depends_on.iter().map(|&d| agent_id(d)).collect::<Vec<_>>(),
                "files": t.files,
                "sub_issue": t.sub_issue,
            });
            if let Some(id) = &t.task_id {
                v["task_id"] = json!(id);
                v["agent"] = json!(t.agent);
                v["prompt_file"] = json!(t.prompt_file);
            }
            if let Some(files) = status_files {
                v["status_file"] = json!(files.get(i));
            }
            v
        })
        .collect();
    json!({
        "id": id,
        "dry_run": dry_run,
        "source": source,
        "tasks": tasks,
        "waves": plan.waves.iter().map(|w| json!({
            "number": w.number,
            "agents": w.tasks.iter().map(|&n| agent_id(n)).collect::<Vec<_>>(),
            "validation": w.validation,
        })).collect::<Vec<_>>(),
        "report": plan.report_json(),
        "estimated_prs": plan.tasks.len(),
        "recommendation": recommendation(plan),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_compress() {
        assert_eq!(tasks_phrase(&[3, 4]), "Tasks 3-4");
        assert_eq!(tasks_phrase(&[1, 3, 4, 5, 9]), "Tasks 1, 3-5, 9");
        assert_eq!(tasks_phrase(&[2]), "Task 2");
    }
}
