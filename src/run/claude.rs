//! The Claude Code adapter: its argv, and its `--output-format stream-json` events.

use crate::protocol::AgentStatus;

/// How to run the real Claude Code CLI for one task.
#[derive(Clone, Debug, Default)]
pub struct ClaudeOptions {
    /// The program (default `claude`).
    pub program: String,
    pub model: Option<String>,
    pub max_budget_usd: Option<f64>,
    /// A manifest task's agent type, passed as `--agent`.
    pub agent: Option<String>,
    /// The session id to record (`--session-id`), or to resume when `resume`.
    pub session_id: String,
    pub resume: bool,
}

/// The full argv, program first. The prompt goes on stdin.
pub fn argv(opts: &ClaudeOptions) -> Vec<String> {
    let _ = opts;
    unimplemented!()
}

/// One thing learned from the stream.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamUpdate {
    SessionId(String),
    /// What the agent is doing, from the tool in use ("Running: cargo test").
    Phase(String),
    Turns(u64),
    CostUsd(f64),
    Tokens {
        input: u64,
        output: u64,
    },
    /// An API error; rate limits and overloads are retryable.
    ApiError {
        message: String,
        retryable: bool,
    },
    /// The final `result` event.
    Finished {
        is_error: bool,
        message: Option<String>,
    },
}

/// Reads the stream one line at a time, as it comes.
#[derive(Debug, Default)]
pub struct StreamParser {}

impl StreamParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Updates from one line of stdout (non-JSON lines give none).
    pub fn feed_line(&mut self, line: &str) -> Vec<StreamUpdate> {
        let _ = line;
        Vec::new()
    }
}

/// Apply an update to a status file's contents.
pub fn apply(status: &mut AgentStatus, update: &StreamUpdate) {
    let _ = (status, update);
}
