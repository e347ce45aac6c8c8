//! The real Codex CLI, offline, under `po-spawn --agent codex`, against the
//! scripted Responses API on loopback (`tests/support/mock_models.py`,
//! pointed at by a model provider in `~/.codex/config.toml`): its shell tool
//! really commits in the task's worktree, and the status file gets what the
//! stream said, priced by po.
//!
//! Ignored unless asked for (`cargo test -- --include-ignored`, as `.ci/run`
//! does after installing the pinned version); asked for without `codex` on
//! `PATH`, they fail.

use std::fs;

use crate::agents_support::{Mock, Orch, Task, assert_close, conversation_cost, event_ids, git};
use crate::engines;
use po::protocol::State;
use serde_json::json;

const MODEL: &str = "gpt-5.1-codex";

fn require_codex() {
    engines::require("codex", &["--version"], engines::CODEX);
}

/// The agents' environment: a home with a config that sends Codex to the
/// mock (`retries` of its own per request), and the key it reads.
fn env(orch: &Orch, mock: &Mock, retries: u32) -> Vec<(String, String)> {
    let home = orch.home();
    fs::create_dir_all(home.join(".codex")).unwrap();
    fs::write(
        home.join(".codex/config.toml"),
        format!(
            "model = \"{MODEL}\"\nmodel_provider = \"mock\"\n\n[model_providers.mock]\n\
             name = \"mock\"\nbase_url = \"http://127.0.0.1:{}/v1\"\nwire_api = \"responses\"\n\
             env_key = \"MOCK_API_KEY\"\nrequest_max_retries = {retries}\n\
             stream_max_retries = {retries}\n",
            mock.port
        ),
    )
    .unwrap();
    vec![
        ("HOME".into(), home.display().to_string()),
        ("MOCK_API_KEY".into(), "sk-test-offline".into()),
    ]
}

/// The thread ids the log's `thread.started` events name, in order.
fn threads(log: &str) -> Vec<String> {
    event_ids(log, "thread.started", "thread_id")
}

/// What one agent of [`Orch::conversations`] costs at this model's price.
fn agent_cost() -> f64 {
    conversation_cost(MODEL)
}

/// `po-spawn --agent codex` runs two tasks in parallel worktrees; each agent
/// commits on its own branch through its shell tool (its sandbox lets it
/// write the repository's git directory), and each status file has the
/// thread, turns, tokens and the cost po priced; the summary splits the cost
/// by model.
#[test]
#[ignore = "needs the Codex CLI (npm install -g @openai/codex@0.171.0)"]
fn po_spawn_runs_two_codex_agents_that_commit() {
    require_codex();
    let tasks: [Task; 2] = [
        ("agent-1", "marker-alpha", "one.txt", "one"),
        ("agent-2", "marker-beta", "two.txt", "two"),
    ];
    let orch = Orch::new(&tasks);
    let mock = Mock::start(
        orch.tmp.path(),
        &json!({ "conversations": Orch::conversations(&tasks) }),
    );
    let env = env(&orch, &mock, 0);
    let (out, stderr) = orch.spawn("codex", &["--max-workers", "2"], &env);
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
        assert_eq!(
            threads(&log),
            [s.metrics.session_id.clone().unwrap()],
            "{log}"
        );
        assert_eq!(s.metrics.turns, Some(2), "one command, one answer");
        assert_eq!(
            (s.metrics.input_tokens, s.metrics.output_tokens),
            (Some(7000), Some(170))
        );
        assert_eq!(s.metrics.cache_read_input_tokens, Some(4000));
        assert_eq!(s.metrics.model.as_deref(), Some(MODEL), "from the config");
        assert_close(s.metrics.cost_usd.unwrap(), cost, "cost");
        assert_eq!(mock.whys(task.1).len(), 2);
    }
    let summary = orch.summary();
    // The summary rounds to four decimals.
    let by_model = summary["cost_by_model"][MODEL].as_f64().unwrap();
    assert!((by_model - 2.0 * cost).abs() < 1e-4, "{summary:#}");
}

/// A server error Codex gives up on (its own retries off) fails the attempt
/// as retryable; `--retries 1` resumes the same thread, and the task
/// completes with its commit.
#[test]
#[ignore = "needs the Codex CLI (npm install -g @openai/codex@0.171.0)"]
fn po_spawn_retries_a_codex_agent_after_a_server_error() {
    require_codex();
    let task: Task = ("agent-1", "marker-gamma", "three.txt", "three");
    let orch = Orch::new(&[task]);
    let mut conversations = Orch::conversations(&[task]);
    conversations[0]["turns"][0]["fail_times"] = json!(1);
    conversations[0]["turns"][0]["fail_status"] = json!(500);
    let mock = Mock::start(orch.tmp.path(), &json!({ "conversations": conversations }));
    let env = env(&orch, &mock, 0);
    let (out, stderr) = orch.spawn("codex", &["--retries", "1", "--retry-backoff", "0"], &env);
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
    assert_eq!(s.attempt, 2, "{s:#?}");
    let log = orch.log(&s);
    let thread = s.metrics.session_id.clone().unwrap();
    assert_eq!(threads(&log), [thread.clone(), thread.clone()], "{log}");
    assert!(
        log.contains(&format!("\"resume\", \"{thread}\"")),
        "the retry resumed the thread: {log}"
    );
}

/// Codex's own retry of a failed request: one attempt, no failure recorded.
#[test]
#[ignore = "needs the Codex CLI (npm install -g @openai/codex@0.171.0)"]
fn a_codex_agent_retries_a_rate_limit_itself() {
    require_codex();
    let task: Task = ("agent-1", "marker-eta", "eta.txt", "eta");
    let orch = Orch::new(&[task]);
    let mut conversations = Orch::conversations(&[task]);
    conversations[0]["turns"][1]["fail_times"] = json!(1);
    conversations[0]["turns"][1]["fail_status"] = json!(429);
    let mock = Mock::start(orch.tmp.path(), &json!({ "conversations": conversations }));
    let env = env(&orch, &mock, 2);
    let (out, stderr) = orch.spawn("codex", &[], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\n{:#?}",
        mock.requests()
    );
    let s = orch.assert_completed(task, &stderr);
    assert_eq!(s.attempt, 1);
    assert_eq!(mock.whys(task.1).len(), 3, "{:#?}", mock.requests());
}

/// A bad request after the commit fails the task, not retryable; `po-spawn
/// --retry` later resumes the recorded thread (`codex exec resume <id>`),
/// which goes on from its commit.
#[test]
#[ignore = "needs the Codex CLI (npm install -g @openai/codex@0.171.0)"]
fn po_spawn_retry_resumes_the_codex_thread() {
    require_codex();
    let task: Task = ("agent-1", "marker-delta", "four.txt", "four");
    let orch = Orch::new(&[task]);
    let mut conversations = Orch::conversations(&[task]);
    conversations[0]["turns"][1]["fail_times"] = json!(1);
    conversations[0]["turns"][1]["fail_status"] = json!(400);
    let mock = Mock::start(orch.tmp.path(), &json!({ "conversations": conversations }));
    let env = env(&orch, &mock, 0);
    let (out, stderr) = orch.spawn("codex", &[], &env);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    let failed = orch.status(task.0);
    assert_eq!(failed.status, State::Failed, "{failed:#?}");
    assert_ne!(failed.retryable, Some(true), "{failed:#?}");
    assert!(
        failed.error.as_deref().unwrap().contains("invalid_request"),
        "{failed:#?}"
    );
    let thread = failed.metrics.session_id.clone().expect("thread recorded");

    let (out, stderr) = orch.spawn("codex", &["--retry"], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\n{:#?}",
        mock.requests()
    );
    let s = orch.assert_completed(task, &stderr);
    assert_eq!(s.attempt, 2);
    assert_eq!(s.metrics.session_id.as_deref(), Some(thread.as_str()));
    let log = orch.log(&s);
    assert!(log.contains(&format!("\"resume\", \"{thread}\"")), "{log}");
    // The one commit, made by the first attempt, is what the branch has.
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
/// of Codex's tokens), two agents run and the third is cancelled without a
/// model call.
#[test]
#[ignore = "needs the Codex CLI (npm install -g @openai/codex@0.171.0)"]
fn po_spawn_budget_stops_codex_agents() {
    require_codex();
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
    let env = env(&orch, &mock, 0);
    let budget = format!("{}", 1.5 * agent_cost());
    let (out, stderr) = orch.spawn(
        "codex",
        &["--max-workers", "1", "--budget-usd", &budget],
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
    assert!(
        mock.whys("marker-b3").is_empty(),
        "agent-3 never called the model"
    );
}

/// `--retry` of a task whose recorded thread Codex does not have (another
/// machine, a cleared home): the CLI prints no event, and the same attempt
/// starts a new thread, says so in the log, and records the new id.
#[test]
#[ignore = "needs the Codex CLI (npm install -g @openai/codex@0.171.0)"]
fn po_spawn_retry_of_an_unknown_codex_thread_starts_a_new_one() {
    require_codex();
    let task: Task = ("agent-1", "marker-epsilon", "five.txt", "five");
    let orch = Orch::new(&[task]);
    let unknown = "01a23ad9-0000-7000-8000-000000000000";
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
    let env = env(&orch, &mock, 0);
    let (out, stderr) = orch.spawn("codex", &["--retry"], &env);
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
            "session {unknown} is unknown to the agent; starting a new session"
        )),
        "{log}"
    );
    assert_eq!(threads(&log), [fresh], "{log}");
}

/// Under `po-spawn --sandbox` Codex runs inside po's bubblewrap sandbox,
/// its own sandbox nested in it: its shell tool still commits on the task's
/// branch, and the status file gets its thread and figures.
#[test]
#[ignore = "needs the Codex CLI (npm install -g @openai/codex@0.171.0) and bwrap"]
fn po_spawn_sandboxes_a_codex_agent_that_commits() {
    require_codex();
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
    let env = env(&orch, &mock, 0);
    let (out, stderr) = orch.spawn("codex", &["--sandbox"], &env);
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
        threads(&log),
        [s.metrics.session_id.clone().unwrap()],
        "{log}"
    );
    assert_eq!(s.metrics.turns, Some(2), "{log}");
}
