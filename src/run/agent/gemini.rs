//! The Gemini CLI agent: `gemini -p … --output-format stream-json`, its
//! events, its sessions (po names them with `--session-id`, resumes them
//! with `--resume <id>`), its exit codes and its errors.
//!
//! The stream is one JSON object a line, each with `type` and `timestamp`
//! (shapes as of Gemini CLI 0.61.0, see `tests/fixtures/gemini/`):
//!
//! - `{"type":"init","session_id":…,"model":…}` first;
//! - `{"type":"message","role":"user"|"assistant","content":…,"delta":true}`:
//!   the prompt, then the model's text in pieces;
//! - `{"type":"tool_use","tool_name":…,"tool_id":…,"parameters":{…}}` and
//!   `{"type":"tool_result","tool_id":…,"status":"success"|"error",…}`;
//! - `{"type":"error","severity":"warning"|"error","message":…}`, which the
//!   run goes on after;
//! - `{"type":"result","status":"success"|"error","error":{"type","message"},
//!   "stats":{"input_tokens","output_tokens","cached","input","tool_calls",
//!   "models":{NAME:{…}}}}` last. Its figures are the run's (a resumed session
//!   starts again from zero), `input_tokens` counting the `cached` part.
//!
//! While the CLI retries a failed API call (5xx, 429; up to 10 attempts, with
//! a growing wait) it prints nothing. A run that ends without `result` is a
//! failure: when its default model `auto` got an answer from the router it
//! did not expect, 0.61.0 printed `init` and the prompt and exited 0.
//!
//! Exit codes: 0, 1 (an error, the stream says which), 41 (no auth), 42
//! (bad input: also a `--resume` of a session it does not have, with no
//! stream), 44 (sandbox), 52 (bad config), 53 (the session's turn limit,
//! `model.maxSessionTurns`), 55 (the folder is not trusted: po trusts the
//! worktree with `--skip-trust` and `GEMINI_CLI_TRUST_WORKSPACE=true`).
//!
//! Gemini CLI reports tokens, not money: po prices them per model
//! ([`crate::prices`]).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::stream::{ModelUsage, one_line, retryable_text};
use super::{
    Abilities, Agent, AgentSpec, ExitMeaning, Invocation, Launch, PromptVia, Registration, Session,
    Sessions, StreamOutcome, StreamRead, StreamUpdate,
};
use crate::prices::Prices;

/// `--agent gemini`.
pub const REGISTRATION: Registration = Registration {
    name: "gemini",
    about: "Gemini CLI (`gemini -p --output-format stream-json`; PO_GEMINI names the program)",
    program_env: PROGRAM_ENV,
    program: PROGRAM,
    make: |spec| Box::new(Gemini::new(spec)),
};

const PROGRAM: &str = "gemini";
pub const PROGRAM_ENV: &str = "PO_GEMINI";

/// What the reader says when the CLI printed no event at all.
const NO_EVENTS: &str = "gemini printed no events; its error is in the log";

const PHASE_MAX: usize = 60;
const MESSAGE_MAX: usize = 300;

/// Gemini CLI, as a task's supervisor runs it.
#[derive(Clone, Debug)]
pub struct Gemini {
    spec: AgentSpec,
}

impl Gemini {
    pub fn new(spec: &AgentSpec) -> Gemini {
        Gemini { spec: spec.clone() }
    }
}

impl Agent for Gemini {
    fn name(&self) -> &str {
        "gemini"
    }

    fn program(&self) -> &str {
        if self.spec.program.is_empty() {
            PROGRAM
        } else {
            &self.spec.program
        }
    }

    fn install_hint(&self) -> String {
        format!(
            "install Gemini CLI (npm install -g @google/gemini-cli; ${PROGRAM_ENV} names another \
             program), or run another agent with --agent-cmd 'prog {{prompt_file}}'"
        )
    }

    fn invocation(&self, launch: &Launch) -> Invocation {
        let (session_id, resume) = match launch.session {
            Session::New(id) => (Some(id.to_string()), false),
            Session::Resume(id) => (Some(id.to_string()), true),
            Session::Fresh => (None, false),
        };
        Invocation {
            argv: argv(&GeminiOptions {
                program: self.program().to_string(),
                model: self.spec.model.clone(),
                session_id,
                resume,
            }),
            prompt: PromptVia::Stdin,
        }
    }

    fn environment(&self, _launch: &Launch) -> Vec<(String, String)> {
        // Headless runs refuse an untrusted folder (exit 55).
        vec![("GEMINI_CLI_TRUST_WORKSPACE".into(), "true".into())]
    }

    fn reader(&self) -> Option<Box<dyn StreamRead>> {
        let prices = Prices::from_file_or_env(self.spec.prices.as_deref()).unwrap_or_else(|e| {
            tracing::warn!("{e}; using the built-in prices");
            Prices::built_in()
        });
        Some(Box::new(GeminiParser::new(prices)))
    }

    fn sessions(&self) -> Sessions {
        Sessions::Chosen
    }

    fn unknown_session(&self, outcome: &StreamOutcome) -> bool {
        outcome.error_message() == Some(NO_EVENTS)
    }

    fn exit_meaning(&self, code: i32) -> Option<ExitMeaning> {
        let (text, retryable) = match code {
            41 => ("no credentials (set GEMINI_API_KEY or log in)", false),
            42 => (
                "bad input (the prompt, a flag, or a session it does not have)",
                false,
            ),
            44 => ("its sandbox failed", false),
            52 => ("bad settings (~/.gemini/settings.json)", false),
            53 => ("it reached its turn limit (model.maxSessionTurns)", false),
            55 => ("the worktree is not a trusted folder", false),
            _ => return None,
        };
        Some(ExitMeaning {
            text: text.into(),
            retryable,
        })
    }

    fn abilities(&self) -> Abilities {
        Abilities {
            max_turns: false,
            max_budget: false,
            reports_spend: true,
        }
    }

    fn typical_memory(&self) -> Option<u64> {
        Some(512 << 20)
    }

    fn state_paths(&self, home: &Path) -> Vec<PathBuf> {
        // Settings, sessions (tmp/<project>/chats), history and trust.
        vec![home.join(".gemini")]
    }
}

/// How to run the real Gemini CLI for one task.
#[derive(Clone, Debug, Default)]
pub struct GeminiOptions {
    pub program: String,
    pub model: Option<String>,
    /// The session to start (`--session-id`), or to resume when `resume`.
    pub session_id: Option<String>,
    pub resume: bool,
}

/// The full argv, program first; the prompt goes on stdin (`-p ""` runs
/// headless and appends stdin to the empty prompt).
///
/// As Gemini CLI 0.61.0 takes them (`gemini --help`): `--yolo` approves
/// every tool call (the worktree is the agent's to change), `--skip-trust`
/// trusts the folder for this run, `--session-id <uuid>` starts a session
/// under that id, `--resume <uuid>` continues it.
pub fn argv(o: &GeminiOptions) -> Vec<String> {
    let program = if o.program.is_empty() {
        PROGRAM
    } else {
        &o.program
    };
    let mut args: Vec<String> = [
        program,
        "-p",
        "",
        "--output-format",
        "stream-json",
        "--yolo",
        "--skip-trust",
    ]
    .map(String::from)
    .into();
    if let Some(model) = &o.model {
        args.extend(["--model".into(), model.clone()]);
    }
    if let Some(id) = &o.session_id {
        let flag = if o.resume { "--resume" } else { "--session-id" };
        args.extend([flag.into(), id.clone()]);
    }
    args
}

/// Reads `--output-format stream-json` one line at a time.
#[derive(Debug)]
pub struct GeminiParser {
    prices: Prices,
    model: Option<String>,
    events: u64,
    turns: u64,
    /// The model is answering (text or tool calls since the last result).
    in_turn: bool,
    phase: Option<String>,
    text: String,
    last_error: Option<String>,
    finished: bool,
    warned: bool,
}

impl StreamRead for GeminiParser {
    fn feed_line(&mut self, line: &str) -> Vec<StreamUpdate> {
        GeminiParser::feed_line(self, line)
    }

    fn end(&mut self) -> Vec<StreamUpdate> {
        if self.events == 0 {
            return vec![StreamUpdate::Finished {
                is_error: true,
                message: Some(NO_EVENTS.into()),
            }];
        }
        Vec::new()
    }
}

impl GeminiParser {
    pub fn new(prices: Prices) -> GeminiParser {
        GeminiParser {
            prices,
            model: None,
            events: 0,
            turns: 0,
            in_turn: false,
            phase: None,
            text: String::new(),
            last_error: None,
            finished: false,
            warned: false,
        }
    }

    pub fn feed_line(&mut self, line: &str) -> Vec<StreamUpdate> {
        let Some(event) = serde_json::from_str::<Value>(line.trim())
            .ok()
            .filter(Value::is_object)
        else {
            return Vec::new();
        };
        self.events += 1;
        let mut out = Vec::new();
        let s = |k: &str| event.get(k).and_then(Value::as_str).unwrap_or("");
        match s("type") {
            "init" => {
                if !s("session_id").is_empty() {
                    out.push(StreamUpdate::SessionId(s("session_id").into()));
                }
                if !s("model").is_empty() {
                    self.model = Some(one_line(s("model"), PHASE_MAX));
                    out.push(StreamUpdate::Model(one_line(s("model"), PHASE_MAX)));
                }
                self.set_phase("Thinking".into(), &mut out);
            }
            "message" if s("role") == "assistant" => {
                self.model_turn(&mut out);
                if event.get("delta").and_then(Value::as_bool) != Some(true) {
                    self.text.clear();
                }
                self.text.push_str(s("content"));
            }
            "tool_use" => {
                self.model_turn(&mut out);
                self.text.clear();
                let params = event.get("parameters").unwrap_or(&Value::Null);
                if s("tool_name") == "write_todos"
                    && let Some(p) = todo_share(params)
                {
                    out.push(StreamUpdate::Progress(p));
                }
                let phase = tool_phase(s("tool_name"), params);
                self.set_phase(phase, &mut out);
            }
            "tool_result" => {
                self.in_turn = false;
                self.set_phase("Thinking".into(), &mut out);
            }
            "error" => {
                let m = one_line(s("message"), MESSAGE_MAX);
                if !m.is_empty() {
                    self.last_error = Some(m);
                }
            }
            "result" => self.result(&event, &mut out),
            _ => {}
        }
        out
    }

    fn model_turn(&mut self, out: &mut Vec<StreamUpdate>) {
        if !std::mem::replace(&mut self.in_turn, true) {
            self.turns += 1;
            out.push(StreamUpdate::Turns(self.turns));
        }
    }

    fn result(&mut self, event: &Value, out: &mut Vec<StreamUpdate>) {
        self.finished = true;
        let stats = event.get("stats").filter(|s| s.is_object());
        if let Some(stats) = stats {
            let n = |k: &str| stats.get(k).and_then(Value::as_u64).unwrap_or(0);
            out.push(StreamUpdate::Tokens {
                input: n("input_tokens"),
                output: n("output_tokens"),
            });
            out.push(StreamUpdate::CacheTokens {
                write: 0,
                read: n("cached"),
            });
            self.cost(stats, out);
        }
        out.push(StreamUpdate::Turns(self.turns));
        let is_error = event.get("status").and_then(Value::as_str) != Some("success");
        if is_error {
            let message = event
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| self.last_error.clone())
                .unwrap_or_else(|| "gemini ended with an error".into());
            let message = one_line(&message, MESSAGE_MAX);
            if message.contains("API Error") || message.contains("\"code\"") {
                out.push(StreamUpdate::ApiError {
                    retryable: retryable_text(&message),
                    message: message.clone(),
                });
            }
            out.push(StreamUpdate::Finished {
                is_error: true,
                message: Some(message),
            });
        } else {
            let text = self.text.trim();
            out.push(StreamUpdate::Finished {
                is_error: false,
                message: (!text.is_empty()).then(|| one_line(text, MESSAGE_MAX)),
            });
        }
    }

    /// Each model's tokens at its price; the run's cost when every model
    /// that used tokens has one.
    fn cost(&mut self, stats: &Value, out: &mut Vec<StreamUpdate>) {
        let mut models: Vec<ModelUsage> = Vec::new();
        let by_model = stats.get("models").and_then(Value::as_object);
        for (name, m) in by_model.into_iter().flatten() {
            let n = |k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
            let (input, output, read) = (n("input_tokens"), n("output_tokens"), n("cached"));
            let cost = self.prices.of(name).map(|p| {
                p.cost(&crate::cost::Tokens {
                    input,
                    cache_write: 0,
                    cache_read: read,
                    output,
                })
            });
            models.push(ModelUsage {
                model: one_line(name, PHASE_MAX),
                input_tokens: input,
                output_tokens: output,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: read,
                cost_usd: cost,
            });
        }
        if models.is_empty() {
            // No split: all of it to the run's model.
            let n = |k: &str| stats.get(k).and_then(Value::as_u64).unwrap_or(0);
            if let Some(model) = self.model.clone() {
                let cost = self.prices.of(&model).map(|p| {
                    p.cost(&crate::cost::Tokens {
                        input: n("input_tokens"),
                        cache_write: 0,
                        cache_read: n("cached"),
                        output: n("output_tokens"),
                    })
                });
                models.push(ModelUsage {
                    model,
                    input_tokens: n("input_tokens"),
                    output_tokens: n("output_tokens"),
                    cache_creation_input_tokens: 0,
                    cache_read_input_tokens: n("cached"),
                    cost_usd: cost,
                });
            }
        }
        let unpriced: Vec<String> = models
            .iter()
            .filter(|m| m.cost_usd.is_none() && m.input_tokens + m.output_tokens > 0)
            .map(|m| m.model.clone())
            .collect();
        if unpriced.is_empty() && !models.is_empty() {
            let total: f64 = models.iter().filter_map(|m| m.cost_usd).sum();
            out.push(StreamUpdate::RunCostUsd(total));
        } else if !unpriced.is_empty() && !std::mem::replace(&mut self.warned, true) {
            tracing::warn!(
                "po has no price for model {}: its cost is unknown and only its tokens are \
                 recorded; give prices with --prices FILE or PO_PRICES",
                unpriced.join(", ")
            );
        }
        if !models.is_empty() {
            out.push(StreamUpdate::ModelUsage(models));
        }
    }

    fn set_phase(&mut self, phase: String, out: &mut Vec<StreamUpdate>) {
        if self.phase.as_deref() != Some(phase.as_str()) {
            self.phase = Some(phase.clone());
            out.push(StreamUpdate::Phase(phase));
        }
    }
}

/// The share of a `write_todos` list done, in percent (cancelled items left out).
fn todo_share(params: &Value) -> Option<u8> {
    let todos = params.get("todos")?.as_array()?;
    fn status(t: &Value) -> &str {
        t.get("status").and_then(Value::as_str).unwrap_or("")
    }
    let live: Vec<&Value> = todos.iter().filter(|t| status(t) != "cancelled").collect();
    if live.is_empty() {
        return None;
    }
    let done = live.iter().filter(|t| status(t) == "completed").count();
    Some((done * 100 / live.len()) as u8)
}

/// What a tool call means to someone watching.
fn tool_phase(name: &str, params: &Value) -> String {
    let s = |k: &str| params.get(k).and_then(Value::as_str).unwrap_or("");
    let phase = match name {
        "run_shell_command" => format!("Running: {}", s("command")),
        "write_file" => format!("Writing {}", s("file_path")),
        "replace" | "edit" => format!("Editing {}", s("file_path")),
        "read_file" => format!("Reading {}", s("file_path")),
        "read_many_files" => "Reading files".to_string(),
        "list_directory" => format!("Listing {}", s("dir_path")),
        "glob" => format!("Finding {}", s("pattern")),
        "grep_search" | "search_file_content" => format!("Searching for {}", s("pattern")),
        "google_web_search" => format!("Searching the web: {}", s("query")),
        "web_fetch" => format!("Fetching {}", s("prompt")),
        "write_todos" => "Planning".to_string(),
        "invoke_agent" => format!("Subagent: {}", s("agent_name")),
        other => format!("Using {other}"),
    };
    one_line(phase.trim_end_matches([' ', ':']), PHASE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AgentStatus;

    fn read(name: &str) -> Vec<StreamUpdate> {
        let path = format!(
            "{}/tests/fixtures/gemini/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut p = GeminiParser::new(Prices::built_in());
        let mut out: Vec<StreamUpdate> = text.lines().flat_map(|l| p.feed_line(l)).collect();
        out.extend(p.end());
        out
    }

    fn status(updates: &[StreamUpdate]) -> AgentStatus {
        let mut s = AgentStatus::new("agent-1", "7");
        for u in updates {
            super::super::apply(&mut s, u, "gemini");
        }
        s
    }

    #[test]
    fn argv_starts_or_resumes_a_named_session() {
        let a = argv(&GeminiOptions {
            session_id: Some("5b1c".into()),
            ..Default::default()
        });
        assert_eq!(
            a,
            [
                "gemini",
                "-p",
                "",
                "--output-format",
                "stream-json",
                "--yolo",
                "--skip-trust",
                "--session-id",
                "5b1c"
            ]
        );
        let a = argv(&GeminiOptions {
            program: "/opt/gemini".into(),
            model: Some("gemini-2.5-pro".into()),
            session_id: Some("5b1c".into()),
            resume: true,
        });
        assert_eq!(a[0], "/opt/gemini");
        assert_eq!(&a[7..], ["--model", "gemini-2.5-pro", "--resume", "5b1c"]);
    }

    /// Recorded from gemini 0.61.0 against the scripted server.
    #[test]
    fn a_recorded_run_gives_session_phase_turns_tokens_and_cost() {
        let u = read("bash_commit.jsonl");
        assert!(
            u.iter()
                .any(|x| matches!(x, StreamUpdate::Phase(p) if p.starts_with("Running: printf"))),
            "{u:?}"
        );
        assert_eq!(
            u.last(),
            Some(&StreamUpdate::Finished {
                is_error: false,
                message: Some("Committed one.txt.".into())
            })
        );
        let s = status(&u);
        assert_eq!(
            s.metrics.session_id.as_deref(),
            Some("2506d251-5a02-45e4-9495-e80c566fb4a1")
        );
        assert_eq!(s.metrics.model.as_deref(), Some("gemini-2.5-flash"));
        assert_eq!(s.metrics.turns, Some(2));
        assert_eq!(
            (s.metrics.input_tokens, s.metrics.output_tokens),
            (Some(7000), Some(170))
        );
        assert_eq!(s.metrics.cache_read_input_tokens, Some(4000));
        let cost = s.metrics.cost_usd.unwrap();
        assert!((cost - 0.001445).abs() < 1e-12, "{cost}");
        assert_eq!(s.metrics.models["gemini-2.5-flash"].cost_usd, Some(cost));
    }

    #[test]
    fn a_resumed_sessions_figures_are_the_runs_own() {
        let s = status(&read("resume.jsonl"));
        assert_eq!(s.metrics.input_tokens, Some(3500));
        let cost = s.metrics.cost_usd.unwrap();
        // 1,500 × 0.30 + 2,000 × 0.03 + 85 × 2.50, per million.
        assert!((cost - 0.0007225).abs() < 1e-12, "{cost}");
    }

    #[test]
    fn a_bad_request_is_a_failure_not_worth_retrying() {
        let u = read("bad_request_400.jsonl");
        let s = status(&u);
        assert_eq!(s.retryable, Some(false), "{u:?}");
        assert!(s.error.unwrap().contains("400"));
        assert!(matches!(
            u.last(),
            Some(StreamUpdate::Finished { is_error: true, .. })
        ));
    }

    #[test]
    fn a_run_cut_short_has_no_final_event() {
        let mut o = StreamOutcome::default();
        for u in read("cut_before_result_500.jsonl") {
            o.note(&u);
        }
        assert_eq!(o.finished, None);
        let gemini = Gemini::new(&AgentSpec::named("gemini"));
        assert!(!gemini.unknown_session(&o));
        let mut p = GeminiParser::new(Prices::built_in());
        let mut o = StreamOutcome::default();
        for u in p.end() {
            o.note(&u);
        }
        assert!(gemini.unknown_session(&o), "no events: the resume failed");
    }

    #[test]
    fn exit_codes_read_as_the_cli_documents_them() {
        let g = Gemini::new(&AgentSpec::named("gemini"));
        assert!(g.exit_meaning(53).unwrap().text.contains("turn limit"));
        assert!(g.exit_meaning(42).unwrap().text.contains("bad input"));
        assert!(g.exit_meaning(55).unwrap().text.contains("trusted"));
        assert_eq!(g.exit_meaning(1), None);
    }

    #[test]
    fn todos_and_tools_show_as_phases_and_progress() {
        let mut p = GeminiParser::new(Prices::built_in());
        let u = p.feed_line(
            r#"{"type":"tool_use","tool_name":"write_todos","tool_id":"t1","parameters":{"todos":[{"description":"a","status":"completed"},{"description":"b","status":"in_progress"},{"description":"c","status":"cancelled"}]}}"#,
        );
        assert!(u.contains(&StreamUpdate::Progress(50)), "{u:?}");
        assert_eq!(
            tool_phase("replace", &serde_json::json!({"file_path": "src/a.rs"})),
            "Editing src/a.rs"
        );
        assert_eq!(tool_phase("frob", &Value::Null), "Using frob");
    }

    #[test]
    fn an_unpriced_model_records_tokens_and_no_cost() {
        let mut p = GeminiParser::new(Prices::built_in());
        let mut u = p.feed_line(r#"{"type":"init","session_id":"s","model":"my-model"}"#);
        u.extend(p.feed_line(
            r#"{"type":"result","status":"success","stats":{"input_tokens":10,"output_tokens":2,"cached":0,"models":{"my-model":{"input_tokens":10,"output_tokens":2,"cached":0}}}}"#,
        ));
        let s = status(&u);
        assert_eq!(s.metrics.input_tokens, Some(10));
        assert_eq!(s.metrics.cost_usd, None);
        assert_eq!(s.metrics.models["my-model"].cost_usd, None);
    }
}
