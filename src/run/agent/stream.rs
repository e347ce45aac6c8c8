//! What any agent's stream says, and how it reaches the status file.
//!
//! A reader ([`super::StreamRead`]) turns an agent's output lines into
//! [`StreamUpdate`]s; [`read_stream`] feeds it the agent's stdout, applies the
//! updates to the status file ([`apply`]) and keeps what decides the run's
//! final state ([`StreamOutcome`]). Nothing here knows which agent it reads.

use std::path::Path;

use super::StreamRead;
use crate::protocol::AgentStatus;
use crate::protocol::schema::ModelMetrics;

/// One thing learned from the stream.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamUpdate {
    SessionId(String),
    /// What the agent is doing, from the tool in use ("Bash: cargo test").
    Phase(String),
    /// Model turns so far; the final event gives the CLI's own count.
    Turns(u64),
    /// The model the agent runs (the main one, when subagents use others).
    Model(String),
    /// The session's total cost, from the final event. For a resumed
    /// session it counts the earlier runs too.
    CostUsd(f64),
    /// What this run alone cost, po's price of its tokens, for agents whose
    /// figures are the run's and not the session's (Gemini CLI).
    RunCostUsd(f64),
    /// The share of the agent's own plan done, in percent (its todo list).
    Progress(u8),
    /// Input tokens (cache reads and writes included) and output tokens, of
    /// every model together: a running estimate, then the final totals.
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
    /// What each model used (a main model and its subagents' models), as the
    /// final event splits it.
    ModelUsage(Vec<ModelUsage>),
    /// An API error the CLI gave up on; rate limits, overloads and server
    /// errors are retryable, bad requests are not.
    ApiError {
        message: String,
        retryable: bool,
    },
    /// The final event.
    Finished {
        is_error: bool,
        message: Option<String>,
    },
}

/// One model's share of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelUsage {
    pub model: String,
    /// Input tokens, cache reads and writes included.
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    /// What the agent says this model cost, when it says.
    pub cost_usd: Option<f64>,
}

/// An API error the stream reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiFailure {
    pub message: String,
    /// Trying again unchanged may pass (a rate limit, an overload, a 5xx).
    pub retryable: bool,
}

/// The stream's final event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FinalEvent {
    pub is_error: bool,
    pub message: Option<String>,
}

/// What the stream said that decides the run's final state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamOutcome {
    /// The last API error.
    pub api_error: Option<ApiFailure>,
    /// The final event; `None` when the stream ended without it.
    pub finished: Option<FinalEvent>,
}

impl StreamOutcome {
    /// Keep what `u` says about the run's end.
    pub fn note(&mut self, u: &StreamUpdate) {
        match u {
            StreamUpdate::ApiError { message, retryable } => {
                self.api_error = Some(ApiFailure {
                    message: message.clone(),
                    retryable: *retryable,
                });
            }
            StreamUpdate::Finished { is_error, message } => {
                self.finished = Some(FinalEvent {
                    is_error: *is_error,
                    message: message.clone(),
                });
            }
            _ => {}
        }
    }

    /// The final event's error message, when it reports an error.
    pub fn error_message(&self) -> Option<&str> {
        self.finished
            .as_ref()
            .filter(|f| f.is_error)
            .and_then(|f| f.message.as_deref())
    }
}

/// Read the agent's stdout line by line until it closes: append each line to
/// `log`, feed `reader`, and apply what it learns to the status file (at most
/// every 250 ms, never later than 250 ms after it learned it, and once at the
/// end: a turn's tokens reach the file while its tool runs, for a budget to
/// count). Errors are written as `agent: message` (`claude: …`). `on_line` is
/// called for every line (activity, for stall detection).
pub fn read_stream(
    out: impl std::io::Read + Send + 'static,
    mut log: Option<std::fs::File>,
    status_file: &Path,
    mut reader: Box<dyn StreamRead>,
    agent: &str,
    mut on_line: impl FnMut(),
) -> StreamOutcome {
    use std::io::Write;
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::{Duration, Instant};

    const EVERY: Duration = Duration::from_millis(250);
    let rx = lines(out);
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
                apply(s, u, agent);
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
                for u in reader.feed_line(line.trim_end_matches(['\n', '\r'])) {
                    outcome.note(&u);
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
    for u in reader.end() {
        outcome.note(&u);
        pending.push(u);
    }
    flush(&mut pending);
    outcome
}

/// The lines of `out`, from a thread of their own, as they come.
fn lines(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<Vec<u8>> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
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
    rx
}

/// Start a new session in place of one the agent does not have: the attempt
/// goes on, without the failure the unknown session left. `fresh` is the new
/// session's id when po names it, else none until the stream says it.
pub fn restart_session(status_file: &Path, fresh: Option<&str>) -> crate::Result<()> {
    crate::protocol::store::update_status(status_file, |s| {
        s.error = None;
        s.retryable = None;
        s.exit_code = None;
        s.metrics.session_id = fresh.map(str::to_string);
        s.metrics.session_cost_usd = None;
        s.metrics.cost_usd = None;
        Ok(())
    })
    .map(|_| ())
}

/// Apply an update to a status file's contents; errors read `agent: message`.
///
/// Only what the stream knows is written: the run's state (`status`) is the
/// supervisor's to decide, from the final event and the exit code.
pub fn apply(status: &mut AgentStatus, update: &StreamUpdate, agent: &str) {
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
        StreamUpdate::RunCostUsd(cost) => metrics.cost_usd = Some(*cost),
        StreamUpdate::Progress(p) => status.progress_percentage = Some((*p).min(100)),
        StreamUpdate::Tokens { input, output } => {
            metrics.input_tokens = Some(*input);
            metrics.output_tokens = Some(*output);
        }
        StreamUpdate::CacheTokens { write, read } => {
            metrics.cache_creation_input_tokens = Some(*write);
            metrics.cache_read_input_tokens = Some(*read);
        }
        StreamUpdate::ModelUsage(models) => {
            metrics.models = models
                .iter()
                .map(|m| {
                    (
                        m.model.clone(),
                        ModelMetrics {
                            input_tokens: m.input_tokens,
                            output_tokens: m.output_tokens,
                            cache_creation_input_tokens: m.cache_creation_input_tokens,
                            cache_read_input_tokens: m.cache_read_input_tokens,
                            cost_usd: m.cost_usd,
                        },
                    )
                })
                .collect();
        }
        StreamUpdate::ApiError { message, retryable } => {
            status.error = Some(format!("{agent}: {message}"));
            status.retryable = Some(*retryable);
        }
        StreamUpdate::Finished { is_error, message } => {
            if *is_error {
                if status.error.is_none() {
                    let message = message.as_deref().unwrap_or("the agent reported an error");
                    status.error = Some(format!("{agent}: {message}"));
                }
                status.retryable.get_or_insert(false);
            } else if let Some(message) = message {
                status.message = Some(message.clone());
            }
        }
    }
}

/// Whether an error's text says that trying again unchanged may pass: an
/// HTTP status of 408, 429 or 5xx in it, or words for a rate limit, an
/// overload, a server error or a broken connection.
pub fn retryable_text(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let status = lower
        .split(|c: char| !c.is_ascii_digit())
        .filter(|d| d.len() == 3)
        .filter_map(|d| d.parse::<u16>().ok())
        .any(|code| matches!(code, 408 | 429 | 500..=599));
    let words = [
        "rate limit",
        "rate_limit",
        "too many requests",
        "overloaded",
        "high demand",
        "temporar",
        "server_error",
        "internal server error",
        "unavailable",
        "resource_exhausted",
        "timed out",
        "timeout",
        "disconnected",
        "connection reset",
        "connection refused",
    ];
    let permanent = [
        "quota",
        "invalid_request",
        "invalid_argument",
        "unauthenticated",
    ];
    (status || words.iter().any(|w| lower.contains(w)))
        && !permanent
            .iter()
            .any(|w| lower.contains(w) && !lower.contains("429"))
}

/// The first line, whitespace collapsed, cut to `max` characters with an
/// ellipsis (and one when more lines follow): for phases and messages.
pub fn one_line(text: &str, max: usize) -> String {
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

    #[test]
    fn a_resumed_sessions_total_counts_only_what_this_attempt_added() {
        let mut s = AgentStatus::new("agent-1", "7");
        apply(&mut s, &StreamUpdate::CostUsd(0.0132), "claude");
        assert_eq!(
            (s.metrics.cost_usd, s.metrics.session_cost_usd),
            (Some(0.0132), Some(0.0132))
        );
        // A retry resumes the session: the agent's figure is the session's.
        s.metrics.cost_usd = None;
        apply(&mut s, &StreamUpdate::CostUsd(0.0198), "claude");
        assert_eq!(s.metrics.cost_usd, Some(0.0066));
        assert_eq!(s.metrics.session_cost_usd, Some(0.0198));
    }

    #[test]
    fn apply_writes_metrics_phase_and_errors_under_the_agents_name() {
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
            StreamUpdate::ModelUsage(vec![ModelUsage {
                model: "m".into(),
                input_tokens: 10,
                output_tokens: 2,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: 0,
                cost_usd: Some(0.25),
            }]),
            StreamUpdate::ApiError {
                message: "API Error: 529 Overloaded".into(),
                retryable: true,
            },
            StreamUpdate::Finished {
                is_error: true,
                message: Some("something else".into()),
            },
        ] {
            apply(&mut s, &u, "someagent");
        }
        assert_eq!(s.metrics.session_id.as_deref(), Some("sid"));
        assert_eq!(s.phase.as_deref(), Some("Bash: make"));
        assert_eq!(s.metrics.turns, Some(3));
        assert_eq!(s.metrics.cost_usd, Some(0.25));
        assert_eq!(s.metrics.models["m"].cost_usd, Some(0.25));
        assert_eq!(
            (s.metrics.input_tokens, s.metrics.output_tokens),
            (Some(10), Some(2))
        );
        assert_eq!(
            s.error.as_deref(),
            Some("someagent: API Error: 529 Overloaded")
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
            "claude",
        );
        assert_eq!(
            s.error.as_deref(),
            Some("claude: Reached maximum budget ($0.01)")
        );
        assert_eq!(s.retryable, Some(false));
    }

    #[test]
    fn error_texts_say_whether_a_retry_may_pass() {
        for t in [
            "exceeded retry limit, last status: 429 Too Many Requests",
            "We’re currently experiencing high demand, which may cause temporary errors.",
            "stream disconnected before completion: error sending request",
            r#"[API Error: {"error":{"code":500,"message":"x","status":"INTERNAL"}}]"#,
            r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}"#,
        ] {
            assert!(retryable_text(t), "{t}");
        }
        for t in [
            r#"{"error": {"message": "bad", "type": "invalid_request_error"}}"#,
            r#"[API Error: {"error":{"code":400,"status":"INVALID_ARGUMENT"}}]"#,
            "You exceeded your current quota, please check your plan",
            "unexpected status 401 Unauthorized",
        ] {
            assert!(!retryable_text(t), "{t}");
        }
    }

    #[test]
    fn a_run_cost_and_progress_are_written_as_they_are() {
        let mut s = AgentStatus::new("agent-1", "7");
        s.metrics.session_cost_usd = Some(1.0);
        apply(&mut s, &StreamUpdate::RunCostUsd(0.25), "gemini");
        apply(&mut s, &StreamUpdate::Progress(40), "gemini");
        assert_eq!(s.metrics.cost_usd, Some(0.25));
        assert_eq!(s.progress_percentage, Some(40));
    }

    #[test]
    fn the_outcome_names_its_fields() {
        let mut o = StreamOutcome::default();
        o.note(&StreamUpdate::ApiError {
            message: "API Error: 500".into(),
            retryable: true,
        });
        o.note(&StreamUpdate::Finished {
            is_error: true,
            message: Some("API Error: 500".into()),
        });
        assert!(o.api_error.as_ref().unwrap().retryable);
        assert_eq!(o.error_message(), Some("API Error: 500"));
    }
}
