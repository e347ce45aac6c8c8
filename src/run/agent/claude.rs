//! The Claude Code agent: its argv, its `--output-format stream-json` events,
//! its sessions (po names them with `--session-id`, resumes them with
//! `--resume`) and its errors.
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
//!   "api_error_status":…,"modelUsage":{…}}` last. The exit code is 0, or 1 when `is_error`.
//!
//! Seen in real transcripts (`tests/fixtures/claude/real_*.jsonl`, 2.0.76 to 2.1.29):
//!
//! - an assistant message id repeats, once per content block, with `usage` growing
//!   (its output tokens count up): the latest usage of each id is the one that counts;
//! - the `result`'s `usage` leaves out what subagents on other models used, and its
//!   `modelUsage` has each model's tokens and cost: the totals are the sum of those;
//! - an API failure the CLI gave up on (500 in 2.1.29) comes as assistant messages
//!   whose `model` is `"<synthetic>"`, with `"error":"unknown"` and the text
//!   `API Error: 500 {…}`, then a `result` with `"subtype":"success","is_error":true`
//!   and no `api_error_status`: the status code is read from that text, and the
//!   synthetic model is never recorded.
//!
//! Two failures print no stream of their own: an unknown `--agent` exits 1 at once
//! with `--agent 'X' not found. Available agents: …` on stderr, and `--resume` of a
//! session this machine does not have ends in a `result` whose `errors` say
//! `No conversation found with session ID: …` ([`is_unknown_session`]).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::stream::ModelUsage;
use super::stream::one_line;
use super::{
    Abilities, Agent, AgentSpec, ExitMeaning, Invocation, Launch, PromptVia, Registration, Session,
    Sessions, StreamOutcome, StreamRead, StreamUpdate,
};

/// `--agent claude`.
pub const REGISTRATION: Registration = Registration {
    name: "claude",
    about: "Claude Code (`claude -p --output-format stream-json`; PO_CLAUDE names the program)",
    program_env: PROGRAM_ENV,
    program: PROGRAM,
    make: |spec| Box::new(Claude::new(spec)),
};

/// The program run when none is given, and the variable that names another.
const PROGRAM: &str = "claude";
pub const PROGRAM_ENV: &str = "PO_CLAUDE";

/// What one Claude Code agent typically holds in memory (its Node.js
/// process and the tools it starts).
pub const TYPICAL_MEMORY: u64 = 512 << 20;

/// Claude Code, as a task's supervisor runs it.
#[derive(Clone, Debug)]
pub struct Claude {
    spec: AgentSpec,
}

impl Claude {
    pub fn new(spec: &AgentSpec) -> Claude {
        Claude { spec: spec.clone() }
    }
}

impl Agent for Claude {
    fn name(&self) -> &str {
        "claude"
    }

    fn program(&self) -> &str {
        if self.spec.program.is_empty() {
            PROGRAM
        } else {
            &self.spec.program
        }
    }

    fn state_paths(&self, home: &Path) -> Vec<PathBuf> {
        // Claude Code keeps sessions, todos and logs under ~/.claude and its
        // settings in ~/.claude.json (replaced by rename, with backups beside
        // it), unless CLAUDE_CONFIG_DIR moves both.
        match std::env::var_os("CLAUDE_CONFIG_DIR") {
            Some(dir) if !dir.is_empty() => vec![PathBuf::from(dir)],
            _ => vec![home.join(".claude"), home.join(".claude.json")],
        }
    }

    fn install_hint(&self) -> String {
        format!(
            "install Claude Code (npm install -g @anthropic-ai/claude-code; ${PROGRAM_ENV} names \
             another program), or run another agent with --agent-cmd 'prog {{prompt_file}}'"
        )
    }

    fn invocation(&self, launch: &Launch) -> Invocation {
        let (session_id, resume) = match launch.session {
            Session::New(id) => (id.to_string(), false),
            Session::Resume(id) => (id.to_string(), true),
            Session::Fresh => (String::new(), false),
        };
        Invocation {
            argv: argv(&ClaudeOptions {
                program: self.program().to_string(),
                model: self.spec.model.clone(),
                max_budget_usd: self.spec.max_budget_usd,
                max_turns: self.spec.max_turns,
                agent: launch.task.agent.clone(),
                session_id,
                resume,
            }),
            prompt: PromptVia::Stdin,
        }
    }

    fn reader(&self) -> Option<Box<dyn StreamRead>> {
        Some(Box::new(StreamParser::new()))
    }

    fn sessions(&self) -> Sessions {
        Sessions::Chosen
    }

    fn unknown_session(&self, outcome: &StreamOutcome) -> bool {
        outcome.error_message().is_some_and(is_unknown_session)
    }

    fn exit_meaning(&self, _code: i32) -> Option<ExitMeaning> {
        // 1 is every failure; the stream says which.
        None
    }

    fn abilities(&self) -> Abilities {
        Abilities {
            max_turns: true,
            max_budget: true,
            reports_spend: true,
        }
    }

    fn typical_memory(&self) -> Option<u64> {
        Some(TYPICAL_MEMORY)
    }
}

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
        PROGRAM
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
    if !opts.session_id.is_empty() {
        args.push(
            if opts.resume {
                "--resume"
            } else {
                "--session-id"
            }
            .into(),
        );
        args.push(opts.session_id.clone());
    }
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
    super::new_uuid()
}

/// Whether a final message says `--resume` named a session this machine
/// does not have (then start afresh with `--session-id`).
pub fn is_unknown_session(message: &str) -> bool {
    message.starts_with("No conversation found with session ID")
}

/// The model Claude Code names its own messages with (API errors it made up).
const SYNTHETIC_MODEL: &str = "<synthetic>";
/// Longest phase text, in characters.
const PHASE_MAX: usize = 60;
/// Longest error or message text kept in a status file, in characters.
const MESSAGE_MAX: usize = 300;
/// A line that does not parse is kept to be joined with the next one, up to this size.
const PENDING_MAX: usize = 1 << 20;

/// One API request's usage: (input with cache, output, cache writes, cache reads).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Usage {
    input: u64,
    output: u64,
    cache_write: u64,
    cache_read: u64,
}

impl Usage {
    fn of(usage: &Value) -> Usage {
        let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
        let (write, read) = (
            n("cache_creation_input_tokens"),
            n("cache_read_input_tokens"),
        );
        Usage {
            input: n("input_tokens") + write + read,
            output: n("output_tokens"),
            cache_write: write,
            cache_read: read,
        }
    }

    fn add(&mut self, u: &Usage) {
        self.input += u.input;
        self.output += u.output;
        self.cache_write += u.cache_write;
        self.cache_read += u.cache_read;
    }

    fn updates(&self, out: &mut Vec<StreamUpdate>) {
        out.push(StreamUpdate::Tokens {
            input: self.input,
            output: self.output,
        });
        out.push(StreamUpdate::CacheTokens {
            write: self.cache_write,
            read: self.cache_read,
        });
    }
}

/// Reads the stream one line at a time, as it comes.
#[derive(Debug, Default)]
pub struct StreamParser {
    session_id: Option<String>,
    cwd: Option<String>,
    model: Option<String>,
    phase: Option<String>,
    /// The top-level assistant messages seen (one per model turn), each with
    /// the latest usage the stream gave it.
    messages: Vec<(String, Usage)>,
    api_error_sent: bool,
    /// The start of a JSON object split across lines.
    pending: String,
}

impl StreamRead for StreamParser {
    fn feed_line(&mut self, line: &str) -> Vec<StreamUpdate> {
        StreamParser::feed_line(self, line)
    }
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
        let synthetic = message.get("model").and_then(Value::as_str) == Some(SYNTHETIC_MODEL);
        if event.get("is_api_error_message").and_then(Value::as_bool) == Some(true) || synthetic {
            self.api_error(event, message, out);
            return;
        }
        let top_level = event.get("parent_tool_use_id").is_none_or(Value::is_null);
        if top_level {
            self.set_model(message.get("model"), out);
            if let Some(id) = message.get("id").and_then(Value::as_str) {
                self.usage(id, message.get("usage"), out);
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

    /// A message the CLI made up for an API failure it gave up on: marked
    /// (`is_api_error_message`, `api_error_status`) or, in 2.1.x, only by its
    /// `<synthetic>` model and its `API Error: 500 …` text.
    fn api_error(&mut self, event: &Value, message: &Value, out: &mut Vec<StreamUpdate>) {
        let Some(text) = content_text(message) else {
            return;
        };
        let marked = event.get("is_api_error_message").and_then(Value::as_bool) == Some(true);
        if !marked && !text.starts_with("API Error") {
            // Another made-up message (an interruption notice): not an error.
            return;
        }
        out.push(StreamUpdate::ApiError {
            retryable: is_retryable(event) || text_is_retryable(&text),
            message: one_line(&text, MESSAGE_MAX),
        });
        self.api_error_sent = true;
    }

    /// A turn's usage: the latest the stream gave its message id (Claude Code
    /// repeats an id per content block, its output tokens growing), summed
    /// over the turns.
    fn usage(&mut self, id: &str, usage: Option<&Value>, out: &mut Vec<StreamUpdate>) {
        let usage = usage.filter(|u| u.is_object()).map(Usage::of);
        match self.messages.iter_mut().find(|(m, _)| m == id) {
            Some((_, seen)) => match usage {
                Some(u) if u != *seen => *seen = u,
                _ => return,
            },
            None => {
                self.messages
                    .push((id.to_string(), usage.unwrap_or_default()));
                out.push(StreamUpdate::Turns(self.messages.len() as u64));
                if usage.is_none() {
                    return;
                }
            }
        }
        let mut total = Usage::default();
        for (_, u) in &self.messages {
            total.add(u);
        }
        total.updates(out);
    }

    fn result(&mut self, event: &Value, out: &mut Vec<StreamUpdate>) {
        if let Some(turns) = event.get("num_turns").and_then(Value::as_u64) {
            out.push(StreamUpdate::Turns(turns));
        }
        if let Some(cost) = event.get("total_cost_usd").and_then(Value::as_f64) {
            out.push(StreamUpdate::CostUsd(cost));
        }
        let models = model_usage(event);
        if !models.is_empty() {
            // `usage` leaves out the subagents' models; `modelUsage` has them all.
            let mut total = Usage::default();
            for m in &models {
                total.add(&Usage {
                    input: m.input_tokens,
                    output: m.output_tokens,
                    cache_write: m.cache_creation_input_tokens,
                    cache_read: m.cache_read_input_tokens,
                });
            }
            total.updates(out);
            out.push(StreamUpdate::ModelUsage(models));
        } else if let Some(usage) = event.get("usage").filter(|u| u.is_object()) {
            Usage::of(usage).updates(out);
        }
        let is_error = event
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || event
                .get("subtype")
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with("error"));
        let text = result_text(event, is_error);
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
        let Some(model) = model
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty() && *m != SYNTHETIC_MODEL)
        else {
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

/// The `result`'s message: its text, its errors, or its subtype when it is an error.
fn result_text(event: &Value, is_error: bool) -> Option<String> {
    event
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
        })
}

/// The `result`'s `modelUsage`: each model's tokens and cost, by name.
fn model_usage(event: &Value) -> Vec<ModelUsage> {
    let Some(models) = event.get("modelUsage").and_then(Value::as_object) else {
        return Vec::new();
    };
    models
        .iter()
        .filter(|(name, _)| !name.is_empty() && name.as_str() != SYNTHETIC_MODEL)
        .filter_map(|(name, m)| {
            let n = |k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
            m.is_object().then(|| {
                let (write, read) = (n("cacheCreationInputTokens"), n("cacheReadInputTokens"));
                ModelUsage {
                    model: one_line(name, PHASE_MAX),
                    input_tokens: n("inputTokens") + write + read,
                    output_tokens: n("outputTokens"),
                    cache_creation_input_tokens: write,
                    cache_read_input_tokens: read,
                    cost_usd: m.get("costUSD").and_then(Value::as_f64),
                }
            })
        })
        .collect()
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

/// A made-up `API Error: …` message's text: its status code (`API Error: 500
/// {…}`, `Request rejected (429)`) or its error type says whether trying
/// again may pass.
fn text_is_retryable(text: &str) -> bool {
    let rest = text.strip_prefix("API Error").unwrap_or(text);
    let code = rest
        .trim_start_matches([':', ' '])
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|d| d.parse::<u64>().ok())
        .or_else(|| {
            let open = rest.find('(')?;
            rest[open + 1..].split(')').next()?.trim().parse().ok()
        });
    let lower = text.to_ascii_lowercase();
    matches!(code, Some(408 | 429 | 500..=599))
        || [
            "overloaded",
            "rate_limit",
            "rate limit",
            "api_error",
            "server_error",
        ]
        .iter()
        .any(|k| lower.contains(k))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AgentStatus;

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
            super::super::apply(&mut s, x, "claude");
        }
        assert_eq!(s.metrics.model.as_deref(), Some("claude-haiku-4-5"));
        assert_eq!(s.metrics.input_tokens, Some(7000));
        assert_eq!(s.metrics.cache_read_input_tokens, Some(4000));
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
        let stream = std::thread::spawn(move || {
            super::super::read_stream(
                reader,
                None,
                &f,
                Box::new(StreamParser::new()),
                "claude",
                || {},
            )
        });
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
}
