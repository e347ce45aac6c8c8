//! The on-disk formats: `agent-<n>.status.json` and `orchestration.json`.
//!
//! A superset of the seed's `.agent_status.json`. Unknown fields are kept in
//! `extra` and written back untouched (forward compatibility).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::timefmt::{Timestamp, opt_rfc3339};

pub const SCHEMA_VERSION: u32 = 1;

/// `pending → in_progress → completed | failed | timed_out | cancelled`.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    InProgress,
    Completed,
    Failed,
    TimedOut,
    Cancelled,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Pending,
        State::InProgress,
        State::Completed,
        State::Failed,
        State::TimedOut,
        State::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        !matches!(self, State::Pending | State::InProgress)
    }

    /// Terminal states that `--retry` moves back to `pending`.
    pub fn is_retryable(self) -> bool {
        matches!(self, State::Failed | State::TimedOut | State::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::InProgress => "in_progress",
            State::Completed => "completed",
            State::Failed => "failed",
            State::TimedOut => "timed_out",
            State::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s.replace('-', "_"))
            .ok_or_else(|| {
                let all: Vec<_> = State::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown state {s:?}; expected one of {}", all.join(", "))
            })
    }
}

/// What a run measured. Agents that report cost and tokens fill the rest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    #[serde(default)]
    pub duration_seconds: Option<f64>,
    #[serde(default)]
    pub lines_added: Option<u64>,
    #[serde(default)]
    pub lines_removed: Option<u64>,
    #[serde(default)]
    pub files_changed: Option<u64>,
    #[serde(default)]
    pub commits: Option<u64>,
    #[serde(default)]
    pub cost_usd: Option<f64>,
    #[serde(default)]
    pub turns: Option<u64>,
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub session_id: Option<String>,
    /// The model the agent runs (Claude Code's stream names it).
    #[serde(default)]
    pub model: Option<String>,
    /// The parts of `input_tokens` written to and read from the prompt
    /// cache, which are priced apart.
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    /// What the task's earlier attempts cost, summed by each retry.
    #[serde(default)]
    pub previous_cost_usd: Option<f64>,
    /// Claude Code's figure for the whole session, which counts the runs of
    /// a resumed session before this attempt too.
    #[serde(default)]
    pub session_cost_usd: Option<f64>,
    /// What each model used, when the agent splits it (a main model and the
    /// models its subagents ran on): the session's figures as the agent last
    /// reported them. The totals above count every model.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelMetrics>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One model's share of a run ([`Metrics::models`]).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ModelMetrics {
    /// Input tokens, cache reads and writes included.
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    #[serde(default)]
    pub cost_usd: Option<f64>,
}

/// One task: its spec and its whole run state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AgentStatus {
    // --- the seed's fields, same names and meaning ---
    pub agent_id: String,
    #[serde(default)]
    pub sub_issue: Option<u64>,
    pub status: State,
    #[serde(default, with = "opt_rfc3339")]
    pub start_time: Option<Timestamp>,
    #[serde(default, with = "opt_rfc3339")]
    pub last_update: Option<Timestamp>,
    #[serde(default)]
    pub pr_number: Option<u64>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default, with = "opt_rfc3339")]
    pub completion_time: Option<Timestamp>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub progress_percentage: Option<u8>,

    // --- po's additions ---
    #[serde(default = "default_schema_version")]
    pub schema_version: u32,
    #[serde(default)]
    pub orchestration_id: Option<String>,
    /// The task.
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default = "one")]
    pub wave: u32,
    /// Agent ids this task waits for.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Paths the task text mentions.
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub complexity: Option<String>,
    /// A manifest task's own id (`task-001-users`).
    #[serde(default)]
    pub task_id: Option<String>,
    /// A manifest task's agent type, passed to the agent adapter.
    #[serde(default)]
    pub agent: Option<String>,
    /// The prompt the agent got: a manifest task's own prompt file, used as
    /// given, or the one po writes from the task (recorded at its start).
    #[serde(default)]
    pub prompt_file: Option<PathBuf>,

    /// The run.
    #[serde(default = "one")]
    pub attempt: u32,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub pid: Option<i32>,
    #[serde(default)]
    pub pgid: Option<i32>,
    #[serde(default)]
    pub worktree: Option<PathBuf>,
    #[serde(default)]
    pub base_commit: Option<String>,
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub pr_url: Option<String>,
    /// Whether a failure may succeed when tried again unchanged (rate limits).
    #[serde(default)]
    pub retryable: Option<bool>,
    #[serde(default)]
    pub follow_up_issue: Option<u64>,
    /// The attempt whose failure `follow_up_issue` last reported (none: the first).
    #[serde(default)]
    pub follow_up_attempt: Option<u32>,
    /// Why the scheduler is ending the running attempt (a spending cap): its
    /// error when it ends cancelled.
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub metrics: Metrics,

    /// Fields this version does not know, kept on rewrite.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_schema_version() -> u32 {
    SCHEMA_VERSION
}

fn one() -> u32 {
    1
}

impl AgentStatus {
    /// A fresh `pending` task.
    pub fn new(agent_id: impl Into<String>, orchestration_id: impl Into<String>) -> Self {
        AgentStatus {
            agent_id: agent_id.into(),
            sub_issue: None,
            status: State::Pending,
            start_time: None,
            last_update: Some(crate::timefmt::now()),
            pr_number: None,
            branch: None,
            completion_time: None,
            error: None,
            progress_percentage: Some(0),
            schema_version: SCHEMA_VERSION,
            orchestration_id: Some(orchestration_id.into()),
            title: String::new(),
            body: String::new(),
            wave: 1,
            depends_on: Vec::new(),
            files: Vec::new(),
            complexity: None,
            task_id: None,
            agent: None,
            prompt_file: None,
            attempt: 1,
            phase: None,
            message: None,
            pid: None,
            pgid: None,
            worktree: None,
            base_commit: None,
            log_file: None,
            exit_code: None,
            pr_url: None,
            retryable: None,
            follow_up_issue: None,
            follow_up_attempt: None,
            stop_reason: None,
            metrics: Metrics::default(),
            extra: Map::new(),
        }
    }

    /// The number in `agent-<n>`, for ordering.
    pub fn number(&self) -> u64 {
        agent_number(&self.agent_id)
    }
}

/// `agent-12` → 12; anything else sorts last.
pub fn agent_number(agent_id: &str) -> u64 {
    agent_id
        .strip_prefix("agent-")
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Where the tasks came from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Source {
    /// `issue`, `markdown`, `stdin` or `manifest`.
    pub kind: String,
    /// The issue number, file or directory as given.
    pub value: String,
}

/// One wave: tasks that may run at once, and the command that validates it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Wave {
    pub number: u32,
    pub agents: Vec<String>,
    #[serde(default)]
    pub validation: Option<String>,
    /// What the last run made of it (po-spawn records it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<WaveResult>,
}

/// A wave's merge and validation, as the last run left them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct WaveResult {
    pub state: WaveState,
    #[serde(default)]
    pub error: Option<String>,
    /// The validation command's output.
    #[serde(default)]
    pub log: Option<PathBuf>,
    #[serde(default, with = "opt_rfc3339")]
    pub time: Option<Timestamp>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WaveState {
    /// Its branches are merged; its validation command runs.
    Validating,
    /// Merged, and validated when it has a command.
    Passed,
    /// Its branches conflict, or its validation failed: later waves do not run.
    Failed,
}

/// The phases a task's runner records while it prepares and starts the
/// agent (`phase` of the status file; an agent may report its own after).
pub mod phase {
    pub const WORKTREE: &str = "worktree";
    pub const PROMPT: &str = "prompt";
    pub const SANDBOX: &str = "sandbox";
    pub const SETUP: &str = "setup";
    pub const STARTING: &str = "starting";
    pub const RUNNING: &str = "running";
    /// Before the agent runs: `running` replaces them once it does.
    pub const BEFORE_RUNNING: [&str; 3] = [WORKTREE, SETUP, STARTING];
    /// What the runner, not the agent, says a task is doing.
    pub const RUNNER: [&str; 4] = [WORKTREE, SETUP, STARTING, RUNNING];
}

/// `parallel/<id>/orchestration.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Orchestration {
    #[serde(default = "default_schema_version")]
    pub schema_version: u32,
    pub id: String,
    pub source: Source,
    #[serde(default)]
    pub master_issue: Option<u64>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// The master issue's or file's text, for agents' context.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default, with = "opt_rfc3339")]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub waves: Vec<Wave>,
    /// What the parser found: skipped items, overlaps, dependencies, warnings.
    #[serde(default)]
    pub report: Value,
    /// Options of the runs (recorded by po-spawn).
    #[serde(default)]
    pub options: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Orchestration {
    /// The validation command of each wave that has one (blank is none).
    pub fn validations(&self) -> std::collections::HashMap<u32, String> {
        self.waves
            .iter()
            .filter_map(|w| {
                let v = w.validation.as_deref()?.trim();
                (!v.is_empty()).then(|| (w.number, v.to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_with_dashes_or_underscores() {
        assert_eq!("timed-out".parse::<State>().unwrap(), State::TimedOut);
        assert_eq!("in_progress".parse::<State>().unwrap(), State::InProgress);
        assert!(
            "done"
                .parse::<State>()
                .unwrap_err()
                .contains("expected one of")
        );
    }
}
