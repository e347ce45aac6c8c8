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
    let ns: Vec<u64> = ns.iter().map(|&n| n as u64).collect();
    runs(&ns)
        .into_iter()
        .map(|(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Issue numbers as the seed prints them: `#1235, #1236, #1237`, and a run of
/// more than [`ISSUE_RUN`] consecutive numbers as one range, `#1235-#1244`.
pub fn issue_ranges(ns: &[u64]) -> String {
    let mut parts = Vec::new();
    for (start, end) in runs(ns) {
        if end - start + 1 > ISSUE_RUN {
            parts.push(format!("#{start}-#{end}"));
        } else {
            parts.extend((start..=end).map(|n| format!("#{n}")));
        }
    }
    parts.join(", ")
}

/// Consecutive issue numbers up to this many are listed one by one (the
/// seed lists five sub-issues, and shows ten as a range).
pub const ISSUE_RUN: u64 = 5;

/// Runs of consecutive numbers, in the order given: `[1, 3, 4, 5]` →
/// `[(1, 1), (3, 5)]`.
fn runs(ns: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &n in ns {
        match out.last_mut() {
            Some((_, end)) if n == *end + 1 => *end = n,
            _ => out.push((n, n)),
        }
    }
    out
}

/// The line that opens the report: `🚀 Parsed 5 sub-tasks from issue #1234`.
pub fn parsed_line(tasks: usize, from: &str) -> String {
    format!(
        "🚀 Parsed {tasks} sub-task{} from {from}",
        if tasks == 1 { "" } else { "s" }
    )
}

/// Agents at a time the duration estimate assumes: po-spawn's default
/// `--max-workers`.
pub const ESTIMATE_WORKERS: usize = 5;

/// Estimated minutes, `(low, high)`: in parallel (each wave after the one
/// before, its tasks on `workers` agents, longest first) and one after another.
pub fn estimated_minutes(plan: &Plan, workers: usize) -> ((u32, u32), (u32, u32)) {
    let workers = workers.max(1);
    let makespan = |wave: &[usize], bound: fn((u32, u32)) -> u32| -> u32 {
        let mut times: Vec<u32> = wave
            .iter()
            .filter_map(|&n| plan.tasks.iter().find(|t| t.n == n))
            .map(|t| bound(t.complexity.minutes()))
            .collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        let mut slots = vec![0u32; workers.min(times.len()).max(1)];
        for t in times {
            let least = slots.iter_mut().min().expect("at least one slot");
            *least += t;
        }
        slots.into_iter().max().unwrap_or(0)
    };
    let parallel = plan.waves.iter().fold((0, 0), |(lo, hi), w| {
        (
            lo + makespan(&w.tasks, |m| m.0),
            hi + makespan(&w.tasks, |m| m.1),
        )
    });
    let sequential = plan.tasks.iter().fold((0, 0), |(lo, hi), t| {
        let (l, h) = t.complexity.minutes();
        (lo + l, hi + h)
    });
    (parallel, sequential)
}

fn estimate_json(plan: &Plan) -> Value {
    let ((lo, hi), (seq_lo, seq_hi)) = estimated_minutes(plan, ESTIMATE_WORKERS);
    json!({
        "parallel": [lo, hi],
        "sequential": [seq_lo, seq_hi],
        "max_workers": ESTIMATE_WORKERS,
    })
}

/// `Estimated duration: 15-20 minutes (parallel, …)`.
pub fn duration_line(plan: &Plan) -> String {
    let ((lo, hi), (seq_lo, seq_hi)) = estimated_minutes(plan, ESTIMATE_WORKERS);
    format!(
        "Estimated duration: {lo}-{hi} minutes (parallel, at most {ESTIMATE_WORKERS} agents at \
         a time; {seq_lo}-{seq_hi} minutes one after another)"
    )
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

/// Whether po-spawn opens pull requests for a source of this kind without
/// being asked (`--create-pr` is its default for a GitHub issue).
pub fn prs_by_default(source_kind: &str) -> bool {
    source_kind == "issue"
}

/// What the dry run says of pull requests: true for every source.
pub fn prs_line(plan: &Plan, source_kind: &str) -> String {
    let n = plan.tasks.len();
    if prs_by_default(source_kind) {
        format!(
            "Pull requests: po-spawn opens one per completed task (up to {n}), as it does for a \
             GitHub issue; `po-spawn --no-pr` opens none"
        )
    } else {
        format!(
            "Pull requests: none by default; `po-spawn --create-pr` opens one per completed task \
             (up to {n})"
        )
    }
}

/// The dry-run report. `from` completes "Parsed N sub-tasks from …";
/// `source_kind` is the orchestration's source (`issue`, `markdown`, …);
/// `run` is the command line that runs it.
pub fn dry_run_text(plan: &Plan, from: &str, source_kind: &str, run: &str) -> String {
    let mut s = String::new();
    let n = plan.tasks.len();
    let _ = writeln!(s, "🔍 DRY RUN MODE");
    let _ = writeln!(s, "{}", parsed_line(n, from));
    let _ = writeln!(s, "\nSub-tasks identified:");
    for t in &plan.tasks {
        let mut extra = Vec::new();
        if let Some(sub) = t.sub_issue {
            extra.push(format!("#{sub}"));
        } else if let Some(r) = &t.reference {
            extra.push(format!("refs {r}"));
        }
        if let Some(agent) = &t.agent {
            extra.push(agent.clone());
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(" [{}]", extra.join(", "))
        };
        let section = t
            .section
            .as_deref()
            .map(|h| format!("section: {}; ", collapse_whitespace(h)))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{}. {}{extra} ({section}estimated complexity: {})",
            t.n,
            collapse_whitespace(&t.title),
            t.complexity.as_str()
        );
    }
    if !plan.skipped.is_empty() {
        let _ = writeln!(s, "\nSkipped:");
        for k in &plan.skipped {
            let title = collapse_whitespace(&k.title);
            let _ = writeln!(
                s,
                "- {}(line {}, {})",
                if title.is_empty() {
                    String::new()
                } else {
                    format!("{title} ")
                },
                k.line,
                k.reason
            );
        }
    }
    for n in &plan.notes {
        let _ = writeln!(s, "\nℹ️  {}", collapse_whitespace(n));
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
    for line in skipped_lines(plan) {
        let _ = writeln!(s, "✅ {line}");
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
    let _ = writeln!(s, "\n{}", duration_line(plan));
    let _ = writeln!(s, "{}", prs_line(plan, source_kind));
    let _ = writeln!(s, "\nRecommendation: {}", recommendation(plan));
    let _ = writeln!(s, "To run: {run}");
    s
}

/// The skipped items, counted by why: `2 checked items skipped (already
/// done)`, `1 struck-through item skipped (not applicable)`, ….
fn skipped_lines(plan: &Plan) -> Vec<String> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for k in &plan.skipped {
        let kind = if k.reason == "checked" {
            "checked"
        } else if k.reason.starts_with("struck") {
            "struck"
        } else if k.reason.contains("placeholder") {
            "placeholder"
        } else if k.reason.starts_with("under ") {
            "deferred"
        } else {
            "other"
        };
        match counts.iter_mut().find(|(c, _)| *c == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    counts
        .into_iter()
        .map(|(kind, n)| {
            let s = if n == 1 { "" } else { "s" };
            match kind {
                "checked" => format!("{n} checked item{s} skipped (already done)"),
                "struck" => format!("{n} struck-through item{s} skipped (not applicable)"),
                "placeholder" => format!("{n} template placeholder{s} skipped"),
                "deferred" => format!("{n} item{s} under a deferring heading skipped"),
                _ => format!("{n} empty item{s} skipped"),
            }
        })
        .collect()
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
            if let Some(section) = &t.section {
                v["section"] = json!(section);
            }
            if let Some(r) = t.reference.as_ref().filter(|_| t.sub_issue.is_none()) {
                v["reference"] = json!(r);
            }
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
        "estimated_prs": if prs_by_default(&source.kind) { plan.tasks.len() } else { 0 },
        "prs_with_create_pr": plan.tasks.len(),
        "estimated_minutes": estimate_json(plan),
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

    #[test]
    fn issue_numbers_compress_only_long_runs() {
        let ten: Vec<u64> = (1235..=1244).collect();
        assert_eq!(issue_ranges(&ten), "#1235-#1244");
        let five: Vec<u64> = (1235..=1239).collect();
        assert_eq!(issue_ranges(&five), "#1235, #1236, #1237, #1238, #1239");
        let mixed: Vec<u64> = (1..=6).chain([9, 20, 21]).collect();
        assert_eq!(issue_ranges(&mixed), "#1-#6, #9, #20, #21");
        assert_eq!(issue_ranges(&[]), "");
    }

    fn plan_of(complexities: &[crate::plan::Complexity], waves: &[&[usize]]) -> Plan {
        let tasks = complexities
            .iter()
            .enumerate()
            .map(|(i, &c)| crate::plan::PlannedTask {
                n: i + 1,
                title: format!("Task {}", i + 1),
                body: String::new(),
                sub_issue: None,
                reference: None,
                section: None,
                parent: None,
                links: Vec::new(),
                files: Vec::new(),
                depends_on: Vec::new(),
                wave: 1,
                complexity: c,
                task_id: None,
                agent: None,
                prompt_file: None,
            })
            .collect();
        Plan {
            format: "checklist".into(),
            tasks,
            waves: waves
                .iter()
                .enumerate()
                .map(|(i, w)| crate::plan::PlanWave {
                    number: i as u32 + 1,
                    tasks: w.to_vec(),
                    validation: None,
                })
                .collect(),
            skipped: Vec::new(),
            overlaps: Vec::new(),
            dependencies: Vec::new(),
            warnings: Vec::new(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn the_estimate_is_the_longest_task_per_wave_when_workers_suffice() {
        use crate::plan::Complexity::*;
        // The seed's dry run: five tasks, one of them high: 15-20 minutes.
        let seed = plan_of(&[Medium, Low, Medium, High, Medium], &[&[1, 2, 3, 4, 5]]);
        assert_eq!(estimated_minutes(&seed, 5), ((15, 20), (50, 75)));
        assert!(duration_line(&seed).starts_with("Estimated duration: 15-20 minutes (parallel"));
        // Two at a time: longest first, each onto the least loaded agent.
        assert_eq!(estimated_minutes(&seed, 2).0, (25, 40));
        // Waves add up.
        let waves = plan_of(&[Low, High], &[&[1], &[2]]);
        assert_eq!(estimated_minutes(&waves, 5).0, (20, 30));
    }
}
