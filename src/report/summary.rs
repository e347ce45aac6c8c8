//! Result aggregation: the seed's `summary.json` shape, computed from the
//! status files of one orchestration.
//!
//! Definitions (also in `po-summarize --help`):
//! * `successful`: tasks `completed`. `failed`: tasks `failed` or `timed_out`
//!   (`timed_out` counts them again on its own). `cancelled`, `pending`,
//!   `in_progress` and unreadable status files are counted apart; all of them
//!   make up `total_sub_tasks`, and only `successful` counts as success.
//! * `duration_seconds`: wall clock, from the earliest `start_time` to the
//!   latest `completion_time` (to now while a task is still running).
//! * `lines_of_code`: lines added by the successful tasks (the seed's "total
//!   lines of code added"); `lines_added` and `lines_removed` cover every task.
//! * `sequential_seconds`: the sum of the agents' own durations, i.e. what the
//!   same work would take one agent at a time; `speedup` is that over the wall
//!   clock. `peak_concurrency` is the most start–completion intervals that
//!   overlap at one instant.
//! * Costs are what agents reported, every attempt of a task together
//!   (`cost_usd` is the current attempt's, `total_cost_usd` all of them).
//!   `cost_by_model` groups them by the model each task ran (split between
//!   a task's models in the shares its agent reported, when it ran several);
//!   `cost_per_completed_task` is the whole spend (failures included) over
//!   the tasks that completed. `spent_usd` and `committed_usd` are the
//!   budget's accounting ([`crate::cost`]: finished attempts, and running
//!   ones so far, where an agent reported tokens and a known model but no
//!   cost priced from its tokens), against `budget_usd`, the last po-spawn
//!   run's `--budget-usd`. Agents that report tokens but no cost are counted
//!   in `tokens_without_cost`: their cost is unknown, not zero.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, exit};
use crate::integration::conflicts::Conflict;
use crate::protocol::view::{OrchestrationView, Reader, TaskView};
use crate::protocol::{Source, State, layout, store};
use crate::timefmt::{self, Timestamp};

/// Read an orchestration directory with the one reader
/// ([`crate::protocol::view`]). A bad status file is reported in the view,
/// not fatal; a directory that cannot be listed is.
pub fn load(dir: &Path) -> Result<OrchestrationView> {
    let view = Reader::plain().read(dir);
    match &view.problem {
        Some(p) => Err(Error::system(p.clone())),
        None => Ok(view),
    }
}

/// One agent's line in the summary.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AgentSummary {
    pub agent_id: String,
    pub title: String,
    pub state: State,
    pub sub_issue: Option<u64>,
    /// The issue of another repository the task names (`org/other#8128`):
    /// referred to, never closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub wave: u32,
    pub attempt: u32,
    pub phase: Option<String>,
    pub branch: Option<String>,
    pub start_time: Option<String>,
    pub completion_time: Option<String>,
    pub duration_seconds: Option<f64>,
    pub lines_added: Option<u64>,
    pub lines_removed: Option<u64>,
    pub files_changed: Option<u64>,
    pub commits: Option<u64>,
    pub cost_usd: Option<f64>,
    /// Every attempt's reported cost together.
    #[serde(default)]
    pub total_cost_usd: Option<f64>,
    #[serde(default)]
    pub model: Option<String>,
    /// `total_cost_usd` by model, when the agent split its use between
    /// models (its subagents'): in the shares of its per-model costs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cost_by_model: BTreeMap<String, f64>,
    pub turns: Option<u64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub tokens: Option<u64>,
    pub pr_number: Option<u64>,
    pub pr_url: Option<String>,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub follow_up_issue: Option<u64>,
    pub log_file: Option<PathBuf>,
    pub worktree: Option<PathBuf>,
    pub status_file: PathBuf,
    /// The host the task ran on, when its launcher recorded one (Slurm).
    #[serde(default)]
    pub node: Option<String>,
    /// Its launcher's id of its runner (a Slurm job id).
    #[serde(default)]
    pub runner_id: Option<String>,
    /// That runner as its launcher shows it (`Slurm job 56`).
    #[serde(default)]
    pub runner: Option<String>,
    /// Why it waits in its launcher's queue, while it does.
    #[serde(default)]
    pub queued: Option<String>,
    /// po-react's rounds on its pull request, and `needs a person` when it
    /// handed it over (`2 rounds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactions: Option<String>,
}

impl AgentSummary {
    /// `Agent-3`, the seed's spelling in tables and titles.
    pub fn display_name(&self) -> String {
        display_agent(&self.agent_id)
    }

    pub fn is_failure(&self) -> bool {
        matches!(self.state, State::Failed | State::TimedOut)
    }

    /// The error a human reads: the recorded one, or what the state implies.
    pub fn error_text(&self) -> String {
        error_text(self.error.as_deref(), self.state, self.exit_code)
    }
}

/// A task's error as a human reads it: the recorded one, or what its state implies.
pub fn error_text(error: Option<&str>, state: State, exit_code: Option<i32>) -> String {
    match (error.map(str::trim), state) {
        (Some(e), _) if !e.is_empty() => e.to_string(),
        (_, State::TimedOut) => "timed out".into(),
        (_, State::Cancelled) => "cancelled".into(),
        (_, State::Failed) => match exit_code {
            Some(c) => format!("exited with status {c}"),
            None => "failed (no error recorded)".into(),
        },
        (_, s) => s.to_string(),
    }
}

/// `agent-3` → `Agent-3`.
pub fn display_agent(agent_id: &str) -> String {
    let mut c = agent_id.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A status file that could not be read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Unreadable {
    pub path: PathBuf,
    pub error: String,
}

/// `summary.json`: the seed's result aggregation, then po's details.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Summary {
    // --- the seed's fields ---
    pub master_issue: Option<u64>,
    pub total_sub_tasks: usize,
    pub successful: usize,
    pub failed: usize,
    pub prs_created: Vec<u64>,
    pub follow_up_issues: Vec<u64>,
    pub duration_seconds: u64,
    pub lines_of_code: u64,

    // --- po's additions ---
    pub orchestration_id: String,
    pub title: Option<String>,
    pub source: Option<Source>,
    pub timed_out: usize,
    pub cancelled: usize,
    pub pending: usize,
    pub in_progress: usize,
    pub unreadable: usize,
    /// Percent of `total_sub_tasks` that completed.
    pub success_rate: f64,
    pub threshold: u32,
    /// 0 all completed, 1 at or above the threshold, 2 below it.
    pub exit_code: i32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub sequential_seconds: f64,
    pub speedup: Option<f64>,
    pub peak_concurrency: usize,
    pub average_agent_duration_seconds: Option<f64>,
    pub lines_added: u64,
    pub lines_removed: u64,
    /// Sum over the agents that report a cost; `None` when none does.
    pub total_cost_usd: Option<f64>,
    /// Reported costs by model (`unknown` for agents that name none).
    #[serde(default)]
    pub cost_by_model: BTreeMap<String, f64>,
    /// `total_cost_usd` over the completed tasks.
    #[serde(default)]
    pub cost_per_completed_task: Option<f64>,
    /// Agents that report tokens but no cost.
    #[serde(default)]
    pub tokens_without_cost: usize,
    /// The budget's accounting: finished attempts, and running ones so far.
    #[serde(default)]
    pub spent_usd: f64,
    #[serde(default)]
    pub committed_usd: f64,
    /// Tasks that ran and reported nothing a budget can count.
    #[serde(default)]
    pub uncounted_tasks: usize,
    /// The last po-spawn run's `--budget-usd`.
    #[serde(default)]
    pub budget_usd: Option<f64>,
    pub total_turns: u64,
    pub total_input_tokens: u64,
    pub total_output_tokens: u64,
    pub total_tokens: u64,
    /// The log directories of the runs (`logs/<session>/`).
    pub logs: Vec<PathBuf>,
    pub orchestration_dir: PathBuf,
    pub generated_at: String,
    pub agents: Vec<AgentSummary>,
    pub unreadable_files: Vec<Unreadable>,
    /// Completed branches that do not merge cleanly (`git merge-tree`),
    /// filled in by po-summarize when the repository is at hand.
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
}

impl Summary {
    pub fn successful_agents(&self) -> impl Iterator<Item = &AgentSummary> {
        self.agents.iter().filter(|a| a.state == State::Completed)
    }

    pub fn failed_agents(&self) -> impl Iterator<Item = &AgentSummary> {
        self.agents.iter().filter(|a| a.is_failure())
    }

    /// Cancelled, pending and running tasks.
    pub fn other_agents(&self) -> impl Iterator<Item = &AgentSummary> {
        self.agents
            .iter()
            .filter(|a| a.state != State::Completed && !a.is_failure())
    }

    pub fn all_terminal(&self) -> bool {
        self.pending == 0 && self.in_progress == 0
    }
}

/// The most intervals `[start, end)` that overlap at one instant.
pub fn peak_concurrency(intervals: &[(Timestamp, Timestamp)]) -> usize {
    let mut events: Vec<(Timestamp, i32)> = Vec::with_capacity(intervals.len() * 2);
    for &(a, b) in intervals {
        events.push((a, 1));
        events.push((b.max(a), -1));
    }
    // Ends sort before starts at the same instant: back-to-back is not overlap.
    events.sort();
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, d) in events {
        now += d;
        peak = peak.max(now);
    }
    peak as usize
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// When the run started and ended (so far), and the agents' intervals.
struct Timing {
    earliest: Option<Timestamp>,
    latest: Option<Timestamp>,
    running: bool,
    intervals: Vec<(Timestamp, Timestamp)>,
}

impl Timing {
    fn of(view: &OrchestrationView, now: Timestamp) -> Timing {
        let mut t = Timing {
            earliest: None,
            latest: None,
            running: false,
            intervals: Vec::new(),
        };
        for s in view.tasks().map(|task| &task.status) {
            let Some(start) = s.start_time else { continue };
            t.earliest = Some(t.earliest.map_or(start, |e| e.min(start)));
            match (s.status, s.completion_time) {
                (State::InProgress, _) => {
                    t.running = true;
                    t.intervals.push((start, now));
                }
                (_, Some(end)) if s.status.is_terminal() => {
                    t.latest = Some(t.latest.map_or(end, |l| l.max(end)));
                    t.intervals.push((start, end));
                }
                _ => {}
            }
        }
        t
    }

    /// The wall clock from the first start to the last end (to now while
    /// something runs).
    fn wall(&self, now: Timestamp) -> f64 {
        let end = if self.running {
            Some(self.latest.map_or(now, |l| l.max(now)))
        } else {
            self.latest
        };
        match (self.earliest, end) {
            (Some(a), Some(b)) => (b - a).num_milliseconds().max(0) as f64 / 1000.0,
            _ => 0.0,
        }
    }
}

/// One task's line in the summary.
fn agent_summary(t: &TaskView) -> AgentSummary {
    let s = &t.status;
    let m = &s.metrics;
    let tokens = match (m.input_tokens, m.output_tokens) {
        (None, None) => None,
        (i, o) => Some(i.unwrap_or(0) + o.unwrap_or(0)),
    };
    AgentSummary {
        agent_id: s.agent_id.clone(),
        title: s.title.clone(),
        state: s.status,
        sub_issue: s.sub_issue,
        reference: crate::sources::refs::of_status(&s.extra).map(|r| r.to_string()),
        wave: s.wave,
        attempt: s.attempt,
        phase: s.phase.clone(),
        branch: s.branch.clone(),
        start_time: s.start_time.as_ref().map(timefmt::format),
        completion_time: s.completion_time.as_ref().map(timefmt::format),
        duration_seconds: t.duration_seconds.map(round2),
        lines_added: m.lines_added,
        lines_removed: m.lines_removed,
        files_changed: m.files_changed,
        commits: m.commits,
        cost_usd: m.cost_usd,
        total_cost_usd: crate::cost::reported(m).map(round4),
        model: m.model.clone(),
        cost_by_model: match crate::cost::reported(m) {
            Some(total) if !m.models.is_empty() => crate::cost::split_by_model(m, total)
                .into_iter()
                .map(|(k, c)| (k, round4(c)))
                .collect(),
            _ => BTreeMap::new(),
        },
        turns: m.turns,
        input_tokens: m.input_tokens,
        output_tokens: m.output_tokens,
        tokens,
        pr_number: s.pr_number,
        pr_url: s.pr_url.clone(),
        error: s.error.clone(),
        exit_code: s.exit_code,
        follow_up_issue: s.follow_up_issue,
        log_file: s.log_file.clone(),
        worktree: s.worktree.clone(),
        status_file: t.file.clone(),
        node: t.node().map(str::to_string),
        runner_id: crate::protocol::runner::runner_id(s),
        runner: crate::protocol::runner::shown(s),
        queued: t.queued(),
        reactions: crate::protocol::reaction::shown(s),
    }
}

/// The reported cost by model (`unknown` where the model was not said).
fn cost_by_model(agents: &[AgentSummary]) -> BTreeMap<String, f64> {
    let mut by: BTreeMap<String, f64> = BTreeMap::new();
    for a in agents {
        if !a.cost_by_model.is_empty() {
            for (model, c) in &a.cost_by_model {
                *by.entry(model.clone()).or_default() += c;
            }
        } else if let Some(c) = a.total_cost_usd {
            let model = a.model.clone().unwrap_or_else(|| "unknown".into());
            *by.entry(model).or_default() += c;
        }
    }
    by.values_mut().for_each(|c| *c = round4(*c));
    by
}

/// Aggregate what `load` read, at `now`, against `threshold` percent.
pub fn summarize(view: &OrchestrationView, threshold: u32, now: Timestamp) -> Summary {
    let orch = view.orchestration.as_deref();
    let agents: Vec<AgentSummary> = view.tasks().map(agent_summary).collect();
    let logs = log_dirs(&agents);
    let timing = Timing::of(view, now);
    let (earliest, latest, running) = (timing.earliest, timing.latest, timing.running);

    let count = |st: State| agents.iter().filter(|a| a.state == st).count();
    let successful = count(State::Completed);
    let timed_out = count(State::TimedOut);
    let failed = count(State::Failed) + timed_out;
    let unreadable = unreadable_files(view);
    let total = agents.len() + unreadable.len();

    let wall = timing.wall(now);
    let finished: Vec<f64> = agents
        .iter()
        .filter(|a| a.state.is_terminal())
        .filter_map(|a| a.duration_seconds)
        .collect();
    let sequential: f64 = agents.iter().filter_map(|a| a.duration_seconds).sum();
    let costs: Vec<f64> = agents.iter().filter_map(|a| a.total_cost_usd).collect();
    let total_cost = (!costs.is_empty()).then(|| round4(costs.iter().sum::<f64>()));
    let cost_by_model = cost_by_model(&agents);
    let spend = crate::cost::Total::of(view.tasks().map(|t| &t.status));

    Summary {
        master_issue: orch.and_then(|o| o.master_issue),
        total_sub_tasks: total,
        successful,
        failed,
        prs_created: agents.iter().filter_map(|a| a.pr_number).collect(),
        follow_up_issues: agents.iter().filter_map(|a| a.follow_up_issue).collect(),
        duration_seconds: wall.round() as u64,
        lines_of_code: agents
            .iter()
            .filter(|a| a.state == State::Completed)
            .filter_map(|a| a.lines_added)
            .sum(),
        orchestration_id: view.id.clone(),
        title: orch.and_then(|o| o.title.clone()),
        source: orch.map(|o| o.source.clone()),
        timed_out,
        cancelled: count(State::Cancelled),
        pending: count(State::Pending),
        in_progress: count(State::InProgress),
        unreadable: unreadable.len(),
        success_rate: if total == 0 {
            100.0
        } else {
            round2(successful as f64 * 100.0 / total as f64)
        },
        threshold,
        exit_code: exit::by_threshold(successful, total, threshold),
        started_at: earliest.as_ref().map(timefmt::format),
        finished_at: if running {
            None
        } else {
            latest.as_ref().map(timefmt::format)
        },
        sequential_seconds: round2(sequential),
        speedup: (wall > 0.0 && sequential > 0.0).then(|| round2(sequential / wall)),
        peak_concurrency: peak_concurrency(&timing.intervals),
        average_agent_duration_seconds: (!finished.is_empty())
            .then(|| round2(finished.iter().sum::<f64>() / finished.len() as f64)),
        lines_added: agents.iter().filter_map(|a| a.lines_added).sum(),
        lines_removed: agents.iter().filter_map(|a| a.lines_removed).sum(),
        total_cost_usd: total_cost,
        cost_by_model,
        cost_per_completed_task: total_cost
            .filter(|_| successful > 0)
            .map(|c| round4(c / successful as f64)),
        tokens_without_cost: agents
            .iter()
            .filter(|a| a.total_cost_usd.is_none() && a.tokens.is_some())
            .count(),
        spent_usd: round4(spend.spent),
        committed_usd: round4(spend.committed),
        uncounted_tasks: spend.unknown,
        budget_usd: orch.and_then(crate::cost::budget_of),
        total_turns: agents.iter().filter_map(|a| a.turns).sum(),
        total_input_tokens: agents.iter().filter_map(|a| a.input_tokens).sum(),
        total_output_tokens: agents.iter().filter_map(|a| a.output_tokens).sum(),
        total_tokens: agents.iter().filter_map(|a| a.tokens).sum(),
        logs,
        orchestration_dir: view.dir.clone(),
        generated_at: timefmt::format(&now),
        agents,
        unreadable_files: unreadable,
        conflicts: Vec::new(),
    }
}

/// The directories of the agents' logs, each once, in task order.
fn log_dirs(agents: &[AgentSummary]) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = Vec::new();
    for dir in agents
        .iter()
        .filter_map(|a| a.log_file.as_deref().and_then(Path::parent))
    {
        if !logs.iter().any(|l| l == dir) {
            logs.push(dir.to_path_buf());
        }
    }
    logs
}

/// The status files that could not be read, and why.
fn unreadable_files(view: &OrchestrationView) -> Vec<Unreadable> {
    view.bad()
        .map(|b| Unreadable {
            path: b.file.clone(),
            error: format!("read status file {}: {}", b.file.display(), b.problem),
        })
        .collect()
}

/// Write `summary.json` and `summary.md` into the orchestration directory.
pub fn write(summary: &Summary, markdown: &str) -> Result<(PathBuf, PathBuf)> {
    let dir = &summary.orchestration_dir;
    let json = dir.join(layout::SUMMARY_FILE);
    let md = dir.join(layout::SUMMARY_MARKDOWN);
    store::write_json(&json, summary)?;
    store::write_atomic(&md, markdown.as_bytes())?;
    Ok((json, md))
}

/// `--threshold` (clap reads `PO_SUCCESS_THRESHOLD` into it), else
/// `AMPLIHACK_SUCCESS_THRESHOLD`, else [`exit::DEFAULT_THRESHOLD`].
pub fn resolve_threshold(flag: Option<u32>) -> Result<u32> {
    if let Some(t) = flag {
        return Ok(t);
    }
    match std::env::var("AMPLIHACK_SUCCESS_THRESHOLD") {
        Ok(raw) if !raw.trim().is_empty() => parse_threshold("AMPLIHACK_SUCCESS_THRESHOLD", &raw),
        _ => Ok(exit::DEFAULT_THRESHOLD),
    }
}

/// Parse a threshold percentage (`80`, `80%`) read from `name`.
pub fn parse_threshold(name: &str, raw: &str) -> Result<u32> {
    raw.trim()
        .trim_end_matches('%')
        .parse::<u32>()
        .ok()
        .filter(|t| *t <= 100)
        .ok_or_else(|| {
            Error::usage(format!(
                "read {name}={raw:?}: the success threshold is a percentage from 0 to 100 \
                 (e.g. 80)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    #[test]
    fn peak_counts_overlap_not_back_to_back() {
        assert_eq!(peak_concurrency(&[]), 0);
        assert_eq!(peak_concurrency(&[(t(0), t(10)), (t(10), t(20))]), 1);
        assert_eq!(
            peak_concurrency(&[(t(0), t(10)), (t(5), t(15)), (t(9), t(30)), (t(16), t(17))]),
            3
        );
    }

    #[test]
    fn thresholds_parse_with_or_without_percent() {
        assert_eq!(parse_threshold("X", "75%").unwrap(), 75);
        assert!(parse_threshold("X", "101").is_err());
        assert!(parse_threshold("X", "most").is_err());
    }

    #[test]
    fn agent_names_read_like_the_seed() {
        assert_eq!(display_agent("agent-3"), "Agent-3");
    }
}
