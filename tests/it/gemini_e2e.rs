//! The real Gemini CLI, offline, under `po-spawn --agent gemini`, against the
//! scripted Gemini API on loopback (`tests/support/mock_models.py`, pointed
//! at by `GOOGLE_GEMINI_BASE_URL`, with the API-key auth chosen in
//! `~/.gemini/settings.json`): its shell tool really commits in the task's
//! worktree, and the status file gets what the stream said, priced by po.
//!
//! Ignored unless asked for (`cargo test -- --include-ignored`, as `.ci/run`
//! does after installing the pinned version); asked for without `gemini` on
//! `PATH`, they fail.

use std::fs;

use crate::agents_support::{Mock, Orch, Task, assert_close, conversation_cost, event_ids, git};
use crate::engines;
use po::protocol::State;
use serde_json::json;

/// A model named, so the CLI does not ask a router model first (`auto`).
const MODEL: &str = "gemini-2.5-flash";

fn require_gemini() {
    engines::require("gemini", &["--version"], engines::GEMINI);
}

/// The agents' environment: a home whose settings choose API-key auth, the
/// key, and the mock as the API.
fn env(orch: &Orch, mock: &Mock) -> Vec<(String, String)> {
    let home = orch.home();
    fs::create_dir_all(home.join(".gemini")).unwrap();
    fs::write(
        home.join(".gemini/settings.json"),
        r#"{"security":{"auth":{"selectedType":"gemini-api-key"}}}"#,
    )
    .unwrap();
    vec![
        ("HOME".into(), home.display().to_string()),
        ("GEMINI_API_KEY".into(), "test-offline".into()),
        (
            "GOOGLE_GEMINI_BASE_URL".into(),
            format!("http://127.0.0.1:{}", mock.port),
        ),
    ]
}

/// The session ids the log's `init` events name, in order.
fn sessions(log: &str) -> Vec<String> {
    event_ids(log, "init", "session_id")
}

/// What one agent of [`Orch::conversations`] costs at this model's price.
fn agent_cost() -> f64 {
    conversation_cost(MODEL)
}

/// `po-spawn --agent gemini` runs two tasks in parallel worktrees; each
/// agent commits on its own branch through its shell tool, in a session po
/// named, and each status file has the session, turns, tokens and the cost
/// po priced; the summary splits the cost by model.
#[test]
#[ignore = "needs Gemini CLI (npm install -g @google/gemini-cli@0.61.0)"]
fn po_spawn_runs_two_gemini_agents_that_commit() {
    require_gemini();
    let tasks: [Task; 2] = [
        ("agent-1", "marker-alpha", "one.txt", "one"),
        ("agent-2", "marker-beta", "two.txt", "two"),
    ];
    let orch = Orch::new(&tasks);
    let mock = Mock::start(
        orch.tmp.path(),
        &json!({ "conversations": Orch::conversations(&tasks) }),
    );
    let env = env(&orch, &mock);
    let (out, stderr) = orch.spawn("gemini", &["--max-workers", "2", "--model", MODEL], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\n{:#?}",
        mock.requests()
    );
    let cost = agent_cost();
    for task in tasks {
        let s = orch.assert_completed(task, &stderr);
        let log = orch.log(&s);
        let session = s.metrics.session_id.clone().unwrap();
        assert_eq!(sessions(&log), std::slice::from_ref(&session), "{log}");
        assert!(
            log.contains(&format!("\"--session-id\", \"{session}\"")),
            "po named the session: {log}"
        );
        assert_eq!(s.metrics.turns, Some(2), "one command, one answer");
        assert_eq!(
            (s.metrics.input_tokens, s.metrics.output_tokens),
            (Some(7000), Some(170))
        );
        assert_eq!(s.metrics.cache_read_input_tokens, Some(4000));
        assert_eq!(s.metrics.model.as_deref(), Some(MODEL));
        assert_close(s.metrics.cost_usd.unwrap(), cost, "cost");
        assert_eq!(mock.whys(task.1).len(), 2);
    }
    let summary = orch.summary();
    let by_model = summary["cost_by_model"][MODEL].as_f64().unwrap();
    assert!((by_model - 2.0 * cost).abs() < 1e-4, "{summary:#}");
}

/// A server error: Gemini CLI retries the request itself, and the task
/// completes in its one attempt.
#[test]
#[ignore = "needs Gemini CLI (npm install -g @google/gemini-cli@0.61.0)"]
fn a_gemini_agent_retries_a_server_error_itself() {
    require_gemini();
    let task: Task = ("agent-1", "marker-gamma", "three.txt", "three");
    let orch = Orch::new(&[task]);
    let mut conversations = Orch::conversations(&[task]);
    conversations[0]["turns"][0]["fail_times"] = json!(1);
    conversations[0]["turns"][0]["fail_status"] = json!(500);
    let mock = Mock::start(orch.tmp.path(), &json!({ "conversations": conversations }));
    let env = env(&orch, &mock);
    let (out, stderr) = orch.spawn("gemini", &["--model", MODEL], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\n{:#?}",
        mock.requests()
    );
    assert_eq!(
        mock.whys(task.1),
        [
            "conversation marker-gamma turn 0 (injected failure)",
            "conversation marker-gamma turn 0",
            "conversation marker-gamma turn 1",
        ]
    );
    let s = orch.assert_completed(task, &stderr);
    assert_eq!(s.attempt, 1);
}

/// A bad request after the commit fails the task, not retryable; `po-spawn
/// --retry` later resumes the recorded session (`--resume <id>`), which goes
/// on from its commit.
#[test]
#[ignore = "needs Gemini CLI (npm install -g @google/gemini-cli@0.61.0)"]
fn po_spawn_retry_resumes_the_gemini_session() {
    require_gemini();
    let task: Task = ("agent-1", "marker-delta", "four.txt", "four");
    let orch = Orch::new(&[task]);
    let mut conversations = Orch::conversations(&[task]);
    conversations[0]["turns"][1]["fail_times"] = json!(1);
    conversations[0]["turns"][1]["fail_status"] = json!(400);
    let mock = Mock::start(orch.tmp.path(), &json!({ "conversations": conversations }));
    let env = env(&orch, &mock);
    let (out, stderr) = orch.spawn("gemini", &["--model", MODEL], &env);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    let failed = orch.status(task.0);
    assert_eq!(failed.status, State::Failed, "{failed:#?}");
    assert_ne!(failed.retryable, Some(true), "{failed:#?}");
    assert!(
        failed.error.as_deref().unwrap().contains("400"),
        "{failed:#?}"
    );
    let session = failed.metrics.session_id.clone().expect("session recorded");

    let (out, stderr) = orch.spawn("gemini", &["--retry", "--model", MODEL], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\n{:#?}",
        mock.requests()
    );
    let s = orch.assert_completed(task, &stderr);
    assert_eq!(s.attempt, 2);
    assert_eq!(s.metrics.session_id.as_deref(), Some(session.as_str()));
    let log = orch.log(&s);
    assert!(
        log.contains(&format!("\"--resume\", \"{session}\"")),
        "{log}"
    );
    // Each po-spawn logs into its run's directory (named by the minute it
    // started): the first attempt's lines may be in another file.
    let both = match &failed.log_file {
        Some(first) if Some(first) != s.log_file.as_ref() => {
            format!("{}{log}", fs::read_to_string(first).unwrap())
        }
        _ => log.clone(),
    };
    assert_eq!(
        sessions(&both),
        [session.clone(), session.clone()],
        "{both}"
    );
    let branch = s.branch.unwrap();
    assert_eq!(
        git(
            &orch.repo,
            &["rev-list", "--count", &format!("{}..{branch}", orch.base)]
        ),
        "1"
    );
}

/// With one worker and a budget of one and a half agents' cost (po's price
/// of Gemini's tokens), two agents run and the third is cancelled without a
/// model call.
#[test]
#[ignore = "needs Gemini CLI (npm install -g @google/gemini-cli@0.61.0)"]
fn po_spawn_budget_stops_gemini_agents() {
    require_gemini();
    let tasks: [Task; 3] = [
        ("agent-1", "marker-b1", "b1.txt", "one"),
        ("agent-2", "marker-b2", "b2.txt", "two"),
        ("agent-3", "marker-b3", "b3.txt", "three"),
    ];
    let orch = Orch::new(&tasks);
    let mock = Mock::start(
        orch.tmp.path(),
        &json!({ "conversations": Orch::conversations(&tasks) }),
    );
    let env = env(&orch, &mock);
    let budget = format!("{}", 1.5 * agent_cost());
    let (out, stderr) = orch.spawn(
        "gemini",
        &[
            "--max-workers",
            "1",
            "--model",
            MODEL,
            "--budget-usd",
            &budget,
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(2), "2/3 completed:\n{stderr}");
    for task in &tasks[..2] {
        orch.assert_completed(*task, &stderr);
    }
    let s = orch.status("agent-3");
    assert_eq!(s.status, State::Cancelled, "{s:#?}\n{stderr}");
    assert!(
        s.error
            .as_deref()
            .unwrap()
            .starts_with("cancelled: the budget was reached before it started"),
        "{s:#?}"
    );
    assert!(mock.whys("marker-b3").is_empty());
}

/// A price file names the price of a model po does not know; without it
/// the cost is unknown (`—` and tokens), and po-spawn says so once.
#[test]
#[ignore = "needs Gemini CLI (npm install -g @google/gemini-cli@0.61.0)"]
fn a_price_file_prices_a_model_po_does_not_know() {
    require_gemini();
    let tasks: [Task; 1] = [("agent-1", "marker-p1", "p1.txt", "one")];
    let orch = Orch::new(&tasks);
    let mock = Mock::start(
        orch.tmp.path(),
        &json!({ "conversations": Orch::conversations(&tasks) }),
    );
    let env = env(&orch, &mock);
    let model = "gemini-local-test";
    let (out, stderr) = orch.spawn("gemini", &["--model", model], &env);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s = orch.assert_completed(tasks[0], &stderr);
    assert_eq!(s.metrics.cost_usd, None, "{s:#?}");
    assert_eq!(s.metrics.input_tokens, Some(7000));
    assert_eq!(
        stderr.matches("po has no price for model").count(),
        1,
        "{stderr}"
    );

    let prices = orch.tmp.path().join("prices.json");
    fs::write(
        &prices,
        format!(r#"{{"{model}": {{"input": 1, "cache_read": 0.5, "output": 10}}}}"#),
    )
    .unwrap();
    let again = Orch::new(&tasks);
    let env = self::env(&again, &mock);
    let (out, stderr) = again.spawn(
        "gemini",
        &["--model", model, "--prices", prices.to_str().unwrap()],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("po has no price"), "{stderr}");
    let s = again.assert_completed(tasks[0], &stderr);
    // 3,000 × 1 + 4,000 × 0.5 + 170 × 10, per million.
    assert_close(s.metrics.cost_usd.unwrap(), 0.0067, "priced from the file");
}

/// `--retry` of a task whose recorded session Gemini CLI does not have: it
/// exits 42 with no stream, and the same attempt starts a new session po
/// names, says so in the log, and records it.
#[test]
#[ignore = "needs Gemini CLI (npm install -g @google/gemini-cli@0.61.0)"]
fn po_spawn_retry_of_an_unknown_gemini_session_starts_a_new_one() {
    require_gemini();
    let task: Task = ("agent-1", "marker-epsilon", "five.txt", "five");
    let orch = Orch::new(&[task]);
    let unknown = "11111111-2222-4333-8444-555555555555";
    po::protocol::store::update_status(
        &po::protocol::layout::status_path(&orch.dir, task.0),
        |s| {
            s.status = State::Failed;
            s.error = Some("agent exited with status 1".into());
            s.completion_time = Some(po::timefmt::now());
            s.metrics.session_id = Some(unknown.into());
            Ok(())
        },
    )
    .unwrap();
    let mock = Mock::start(
        orch.tmp.path(),
        &json!({ "conversations": Orch::conversations(&[task]) }),
    );
    let env = env(&orch, &mock);
    let (out, stderr) = orch.spawn("gemini", &["--retry", "--model", MODEL], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\n{:#?}",
        mock.requests()
    );
    let s = orch.assert_completed(task, &stderr);
    let fresh = s.metrics.session_id.clone().unwrap();
    assert_ne!(fresh, unknown);
    let log = orch.log(&s);
    assert!(
        log.contains(&format!(
            "session {unknown} is unknown to the agent; starting a new session {fresh}"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("\"--resume\", \"{unknown}\"")),
        "{log}"
    );
    assert!(
        log.contains(&format!("\"--session-id\", \"{fresh}\"")),
        "{log}"
    );
}

/// Under `po-spawn --sandbox` Gemini CLI runs inside po's bubblewrap
/// sandbox (its settings and sessions under `~/.gemini` writable, the rest
/// of the home not): its shell tool still commits on the task's branch, and
/// the status file gets its session and figures.
#[test]
#[ignore = "needs Gemini CLI (npm install -g @google/gemini-cli@0.61.0) and bwrap"]
fn po_spawn_sandboxes_a_gemini_agent_that_commits() {
    require_gemini();
    engines::require(
        "bwrap",
        &["--ro-bind", "/", "/", "--dev", "/dev", "true"],
        engines::BWRAP,
    );
    let task: Task = ("agent-1", "marker-boxed", "boxed.txt", "boxed");
    let orch = Orch::new(&[task]);
    let mock = Mock::start(
        orch.tmp.path(),
        &json!({ "conversations": Orch::conversations(&[task]) }),
    );
    let env = env(&orch, &mock);
    let (out, stderr) = orch.spawn("gemini", &["--sandbox", "--model", MODEL], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\n{:#?}",
        mock.requests()
    );
    let s = orch.assert_completed(task, &stderr);
    let log = orch.log(&s);
    assert!(log.contains("sandbox: "), "{log}");
    assert_eq!(
        sessions(&log),
        [s.metrics.session_id.clone().unwrap()],
        "{log}"
    );
    assert_eq!(s.metrics.turns, Some(2), "{log}");
}
