//! One po-react round with the real Claude Code CLI against the scripted
//! model server: po-spawn's claude agent commits a bug and opens the pull
//! request, its check fails, and po-react resumes the same session in the
//! task's worktree with the failed log; the agent commits the fix through
//! its Bash tool, po pushes it, and the round's cost is its own.

use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::agents_support::{FOREIGN_ENV, Mock, commit_command, wait_output};
use crate::claude_e2e::{http, require_claude, sse_events};
use crate::support_gh::{FakeGh, git, orchestration, repo_with_origin};
use po::protocol::reaction::{self, Outcome, Trigger};
use po::protocol::{AgentStatus, State, store};

#[test]
#[ignore = "needs the Claude Code CLI (npm install -g @anthropic-ai/claude-code)"]
fn a_round_resumes_the_claude_session_and_its_fix_is_pushed() {
    require_claude();
    let tmp = tempfile::tempdir().unwrap();
    let (repo, origin) = repo_with_origin(tmp.path());
    let mut orch = orchestration("500", Some((500, "Master task")));
    orch.source.kind = "issue".into();
    let mut s = AgentStatus::new("agent-1", "500");
    s.title = "Add lib".into();
    s.body = "Create lib.txt and commit it. Task key: marker-react.".into();
    s.sub_issue = Some(501);
    s.branch = Some("feat/issue-501-agent-1".into());
    let dir = crate::support_gh::craft(&repo.join(".claude/runtime"), &orch, &[s]);
    let status_file = dir.join("agent-1.status.json");
    let gh = FakeGh::new(tmp.path());
    gh.use_remote(&origin);
    gh.set_next_number(1);
    gh.add_ci(
        "test",
        "lib.txt",
        "BUG",
        "error: lib.txt has a BUG (round-marker-fix)",
    );
    let mock = Mock::anthropic(
        tmp.path(),
        &json!({"conversations": [{
            "marker": "marker-react",
            "turns": [
                {"bash": commit_command("lib.txt", "BUG", "Add lib"), "description": "Commit lib"},
                {"text": "Committed lib.txt."}
            ],
            "resumed": {"marker": "round-marker-fix", "turns": [
                {"bash": commit_command("lib.txt", "fixed", "Fix the bug"), "description": "Fix"},
                {"text": "Fixed lib.txt."}
            ]}
        }]}),
    );
    let home = tmp.path().join("home");
    let run = |program: &str, args: &[&str]| -> Output {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(&repo)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in FOREIGN_ENV {
            cmd.env_remove(k);
        }
        for (k, _) in std::env::vars() {
            if k.starts_with("PO_") || k.starts_with("AMPLIHACK_") {
                cmd.env_remove(k);
            }
        }
        gh.apply(&mut cmd);
        cmd.envs(mock.claude_env(&home));
        wait_output(cmd.spawn().unwrap(), program)
    };

    let out = run(
        env!("CARGO_BIN_EXE_po-spawn"),
        &["--agent", "claude", "--id", "500", "--create-pr"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\n{:#?}",
        mock.requests()
    );
    let first = store::read_status(&status_file).unwrap();
    assert_eq!(first.status, State::Completed);
    assert_eq!(first.pr_number, Some(1));
    let session = first.metrics.session_id.clone().expect("a session");
    let first_cost = first.metrics.cost_usd.expect("a cost");
    let head = git(&origin, &["rev-parse", "feat/issue-501-agent-1"]);

    let out = run(
        env!("CARGO_BIN_EXE_po-react"),
        &["500", "--agent", "claude"],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{stderr}\n{:#?}",
        mock.requests()
    );
    assert!(stdout.contains("round 1 (ci_failed): pushed"), "{stdout}");

    let s = store::read_status(&status_file).unwrap();
    let rounds = reaction::of_status(&s);
    assert_eq!(rounds.len(), 1);
    let r = &rounds[0];
    assert_eq!(r.triggers, [Trigger::CiFailed]);
    assert_eq!(r.head, head.trim());
    assert_eq!(r.outcome, Outcome::Pushed);
    // The same session, resumed: the round's run says so in its log.
    assert_eq!(s.metrics.session_id.as_deref(), Some(session.as_str()));
    let log = std::fs::read_to_string(r.log_file.as_ref().unwrap()).unwrap();
    assert!(
        log.contains(&format!("\"--resume\", \"{session}\"")),
        "{log}"
    );
    // Its cost is the round's own; the first run's stays counted.
    assert_eq!(s.metrics.previous_cost_usd, Some(first_cost));
    assert!(r.cost_usd.is_some_and(|c| c > 0.0), "{r:?}");
    // The fix is what GitHub has now.
    let tip = git(&origin, &["rev-parse", "feat/issue-501-agent-1"]);
    assert_eq!(
        git(&origin, &["show", &format!("{}:lib.txt", tip.trim())]).trim(),
        "fixed"
    );
    assert_eq!(
        git(&origin, &["log", "-1", "--format=%s", tip.trim()]).trim(),
        "Fix the bug"
    );
    // The model saw the round's prompt in the resumed conversation.
    let resumed = mock
        .requests()
        .into_iter()
        .filter(|q| q.to_string().contains("round-marker-fix"))
        .count();
    assert!(resumed >= 1, "{:#?}", mock.requests());
}

/// The scripted server answers a resumed session's new prompt from the
/// conversation's `resumed` turns, counting the tool results after it.
#[test]
fn the_mock_answers_a_resumed_session_from_its_resumed_turns() {
    let tmp = tempfile::tempdir().unwrap();
    let mock = Mock::anthropic(
        tmp.path(),
        &json!({"conversations": [{
            "marker": "marker-a",
            "turns": [{"bash": "first", "description": "First"}, {"text": "First done."}],
            "resumed": {"marker": "round-b", "turns": [
                {"bash": "second", "description": "Second"}, {"text": "Second done."}
            ]}
        }]}),
    );
    let user = |text: &str| json!({"role": "user", "content": [{"type": "text", "text": text}]});
    let tool = |i: usize| {
        [
            json!({"role": "assistant", "content": [
                {"type": "tool_use", "id": format!("t{i}"), "name": "Bash", "input": {}}]}),
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": format!("t{i}"), "content": "ok"}]}),
        ]
    };
    let ask = |messages: Vec<serde_json::Value>| -> serde_json::Value {
        let req = json!({"model": "m", "stream": true, "max_tokens": 10,
            "tools": [{"name": "Bash", "input_schema": {}}], "messages": messages});
        let (status, body) = http(mock.port, "POST", "/v1/messages", &req);
        assert_eq!(status, 200, "{body}");
        let events = sse_events(&body);
        match events[3]["delta"]["partial_json"].as_str() {
            Some(input) => {
                serde_json::from_str::<serde_json::Value>(input).unwrap()["command"].clone()
            }
            None => events[3]["delta"]["text"].clone(),
        }
    };
    let first = vec![user("Task key: marker-a.")];
    assert_eq!(ask(first.clone()), "first");
    let mut history = first;
    history.extend(tool(0));
    history
        .push(json!({"role": "assistant", "content": [{"type": "text", "text": "First done."}]}));
    // The round's prompt: its own first turn, though one tool result came before.
    history.push(user("Fix round-b now."));
    assert_eq!(ask(history.clone()), "second");
    history.extend(tool(1));
    assert_eq!(ask(history), "Second done.");
}
