//! The stream-json parser over real Claude Code output: 2.1.330 recorded
//! against `tests/support/mock_anthropic.py`, and transcripts captured in
//! public repositories (`tests/fixtures/claude/real_*.jsonl`, sources in
//! `tests/fixtures/claude/SOURCES.md`).

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

/// Whether `u`, got from a damaged stream, could have come from the whole
/// one (`whole`): an update it has, or a running count no higher than its last.
fn plausible(u: &StreamUpdate, whole: &[StreamUpdate]) -> bool {
    let max_turns = whole
        .iter()
        .filter_map(|x| match x {
            StreamUpdate::Turns(n) => Some(*n),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    match u {
        StreamUpdate::Turns(n) => *n <= max_turns,
        StreamUpdate::Tokens { input, output } => whole.iter().any(|x| {
            matches!(x, StreamUpdate::Tokens { input: i, output: o } if input <= i && output <= o)
        }),
        StreamUpdate::CacheTokens { write, read } => whole.iter().any(|x| {
            matches!(x, StreamUpdate::CacheTokens { write: w, read: r } if write <= w && read <= r)
        }),
        other => whole.contains(other),
    }
}

#[test]
fn any_split_of_a_stream_is_harmless_and_the_parser_recovers() {
    // Cut every line of each fixture at byte positions into pieces (as a
    // reader with a small buffer might) with garbage after each line. For
    // every cut: a line cut in two is joined again (the parser keeps an
    // unparsed `{…` to join with the next piece); pieces of a line cut in
    // more and the garbage read as nothing and leave the parser as it was.
    // So what comes out is exactly what the lines in at most two pieces
    // give, and the whole stream fed afterwards reads on from there. A cut
    // no shorter than the lines loses nothing; one that cuts every line in
    // three or more loses everything, and leaves the parser as new.
    let cuts = [1usize, 7, 100, 2000, 4096, 8192];
    for name in [
        "bash_commit.jsonl",
        "write_read_edit_bash.jsonl",
        "overloaded_529.jsonl",
        "real_repeated_ids_subagent_2.0.76.jsonl",
    ] {
        let text = fixture(name);
        let whole = updates(name);
        let longest = text.lines().map(str::len).max().unwrap();
        let shortest = text.lines().map(str::len).filter(|n| *n > 0).min().unwrap();
        assert!(2 * cuts[0] < shortest && cuts[cuts.len() - 1] >= longest);
        // Some cut joins a line from two pieces.
        assert!(
            cuts.iter()
                .any(|c| text.lines().any(|l| l.len() > *c && l.len() <= 2 * c)),
            "{name}"
        );
        for cut in cuts {
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
            for u in &got {
                assert!(plausible(u, &whole), "{name} cut {cut}: made up {u:?}");
            }
            let mut uncut = StreamParser::new();
            let expected: Vec<_> = text
                .lines()
                .filter(|l| l.len() <= 2 * cut)
                .flat_map(|l| uncut.feed_line(l))
                .collect();
            assert_eq!(got, expected, "{name} cut {cut}");
            if cut >= longest {
                assert_eq!(got, whole, "{name} cut {cut}");
            }
            if 2 * cut < shortest {
                assert!(got.is_empty(), "{name} cut {cut}: {got:?}");
            }
            let again: Vec<_> = text.lines().flat_map(|l| parser.feed_line(l)).collect();
            let expected: Vec<_> = text.lines().flat_map(|l| uncut.feed_line(l)).collect();
            assert_eq!(again, expected, "{name} cut {cut}: the parser reads on");
            if 2 * cut < shortest {
                assert_eq!(again, whole, "{name} cut {cut}: the parser is as new");
            }
        }
    }
}

fn models(u: &[StreamUpdate]) -> Vec<&str> {
    u.iter()
        .filter_map(|x| match x {
            StreamUpdate::Model(m) => Some(m.as_str()),
            _ => None,
        })
        .collect()
}

/// Claude Code 2.1.29 against an API that answered 500 (a real transcript,
/// see SOURCES.md): made-up assistant messages on the model `<synthetic>`
/// with the text `API Error: 500 {…}`, and a `result` that says `success`
/// with `is_error` but no `api_error_status`.
#[test]
fn a_real_api_500_is_a_retryable_error_and_the_real_model_is_kept() {
    let u = updates("real_api500_synthetic_2.1.29.jsonl");
    assert_eq!(
        models(&u),
        ["claude-opus-4-5-20251101"],
        "never <synthetic>"
    );
    let errors: Vec<_> = u
        .iter()
        .filter_map(|x| match x {
            StreamUpdate::ApiError { message, retryable } => Some((message.as_str(), *retryable)),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 2, "{u:?}");
    assert!(
        errors
            .iter()
            .all(|(m, r)| m.starts_with("API Error: 500") && *r)
    );
    let s = status_after(&u);
    assert_eq!(s.metrics.model.as_deref(), Some("claude-opus-4-5-20251101"));
    assert_eq!(s.retryable, Some(true));
    assert!(
        s.error
            .as_deref()
            .unwrap()
            .starts_with("claude: API Error: 500 {"),
        "{:?}",
        s.error
    );
    assert!(last_finished(&u).0);
}

/// The same failure from Claude Code 2.1.330, recorded against the scripted
/// server: it marks its made-up message (`api_error_status`).
#[test]
fn a_recorded_api_500_is_a_retryable_error() {
    let u = updates("server_error_500.jsonl");
    assert_eq!(models(&u), ["claude-opus-5-5"]);
    let s = status_after(&u);
    assert_eq!(s.retryable, Some(true));
    assert!(
        s.error
            .as_deref()
            .unwrap()
            .starts_with("claude: API Error: 500 api_error."),
        "{:?}",
        s.error
    );
    assert!(last_finished(&u).0);
}

fn last_tokens(u: &[StreamUpdate]) -> Option<(u64, u64)> {
    u.iter().rev().find_map(|x| match x {
        StreamUpdate::Tokens { input, output } => Some((*input, *output)),
        _ => None,
    })
}

/// A real 2.0.76 transcript: the first message id comes twice, its output
/// tokens growing from 4 to 1,237; a Haiku subagent ran beside Opus, which
/// only the `result`'s `modelUsage` counts.
#[test]
fn a_repeated_message_id_counts_its_latest_usage_and_the_result_counts_every_model() {
    let u = updates("real_repeated_ids_subagent_2.0.76.jsonl");
    let before_result: Vec<StreamUpdate> = u
        .iter()
        .take_while(|x| !matches!(x, StreamUpdate::CostUsd(_)))
        .cloned()
        .collect();
    // 1,237 + 23 + 1 output tokens over three turns (the first of each id: 28).
    assert_eq!(last_tokens(&before_result).map(|t| t.1), Some(1261));
    let running = status_after(&before_result);
    assert_eq!(running.metrics.turns, Some(3));
    assert!(po::cost::estimate(&running.metrics).unwrap() > 0.05);

    let s = status_after(&u);
    let m = &s.metrics;
    // Opus 1,587 and Haiku 270 output tokens; Opus 5 + 59,073 + 30,316 and
    // Haiku 2,823 input tokens, cache included.
    assert_eq!(m.output_tokens, Some(1857));
    assert_eq!(m.input_tokens, Some(5 + 59073 + 30316 + 2823));
    assert_eq!(m.cache_read_input_tokens, Some(59073));
    assert_eq!(m.cost_usd, Some(0.2628845));
    assert_eq!(m.model.as_deref(), Some("claude-opus-4-5-20251101"));
    let split: Vec<(&str, u64, Option<f64>)> = m
        .models
        .iter()
        .map(|(k, v)| (k.as_str(), v.output_tokens, v.cost_usd))
        .collect();
    assert_eq!(
        split,
        [
            ("claude-haiku-4-5-20251001", 270, Some(0.004173)),
            ("claude-opus-4-5-20251101", 1587, Some(0.2587115)),
        ]
    );
}

/// A real stream cut off before its `result`: what it said so far is kept
/// (the latest usage of its one message), and there is no final event.
#[test]
fn a_stream_cut_before_its_result_keeps_the_latest_usage() {
    let u = updates("real_cut_before_result_2.0.76.jsonl");
    assert_eq!(last_tokens(&u).map(|t| t.1), Some(167));
    assert!(!u.iter().any(|x| matches!(x, StreamUpdate::Finished { .. })));
    let s = status_after(&u);
    assert_eq!(s.metrics.turns, Some(1));
    assert_eq!(s.metrics.output_tokens, Some(167));
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
