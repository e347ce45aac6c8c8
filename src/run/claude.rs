//! The Claude Code adapter: its argv, and its `--output-format stream-json` events.
//!
//! `claude -p --output-format stream-json --verbose` prints one JSON object a line
//! (shapes as of Claude Code 2.1.330, see `tests/fixtures/claude/`):
//!
//! - `{"type":"system","subtype":"init","session_id":…,"cwd":…,"model":…,"tools":[…]}` first;
//! - `{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"error_status":529,
//!   "error":"overloaded",…}` while the CLI itself retries a failed API call;
//! - `{"type":"assistant","message":{"id":…,"content":[{"type":"tool_use","name":"Bash",
//!   "input":{"command":…}}],"usage":{…}},"parent_tool_use_id":null,…}` per content block;
//!   when the CLI gives up on the API it prints a synthetic one with
//!   `"is_api_error_message":true,"api_error_status":429,"api_error_type":"rate_limit_error"`
//!   and the error text as its content;
//! - `{"type":"user","message":{"content":[{"type":"tool_result",…}]},…}` per tool result;
//! - `{"type":"result","subtype":"success"|"error_max_budget_usd"|…,"is_error":…,
//!   "num_turns":…,"total_cost_usd":…,"usage":{…},"result":…|"errors":[…],
//!   "api_error_status":…}` last. The exit code is 0, or 1 when `is_error`.
//!
//! Two failures print no stream of their own: an unknown `--agent` exits 1 at once
//! with `--agent 'X' not found. Available agents: …` on stderr, and `--resume` of a
//! session this machine does not have ends in a `result` whose `errors` say
//! `No conversation found with session ID: …` ([`is_unknown_session`]).

use std::path::Path;

use serde_json::Value;

use crate::protocol::AgentStatus;

/// How to run the real Claude Code CLI for one task.
#[derive(Clone, Debug, Default)]
pub struct ClaudeOptions {
    /// The program (default `claude`).
    pub program: String,
    pub model: Option<String>,
    pub max_budget_usd: Option<f64>,
    /// Model turns the agent may take (`--max-turns`).
    pub max_turns: Option<u32>,
    /// A manifest task's agent type, passed as `--agent`.
    pub agent: Option<String>,
    /// The session id to record (`--session-id`), or to resume when `resume`.
    pub session_id: String,
    pub resume: bool,
}

/// The full argv, program first. The prompt goes on stdin.
///
/// Every flag used here exists in Claude Code 2.1.330 (`claude --help`):
/// `--session-id <uuid>` starts a session under that id, `--resume <id>` continues
/// it (same id, its cost keeps adding up), `--model`, `--max-budget-usd` (print
/// mode only) and `--agent`; `--max-turns` is not listed there but is accepted
/// (the run ends with `error_max_turns`). `--dangerously-skip-permissions` is
/// refused when run as root unless `IS_SANDBOX=1` is in the environment.
pub fn argv(opts: &ClaudeOptions) -> Vec<String> {
    let program = if opts.program.is_empty() {
        "claude"
    } else {
        &opts.program
    };
    let mut args: Vec<String> = [
        program,
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--dangerously-skip-permissions",
    ]
    .map(String::from)
    .into();
    args.push(
        if opts.resume {
            "--resume"
        } else {
            "--session-id"
        }
        .into(),
    );
    args.push(opts.session_id.clone());
    if let Some(model) = &opts.model {
        args.extend(["--model".into(), model.clone()]);
    }
    if let Some(budget) = opts.max_budget_usd {
        args.extend(["--max-budget-usd".into(), budget.to_string()]);
    }
    if let Some(turns) = opts.max_turns {
        args.extend(["--max-turns".into(), turns.to_string()]);
    }
    if let Some(agent) = &opts.agent {
        args.extend(["--agent".into(), agent.clone()]);
    }
    args
}

/// A fresh random (version 4) UUID for `--session-id`, which must be a valid UUID.
pub fn new_session_id() -> std::io::Result<String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// One thing learned from the stream.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamUpdate {
    SessionId(String),
    /// What the agent is doing, from the tool in use ("Bash: cargo test").
    Phase(String),
    /// Model turns so far; the final `result` event gives the CLI's own count.
    Turns(u64),
    /// The model, from the `init` event and the assistant messages.
    Model(String),
    /// The session's total cost, from the final `result` event. For a
    /// resumed session it counts the earlier runs too.
    CostUsd(f64),
    /// Input tokens (cache reads and writes included) and output tokens: a
    /// running estimate from the assistant messages, then the `result`'s totals.
    Tokens {
        input: u64,
        output: u64,
    },
    /// The parts of the input tokens written to and read from the prompt
    /// cache (priced apart), as `Tokens` counts them.
    CacheTokens {
        write: u64,
        read: u64,
    },
    /// An API error the CLI gave up on; rate limits (429), overloads (529) and
    /// other server errors (5xx, 408) are retryable, bad requests are not.
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

/// Longest phase text, in characters.
const PHASE_MAX: usize = 60;
/// Longest error or message text kept in a status file, in characters.
const MESSAGE_MAX: usize = 300;
/// A line that does not parse is kept to be joined with the next one, up to this size.
const PENDING_MAX: usize = 1 << 20;

/// Reads the stream one line at a time, as it comes.
#[derive(Debug, Default)]
pub struct StreamParser {
    session_id: Option<String>,
    cwd: Option<String>,
    model: Option<String>,
    phase: Option<String>,
    /// Ids of the top-level assistant messages seen (one per model turn).
    messages: Vec<String>,
    input_tokens: u64,
    output_tokens: u64,
    cache_write_tokens: u64,
    cache_read_tokens: u64,
    api_error_sent: bool,
    /// The start of a JSON object split across lines.
    pending: String,
}

impl StreamParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Updates from one line of stdout (non-JSON lines give none).
    pub fn feed_line(&mut self, line: &str) -> Vec<StreamUpdate> {
        let line = line.trim();
        if line.is_empty() {
            return Vec::new();
        }
        let event = if self.pending.is_empty() {
            parse_object(line)
        } else {
            let joined = std::mem::take(&mut self.pending) + line;
            parse_object(&joined).or_else(|| parse_object(line))
        };
        match event {
            Some(event) => self.event(&event),
            None => {
                if line.starts_with('{') && line.len() <= PENDING_MAX {
                    self.pending = line.to_string();
                }
                Vec::new()
            }
        }
    }

    fn event(&mut self, event: &Value) -> Vec<StreamUpdate> {
        let mut out = Vec::new();
        if let Some(id) = event.get("session_id").and_then(Value::as_str)
            && !id.is_empty()
            && self.session_id.as_deref() != Some(id)
        {
            self.session_id = Some(id.to_string());
            out.push(StreamUpdate::SessionId(id.to_string()));
        }
        match event.get("type").and_then(Value::as_str) {
            Some("system") => self.system(event, &mut out),
            Some("assistant") => self.assistant(event, &mut out),
            Some("result") => self.result(event, &mut out),
            _ => {}
        }
        out
    }

    fn system(&mut self, event: &Value, out: &mut Vec<StreamUpdate>) {
        match event.get("subtype").and_then(Value::as_str) {
            Some("init") => {
                self.cwd = event.get("cwd").and_then(Value::as_str).map(String::from);
                self.set_model(event.get("model"), out);
            }
            Some("api_retry") => {
                // The CLI retries on its own; say so, it is not a failure yet.
                let what = event
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("error");
                let mut phase = format!("API {what}");
                if let Some(status) = event.get("error_status").and_then(Value::as_u64) {
                    phase.push_str(&format!(" ({status})"));
                }
                phase.push_str(", retrying");
                if let Some(attempt) = event.get("attempt").and_then(Value::as_u64) {
                    phase.push_str(&format!(" {attempt}"));
                    if let Some(max) = event.get("max_retries").and_then(Value::as_u64) {
                        phase.push_str(&format!("/{max}"));
                    }
                }
                self.set_phase(phase, out);
            }
            _ => {}
        }
    }

    fn assistant(&mut self, event: &Value, out: &mut Vec<StreamUpdate>) {
        let Some(message) = event.get("message") else {
            return;
        };
        if event.get("is_api_error_message").and_then(Value::as_bool) == Some(true) {
            let text = content_text(message).unwrap_or_else(|| "API error".into());
            out.push(StreamUpdate::ApiError {
                retryable: is_retryable(event),
                message: one_line(&text, MESSAGE_MAX),
            });
            self.api_error_sent = true;
            return;
        }
        let top_level = event.get("parent_tool_use_id").is_none_or(Value::is_null);
        if top_level {
            self.set_model(message.get("model"), out);
        }
        let id = message.get("id").and_then(Value::as_str);
        if top_level
            && let Some(id) = id
            && !self.messages.iter().any(|m| m == id)
        {
            self.messages.push(id.to_string());
            out.push(StreamUpdate::Turns(self.messages.len() as u64));
            if let Some(usage) = message.get("usage") {
                let (input, output) = usage_tokens(usage);
                let (write, read) = cache_tokens(usage);
                self.input_tokens += input;
                self.output_tokens += output;
                self.cache_write_tokens += write;
                self.cache_read_tokens += read;
                out.push(StreamUpdate::Tokens {
                    input: self.input_tokens,
                    output: self.output_tokens,
                });
                out.push(StreamUpdate::CacheTokens {
                    write: self.cache_write_tokens,
                    read: self.cache_read_tokens,
                });
            }
        }
        let blocks = message.get("content").and_then(Value::as_array);
        for block in blocks.into_iter().flatten() {
            if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                let name = block.get("name").and_then(Value::as_str).unwrap_or("tool");
                let input = block.get("input").unwrap_or(&Value::Null);
                let phase = tool_phase(name, input, self.cwd.as_deref());
                self.set_phase(phase, out);
            }
        }
    }

    fn result(&mut self, event: &Value, out: &mut Vec<StreamUpdate>) {
        if let Some(turns) = event.get("num_turns").and_then(Value::as_u64) {
            out.push(StreamUpdate::Turns(turns));
        }
        if let Some(cost) = event.get("total_cost_usd").and_then(Value::as_f64) {
            out.push(StreamUpdate::CostUsd(cost));
        }
        if let Some(usage) = event.get("usage").filter(|u| u.is_object()) {
            let (input, output) = usage_tokens(usage);
            let (write, read) = cache_tokens(usage);
            out.push(StreamUpdate::Tokens { input, output });
            out.push(StreamUpdate::CacheTokens { write, read });
        }
        let is_error = event
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || event
                .get("subtype")
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with("error"));
        let text = event
            .get("result")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| {
                let errors = event.get("errors")?.as_array()?;
                let errors: Vec<&str> = errors.iter().filter_map(Value::as_str).collect();
                (!errors.is_empty()).then(|| errors.join("; "))
            })
            .or_else(|| {
                let subtype = event.get("subtype").and_then(Value::as_str)?;
                is_error.then(|| format!("claude ended with {subtype}"))
            });
        let api_status = event.get("api_error_status").and_then(Value::as_u64);
        if api_status.is_some() && !self.api_error_sent {
            out.push(StreamUpdate::ApiError {
                message: one_line(text.as_deref().unwrap_or("API error"), MESSAGE_MAX),
                retryable: is_retryable(event),
            });
            self.api_error_sent = true;
        }
        out.push(StreamUpdate::Finished {
            is_error,
            message: text.map(|t| one_line(&t, MESSAGE_MAX)),
        });
    }

    /// A model name the stream gives (`claude-opus-5-5`), when it changed.
    fn set_model(&mut self, model: Option<&Value>, out: &mut Vec<StreamUpdate>) {
        let Some(model) = model.and_then(Value::as_str).filter(|m| !m.is_empty()) else {
            return;
        };
        let model = one_line(model, PHASE_MAX);
        if self.model.as_deref() != Some(model.as_str()) {
            self.model = Some(model.clone());
            out.push(StreamUpdate::Model(model));
        }
    }

    fn set_phase(&mut self, phase: String, out: &mut Vec<StreamUpdate>) {
        if self.phase.as_deref() != Some(phase.as_str()) {
            self.phase = Some(phase.clone());
            out.push(StreamUpdate::Phase(phase));
        }
    }
}

/// What the stream said that decides the run's final state.
#[derive(Default, Debug)]
pub struct StreamOutcome {
    /// The last API error: its message, and whether trying again may pass.
    pub api_error: Option<(String, bool)>,
    /// The `result` event: whether it is an error, and its message.
    pub finished: Option<(bool, Option<String>)>,
}

/// Read the agent's stdout line by line until it closes: append each line to
/// `log`, feed the parser, and apply what it learns to the status file (at
/// most every 250 ms, never later than 250 ms after it learned it, and once
/// at the end: a turn's tokens reach the file while its tool runs, for a
/// budget to count). `on_line` is called for every line (activity, for stall
/// detection).
pub fn read_stream(
    out: impl std::io::Read + Send + 'static,
    mut log: Option<std::fs::File>,
    status_file: &Path,
    mut on_line: impl FnMut(),
) -> StreamOutcome {
    use std::io::{BufRead, Write};
    use std::sync::mpsc::{self, RecvTimeoutError};
    use std::time::{Duration, Instant};

    const EVERY: Duration = Duration::from_millis(250);
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(out);
        loop {
            let mut buf = Vec::new();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if tx.send(buf).is_err() {
                break;
            }
        }
    });
    let mut parser = StreamParser::new();
    let mut outcome = StreamOutcome::default();
    let mut pending: Vec<StreamUpdate> = Vec::new();
    let mut last_flush = Instant::now();
    let flush = |pending: &mut Vec<StreamUpdate>| {
        if pending.is_empty() {
            return;
        }
        let updates = std::mem::take(pending);
        let _ = crate::protocol::store::update_status(status_file, |s| {
            for u in &updates {
                apply(s, u);
            }
            Ok(())
        });
    };
    loop {
        let wait = match pending.is_empty() {
            true => Duration::from_secs(3600),
            false => (last_flush + EVERY).saturating_duration_since(Instant::now()),
        };
        match rx.recv_timeout(wait) {
            Ok(buf) => {
                on_line();
                if let Some(f) = log.as_mut() {
                    let _ = f.write_all(&buf);
                }
                let line = String::from_utf8_lossy(&buf);
                for u in parser.feed_line(line.trim_end_matches(['\n', '\r'])) {
                    match &u {
                        StreamUpdate::ApiError { message, retryable } => {
                            outcome.api_error = Some((message.clone(), *retryable));
                        }
                        StreamUpdate::Finished { is_error, message } => {
                            outcome.finished = Some((*is_error, message.clone()));
                        }
                        _ => {}
                    }
                    pending.push(u);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if !pending.is_empty() && last_flush.elapsed() >= EVERY {
            flush(&mut pending);
            last_flush = Instant::now();
        }
    }
    flush(&mut pending);
    outcome
}

/// Start a new session in place of one the CLI does not have: the attempt
/// goes on, without the failure the unknown session left.
pub fn restart_session(status_file: &Path, fresh: &str) -> crate::Result<()> {
    crate::protocol::store::update_status(status_file, |s| {
        s.error = None;
        s.retryable = None;
        s.exit_code = None;
        s.metrics.session_id = Some(fresh.to_string());
        s.metrics.session_cost_usd = None;
        s.metrics.cost_usd = None;
        Ok(())
    })
    .map(|_| ())
}

/// Whether a `Finished` message says `--resume` named a session this machine
/// does not have (then start afresh with `--session-id`).
pub fn is_unknown_session(message: &str) -> bool {
    message.starts_with("No conversation found with session ID")
}

/// Apply an update to a status file's contents.
///
/// Only what the stream knows is written: the run's state (`status`) is the
/// runner's to decide, from `Finished` and the exit code.
pub fn apply(status: &mut AgentStatus, update: &StreamUpdate) {
    let metrics = &mut status.metrics;
    match update {
        StreamUpdate::SessionId(id) => metrics.session_id = Some(id.clone()),
        StreamUpdate::Phase(phase) => status.phase = Some(phase.clone()),
        StreamUpdate::Turns(turns) => metrics.turns = Some(*turns),
        StreamUpdate::Model(model) => metrics.model = Some(model.clone()),
        StreamUpdate::CostUsd(total) => {
            // A resumed session's figure counts its runs before this attempt,
            // which earlier attempts recorded: this attempt cost what it added.
            let before = metrics.session_cost_usd.unwrap_or(0.0);
            let added = ((total - before).max(0.0) * 1e10).round() / 1e10;
            metrics.cost_usd = Some(added);
            metrics.session_cost_usd = Some(*total);
        }
        StreamUpdate::Tokens { input, output } => {
            metrics.input_tokens = Some(*input);
            metrics.output_tokens = Some(*output);
        }
        StreamUpdate::CacheTokens { write, read } => {
            metrics.cache_creation_input_tokens = Some(*write);
            metrics.cache_read_input_tokens = Some(*read);
        }
        StreamUpdate::ApiError { message, retryable } => {
            status.error = Some(format!("claude: {message}"));
            status.retryable = Some(*retryable);
        }
        StreamUpdate::Finished { is_error, message } => {
            if *is_error {
                if status.error.is_none() {
                    let message = message.as_deref().unwrap_or("claude reported an error");
                    status.error = Some(format!("claude: {message}"));
                }
                status.retryable.get_or_insert(false);
            } else if let Some(message) = message {
                status.message = Some(message.clone());
            }
        }
    }
}

/// The line as a JSON object, if it is one.
fn parse_object(line: &str) -> Option<Value> {
    serde_json::from_str::<Value>(line)
        .ok()
        .filter(Value::is_object)
}

/// Rate limits, overloads and server errors may succeed when tried again unchanged.
fn is_retryable(event: &Value) -> bool {
    let status = event.get("api_error_status").and_then(Value::as_u64);
    let kinds = [
        event.get("api_error_type"),
        event.get("error"),
        event.pointer("/message/error"),
    ];
    let kind_says = kinds
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|k| k.contains("rate_limit") || k.contains("overloaded") || k == "server_error");
    kind_says || matches!(status, Some(408 | 429 | 500..=599))
}

/// (input including cache reads and writes, output) from an API `usage` object.
fn usage_tokens(usage: &Value) -> (u64, u64) {
    let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    (
        n("input_tokens") + n("cache_creation_input_tokens") + n("cache_read_input_tokens"),
        n("output_tokens"),
    )
}

/// (cache writes, cache reads) from an API `usage` object.
fn cache_tokens(usage: &Value) -> (u64, u64) {
    let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    (
        n("cache_creation_input_tokens"),
        n("cache_read_input_tokens"),
    )
}

/// The text blocks of a message, joined.
fn content_text(message: &Value) -> Option<String> {
    let texts: Vec<&str> = message
        .get("content")?
        .as_array()?
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    (!texts.is_empty()).then(|| texts.join(" "))
}

/// What a tool call means to someone watching: "Bash: cargo test", "Editing src/x.rs".
fn tool_phase(name: &str, input: &Value, cwd: Option<&str>) -> String {
    let s = |k: &str| input.get(k).and_then(Value::as_str).unwrap_or("");
    let path = |k: &str| relative(s(k), cwd);
    let phase = match name {
        "Bash" => format!("Bash: {}", s("command")),
        "Edit" | "MultiEdit" => format!("Editing {}", path("file_path")),
        "Write" => format!("Writing {}", path("file_path")),
        "NotebookEdit" => format!("Editing {}", path("notebook_path")),
        "Read" => format!("Reading {}", path("file_path")),
        "Grep" => format!("Searching for {}", s("pattern")),
        "Glob" => format!("Finding {}", s("pattern")),
        "Task" | "Agent" => format!("Subagent: {}", s("description")),
        "WebFetch" => format!("Fetching {}", s("url")),
        "WebSearch" => format!("Searching the web: {}", s("query")),
        "TodoWrite" | "TaskCreate" | "TaskUpdate" => "Planning".to_string(),
        other => format!("Using {other}"),
    };
    one_line(phase.trim_end_matches([' ', ':']), PHASE_MAX)
}

/// `path` relative to `cwd` when inside it.
fn relative(path: &str, cwd: Option<&str>) -> String {
    cwd.and_then(|cwd| Path::new(path).strip_prefix(cwd).ok())
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| path.to_string())
}

/// The first line, whitespace collapsed, cut to `max` characters with an ellipsis.
fn one_line(text: &str, max: usize) -> String {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = crate::text::collapse_whitespace(first);
    let more_lines = text.lines().filter(|l| !l.trim().is_empty()).count() > 1;
    if line.chars().count() > max {
        crate::text::ellipsize(&line, max)
    } else if more_lines && line.chars().count() < max {
        format!("{line} …")
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ClaudeOptions {
        ClaudeOptions {
            session_id: "0b8f0c9e-5b0a-4c55-9a43-6f5a2d1e7c11".into(),
            ..Default::default()
        }
    }

    #[test]
    fn argv_starts_a_recorded_session() {
        assert_eq!(
            argv(&opts()),
            [
                "claude",
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--dangerously-skip-permissions",
                "--session-id",
                "0b8f0c9e-5b0a-4c55-9a43-6f5a2d1e7c11"
            ]
        );
    }

    #[test]
    fn argv_resumes_and_passes_model_budget_and_agent() {
        let o = ClaudeOptions {
            program: "/opt/claude".into(),
            model: Some("sonnet".into()),
            max_budget_usd: Some(2.5),
            agent: Some("backend-dev".into()),
            resume: true,
            ..opts()
        };
        let a = argv(&o);
        assert_eq!(a[0], "/opt/claude");
        assert!(!a.contains(&"--session-id".to_string()));
        assert_eq!(
            &a[6..],
            [
                "--resume",
                "0b8f0c9e-5b0a-4c55-9a43-6f5a2d1e7c11",
                "--model",
                "sonnet",
                "--max-budget-usd",
                "2.5",
                "--agent",
                "backend-dev"
            ]
        );
    }

    #[test]
    fn session_ids_are_fresh_v4_uuids() {
        let a = new_session_id().unwrap();
        let b = new_session_id().unwrap();
        assert_ne!(a, b);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{a}");
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]), "{a}");
    }

    #[test]
    fn phases_name_the_tool_and_its_target() {
        let cwd = Some("/w/agent-1");
        let bash = serde_json::json!({"command": "git commit -m 'a message long enough to need cutting off here'"});
        let p = tool_phase("Bash", &bash, cwd);
        assert!(p.starts_with("Bash: git commit -m 'a message"), "{p}");
        assert!(p.ends_with('…') && p.chars().count() <= PHASE_MAX, "{p}");
        let edit = serde_json::json!({"file_path": "/w/agent-1/src/x.rs"});
        assert_eq!(tool_phase("Edit", &edit, cwd), "Editing src/x.rs");
        assert_eq!(
            tool_phase("Read", &edit, None),
            "Reading /w/agent-1/src/x.rs"
        );
        assert_eq!(
            tool_phase("Frobnicate", &Value::Null, cwd),
            "Using Frobnicate"
        );
        let multi = serde_json::json!({"command": "cargo test\ncargo clippy"});
        assert_eq!(tool_phase("Bash", &multi, cwd), "Bash: cargo test …");
    }

    #[test]
    fn garbage_and_unknown_events_give_nothing() {
        let mut p = StreamParser::new();
        for line in [
            "",
            "   ",
            "not json",
            "[1,2,3]",
            "42",
            "\"string\"",
            r#"{"type":"stream_event","event":{}}"#,
            r#"{"type":"assistant"}"#,
            r#"{"type":"assistant","message":{"content":"text"}}"#,
            r#"{"type":"result","num_turns":"many"}"#,
        ] {
            let got = p.feed_line(line);
            assert!(
                got.iter()
                    .all(|u| matches!(u, StreamUpdate::Finished { .. })),
                "{line:?} gave {got:?}"
            );
        }
    }

    #[test]
    fn a_json_object_split_across_two_lines_is_joined() {
        let mut p = StreamParser::new();
        assert!(
            p.feed_line(r#"{"type":"system","subtype":"init","#)
                .is_empty()
        );
        assert_eq!(
            p.feed_line(r#""session_id":"abc","cwd":"/w"}"#),
            [StreamUpdate::SessionId("abc".into())]
        );
        // A broken start followed by a whole line: the whole line still counts.
        assert!(p.feed_line(r#"{"type":"res"#).is_empty());
        assert_eq!(
            p.feed_line(r#"{"type":"system","session_id":"def"}"#),
            [StreamUpdate::SessionId("def".into())]
        );
    }

    #[test]
    fn the_model_and_the_cache_tokens_come_from_the_stream() {
        let mut p = StreamParser::new();
        let init =
            r#"{"type":"system","subtype":"init","session_id":"s","model":"claude-opus-5-5"}"#;
        assert_eq!(
            p.feed_line(init),
            [
                StreamUpdate::SessionId("s".into()),
                StreamUpdate::Model("claude-opus-5-5".into())
            ]
        );
        let msg = |id: &str, model: &str| {
            format!(
                r#"{{"type":"assistant","message":{{"id":"{id}","model":"{model}","content":[],
                "usage":{{"input_tokens":1200,"cache_creation_input_tokens":300,
                "cache_read_input_tokens":2000,"output_tokens":1}}}}}}"#
            )
            .replace('\n', "")
        };
        let u = p.feed_line(&msg("m1", "claude-opus-5-5"));
        assert!(
            !u.iter().any(|u| matches!(u, StreamUpdate::Model(_))),
            "{u:?}"
        );
        assert!(u.contains(&StreamUpdate::CacheTokens {
            write: 300,
            read: 2000
        }));
        let u = p.feed_line(&msg("m2", "claude-haiku-4-5"));
        assert!(u.contains(&StreamUpdate::Model("claude-haiku-4-5".into())));
        assert!(u.contains(&StreamUpdate::CacheTokens {
            write: 600,
            read: 4000
        }));
        let mut s = AgentStatus::new("agent-1", "7");
        for x in &u {
            apply(&mut s, x);
        }
        assert_eq!(s.metrics.model.as_deref(), Some("claude-haiku-4-5"));
        assert_eq!(s.metrics.input_tokens, Some(7000));
        assert_eq!(s.metrics.cache_read_input_tokens, Some(4000));
    }

    #[test]
    fn a_resumed_sessions_total_counts_only_what_this_attempt_added() {
        let mut s = AgentStatus::new("agent-1", "7");
        apply(&mut s, &StreamUpdate::CostUsd(0.0132));
        assert_eq!(
            (s.metrics.cost_usd, s.metrics.session_cost_usd),
            (Some(0.0132), Some(0.0132))
        );
        // A retry resumes the session: Claude Code's figure is the session's.
        s.metrics.cost_usd = None;
        apply(&mut s, &StreamUpdate::CostUsd(0.0198));
        assert_eq!(s.metrics.cost_usd, Some(0.0066));
        assert_eq!(s.metrics.session_cost_usd, Some(0.0198));
    }

    /// A turn's tokens reach the status file while its tool still runs (the
    /// stream says nothing more until the tool is done), for a budget to count.
    #[test]
    fn what_the_stream_said_reaches_the_file_while_the_agent_is_quiet() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent-1.status.json");
        crate::protocol::store::write_status(&file, &AgentStatus::new("agent-1", "7")).unwrap();
        let (reader, mut writer) = std::io::pipe().unwrap();
        let f = file.clone();
        let stream = std::thread::spawn(move || read_stream(reader, None, &f, || {}));
        for line in [
            r#"{"type":"system","subtype":"init","session_id":"s","model":"claude-sonnet-4-5"}"#,
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"tool_use","name":"Bash","input":{"command":"sleep 600"}}],"usage":{"input_tokens":1200,"cache_creation_input_tokens":300,"cache_read_input_tokens":2000,"output_tokens":1}}}"#,
        ] {
            writeln!(writer, "{line}").unwrap();
        }
        // The pipe stays open, as while the tool runs (hang guard: 60 s).
        let start = std::time::Instant::now();
        let s = loop {
            let s = crate::protocol::store::read_status(&file).unwrap();
            if s.metrics.input_tokens.is_some() {
                break s;
            }
            assert!(start.elapsed().as_secs() < 60, "never written: {s:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(s.phase.as_deref(), Some("Bash: sleep 600"));
        assert_eq!(s.metrics.cache_read_input_tokens, Some(2000));
        assert!(crate::cost::estimate(&s.metrics).unwrap() > 0.0);
        drop(writer);
        assert!(stream.join().unwrap().finished.is_none());
    }

    #[test]
    fn argv_caps_turns() {
        let a = argv(&ClaudeOptions {
            max_turns: Some(7),
            ..opts()
        });
        assert_eq!(&a[a.len() - 2..], ["--max-turns", "7"]);
    }

    #[test]
    fn apply_writes_metrics_phase_and_errors() {
        let mut s = AgentStatus::new("agent-1", "7");
        for u in [
            StreamUpdate::SessionId("sid".into()),
            StreamUpdate::Phase("Bash: make".into()),
            StreamUpdate::Turns(3),
            StreamUpdate::CostUsd(0.25),
            StreamUpdate::Tokens {
                input: 10,
                output: 2,
            },
            StreamUpdate::ApiError {
                message: "API Error: 529 Overloaded".into(),
                retryable: true,
            },
            StreamUpdate::Finished {
                is_error: true,
                message: Some("something else".into()),
            },
        ] {
            apply(&mut s, &u);
        }
        assert_eq!(s.metrics.session_id.as_deref(), Some("sid"));
        assert_eq!(s.phase.as_deref(), Some("Bash: make"));
        assert_eq!(s.metrics.turns, Some(3));
        assert_eq!(s.metrics.cost_usd, Some(0.25));
        assert_eq!(
            (s.metrics.input_tokens, s.metrics.output_tokens),
            (Some(10), Some(2))
        );
        assert_eq!(
            s.error.as_deref(),
            Some("claude: API Error: 529 Overloaded")
        );
        assert_eq!(s.retryable, Some(true));
        assert_eq!(s.status, crate::protocol::State::Pending);

        let mut s = AgentStatus::new("agent-2", "7");
        apply(
            &mut s,
            &StreamUpdate::Finished {
                is_error: true,
                message: Some("Reached maximum budget ($0.01)".into()),
            },
        );
        assert_eq!(
            s.error.as_deref(),
            Some("claude: Reached maximum budget ($0.01)")
        );
        assert_eq!(s.retryable, Some(false));
    }
}
