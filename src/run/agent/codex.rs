//! The Codex agent: `codex exec --json`, its events, its threads (resumed
//! with `codex exec resume <thread_id>`) and its errors.
//!
//! `codex exec --json` prints one JSON object a line (shapes as of Codex CLI
//! 0.171.0, see `tests/fixtures/codex/`):
//!
//! - `{"type":"thread.started","thread_id":…}` first: the session's id, the
//!   one `codex exec resume` takes;
//! - `{"type":"turn.started"}`, then `item.started|updated|completed` events
//!   whose `item` has a `type`: `agent_message{text}`, `reasoning{text}`,
//!   `command_execution{command,aggregated_output,exit_code,status}`,
//!   `file_change{changes:[{path,kind}]}`, `mcp_tool_call{server,tool}`,
//!   `web_search{query}`, `todo_list{items:[{text,completed}]}`, and
//!   `error{message}`: a warning the run goes on after (Codex says so of a
//!   model it has no metadata for);
//! - `{"type":"turn.completed","usage":{"input_tokens","cached_input_tokens",
//!   "cache_write_input_tokens","output_tokens","reasoning_output_tokens"}}`
//!   last. Its usage is the thread's so far, every request of every run of
//!   the session (a resumed thread's counts go on from the earlier runs'),
//!   input counting the cached part, output the reasoning;
//! - or `{"type":"error","message":…}` and `{"type":"turn.failed","error":
//!   {"message":…}}` when the CLI gave up on the model's API (after its own
//!   retries, `request_max_retries`); the exit code is then 1.
//!
//! `codex exec resume` of a thread this machine does not have prints no
//! event and exits 1 (`no rollout found for thread id …` on stderr).
//!
//! Codex reports tokens, not money: po prices them ([`crate::prices`]) by
//! the model of `--model`, else `model` in `$CODEX_HOME/config.toml`.
//!
//! Commits: under `--sandbox workspace-write` Codex makes the `.git` of
//! every writable root read-only, and a git worktree's index, objects and
//! refs live in the main repository's git directory, so the agent's own
//! `git commit` would fail. po keeps Codex's sandbox and adds the git
//! directories a commit writes as writable roots with `--add-dir`: the
//! repository's (`git rev-parse --git-common-dir`: objects, refs) and the
//! worktree's own (`--absolute-git-dir`: its index and HEAD, which Codex
//! protects apart even inside the first). The agent commits on its branch
//! like any other agent, and nothing else outside its worktree is
//! writable.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::stream::{ModelUsage, one_line, retryable_text};
use super::{
    Abilities, Agent, AgentSpec, Invocation, Launch, PromptVia, Registration, Session, Sessions,
    StreamOutcome, StreamRead, StreamUpdate,
};
use crate::prices::Prices;

/// `--agent codex`.
pub const REGISTRATION: Registration = Registration {
    name: "codex",
    about: "OpenAI Codex CLI (`codex exec --json`; PO_CODEX names the program)",
    program_env: PROGRAM_ENV,
    program: PROGRAM,
    make: |spec| Box::new(Codex::new(spec)),
};

const PROGRAM: &str = "codex";
pub const PROGRAM_ENV: &str = "PO_CODEX";

/// What the reader says when the CLI printed no event at all (a resume of
/// a thread it does not have, a config it refused): its reason is on stderr.
const NO_EVENTS: &str = "codex printed no events; its error is in the log";

const PHASE_MAX: usize = 60;
const MESSAGE_MAX: usize = 300;

/// Codex, as a task's supervisor runs it.
#[derive(Clone, Debug)]
pub struct Codex {
    spec: AgentSpec,
}

impl Codex {
    pub fn new(spec: &AgentSpec) -> Codex {
        Codex { spec: spec.clone() }
    }

    /// The model the run uses, when po can know it: `--model`, else the
    /// config's top-level `model`.
    fn model(&self) -> Option<String> {
        self.spec.model.clone().or_else(|| {
            let home = std::env::var_os("HOME").map(PathBuf::from)?;
            let text = std::fs::read_to_string(codex_home(&home).join("config.toml")).ok()?;
            config_model(&text)
        })
    }
}

/// `$CODEX_HOME`, else `~/.codex`.
fn codex_home(home: &Path) -> PathBuf {
    match std::env::var_os("CODEX_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => home.join(".codex"),
    }
}

/// The top-level `model = "…"` of a Codex `config.toml` (before any table).
pub fn config_model(toml: &str) -> Option<String> {
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            return None;
        }
        let Some(rest) = line.strip_prefix("model") else {
            continue;
        };
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let value = value.trim();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let end = value[1..].find(quote)?;
        return Some(value[1..1 + end].to_string()).filter(|m| !m.is_empty());
    }
    None
}

impl Agent for Codex {
    fn name(&self) -> &str {
        "codex"
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
            "install the Codex CLI (npm install -g @openai/codex; ${PROGRAM_ENV} names another \
             program), or run another agent with --agent-cmd 'prog {{prompt_file}}'"
        )
    }

    fn invocation(&self, launch: &Launch) -> Invocation {
        let worktree = Path::new(launch.values.worktree);
        let resume = match launch.session {
            Session::Resume(id) => Some(id.to_string()),
            _ => None,
        };
        Invocation {
            argv: argv(&CodexOptions {
                program: self.program().to_string(),
                model: self.spec.model.clone(),
                worktree: worktree.to_path_buf(),
                git_dirs: git_dirs(worktree),
                resume,
            }),
            prompt: PromptVia::Stdin,
        }
    }

    fn reader(&self) -> Option<Box<dyn StreamRead>> {
        let prices = Prices::from_file_or_env(self.spec.prices.as_deref()).unwrap_or_else(|e| {
            tracing::warn!("{e}; using the built-in prices");
            Prices::built_in()
        });
        Some(Box::new(CodexParser::new(self.model(), prices)))
    }

    fn sessions(&self) -> Sessions {
        Sessions::Reported
    }

    fn unknown_session(&self, outcome: &StreamOutcome) -> bool {
        outcome.error_message() == Some(NO_EVENTS)
    }

    fn abilities(&self) -> Abilities {
        Abilities {
            max_turns: false,
            max_budget: false,
            reports_spend: true,
        }
    }

    fn typical_memory(&self) -> Option<u64> {
        Some(256 << 20)
    }

    fn state_paths(&self, home: &Path) -> Vec<PathBuf> {
        // Sessions (rollouts), logs, auth and config live under CODEX_HOME.
        vec![codex_home(home)]
    }
}

/// The git directories a worktree's commits are written to: the
/// repository's (objects, refs), then the worktree's own (index, HEAD) when
/// it is another one. None outside a repository.
fn git_dirs(worktree: &Path) -> Vec<PathBuf> {
    let Ok(out) = crate::git::git(
        worktree,
        &[
            "rev-parse",
            "--path-format=absolute",
            "--git-common-dir",
            "--absolute-git-dir",
        ],
    ) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    for line in out.lines().map(PathBuf::from) {
        if line.is_absolute() && !dirs.contains(&line) {
            dirs.push(line);
        }
    }
    dirs
}

/// How to run the real Codex CLI for one task.
#[derive(Clone, Debug, Default)]
pub struct CodexOptions {
    /// The program (default `codex`).
    pub program: String,
    pub model: Option<String>,
    /// The agent's working root (`-C`).
    pub worktree: PathBuf,
    /// The git directories made writable beside it (`--add-dir`).
    pub git_dirs: Vec<PathBuf>,
    /// The thread to continue (`codex exec resume <id>`).
    pub resume: Option<String>,
}

/// The full argv, program first; the prompt is read from stdin (`-`).
///
/// As Codex CLI 0.171.0 takes them (`codex exec --help`): `--json` prints
/// events, `-C` sets the working root, `--sandbox workspace-write` lets
/// commands write in it (the default is read-only), `--add-dir` adds a
/// writable root, `--skip-git-repo-check` runs where no repository is (po's
/// `--in-place` runs are in one anyway); `exec`'s options stand before its
/// `resume <id>` subcommand, which takes them too.
pub fn argv(o: &CodexOptions) -> Vec<String> {
    let program = if o.program.is_empty() {
        PROGRAM
    } else {
        &o.program
    };
    let mut args: Vec<String> = [program, "exec", "--json", "--color", "never", "-C"]
        .map(String::from)
        .into();
    args.push(o.worktree.display().to_string());
    args.extend(["--sandbox".into(), "workspace-write".into()]);
    for dir in &o.git_dirs {
        args.extend(["--add-dir".into(), dir.display().to_string()]);
    }
    args.push("--skip-git-repo-check".into());
    if let Some(model) = &o.model {
        args.extend(["--model".into(), model.clone()]);
    }
    if let Some(id) = &o.resume {
        args.extend(["resume".into(), id.clone()]);
    }
    args.push("-".into());
    args
}

/// Reads `codex exec --json` one line at a time.
#[derive(Debug)]
pub struct CodexParser {
    model: Option<String>,
    prices: Prices,
    model_sent: bool,
    events: u64,
    /// Tool calls started (commands, edits, MCP calls, searches): each
    /// is one model turn, and each completed turn adds the answer's.
    tool_items: std::collections::HashSet<String>,
    turns_completed: u64,
    phase: Option<String>,
    last_message: Option<String>,
    last_error: Option<String>,
    finished: bool,
    warned: bool,
}

impl StreamRead for CodexParser {
    fn feed_line(&mut self, line: &str) -> Vec<StreamUpdate> {
        CodexParser::feed_line(self, line)
    }

    fn end(&mut self) -> Vec<StreamUpdate> {
        let mut out = Vec::new();
        if self.events == 0 {
            out.push(StreamUpdate::Finished {
                is_error: true,
                message: Some(NO_EVENTS.into()),
            });
        } else if !self.finished
            && let Some(e) = self.last_error.clone()
        {
            out.push(StreamUpdate::ApiError {
                retryable: retryable_text(&e),
                message: e,
            });
        }
        out
    }
}

impl CodexParser {
    /// A reader for a run of `model` (when known), priced from `prices`.
    pub fn new(model: Option<String>, prices: Prices) -> CodexParser {
        CodexParser {
            model,
            prices,
            model_sent: false,
            events: 0,
            tool_items: Default::default(),
            turns_completed: 0,
            phase: None,
            last_message: None,
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
        if !self.model_sent
            && let Some(m) = &self.model
        {
            self.model_sent = true;
            out.push(StreamUpdate::Model(one_line(m, PHASE_MAX)));
        }
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        match event.get("type").and_then(Value::as_str) {
            Some("thread.started") => {
                if let Some(id) = s(&event, "thread_id").filter(|i| !i.is_empty()) {
                    out.push(StreamUpdate::SessionId(id));
                }
            }
            Some("turn.started") => self.set_phase("Thinking".into(), &mut out),
            Some(kind @ ("item.started" | "item.updated" | "item.completed")) => {
                if let Some(item) = event.get("item") {
                    self.item(kind, item, &mut out);
                }
            }
            Some("turn.completed") => {
                self.turns_completed += 1;
                self.usage(event.get("usage"), &mut out);
                out.push(StreamUpdate::Turns(self.turns()));
                self.finished = true;
                out.push(StreamUpdate::Finished {
                    is_error: false,
                    message: self.last_message.clone(),
                });
            }
            Some("turn.failed") => {
                let message = event
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| self.last_error.clone())
                    .unwrap_or_else(|| "the turn failed".into());
                let message = one_line(&message, MESSAGE_MAX);
                out.push(StreamUpdate::Turns(self.turns()));
                out.push(StreamUpdate::ApiError {
                    retryable: retryable_text(&message),
                    message: message.clone(),
                });
                self.finished = true;
                out.push(StreamUpdate::Finished {
                    is_error: true,
                    message: Some(message),
                });
            }
            Some("error") => {
                if let Some(m) = s(&event, "message") {
                    let m = one_line(&m, MESSAGE_MAX);
                    self.set_phase(one_line(&format!("Error: {m}"), PHASE_MAX), &mut out);
                    self.last_error = Some(m);
                }
            }
            _ => {}
        }
        out
    }

    fn turns(&self) -> u64 {
        self.tool_items.len() as u64 + self.turns_completed
    }

    fn item(&mut self, kind: &str, item: &Value, out: &mut Vec<StreamUpdate>) {
        let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("");
        let id = s("id").to_string();
        let tool = |this: &mut Self, phase: String, out: &mut Vec<StreamUpdate>| {
            if this.tool_items.insert(id.clone()) {
                out.push(StreamUpdate::Turns(this.turns()));
            }
            this.set_phase(one_line(&phase, PHASE_MAX), out);
        };
        match s("type") {
            "command_execution" => tool(self, format!("Running: {}", command(s("command"))), out),
            "file_change" => {
                let paths: Vec<&str> = item
                    .get("changes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.get("path").and_then(Value::as_str))
                    .collect();
                let phase = match paths.as_slice() {
                    [] => "Editing files".to_string(),
                    [one] => format!("Editing {one}"),
                    [first, rest @ ..] => format!("Editing {first} and {} more", rest.len()),
                };
                tool(self, phase, out)
            }
            "mcp_tool_call" => tool(self, format!("Using {}.{}", s("server"), s("tool")), out),
            "web_search" => tool(self, format!("Searching the web: {}", s("query")), out),
            "todo_list" => {
                let items = item.get("items").and_then(Value::as_array);
                let items: Vec<&Value> = items.into_iter().flatten().collect();
                if !items.is_empty() {
                    let done = items
                        .iter()
                        .filter(|i| i.get("completed").and_then(Value::as_bool) == Some(true))
                        .count();
                    out.push(StreamUpdate::Progress((done * 100 / items.len()) as u8));
                    self.set_phase(format!("Plan: {done}/{} done", items.len()), out);
                }
            }
            "reasoning" => self.set_phase("Thinking".into(), out),
            "agent_message" if kind == "item.completed" => {
                let text = s("text");
                if !text.trim().is_empty() {
                    self.last_message = Some(one_line(text, MESSAGE_MAX));
                }
            }
            // An `error` item is a warning: the run goes on.
            _ => {}
        }
    }

    fn usage(&mut self, usage: Option<&Value>, out: &mut Vec<StreamUpdate>) {
        let Some(usage) = usage.filter(|u| u.is_object()) else {
            return;
        };
        let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
        let (input, output) = (n("input_tokens"), n("output_tokens"));
        let (read, write) = (n("cached_input_tokens"), n("cache_write_input_tokens"));
        out.push(StreamUpdate::Tokens { input, output });
        out.push(StreamUpdate::CacheTokens { write, read });
        let tokens = crate::cost::Tokens {
            input,
            cache_write: write,
            cache_read: read,
            output,
        };
        let Some(model) = self.model.clone() else {
            self.warn_unpriced("the model codex runs is not known to po (give --model)");
            return;
        };
        match self.prices.of(&model) {
            Some(price) => {
                let cost = price.cost(&tokens);
                // The usage is the thread's: a session total.
                out.push(StreamUpdate::CostUsd(cost));
                out.push(StreamUpdate::ModelUsage(vec![ModelUsage {
                    model: one_line(&model, PHASE_MAX),
                    input_tokens: input,
                    output_tokens: output,
                    cache_creation_input_tokens: write,
                    cache_read_input_tokens: read,
                    cost_usd: Some(cost),
                }]));
            }
            None => self.warn_unpriced(&format!("po has no price for model {model:?}")),
        }
    }

    fn warn_unpriced(&mut self, why: &str) {
        if !std::mem::replace(&mut self.warned, true) {
            tracing::warn!(
                "{why}: its cost is unknown and only its tokens are recorded; give prices with \
                 --prices FILE or PO_PRICES"
            );
        }
    }

    fn set_phase(&mut self, phase: String, out: &mut Vec<StreamUpdate>) {
        if self.phase.as_deref() != Some(phase.as_str()) {
            self.phase = Some(phase.clone());
            out.push(StreamUpdate::Phase(phase));
        }
    }
}

/// A command as the model wrote it: Codex shows `/bin/bash -lc "…"`.
fn command(shown: &str) -> String {
    for shell in [
        "/bin/bash -lc ",
        "bash -lc ",
        "/bin/sh -c ",
        "sh -c ",
        "/bin/zsh -lc ",
    ] {
        if let Some(rest) = shown.strip_prefix(shell) {
            let rest = rest.trim();
            for q in ['"', '\''] {
                if rest.len() >= 2 && rest.starts_with(q) && rest.ends_with(q) {
                    let inner = &rest[1..rest.len() - 1];
                    return if q == '"' {
                        inner.replace("\\\"", "\"").replace("\\\\", "\\")
                    } else {
                        inner.to_string()
                    };
                }
            }
            return rest.to_string();
        }
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AgentStatus;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/codex/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn read(name: &str, model: Option<&str>) -> Vec<StreamUpdate> {
        let mut p = CodexParser::new(model.map(String::from), Prices::built_in());
        let mut out: Vec<StreamUpdate> =
            fixture(name).lines().flat_map(|l| p.feed_line(l)).collect();
        out.extend(p.end());
        out
    }

    fn status(updates: &[StreamUpdate]) -> AgentStatus {
        let mut s = AgentStatus::new("agent-1", "7");
        for u in updates {
            super::super::apply(&mut s, u, "codex");
        }
        s
    }

    #[test]
    fn argv_writes_in_the_worktree_and_its_git_directory() {
        let o = CodexOptions {
            worktree: "/w/agent-1".into(),
            git_dirs: vec!["/r/.git".into(), "/r/.git/worktrees/a".into()],
            ..Default::default()
        };
        assert_eq!(
            argv(&o),
            [
                "codex",
                "exec",
                "--json",
                "--color",
                "never",
                "-C",
                "/w/agent-1",
                "--sandbox",
                "workspace-write",
                "--add-dir",
                "/r/.git",
                "--add-dir",
                "/r/.git/worktrees/a",
                "--skip-git-repo-check",
                "-"
            ]
        );
        let a = argv(&CodexOptions {
            model: Some("gpt-5.1-codex".into()),
            resume: Some("01a2-thread".into()),
            git_dirs: Vec::new(),
            ..o
        });
        assert_eq!(
            &a[a.len() - 5..],
            ["--model", "gpt-5.1-codex", "resume", "01a2-thread", "-"]
        );
        assert!(!a.contains(&"--add-dir".to_string()));
    }

    #[test]
    fn a_worktree_commits_to_the_repositorys_and_its_own_git_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        let g = |dir: &Path, args: &[&str]| crate::git::git(dir, args).unwrap();
        g(&repo, &["init", "-q", "-b", "main"]);
        g(
            &repo,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@x.invalid",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "init",
            ],
        );
        let wt = tmp.path().join("wt");
        g(
            &repo,
            &["worktree", "add", "-q", "-b", "b", wt.to_str().unwrap()],
        );
        let got: Vec<PathBuf> = git_dirs(&wt)
            .iter()
            .map(|d| d.canonicalize().unwrap())
            .collect();
        let git = repo.join(".git").canonicalize().unwrap();
        assert_eq!(got, [git.clone(), git.join("worktrees/wt")]);
        assert_eq!(git_dirs(&repo).len(), 1, "the main checkout's are one");
        assert!(git_dirs(tmp.path()).is_empty(), "not a repository");
    }

    #[test]
    fn the_config_names_the_model() {
        let cfg = "# c\nmodel = \"gpt-5.1-codex\"\nmodel_provider = \"mock\"\n[model_providers.mock]\nmodel = \"x\"\n";
        assert_eq!(config_model(cfg).as_deref(), Some("gpt-5.1-codex"));
        assert_eq!(config_model("[a]\nmodel = \"x\"\n"), None);
        assert_eq!(config_model("model_provider = \"m\"\n"), None);
        assert_eq!(config_model("model='o3'").as_deref(), Some("o3"));
    }

    #[test]
    fn commands_are_shown_as_the_model_wrote_them() {
        assert_eq!(
            command(r#"/bin/bash -lc "git commit -m \"x\"""#),
            r#"git commit -m "x""#
        );
        assert_eq!(command("/bin/bash -lc 'ls -l'"), "ls -l");
        assert_eq!(command("cargo test"), "cargo test");
    }

    /// Recorded from codex 0.171.0 against the scripted server: a command
    /// that commits, then the answer.
    #[test]
    fn a_recorded_run_gives_session_phase_turns_tokens_and_cost() {
        let u = read("bash_commit.jsonl", Some("gpt-5.1-codex"));
        assert_eq!(
            u.first(),
            Some(&StreamUpdate::Model("gpt-5.1-codex".into()))
        );
        assert!(
            u.iter().any(
                |x| matches!(x, StreamUpdate::Phase(p) if p.starts_with("Running: printf 'one"))
            ),
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
            Some("01a23ad9-e237-7080-bf50-4aab4d0e2e63")
        );
        assert_eq!(s.metrics.turns, Some(2));
        assert_eq!(
            (s.metrics.input_tokens, s.metrics.output_tokens),
            (Some(7000), Some(170))
        );
        assert_eq!(s.metrics.cache_read_input_tokens, Some(4000));
        // 3,000 × 1.25 + 4,000 × 0.125 + 170 × 10, per million.
        let cost = s.metrics.cost_usd.unwrap();
        assert!((cost - 0.00595).abs() < 1e-12, "{cost}");
        assert_eq!(s.metrics.models["gpt-5.1-codex"].cost_usd, Some(cost));
        assert_eq!(s.error, None, "the metadata warning is no error");
    }

    #[test]
    fn a_resumed_thread_counts_on_from_the_earlier_runs() {
        let mut s = status(&read("bash_commit.jsonl", Some("gpt-5.1-codex")));
        let first = s.metrics.cost_usd.unwrap();
        s.metrics.previous_cost_usd = s.metrics.cost_usd.take();
        for u in read("resume.jsonl", Some("gpt-5.1-codex")) {
            super::super::apply(&mut s, &u, "codex");
        }
        assert_eq!(s.metrics.input_tokens, Some(10500), "the thread's tokens");
        let added = s.metrics.cost_usd.unwrap();
        // One more call: 1,500 × 1.25 + 2,000 × 0.125 + 85 × 10, per million.
        assert!((added - 0.002975).abs() < 1e-9, "{added} after {first}");
    }

    #[test]
    fn api_failures_are_retryable_unless_the_request_was_bad() {
        for (name, retryable, says) in [
            ("server_error_500.jsonl", true, "high demand"),
            ("rate_limit_429.jsonl", true, "429"),
            ("bad_request_400.jsonl", false, "invalid_request_error"),
        ] {
            let s = status(&read(name, None));
            assert_eq!(s.retryable, Some(retryable), "{name}: {s:?}");
            let e = s.error.unwrap();
            assert!(e.starts_with("codex: ") && e.contains(says), "{name}: {e}");
        }
    }

    #[test]
    fn no_events_at_all_is_a_failure_a_resume_reads_as_an_unknown_thread() {
        let mut p = CodexParser::new(None, Prices::built_in());
        assert!(p.feed_line("Error: thread/resume failed").is_empty());
        let mut o = StreamOutcome::default();
        for u in p.end() {
            o.note(&u);
        }
        assert!(Codex::new(&AgentSpec::named("codex")).unknown_session(&o));
        // A stream cut short after its start is a failure, not a new session.
        let mut p = CodexParser::new(None, Prices::built_in());
        p.feed_line(r#"{"type":"thread.started","thread_id":"t"}"#);
        assert!(p.end().is_empty());
    }

    #[test]
    fn todo_lists_edits_and_tools_show_as_phases_and_progress() {
        let mut p = CodexParser::new(None, Prices::built_in());
        let mut u = Vec::new();
        for l in [
            r#"{"type":"item.started","item":{"id":"i1","type":"todo_list","items":[{"text":"a","completed":true},{"text":"b","completed":false},{"text":"c","completed":false},{"text":"d","completed":true}]}}"#,
            r#"{"type":"item.completed","item":{"id":"i2","type":"file_change","changes":[{"path":"src/a.rs","kind":"update"}],"status":"completed"}}"#,
            r#"{"type":"item.started","item":{"id":"i3","type":"mcp_tool_call","server":"docs","tool":"search","status":"in_progress"}}"#,
            r#"{"type":"item.completed","item":{"id":"i3","type":"mcp_tool_call","server":"docs","tool":"search","status":"completed"}}"#,
        ] {
            u.extend(p.feed_line(l));
        }
        assert!(u.contains(&StreamUpdate::Progress(50)), "{u:?}");
        assert!(u.contains(&StreamUpdate::Phase("Plan: 2/4 done".into())));
        assert!(u.contains(&StreamUpdate::Phase("Editing src/a.rs".into())));
        assert!(u.contains(&StreamUpdate::Phase("Using docs.search".into())));
        assert_eq!(
            u.iter().rfind(|x| matches!(x, StreamUpdate::Turns(_))),
            Some(&StreamUpdate::Turns(2))
        );
    }

    #[test]
    fn an_unpriced_model_records_tokens_and_no_cost() {
        let s = status(&read("bash_commit.jsonl", Some("mystery-model")));
        assert_eq!(s.metrics.input_tokens, Some(7000));
        assert_eq!(s.metrics.cost_usd, None);
        assert_eq!(crate::cost::cell(&s.metrics).unwrap(), "— 7.2k tok");
    }
}
