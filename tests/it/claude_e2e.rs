//! The real Claude Code CLI, offline, against a scripted model server on loopback
//! (`tests/support/mock_anthropic.py`): its Bash tool really commits in a real git
//! repository, and what it prints is what the adapter reads.
//!
//! The tests that run the CLI are ignored unless asked for (`cargo test --
//! --include-ignored`, as `.ci/run` does after installing the pinned
//! version); asked for without `claude` on `PATH`, they fail.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::agents_support::{
    FOREIGN_ENV, HANG_GUARD, Mock, Orch, Task, commit_command, git, init_repo, wait_output,
};
use crate::engines;
use po::protocol::{AgentStatus, State, layout, store};
use po::run::agent::StreamUpdate;
use po::run::agent::claude::{self, ClaudeOptions, StreamParser};
use serde_json::{Value, json};

/// Fail unless the real CLI is here (the tests that call this are ignored
/// unless asked for; see `engines`).
pub(crate) fn require_claude() {
    engines::require("claude", &["--version"], engines::CLAUDE);
}

/// Start `claude` the way the adapter says, prompt on stdin, in `cwd`.
fn start_claude(opts: &ClaudeOptions, cwd: &Path, env: &[(String, String)], prompt: &str) -> Child {
    let argv = claude::argv(opts);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in FOREIGN_ENV {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let mut child = cmd.spawn().expect("start claude");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(prompt.as_bytes())
        .unwrap();
    child
}

fn parse(stdout: &[u8]) -> Vec<StreamUpdate> {
    let mut parser = StreamParser::new();
    String::from_utf8_lossy(stdout)
        .lines()
        .flat_map(|l| parser.feed_line(l))
        .collect()
}

fn status_from(updates: &[StreamUpdate]) -> AgentStatus {
    let mut s = AgentStatus::new("agent-1", "e2e");
    for u in updates {
        po::run::agent::apply(&mut s, u, "claude");
    }
    s
}

/// Two agents at once, each in its own repository, each with its own script:
/// the Bash tool call really commits, and the stream carries the session id,
/// the tool in use, turns, cost and tokens.
#[test]
#[ignore = "needs the Claude Code CLI (npm install -g @anthropic-ai/claude-code)"]
fn claude_cli_commits_through_bash_against_the_mock() {
    require_claude();
    let tmp = tempfile::tempdir().unwrap();
    let script = json!({"conversations": [
        {"marker": "agent-1", "turns": [
            {"bash": commit_command("one.txt", "one", "agent-1: add one.txt"), "description": "Commit one.txt"},
            {"text": "Committed one.txt."}]},
        {"marker": "agent-2", "turns": [
            {"bash": commit_command("two.txt", "two", "agent-2: add two.txt"), "description": "Commit two.txt"},
            {"text": "Committed two.txt."}]}
    ]});
    let mock = Mock::anthropic(tmp.path(), &script);

    let mut runs = Vec::new();
    for n in [1, 2] {
        let repo = tmp.path().join(format!("repo-{n}"));
        init_repo(&repo);
        let opts = ClaudeOptions {
            session_id: claude::new_session_id().unwrap(),
            ..Default::default()
        };
        let env = mock.claude_env(&tmp.path().join(format!("home-{n}")));
        let prompt = format!("You are agent-{n}. Add the file and commit it.\n");
        let child = start_claude(&opts, &repo, &env, &prompt);
        runs.push((n, repo, opts.session_id, child));
    }

    for (n, repo, session_id, child) in runs {
        let out = wait_output(child, &format!("claude agent-{n}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "agent-{n}: {}\nstderr: {stderr}\nstdout: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        let file = if n == 1 { "one" } else { "two" };
        assert_eq!(
            git(&repo, &["log", "-1", "--format=%s"]),
            format!("agent-{n}: add {file}.txt")
        );
        assert_eq!(git(&repo, &["show", &format!("HEAD:{file}.txt")]), file);
        assert_eq!(git(&repo, &["status", "--porcelain"]), "");

        let updates = parse(&out.stdout);
        assert_eq!(
            updates.first(),
            Some(&StreamUpdate::SessionId(session_id.clone()))
        );
        assert!(
            updates
                .iter()
                .any(|u| matches!(u, StreamUpdate::Phase(p) if p.starts_with("Bash: printf"))),
            "{updates:?}"
        );
        assert_eq!(
            updates.last(),
            Some(&StreamUpdate::Finished {
                is_error: false,
                message: Some(format!("Committed {file}.txt."))
            })
        );
        let s = status_from(&updates);
        assert_eq!(s.metrics.session_id.as_deref(), Some(session_id.as_str()));
        assert_eq!(s.metrics.turns, Some(2));
        assert!(
            s.metrics.cost_usd.is_some_and(|c| c > 0.0),
            "{:?}",
            s.metrics
        );
        // Two model calls, each 3500 input tokens (cache included) and 85 output.
        assert_eq!(s.metrics.input_tokens, Some(7000));
        assert_eq!(s.metrics.output_tokens, Some(170));
        assert_eq!(s.error, None);
    }

    // Each conversation got its own turns: tool call first, then the final text.
    let requests = mock.requests();
    for marker in ["agent-1", "agent-2"] {
        let whys: Vec<&str> = requests
            .iter()
            .filter_map(|r| r["why"].as_str())
            .filter(|w| w.contains(marker))
            .collect();
        assert_eq!(
            whys,
            [
                format!("conversation {marker} turn 0"),
                format!("conversation {marker} turn 1")
            ],
            "{requests:#?}"
        );
    }
}

/// A rate limit the CLI gives up on: exit 1, and the adapter calls it retryable.
#[test]
#[ignore = "needs the Claude Code CLI (npm install -g @anthropic-ai/claude-code)"]
fn claude_cli_rate_limit_is_a_retryable_error() {
    require_claude();
    let tmp = tempfile::tempdir().unwrap();
    let script = json!({"conversations": [{"marker": "agent-1", "turns": [{"error": 429}]}]});
    let mock = Mock::anthropic(tmp.path(), &script);
    let repo = tmp.path().join("repo");
    init_repo(&repo);
    let opts = ClaudeOptions {
        session_id: claude::new_session_id().unwrap(),
        ..Default::default()
    };
    let mut env = mock.claude_env(&tmp.path().join("home"));
    env.retain(|(k, _)| k != "CLAUDE_CODE_MAX_RETRIES");
    env.push(("CLAUDE_CODE_MAX_RETRIES".into(), "0".into()));
    let child = start_claude(&opts, &repo, &env, "You are agent-1. Do the task.\n");
    let out = wait_output(child, "claude with a rate limit");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let updates = parse(&out.stdout);
    let s = status_from(&updates);
    assert_eq!(s.retryable, Some(true), "{updates:?}");
    assert!(
        s.error.as_deref().is_some_and(|e| e.contains("429")),
        "{:?}",
        s.error
    );
    assert!(matches!(
        updates.last(),
        Some(StreamUpdate::Finished { is_error: true, .. })
    ));
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]), "1");
}

/// How Claude's end-to-end tests run po-spawn on an [`Orch`] and check a
/// task.
trait ClaudeRun {
    fn spawn_claude(&self, mock: &Mock, args: &[&str], env: &[(&str, &str)]) -> (Output, String);
    fn assert_claude_completed(&self, task: Task, stderr: &str) -> AgentStatus;
}

impl ClaudeRun for Orch {
    /// Run `po-spawn --agent claude --id e2e --runtime-dir R` with more `args`.
    fn spawn_claude(&self, mock: &Mock, args: &[&str], env: &[(&str, &str)]) -> (Output, String) {
        let mut all = mock.claude_env(&self.tmp.path().join("home"));
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.spawn("claude", args, &all)
    }

    /// The task's status after the run; asserts it completed with its commit on
    /// its branch and the metrics of its stream (read back from its log).
    fn assert_claude_completed(&self, task: Task, stderr: &str) -> AgentStatus {
        let s = self.assert_completed(task, stderr);
        let shown = serde_json::to_string_pretty(&s).unwrap();
        // The metrics are the stream's: read the agent's own log the same way.
        let log = s.log_file.clone().expect("log_file recorded");
        let log_text = fs::read_to_string(&log).unwrap();
        let mut parser = StreamParser::new();
        let updates: Vec<StreamUpdate> =
            log_text.lines().flat_map(|l| parser.feed_line(l)).collect();
        let stream = status_from(&updates);
        let session = stream
            .metrics
            .session_id
            .clone()
            .expect("stream session id");
        assert_eq!(
            s.metrics.session_id.as_deref(),
            Some(session.as_str()),
            "{shown}"
        );
        assert!(s.metrics.turns.is_some_and(|t| t >= 1), "{shown}");
        assert_eq!(s.metrics.turns, stream.metrics.turns, "{shown}");
        assert!(s.metrics.cost_usd.is_some_and(|c| c > 0.0), "{shown}");
        assert_eq!(s.metrics.cost_usd, stream.metrics.cost_usd, "{shown}");
        assert_eq!(s.exit_code, Some(0), "{shown}");
        assert_eq!(s.error, None, "{shown}");
        s
    }
}

/// The orchestration the issue asks for: `po-spawn --agent claude` runs two tasks
/// in parallel worktrees; each agent commits on its own branch through the Bash
/// tool, and each status file carries the session id, turns and cost of its stream.
#[test]
#[ignore = "needs the Claude Code CLI (npm install -g @anthropic-ai/claude-code)"]
fn po_spawn_runs_two_claude_agents_that_commit() {
    require_claude();
    let tasks: [Task; 2] = [
        ("agent-1", "marker-alpha", "one.txt", "one"),
        ("agent-2", "marker-beta", "two.txt", "two"),
    ];
    let orch = Orch::new(&tasks);
    let mock = Mock::anthropic(
        orch.tmp.path(),
        &json!({ "conversations": Orch::conversations(&tasks) }),
    );
    let (out, stderr) = orch.spawn_claude(&mock, &["--max-workers", "2"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "po-spawn stderr:\n{stderr}\nmock requests:\n{:#?}",
        mock.requests()
    );

    let printed: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    let mut sessions = BTreeMap::new();
    for task in tasks {
        let path = layout::status_path(&orch.dir, task.0);
        assert!(
            printed
                .iter()
                .any(|p| p.canonicalize().ok() == path.canonicalize().ok()),
            "po-spawn should print {} when it finishes; printed {printed:?}",
            path.display()
        );
        let s = orch.assert_claude_completed(task, &stderr);
        // One Bash call, one final answer.
        assert_eq!(s.metrics.turns, Some(2));
        assert_eq!(s.attempt, 1);
        sessions.insert(s.metrics.session_id.unwrap(), task.0);
    }
    assert_eq!(sessions.len(), 2, "each agent has its own session");
}

/// A rate limit fails the first attempt as retryable; `--retries 1` runs the task
/// again, resuming the same Claude session, and it completes with its commit.
#[test]
#[ignore = "needs the Claude Code CLI (npm install -g @anthropic-ai/claude-code)"]
fn po_spawn_retries_a_rate_limited_claude_agent() {
    retries_after_a_failed_request(429);
}

/// A server error the CLI gives up on is retryable too.
#[test]
#[ignore = "needs the Claude Code CLI (npm install -g @anthropic-ai/claude-code)"]
fn po_spawn_retries_a_claude_agent_after_a_server_error() {
    retries_after_a_failed_request(500);
}

/// The first request answers `status`; `--retries 1` runs the task again,
/// resuming its session, and it completes.
fn retries_after_a_failed_request(status: u16) {
    require_claude();
    let task: Task = ("agent-1", "marker-gamma", "three.txt", "three");
    let orch = Orch::new(&[task]);
    let mut conversations = Orch::conversations(&[task]);
    conversations[0]["turns"][0]["fail_times"] = json!(1);
    conversations[0]["turns"][0]["fail_status"] = json!(status);
    let mock = Mock::anthropic(orch.tmp.path(), &json!({ "conversations": conversations }));
    let (out, stderr) = orch.spawn_claude(
        &mock,
        &[
            "--max-workers",
            "1",
            "--retries",
            "1",
            "--retry-backoff",
            "0",
        ],
        // The CLI gives up at once, so the rate limit reaches po.
        &[("CLAUDE_CODE_MAX_RETRIES", "0")],
    );
    let requests = mock.requests();
    assert_eq!(
        out.status.code(),
        Some(0),
        "po-spawn stderr:\n{stderr}\nmock requests:\n{requests:#?}"
    );
    let whys: Vec<&str> = requests.iter().filter_map(|r| r["why"].as_str()).collect();
    assert_eq!(
        whys,
        [
            "conversation marker-gamma turn 0 (injected failure)",
            "conversation marker-gamma turn 0",
            "conversation marker-gamma turn 1",
        ],
        "one rate-limited request, then the retried run"
    );
    let s = orch.assert_claude_completed(task, &stderr);
    assert_eq!(s.attempt, 2, "{s:#?}");
    assert_eq!(s.retryable, None, "reset by the retry: {s:#?}");

    // Both attempts are in the log, and the second resumed the first's session.
    let log = fs::read_to_string(s.log_file.as_ref().unwrap()).unwrap();
    let inits: Vec<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "system" && e["subtype"] == "init")
        .map(|e| e["session_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        inits,
        [
            s.metrics.session_id.clone().unwrap(),
            s.metrics.session_id.clone().unwrap()
        ],
        "{log}"
    );
}

/// `--retry` resumes the recorded session; when the CLI does not have it (another
/// machine, a cleared config), the same attempt starts again with a new session,
/// says so in the agent log and the session log, and records the new id.
#[test]
#[ignore = "needs the Claude Code CLI (npm install -g @anthropic-ai/claude-code)"]
fn po_spawn_retry_of_an_unknown_session_starts_a_new_one() {
    require_claude();
    let task: Task = ("agent-1", "marker-delta", "four.txt", "four");
    let orch = Orch::new(&[task]);
    let path = layout::status_path(&orch.dir, task.0);
    let unknown = claude::new_session_id().unwrap();
    store::update_status(&path, |s| {
        s.status = State::Failed;
        s.error = Some("agent exited with status 1".into());
        s.completion_time = Some(po::timefmt::now());
        s.metrics.session_id = Some(unknown.clone());
        Ok(())
    })
    .unwrap();
    let mock = Mock::anthropic(
        orch.tmp.path(),
        &json!({ "conversations": Orch::conversations(&[task]) }),
    );
    let (out, stderr) = orch.spawn_claude(&mock, &["--retry", "--max-workers", "1"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "po-spawn stderr:\n{stderr}\nmock requests:\n{:#?}",
        mock.requests()
    );
    let s = orch.assert_claude_completed(task, &stderr);
    assert_eq!(s.attempt, 2, "one attempt, two starts: {s:#?}");
    let fresh = s.metrics.session_id.clone().unwrap();
    assert_ne!(fresh, unknown, "{s:#?}");

    // The first start asked to resume the unknown session, the second started
    // the recorded one.
    let log = fs::read_to_string(s.log_file.as_ref().unwrap()).unwrap();
    let note = format!("session {unknown} is unknown to the agent; starting a new session {fresh}");
    assert!(log.contains(&format!("po-spawn: {note}")), "{log}");
    let starts: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("po-spawn: agent: "))
        .collect();
    assert_eq!(starts.len(), 2, "{log}");
    assert!(
        starts[0].contains(&format!("\"--resume\", \"{unknown}\"")),
        "{log}"
    );
    assert!(
        starts[1].contains(&format!("\"--session-id\", \"{fresh}\"")),
        "{log}"
    );
    let session_log = s
        .log_file
        .as_ref()
        .unwrap()
        .parent()
        .unwrap()
        .join("session.log");
    let session_text = fs::read_to_string(&session_log).unwrap();
    assert!(
        session_text.contains(&format!("agent-1: {note}")),
        "{session_text}"
    );
}

/// One raw HTTP/1.1 request to the mock; (status, body).
pub(crate) fn http(port: u16, method: &str, path: &str, body: &Value) -> (u16, String) {
    let body = body.to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The `data:` objects of a server-sent event stream.
pub(crate) fn sse_events(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn messages_request(first_user: &str, tool_results: usize, tools: bool) -> Value {
    let mut messages = vec![json!({"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>Context mentions agent-2.</system-reminder>"},
        {"type": "text", "text": first_user}
    ]})];
    for i in 0..tool_results {
        messages.push(json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": format!("t{i}"), "name": "Bash", "input": {"command": "true"}}]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("t{i}"), "content": "ok"}]}));
    }
    let tools = if tools {
        json!([{"name": "Bash", "input_schema": {}}])
    } else {
        json!([])
    };
    json!({"model": "claude-test", "stream": true, "max_tokens": 100,
           "system": [{"type": "text", "text": "You are a coding agent."}],
           "tools": tools, "messages": messages})
}

/// The mock itself: turns chosen by marker and by counting tool results, side
/// requests and token counts answered, errors as the API sends them, every
/// request logged.
#[test]
fn mock_server_follows_its_script() {
    let tmp = tempfile::tempdir().unwrap();
    let script = json!({"default_text": "A title", "conversations": [
        {"marker": "agent-1", "turns": [{"bash": "make", "description": "Build"}, {"text": "Built."}]},
        {"marker": "agent-2", "turns": [{"error": 529}]},
        {"marker": "agent-10", "turns": [{"tool": "Read", "input": {"file_path": "/x"}}]},
        {"marker": "agent-3", "turns": [{"text": "Finally.", "fail_times": 2, "fail_status": 529}]}
    ]});
    let mock = Mock::anthropic(tmp.path(), &script);
    let post = |req: &Value| http(mock.port, "POST", "/v1/messages?beta=true", req);

    // Turn 0 of agent-1 (not agent-2, which only the system reminder names): a Bash tool use.
    let (status, body) = post(&messages_request("You are agent-1.", 0, true));
    assert_eq!(status, 200);
    let events = sse_events(&body);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[1]["content_block"]["name"], "Bash");
    let input: Value =
        serde_json::from_str(events[3]["delta"]["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(input, json!({"command": "make", "description": "Build"}));
    assert_eq!(events[5]["delta"]["stop_reason"], "tool_use");
    assert_eq!(events[5]["usage"]["output_tokens"], 85);
    assert_eq!(events[0]["message"]["usage"]["input_tokens"], 1200);

    // One tool result in the history: turn 1, the final text; a retry gets the same.
    for _ in 0..2 {
        let events = sse_events(&post(&messages_request("You are agent-1.", 1, true)).1);
        assert_eq!(events[3]["delta"]["text"], "Built.");
        assert_eq!(events[5]["delta"]["stop_reason"], "end_turn");
    }
    // Past the last turn: the last text again.
    let events = sse_events(&post(&messages_request("You are agent-1.", 5, true)).1);
    assert_eq!(events[3]["delta"]["text"], "Built.");

    // "agent-10" is not "agent-1".
    let events = sse_events(&post(&messages_request("You are agent-10.", 0, true)).1);
    assert_eq!(events[1]["content_block"]["name"], "Read");

    // An error turn is an API error body with its status.
    let (status, body) = post(&messages_request("You are agent-2.", 0, true));
    assert_eq!(status, 529);
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["type"], "overloaded_error");

    // Side requests (no tools) and unknown conversations get the default text.
    for req in [
        messages_request("You are agent-1.", 0, false),
        messages_request("Nobody in particular.", 0, true),
    ] {
        let events = sse_events(&post(&req).1);
        assert_eq!(events[3]["delta"]["text"], "A title");
    }
    let (status, body) = http(
        mock.port,
        "POST",
        "/v1/messages/count_tokens?beta=true",
        &messages_request("x", 0, true),
    );
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["input_tokens"].as_u64() > Some(0));

    // Injected failures come first, then the scripted answer.
    let statuses: Vec<u16> = (0..3)
        .map(|_| post(&messages_request("You are agent-3.", 0, true)).0)
        .collect();
    assert_eq!(statuses, [529, 529, 200]);

    let whys: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| r["why"].as_str().unwrap_or("-").to_string())
        .collect();
    assert_eq!(whys.len(), 12, "every request is logged: {whys:?}");
    assert_eq!(whys[0], "conversation agent-1 turn 0");
    assert_eq!(whys[3], "conversation agent-1 past its turns");
    assert_eq!(whys[4], "conversation agent-10 turn 0");
}

/// A manifest task's agent type reaches the CLI as `--agent`; one the machine does
/// not have fails the task with the CLI's own reason, not as retryable.
#[test]
#[ignore = "needs the Claude Code CLI (npm install -g @anthropic-ai/claude-code)"]
fn po_spawn_passes_the_task_agent_and_reports_an_unknown_one() {
    require_claude();
    let task: Task = ("agent-1", "marker-delta", "four.txt", "four");
    let orch = Orch::new(&[task]);
    let path = layout::status_path(&orch.dir, task.0);
    store::update_status(&path, |s| {
        s.agent = Some("python-experts:django-expert".into());
        Ok(())
    })
    .unwrap();
    let mock = Mock::anthropic(
        orch.tmp.path(),
        &json!({ "conversations": Orch::conversations(&[task]) }),
    );
    let (out, stderr) = orch.spawn_claude(&mock, &["--max-workers", "1"], &[]);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let s = store::read_status(&path).unwrap();
    assert_eq!(s.status, State::Failed, "{s:#?}");
    let error = s.error.clone().unwrap_or_default();
    assert!(
        error.contains("--agent 'python-experts:django-expert' not found"),
        "{error}"
    );
    assert_ne!(s.retryable, Some(true), "{s:#?}");
    assert!(
        mock.requests().is_empty(),
        "the CLI stops before any request"
    );
}

/// What one agent of [`Orch::conversations`] costs with `--model
/// claude-sonnet-4-5`: two model calls of the mock's usage (3,500 input
/// tokens of which 300 cache writes and 2,000 cache reads, 85 output) at
/// that model's list price, which is Claude Code's own figure too.
fn agent_cost() -> f64 {
    let two_calls = po::cost::Tokens {
        input: 7000,
        cache_write: 600,
        cache_read: 4000,
        output: 170,
    };
    po::cost::Price::of("claude-sonnet-4-5")
        .unwrap()
        .cost(&two_calls)
}

/// The requests the mock answered for `marker`'s conversation.
fn turns_of(mock: &Mock, marker: &str) -> usize {
    mock.requests()
        .iter()
        .filter_map(|r| r["why"].as_str())
        .filter(|w| w.starts_with(&format!("conversation {marker} ")))
        .count()
}

/// With one worker and a budget of two and a half agents' cost, exactly three
/// Claude Code agents run and the other two are cancelled for the budget
/// without a model call; `--retry` after raising it runs those two.
#[test]
#[ignore = "needs the Claude Code CLI (npm install -g @anthropic-ai/claude-code)"]
fn po_spawn_budget_runs_exactly_three_claude_agents_and_a_raised_one_the_rest() {
    require_claude();
    let tasks: [Task; 5] = [
        ("agent-1", "marker-b1", "b1.txt", "one"),
        ("agent-2", "marker-b2", "b2.txt", "two"),
        ("agent-3", "marker-b3", "b3.txt", "three"),
        ("agent-4", "marker-b4", "b4.txt", "four"),
        ("agent-5", "marker-b5", "b5.txt", "five"),
    ];
    let orch = Orch::new(&tasks);
    let mock = Mock::anthropic(
        orch.tmp.path(),
        &json!({ "conversations": Orch::conversations(&tasks) }),
    );
    let cost = agent_cost();
    let budget = format!("{}", 2.5 * cost);
    let (out, stderr) = orch.spawn_claude(
        &mock,
        &[
            "--max-workers",
            "1",
            "--model",
            "claude-sonnet-4-5",
            "--budget-usd",
            &budget,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "3/5 completed:\n{stderr}");
    for task in &tasks[..3] {
        let s = orch.assert_claude_completed(*task, &stderr);
        let recorded = s.metrics.cost_usd.unwrap();
        assert!((recorded - cost).abs() < 1e-9, "{recorded} != {cost}");
        assert_eq!(s.metrics.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(turns_of(&mock, task.1), 2);
    }
    for (agent, marker, _, _) in &tasks[3..] {
        let s = store::read_status(&layout::status_path(&orch.dir, agent)).unwrap();
        assert_eq!(s.status, State::Cancelled, "{agent}: {s:#?}\n{stderr}");
        assert!(
            s.error
                .as_deref()
                .unwrap()
                .starts_with("cancelled: the budget was reached before it started"),
            "{s:#?}"
        );
        assert_eq!(turns_of(&mock, marker), 0, "{agent} never called the model");
    }
    assert!(
        stderr.contains(&format!(
            "💰 Budget reached: spent {} of {} budget — reached; launching nothing more",
            po::cost::usd(3.0 * cost),
            po::cost::usd(2.5 * cost)
        )),
        "{stderr}"
    );

    // Raised: `--retry` runs the two cancelled tasks; the rest stay as they are.
    let raised = format!("{}", 6.0 * cost);
    let (out, stderr) = orch.spawn_claude(
        &mock,
        &[
            "--max-workers",
            "1",
            "--model",
            "claude-sonnet-4-5",
            "--retry",
            "--budget-usd",
            &raised,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for task in &tasks {
        orch.assert_claude_completed(*task, &stderr);
        assert_eq!(turns_of(&mock, task.1), 2, "each agent ran once");
    }
    assert!(
        stderr.contains(&format!(
            "💰 Spend: spent {} of {} budget",
            po::cost::usd(5.0 * cost),
            po::cost::usd(6.0 * cost)
        )),
        "{stderr}"
    );
}

/// `--budget-hard`: an agent whose first model call already spent the budget
/// is ended while its Bash tool runs (its whole tree: the `sleep` too), and
/// its task ends cancelled for the budget with its worktree kept.
#[test]
#[ignore = "needs the Claude Code CLI (npm install -g @anthropic-ai/claude-code)"]
fn po_spawn_budget_hard_ends_a_claude_agent_mid_run() {
    require_claude();
    let task: Task = ("agent-1", "marker-hard", "hard.txt", "hard");
    let orch = Orch::new(&[task]);
    let script = json!({"conversations": [{"marker": task.1, "turns": [
        // Claude Code refuses a bare `sleep`; this runs until it is ended.
        {"bash": "python3 -c 'import time; time.sleep(200)'", "description": "Work for a long time"},
        {"text": "Finished."}
    ]}]});
    let mock = Mock::anthropic(orch.tmp.path(), &script);
    let (out, stderr) = orch.spawn_claude(
        &mock,
        &[
            "--model",
            "claude-sonnet-4-5",
            "--budget-usd",
            "0.001",
            "--budget-hard",
            "--grace",
            "2",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let path = layout::status_path(&orch.dir, task.0);
    let s = store::read_status(&path).unwrap();
    assert_eq!(s.status, State::Cancelled, "{s:#?}\n{stderr}");
    assert!(
        s.error
            .as_deref()
            .unwrap()
            .starts_with("cancelled: the budget was spent while it ran"),
        "{s:#?}"
    );
    assert_eq!(turns_of(&mock, task.1), 1, "ended before its second turn");
    let worktree = s.worktree.clone().unwrap();
    assert!(
        git(&orch.repo, &["worktree", "list", "--porcelain"])
            .contains(&worktree.display().to_string())
            && worktree.join("README.md").exists(),
        "the worktree is kept: {}",
        worktree.display()
    );
    // What it spent is its tokens at the model's price: it never reported a
    // cost, and it counts.
    assert_eq!(s.metrics.cost_usd, None);
    let spent = po::cost::estimate(&s.metrics).unwrap();
    assert!(spent > 0.001 && spent < agent_cost(), "{spent}");
    assert!(stderr.contains("💰 agent-1: ending it"), "{stderr}");
    let marker = format!("PO_STATUS_FILE={}", path.display());
    let left: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| fs::read(e.path().join("environ")).ok())
        .filter(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()))
        .map(|env| String::from_utf8_lossy(&env).into_owned())
        .collect();
    assert!(left.is_empty(), "processes of the task are left: {left:?}");
}

/// `--max-turns` is Claude Code's own cap: an agent that needs two turns and
/// may take one fails with the CLI's reason, not as retryable, its cost kept.
#[test]
#[ignore = "needs the Claude Code CLI (npm install -g @anthropic-ai/claude-code)"]
fn po_spawn_max_turns_caps_a_claude_agent() {
    require_claude();
    let task: Task = ("agent-1", "marker-turns", "turns.txt", "turns");
    let orch = Orch::new(&[task]);
    let mock = Mock::anthropic(
        orch.tmp.path(),
        &json!({ "conversations": Orch::conversations(&[task]) }),
    );
    let (out, stderr) = orch.spawn_claude(
        &mock,
        &["--model", "claude-sonnet-4-5", "--max-turns", "1"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let s = store::read_status(&layout::status_path(&orch.dir, task.0)).unwrap();
    assert_eq!(s.status, State::Failed, "{s:#?}");
    assert!(
        s.error
            .as_deref()
            .unwrap()
            .contains("Reached maximum number of turns (1)"),
        "{s:#?}"
    );
    assert_ne!(s.retryable, Some(true));
    assert!(s.metrics.cost_usd.is_some_and(|c| c > 0.0), "{s:#?}");
    let log = fs::read_to_string(s.log_file.as_ref().unwrap()).unwrap();
    assert!(log.contains("\"--max-turns\", \"1\""), "{log}");
}

/// `po-spawn --sandbox --agent claude`: the real CLI runs under bubblewrap;
/// its Bash tool commits in the task's worktree, and a write into the user's
/// checkout is refused by the filesystem, which the tool's result says.
#[test]
#[ignore = "needs the Claude Code CLI and bwrap (npm install -g @anthropic-ai/claude-code; apt-get install bubblewrap)"]
fn po_spawn_sandboxes_a_claude_agent_that_commits_and_cannot_write_outside() {
    require_claude();
    engines::require("bwrap", &["--ro-bind", "/", "/", "true"], engines::BWRAP);
    let task: Task = ("agent-1", "marker-boxed", "boxed.txt", "boxed");
    let orch = Orch::new(&[task]);
    let outside = orch.repo.join("outside.txt");
    let script = json!({"conversations": [{"marker": "marker-boxed", "turns": [
        {"bash": commit_command("boxed.txt", "boxed", "agent-1: add boxed.txt"),
         "description": "Commit boxed.txt"},
        {"bash": format!("echo pwned > {}", outside.display()),
         "description": "Write outside the worktree"},
        {"text": "Committed boxed.txt."}
    ]}]});
    let mock = Mock::anthropic(orch.tmp.path(), &script);
    let (out, stderr) = orch.spawn_claude(&mock, &["--sandbox"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "po-spawn stderr:\n{stderr}\nmock requests:\n{:#?}",
        mock.requests()
    );
    let s = orch.assert_claude_completed(task, &stderr);
    assert_eq!(s.metrics.turns, Some(3));
    assert!(
        !outside.exists(),
        "the sandboxed agent wrote {}",
        outside.display()
    );
    // The refusal is the Bash tool's result, in the agent's stream.
    let log = fs::read_to_string(s.log_file.unwrap()).unwrap();
    assert!(log.contains("po-spawn: sandbox: "), "{log}");
    assert!(log.contains("Read-only file system"), "{log}");
}
