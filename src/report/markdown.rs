//! The seed's markdown report (`summary.md`) and its master-issue comment.
//!
//! Task text (titles, errors) is untrusted: in tables it is flattened to one
//! line with `|` escaped, so it cannot break the layout.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::summary::{AgentSummary, Summary};
use super::timeline::{self, Bar};
use crate::protocol::view::error_gist;
use crate::protocol::{State, layout, phase};
use crate::text::{ellipsize, one_line};
use crate::timefmt::human_duration;

/// How paths are shown: relative to the repository top level when inside it.
#[derive(Clone, Debug, Default)]
pub struct Paths {
    pub repo: Option<PathBuf>,
}

impl Paths {
    pub fn show(&self, p: &Path) -> String {
        match self.repo.as_deref().and_then(|r| p.strip_prefix(r).ok()) {
            Some(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
            _ => p.display().to_string(),
        }
    }

    /// A directory, with a trailing `/`.
    pub fn show_dir(&self, p: &Path) -> String {
        let s = self.show(p);
        if s.ends_with('/') { s } else { s + "/" }
    }
}

/// `4127` → `4,127`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One line, `|` escaped, at most `max` characters (with `…`).
pub fn cell(text: &str, max: usize) -> String {
    ellipsize(&one_line(text), max).replace('|', "\\|")
}

fn percent(rate: f64) -> String {
    if (rate - rate.round()).abs() < 0.05 {
        format!("{}%", rate.round() as i64)
    } else {
        format!("{rate:.1}%")
    }
}

/// `#12` for a sub-issue; `Refs org/other#8128` for an issue elsewhere.
fn sub_issue(a: &AgentSummary) -> String {
    match (a.sub_issue, &a.reference) {
        (Some(n), _) => format!("#{n}"),
        (None, Some(r)) => format!("Refs {}", cell(r, 60)),
        (None, None) => "—".into(),
    }
}

fn pr_link(a: &AgentSummary) -> String {
    let link = match (a.pr_number, a.pr_url.as_deref()) {
        (Some(n), Some(url)) if !url.is_empty() => format!("[PR #{n}]({url})"),
        (Some(n), _) => format!("PR #{n}"),
        (None, _) => return "—".into(),
    };
    match &a.reactions {
        Some(r) => format!("{link} ({r})"),
        None => link,
    }
}

fn duration(a: &AgentSummary) -> String {
    a.duration_seconds.map_or("—".into(), human_duration)
}

fn list(numbers: &[u64]) -> String {
    numbers
        .iter()
        .map(|n| format!("#{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `po-spawn` command that retries this orchestration's failed tasks.
pub fn retry_command(s: &Summary) -> String {
    format!("po-spawn --id {} --retry", s.orchestration_id)
}

/// `summary.md`: the seed's "Parallel Orchestration Results" report.
pub fn render_summary(s: &Summary, paths: &Paths) -> String {
    let mut out = String::new();
    let o = &mut out;
    header(o, s);
    successful(o, s);
    failed(o, s);
    not_finished(o, s, paths);
    conflicts(o, s);
    let _ = writeln!(o, "\n### Next Steps\n");
    for (i, step) in next_steps(s, paths).iter().enumerate() {
        let _ = writeln!(o, "{}. {step}", i + 1);
    }

    let (bars, now) = Bar::of_summary(s);
    if let Some(gantt) = timeline::mermaid(&bars, now) {
        let _ = writeln!(o, "\n### Timeline\n\n{}", gantt.trim_end());
    }

    metrics(o, s);
    footer(o, s, paths);
    out
}

/// The title block: the master issue or source, the id, duration, success.
fn header(o: &mut String, s: &Summary) {
    let _ = writeln!(o, "## Parallel Orchestration Results\n");
    match (s.master_issue, s.title.as_deref()) {
        (Some(n), Some(t)) => {
            let _ = writeln!(o, "**Master Issue**: #{n} - {}", cell(t, 120));
        }
        (Some(n), None) => {
            let _ = writeln!(o, "**Master Issue**: #{n}");
        }
        (None, title) => {
            if let Some(src) = &s.source {
                let _ = writeln!(o, "**Source**: {} `{}`", src.kind, cell(&src.value, 120));
            }
            if let Some(t) = title {
                let _ = writeln!(o, "**Title**: {}", cell(t, 120));
            }
        }
    }
    let _ = writeln!(o, "**Orchestration ID**: {}", s.orchestration_id);
    let _ = writeln!(
        o,
        "**Duration**: {}",
        human_duration(s.duration_seconds as f64)
    );
    let _ = writeln!(
        o,
        "**Success Rate**: {}/{} ({})",
        s.successful,
        s.total_sub_tasks,
        percent(s.success_rate)
    );
    if !s.all_terminal() {
        let _ = writeln!(
            o,
            "**Still running**: {} in progress, {} pending (`po-watch {}`)",
            s.in_progress, s.pending, s.orchestration_id
        );
    }
}

/// The successful tasks' table and their lines of code.
fn successful(o: &mut String, s: &Summary) {
    let ok: Vec<&AgentSummary> = s.successful_agents().collect();
    if !ok.is_empty() {
        let _ = writeln!(o, "\n### Successful Tasks\n");
        let _ = writeln!(o, "| Agent | Task | Sub-Issue | PR | Duration | LOC |");
        let _ = writeln!(o, "|-------|------|-----------|-----|----------|-----|");
        for a in &ok {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                a.display_name(),
                cell(&a.title, 60),
                sub_issue(a),
                pr_link(a),
                duration(a),
                a.lines_added.map_or("—".into(), thousands)
            );
        }
        let prs = ok.iter().filter(|a| a.pr_number.is_some()).count();
        let _ = writeln!(
            o,
            "\n**Total LOC**: {} lines across {} {}",
            thousands(s.lines_of_code),
            if prs > 0 { prs } else { ok.len() },
            match (prs > 0, prs.max(ok.len()) == 1) {
                (true, true) => "PR",
                (true, false) => "PRs",
                (false, true) => "task",
                (false, false) => "tasks",
            }
        );
    }
}

/// The failed tasks' table, with their follow-up issues.
fn failed(o: &mut String, s: &Summary) {
    let failed: Vec<&AgentSummary> = s.failed_agents().collect();
    if !failed.is_empty() {
        let _ = writeln!(o, "\n### Failed Tasks\n");
        let _ = writeln!(o, "| Agent | Sub-Issue | Error | Duration | Follow-Up |");
        let _ = writeln!(o, "|-------|-----------|-------|----------|-----------|");
        for a in &failed {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                a.display_name(),
                sub_issue(a),
                cell(&error_gist(&a.error_text()), 100),
                duration(a),
                a.follow_up_issue
                    .map_or("—".into(), |n| format!("Issue #{n}"))
            );
        }
    }
}

/// Tasks cancelled, waiting or running, and files that could not be read.
fn not_finished(o: &mut String, s: &Summary, paths: &Paths) {
    let other: Vec<&AgentSummary> = s.other_agents().collect();
    if !other.is_empty() || !s.unreadable_files.is_empty() {
        let _ = writeln!(o, "\n### Not Finished\n");
        let _ = writeln!(o, "| Agent | Sub-Issue | State | Note |");
        let _ = writeln!(o, "|-------|-----------|-------|------|");
        for a in &other {
            let note = match (a.state, &a.queued) {
                (State::Cancelled, _) => a.error_text(),
                (State::InProgress, _) => a.phase.clone().unwrap_or_else(|| phase::RUNNING.into()),
                (_, Some(why)) => match (why.trim(), &a.runner) {
                    ("", Some(r)) => format!("{r} waits in the queue"),
                    (why, Some(r)) => format!("{r} waits: {why}"),
                    (why, None) => format!("waits in the queue: {why}"),
                },
                _ => "waiting to run".into(),
            };
            let state = match &a.queued {
                Some(_) => "queued".to_string(),
                None => a.state.to_string(),
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                a.display_name(),
                sub_issue(a),
                state,
                cell(&note, 80)
            );
        }
        for u in &s.unreadable_files {
            let _ = writeln!(
                o,
                "| `{}` | — | unreadable | {} |",
                cell(&paths.show(&u.path), 80),
                cell(&u.error, 80)
            );
        }
    }
}

/// Completed branches that conflict with each other.
fn conflicts(o: &mut String, s: &Summary) {
    if s.conflicts.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n### Conflicts\n");
    let _ = writeln!(
        o,
        "Completed branches that do not merge cleanly (`git merge-tree`):\n"
    );
    for c in &s.conflicts {
        let _ = writeln!(o, "- {}", cell(&c.line(), 200));
    }
}

/// The seed's performance metrics, spend and tokens.
fn metrics(o: &mut String, s: &Summary) {
    let _ = writeln!(o, "\n### Performance Metrics\n");
    let wall = s.duration_seconds as f64;
    match s.speedup {
        Some(x) => {
            let _ = writeln!(
                o,
                "- **Parallel vs Sequential**: {} vs ~{} sequential ({x:.1}x speedup{})",
                human_duration(wall),
                human_duration(s.sequential_seconds),
                if s.agents.iter().any(|a| a.attempt > 1) {
                    "; the wall clock includes the time before retries"
                } else {
                    ""
                }
            );
        }
        None => {
            let _ = writeln!(o, "- **Parallel vs Sequential**: not measured yet");
        }
    }
    let _ = writeln!(
        o,
        "- **Peak Concurrency**: {} agent{}",
        s.peak_concurrency,
        if s.peak_concurrency == 1 { "" } else { "s" }
    );
    if let Some(avg) = s.average_agent_duration_seconds {
        let _ = writeln!(o, "- **Average Agent Duration**: {}", human_duration(avg));
    }
    let _ = writeln!(o, "- **Success Rate**: {}", percent(s.success_rate));
    if let Some(nodes) = nodes(s) {
        let _ = writeln!(o, "- **Nodes**: {}", cell(&nodes, 300));
    }
    spend_lines(o, s);
    if s.total_tokens > 0 {
        let _ = writeln!(
            o,
            "- **Tokens**: {} ({} in, {} out)",
            thousands(s.total_tokens),
            thousands(s.total_input_tokens),
            thousands(s.total_output_tokens)
        );
    }
    if s.total_turns > 0 {
        let _ = writeln!(o, "- **Turns**: {}", thousands(s.total_turns));
    }
}

/// Where the logs and status files are.
fn footer(o: &mut String, s: &Summary, paths: &Paths) {
    let _ = writeln!(o, "\n---");
    let logs = if s.logs.is_empty() {
        "no agent logs recorded".to_string()
    } else {
        s.logs
            .iter()
            .map(|l| format!("`{}`", paths.show_dir(l)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(o, "📊 Full logs: {logs}");
    let _ = writeln!(
        o,
        "📁 Status files: `{}`",
        paths.show_dir(&s.orchestration_dir)
    );
}

/// Cost lines: the total, against the budget, by model and per completed
/// task. Agents that report tokens but no cost are said to, never `$0.00`.
fn spend_lines(o: &mut String, s: &Summary) {
    use crate::cost::usd;
    match s.total_cost_usd {
        Some(cost) => {
            let _ = writeln!(o, "- **Total Cost**: {}", usd(cost));
        }
        None if s.tokens_without_cost > 0 => {
            let _ = writeln!(
                o,
                "- **Total Cost**: — (agents reported tokens but no cost)"
            );
        }
        None => {}
    }
    if s.tokens_without_cost > 0 && s.total_cost_usd.is_some() {
        let _ = writeln!(
            o,
            "- **Without a Cost**: {} agent{} reported tokens but no cost (—)",
            s.tokens_without_cost,
            if s.tokens_without_cost == 1 { "" } else { "s" }
        );
    }
    if let Some(budget) = s.budget_usd {
        let total = crate::cost::Total {
            spent: s.spent_usd,
            committed: s.committed_usd,
            unknown: s.uncounted_tasks,
            ..Default::default()
        };
        let _ = writeln!(o, "- **Budget**: {}", total.against(budget));
    }
    if !s.cost_by_model.is_empty() {
        let models: Vec<String> = s
            .cost_by_model
            .iter()
            .map(|(m, c)| format!("`{}` {}", cell(m, 60), usd(*c)))
            .collect();
        let _ = writeln!(o, "- **Cost per Model**: {}", models.join(", "));
    }
    if let Some(c) = s.cost_per_completed_task {
        let _ = writeln!(o, "- **Cost per Completed Task**: {}", usd(c));
    }
}

/// Where the agents ran, when a launcher recorded it: `n01 (3 agents), n02
/// (1 agent)`, busiest first.
fn nodes(s: &Summary) -> Option<String> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for node in s.agents.iter().filter_map(|a| a.node.as_deref()) {
        match counts.iter_mut().find(|(n, _)| *n == node) {
            Some((_, c)) => *c += 1,
            None => counts.push((node, 1)),
        }
    }
    if counts.is_empty() {
        return None;
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = counts
        .iter()
        .map(|(n, c)| format!("{n} ({c} agent{})", if *c == 1 { "" } else { "s" }))
        .collect();
    Some(parts.join(", "))
}

/// The numbered "Next Steps" of the report.
pub fn next_steps(s: &Summary, paths: &Paths) -> Vec<String> {
    let mut steps = Vec::new();
    if !s.prs_created.is_empty() {
        let open: Vec<u64> = s.successful_agents().filter_map(|a| a.pr_number).collect();
        if !open.is_empty() {
            steps.push(format!(
                "Review and merge successful PRs ({}); `po-react {} --follow` hands failed \
                 checks, requested changes and conflicts on them back to their agents",
                list(&open),
                s.orchestration_id
            ));
        }
    } else {
        let branches: Vec<String> = s
            .successful_agents()
            .filter_map(|a| a.branch.as_ref().map(|b| format!("`{b}`")))
            .collect();
        if !branches.is_empty() {
            steps.push(format!(
                "Review and merge the successful branches ({})",
                branches.join(", ")
            ));
        }
    }
    if !s.conflicts.is_empty() {
        steps.push(format!(
            "Resolve the conflicts above: `po-merge {}` merges the other branches and names each \
             conflicting file",
            s.orchestration_id
        ));
    }
    for a in s.failed_agents() {
        let what = cell(&error_gist(&a.error_text()), 80);
        match a.follow_up_issue {
            Some(n) => steps.push(format!(
                "Investigate {} ({what}) in diagnostic issue #{n}",
                a.display_name()
            )),
            None => steps.push(format!(
                "Investigate {} ({what}){}",
                a.display_name(),
                a.log_file
                    .as_deref()
                    .map(|l| format!(": log `{}`", paths.show(l)))
                    .unwrap_or_default()
            )),
        }
    }
    if s.failed > 0 || s.cancelled > 0 {
        let subs: Vec<u64> = s
            .agents
            .iter()
            .filter(|a| a.is_failure() || a.state == State::Cancelled)
            .filter_map(|a| a.sub_issue)
            .collect();
        let which = if subs.is_empty() {
            "the failed tasks".to_string()
        } else if subs.len() == 1 {
            format!("sub-issue #{}", subs[0])
        } else {
            format!("sub-issues {}", list(&subs))
        };
        steps.push(format!("Fix and re-run {which}: `{}`", retry_command(s)));
    }
    for a in s.agents.iter().filter(|a| a.state == State::Completed) {
        if let Some(n) = a.follow_up_issue {
            steps.push(format!(
                "Close diagnostic issue #{n}: {} has since completed",
                a.display_name()
            ));
        }
    }
    if !s.all_terminal() {
        steps.push(format!(
            "Wait for the {} unfinished task(s): `po-watch {} --follow`",
            s.pending + s.in_progress,
            s.orchestration_id
        ));
    }
    if !s.unreadable_files.is_empty() {
        steps.push("Fix or remove the unreadable status files listed above".into());
    }
    if steps.is_empty() {
        steps.push("Nothing left to do: every task completed".into());
    }
    steps
}

/// The seed's master-issue comment: status, duration, PRs, an action checklist.
pub fn render_comment(s: &Summary, paths: &Paths) -> String {
    let mut out = String::new();
    let o = &mut out;
    let heading = if s.all_terminal() {
        "Parallel Orchestration Complete"
    } else {
        "Parallel Orchestration Progress"
    };
    let _ = writeln!(o, "## {heading}\n");
    let _ = writeln!(
        o,
        "**Status**: {}/{} tasks completed successfully ({})",
        s.successful,
        s.total_sub_tasks,
        percent(s.success_rate)
    );
    let _ = writeln!(
        o,
        "**Duration**: {}",
        human_duration(s.duration_seconds as f64)
    );
    let _ = writeln!(
        o,
        "**PRs Created**: {}",
        if s.prs_created.is_empty() {
            "none".to_string()
        } else {
            list(&s.prs_created)
        }
    );
    let _ = writeln!(
        o,
        "\nFull summary: `{}`",
        paths.show(&s.orchestration_dir.join(layout::SUMMARY_MARKDOWN))
    );

    let mut actions = Vec::new();
    for a in s.successful_agents() {
        if let Some(n) = a.pr_number {
            actions.push(format!("Review and merge PR #{n}"));
        }
    }
    for a in s.failed_agents() {
        let what = cell(&error_gist(&a.error_text()), 80);
        match a.follow_up_issue {
            Some(n) => actions.push(format!("Investigate {what} in issue #{n}")),
            None => actions.push(format!(
                "Investigate {} failure ({what}), then `{}`",
                a.display_name(),
                retry_command(s)
            )),
        }
    }
    if !actions.is_empty() {
        let _ = writeln!(o, "\n### Action Required");
        for a in actions {
            let _ = writeln!(o, "- [ ] {a}");
        }
    }
    let (bars, now) = Bar::of_summary(s);
    if let Some(gantt) = timeline::mermaid(&bars, now) {
        let _ = writeln!(o, "\n### Timeline\n\n{}", gantt.trim_end());
    }
    let _ = writeln!(o, "\n---\nOrchestration ID: {}", s.orchestration_id);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(823), "823");
        assert_eq!(thousands(1045), "1,045");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn cells_stay_on_one_line_and_in_their_column() {
        assert_eq!(cell("a | b\n  c", 80), "a \\| b c");
        assert_eq!(cell("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn percentages_drop_needless_decimals() {
        assert_eq!(percent(80.0), "80%");
        assert_eq!(percent(66.67), "66.7%");
    }
}
