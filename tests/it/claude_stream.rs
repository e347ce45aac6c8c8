//! The stream-json parser over real Claude Code 2.1.330 output
//! (`tests/fixtures/claude/*.jsonl`, recorded against `tests/support/mock_anthropic.py`).

use po::protocol::{AgentStatus, State};
use po::run::agent::claude::StreamParser;
use po::run::agent::{StreamUpdate, apply};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/claude/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn updates(name: &str) -> Vec<StreamUpdate> {
    let mut parser = StreamParser::new();
    fixture(name)
        .lines()
        .flat_map(|l| parser.feed_line(l))
        .collect()
}

fn status_after(updates: &[StreamUpdate]) -> AgentStatus {
    let mut s = AgentStatus::new("agent-1", "42");
    for u in updates {
        apply(&mut s, u, "claude");
    }
    s
}

fn phases(updates: &[StreamUpdate]) -> Vec<&str> {
    updates
        .iter()
        .filter_map(|u| match u {
            StreamUpdate::Phase(p) => Some(p.as_str()),
            _ => None,
        })
        .collect()
}

fn last_finished(updates: &[StreamUpdate]) -> (bool, Option<String>) {
    match updates.last() {
        Some(StreamUpdate::Finished { is_error, message }) => (*is_error, message.clone()),
        other => panic!("the stream should end with Finished, got {other:?}"),
    }
}

#[test]
fn bash_commit_session_gives_session_phase_turns_cost_and_tokens() {
    let u = updates("bash_commit.jsonl");
    assert_eq!(
        u[0],
        StreamUpdate::SessionId("11111111-2222-4333-8444-555555555555".into())
    );
    assert_eq!(
        u.iter()
            .filter(|x| matches!(x, StreamUpdate::SessionId(_)))
            .count(),
        1,
        "the session id is reported once: {u:?}"
    );
    assert_eq!(
        phases(&u),
        ["Bash: echo hello > hello.txt && git add hello.txt && git -c…"]
    );
    let s = status_after(&u);
    assert_eq!(
        s.metrics.session_id.as_deref(),
        Some("11111111-2222-4333-8444-555555555555")
    );
    assert_eq!(s.metrics.turns, Some(2));
    assert_eq!(s.metrics.cost_usd, Some(0.0168));
    // 2 requests × (1200 input + 300 cache writes + 2000 cache reads), 2 × 85 output.
    assert_eq!(s.metrics.input_tokens, Some(7000));
    assert_eq!(s.metrics.output_tokens, Some(170));
    assert_eq!(s.error, None);
    assert_eq!(s.retryable, None);
    assert_eq!(s.message.as_deref(), Some("Committed hello.txt."));
    assert_eq!(s.status, State::Pending, "the runner decides the state");
    assert_eq!(
        last_finished(&u),
        (false, Some("Committed hello.txt.".into()))
    );
}

#[test]
fn turns_count_up_while_the_agent_works() {
    let u = updates("write_read_edit_bash.jsonl");
    let turns: Vec<u64> = u
        .iter()
        .filter_map(|x| match x {
            StreamUpdate::Turns(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(turns, [1, 2, 3, 4, 5, 5], "live count, then the result's");
    assert_eq!(
        phases(&u),
        [
            "Writing src/lib.rs",
            "Reading src/lib.rs",
            "Editing src/lib.rs",
            "Bash: git add -A && git -c user.name=a -c user.email=a@a co…",
        ]
    );
    let s = status_after(&u);
    assert_eq!(s.metrics.cost_usd, Some(0.033));
    assert_eq!(s.metrics.input_tokens, Some(5 * 3500));
    assert_eq!(s.metrics.output_tokens, Some(5 * 85));
}

#[test]
fn resumed_session_keeps_its_id_and_total_cost() {
    let u = updates("resume.jsonl");
    let s = status_after(&u);
    assert_eq!(
        s.metrics.session_id.as_deref(),
        Some("55555555-2222-4333-8444-555555555555")
    );
    // The cost of a resumed session includes the first run's 0.033.
    assert_eq!(s.metrics.cost_usd, Some(0.0396));
    assert_eq!(s.metrics.turns, Some(1));
    assert!(!last_finished(&u).0);
}

#[test]
fn overloaded_is_a_retryable_api_error() {
    let u = updates("overloaded_529.jsonl");
    assert_eq!(phases(&u), ["API overloaded (529), retrying 1/1"]);
    let errors: Vec<_> = u
        .iter()
        .filter(|x| matches!(x, StreamUpdate::ApiError { .. }))
        .collect();
    assert_eq!(errors.len(), 1, "{u:?}");
    let StreamUpdate::ApiError { message, retryable } = errors[0] else {
        unreachable!()
    };
    assert!(
        message.starts_with("API Error: 529 Overloaded."),
        "{message}"
    );
    assert!(retryable);
    let s = status_after(&u);
    assert_eq!(s.retryable, Some(true));
    assert!(
        s.error
            .as_deref()
            .unwrap()
            .starts_with("claude: API Error: 529")
    );
    assert!(last_finished(&u).0);
    assert_eq!(s.metrics.cost_usd, Some(0.0));
}

#[test]
fn rate_limit_is_a_retryable_api_error() {
    let u = updates("rate_limit_429.jsonl");
    let s = status_after(&u);
    assert_eq!(s.retryable, Some(true));
    assert_eq!(
        s.error.as_deref(),
        Some(
            "claude: API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit"
        )
    );
    assert!(last_finished(&u).0);
}

#[test]
fn bad_request_is_an_api_error_that_retrying_will_not_fix() {
    let u = updates("bad_request_400.jsonl");
    let s = status_after(&u);
    assert_eq!(s.retryable, Some(false));
    assert!(
        s.error
            .as_deref()
            .unwrap()
            .starts_with("claude: Prompt is too long"),
        "{:?}",
        s.error
    );
    assert!(s.error.as_deref().unwrap().chars().count() <= 310);
    assert!(last_finished(&u).0);
}

#[test]
fn budget_exhausted_is_a_failure_with_the_cli_reason() {
    let u = updates("budget_exhausted.jsonl");
    assert!(!u.iter().any(|x| matches!(x, StreamUpdate::ApiError { .. })));
    assert_eq!(
        last_finished(&u),
        (true, Some("Reached maximum budget ($0.01)".into()))
    );
    let s = status_after(&u);
    assert_eq!(
        s.error.as_deref(),
        Some("claude: Reached maximum budget ($0.01)")
    );
    assert_eq!(s.retryable, Some(false));
    assert_eq!(s.metrics.turns, Some(2));
    assert_eq!(s.metrics.cost_usd, Some(0.0168));
}

#[test]
fn any_prefix_and_any_split_of_a_stream_is_harmless() {
    // Cut every fixture at arbitrary byte positions into lines (as a reader with a
    // small buffer might) and interleave garbage: no panic, and the whole lines
    // that survive still give the session id.
    for name in [
        "bash_commit.jsonl",
        "write_read_edit_bash.jsonl",
        "overloaded_529.jsonl",
    ] {
        let text = fixture(name);
        for cut in [1usize, 7, 100, 4096] {
            let mut parser = StreamParser::new();
            let mut got = Vec::new();
            for line in text.lines() {
                let mut start = 0;
                let bytes = line.as_bytes();
                while start < bytes.len() {
                    let mut end = (start + cut).min(bytes.len());
                    while !line.is_char_boundary(end) {
                        end += 1;
                    }
                    got.extend(parser.feed_line(&line[start..end]));
                    start = end;
                }
                got.extend(parser.feed_line("\u{1b}[31mnoise\u{1b}[0m"));
            }
            if cut == 4096 {
                assert!(
                    got.iter().any(|u| matches!(u, StreamUpdate::SessionId(_))),
                    "{name} cut {cut}"
                );
            }
        }
    }
}

#[test]
fn resuming_an_unknown_session_fails_with_a_recognisable_message() {
    let u = updates("resume_unknown_session.jsonl");
    let (is_error, message) = last_finished(&u);
    assert!(is_error);
    let message = message.unwrap();
    assert_eq!(
        message,
        "No conversation found with session ID: 99999999-2222-4333-8444-555555555555"
    );
    assert!(po::run::agent::claude::is_unknown_session(&message));
    assert!(!po::run::agent::claude::is_unknown_session(
        "Reached maximum budget ($0.01)"
    ));
    let s = status_after(&u);
    assert_eq!(s.retryable, Some(false));
    assert_eq!(s.metrics.turns, Some(0));
}

/// The stream names the model and splits the cache tokens out: priced at the
/// model's list price, the tokens give Claude Code's own figure, which is how
/// a running agent's spend is estimated before its `result` arrives.
#[test]
fn tokens_at_the_models_price_give_the_clis_own_cost() {
    let s = status_after(&updates("bash_commit.jsonl"));
    let m = &s.metrics;
    assert_eq!(m.model.as_deref(), Some("claude-opus-5-5"));
    assert_eq!(
        (m.cache_creation_input_tokens, m.cache_read_input_tokens),
        (Some(600), Some(4000))
    );
    let estimate = po::cost::estimate(m).unwrap();
    assert!((estimate - m.cost_usd.unwrap()).abs() < 1e-9, "{m:?}");

    // Before the result: the assistant messages' tokens so far.
    let u = updates("bash_commit.jsonl");
    let before_result: Vec<StreamUpdate> = u
        .iter()
        .take_while(|x| !matches!(x, StreamUpdate::CostUsd(_)))
        .cloned()
        .collect();
    let running = status_after(&before_result);
    assert_eq!(running.metrics.cost_usd, None);
    assert!(po::cost::estimate(&running.metrics).unwrap() > 0.0);
}

/// A retry resumes the session, and Claude Code's total then counts the first
/// run too (its 0.033 of the 0.0396): the attempt cost what it added, one
/// model call.
#[test]
fn a_resumed_attempt_costs_what_it_added_to_the_session() {
    let mut s = AgentStatus::new("agent-1", "42");
    s.metrics.session_cost_usd = Some(0.033);
    for u in updates("resume.jsonl") {
        apply(&mut s, &u, "claude");
    }
    assert_eq!(s.metrics.cost_usd, Some(0.0066));
    assert_eq!(s.metrics.session_cost_usd, Some(0.0396));
}
