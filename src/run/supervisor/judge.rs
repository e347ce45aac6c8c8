//! The final state of a run, from how the agent ended and what its stream
//! said: the state, the error a person reads, and whether `--retries` may
//! try it again.

use super::state::{Ending, Ran};
use crate::protocol::State;
use crate::run::agent::Agent;

/// What a run is recorded as.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub state: State,
    pub error: Option<String>,
    /// A failure that may pass when tried again unchanged.
    pub retryable: bool,
}

/// The limits and the log a run's error messages name.
pub struct Context<'a> {
    pub timeout_secs: f64,
    pub stall_secs: Option<f64>,
    pub log: &'a str,
}

/// Judge `ran`. A run of an agent that has a stream succeeds only with the
/// stream's final event, not an error, and exit 0; `last_line` (the log's
/// last line) is asked only when nothing better explains a failure.
pub fn judge(
    cx: &Context,
    agent: &dyn Agent,
    ran: &Ran,
    last_line: impl FnOnce() -> Option<String>,
) -> Verdict {
    let log = cx.log;
    let ended = |state: State, error: String| Verdict {
        state,
        error: Some(error),
        retryable: false,
    };
    match ran.ending {
        Some(Ending::Cancelled) => {
            return ended(
                State::Cancelled,
                "cancelled: po-spawn was interrupted; `po-spawn --retry` runs it again".into(),
            );
        }
        Some(Ending::TimedOut) => {
            return ended(
                State::TimedOut,
                format!(
                    "--timeout {} reached; worktree and commits kept; raise --timeout and run \
                     `po-spawn --retry`; log: {log}",
                    cx.timeout_secs
                ),
            );
        }
        Some(Ending::Stalled) => {
            return ended(
                State::TimedOut,
                format!(
                    "stalled: no output and no status update for {}s (--stall-timeout); see \
                     {log}",
                    cx.stall_secs.unwrap_or_default()
                ),
            );
        }
        None => {}
    }
    let stream = &ran.stream;
    let stream_error = stream.finished.as_ref().filter(|f| f.is_error);
    let final_missing = agent.reader().is_some() && stream.finished.is_none();
    if ran.status.success() && stream_error.is_none() && !final_missing {
        return Verdict {
            state: State::Completed,
            error: None,
            retryable: false,
        };
    }
    let meaning = ran
        .status
        .code()
        .filter(|c| *c != 0)
        .and_then(|c| agent.exit_meaning(c));
    let detail = stream
        .api_error
        .as_ref()
        .map(|a| format!("API error: {}", a.message))
        .or_else(|| stream_error.and_then(|f| f.message.clone()))
        .or_else(|| meaning.as_ref().map(|m| m.text.clone()))
        .or_else(|| {
            // A failed exit explains itself best by the agent's last words.
            (final_missing && ran.status.success()).then(|| {
                format!(
                    "its output ended without the final event ({} always ends with one): the \
                     run was cut short",
                    agent.name()
                )
            })
        })
        .or_else(last_line);
    let what = ran.status.describe();
    let error = match detail {
        Some(d) => format!("agent {what}: {d}; log: {log}"),
        None => format!("agent {what}; log: {log}"),
    };
    Verdict {
        state: State::Failed,
        error: Some(error),
        retryable: stream.api_error.as_ref().is_some_and(|a| a.retryable)
            || meaning.is_some_and(|m| m.retryable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::agent::{
        AgentSpec, ExitMeaning, Invocation, Launch, PromptVia, StreamOutcome, StreamRead,
    };
    use crate::run::supervisor::state::ExitStatus;
    use std::cell::Cell;

    /// An agent whose CLI documents exit codes, as some do.
    #[derive(Debug)]
    struct Documented;

    impl Agent for Documented {
        fn name(&self) -> &str {
            "documented"
        }
        fn program(&self) -> &str {
            "documented"
        }
        fn install_hint(&self) -> String {
            String::new()
        }
        fn invocation(&self, _: &Launch) -> Invocation {
            Invocation {
                argv: vec!["documented".into()],
                prompt: PromptVia::Stdin,
            }
        }
        fn reader(&self) -> Option<Box<dyn StreamRead>> {
            None
        }
        fn exit_meaning(&self, code: i32) -> Option<ExitMeaning> {
            match code {
                53 => Some(ExitMeaning {
                    text: "it reached its turn limit".into(),
                    retryable: false,
                }),
                75 => Some(ExitMeaning {
                    text: "its API was busy".into(),
                    retryable: true,
                }),
                _ => None,
            }
        }
    }

    const CX: Context = Context {
        timeout_secs: 30.0,
        stall_secs: Some(5.0),
        log: "/l/agent-1.log",
    };

    fn ran(status: ExitStatus, ending: Option<Ending>, stream: StreamOutcome) -> Ran {
        Ran {
            status,
            ending,
            stream,
        }
    }

    fn finished(is_error: bool, message: Option<&str>) -> StreamOutcome {
        let mut o = StreamOutcome::default();
        o.note(&crate::run::agent::StreamUpdate::Finished {
            is_error,
            message: message.map(String::from),
        });
        o
    }

    fn claude() -> Box<dyn Agent> {
        AgentSpec::named("claude").agent().unwrap()
    }

    #[test]
    fn an_ending_the_supervisor_chose_decides_the_state_whatever_the_exit() {
        let cases = [
            (
                Ending::Cancelled,
                State::Cancelled,
                "cancelled: po-spawn was interrupted",
            ),
            (Ending::TimedOut, State::TimedOut, "--timeout 30 reached"),
            (
                Ending::Stalled,
                State::TimedOut,
                "stalled: no output and no status update for 5s",
            ),
        ];
        for (ending, state, text) in cases {
            let v = judge(
                &CX,
                claude().as_ref(),
                &ran(ExitStatus::Signal(15), Some(ending), finished(false, None)),
                || panic!("no log line needed"),
            );
            assert_eq!(v.state, state);
            assert!(v.error.unwrap().starts_with(text), "{ending:?}");
            assert!(!v.retryable);
        }
    }

    #[test]
    fn success_takes_exit_0_and_for_a_streaming_agent_its_final_event_without_error() {
        let ok = ran(ExitStatus::Code(0), None, finished(false, Some("Done.")));
        assert_eq!(
            judge(&CX, claude().as_ref(), &ok, || None).state,
            State::Completed
        );
        let error = ran(
            ExitStatus::Code(0),
            None,
            finished(true, Some("Reached max turns")),
        );
        let v = judge(&CX, claude().as_ref(), &error, || None);
        assert_eq!(v.state, State::Failed);
        assert_eq!(
            v.error.as_deref(),
            Some("agent exited with status 0: Reached max turns; log: /l/agent-1.log")
        );
        let cut = ran(ExitStatus::Code(0), None, StreamOutcome::default());
        let v = judge(&CX, claude().as_ref(), &cut, || Some("last words".into()));
        assert_eq!(v.state, State::Failed);
        assert!(
            v.error
                .unwrap()
                .contains("without the final event (claude always")
        );
        // An agent po does not read has no final event to wait for.
        // A failing exit without a stream: the agent's last words say why.
        let died = ran(ExitStatus::Code(1), None, StreamOutcome::default());
        let v = judge(&CX, claude().as_ref(), &died, || {
            Some("--agent 'x' not found".into())
        });
        assert_eq!(
            v.error.as_deref(),
            Some("agent exited with status 1: --agent 'x' not found; log: /l/agent-1.log")
        );
        let plain = ran(ExitStatus::Code(0), None, StreamOutcome::default());
        assert_eq!(
            judge(&CX, &Documented, &plain, || None).state,
            State::Completed
        );
    }

    #[test]
    fn a_failure_says_the_best_reason_known_and_whether_a_retry_may_pass() {
        let mut api = finished(true, Some("API Error: 529"));
        api.note(&crate::run::agent::StreamUpdate::ApiError {
            message: "API Error: 529 Overloaded".into(),
            retryable: true,
        });
        let v = judge(
            &CX,
            claude().as_ref(),
            &ran(ExitStatus::Code(1), None, api),
            || None,
        );
        assert!(v.retryable);
        assert!(
            v.error
                .unwrap()
                .starts_with("agent exited with status 1: API error: API Error: 529 Overloaded")
        );

        let asked = Cell::new(false);
        let v = judge(
            &CX,
            &Documented,
            &ran(ExitStatus::Code(53), None, StreamOutcome::default()),
            || {
                asked.set(true);
                None
            },
        );
        assert_eq!(
            v.error.as_deref(),
            Some("agent exited with status 53: it reached its turn limit; log: /l/agent-1.log")
        );
        assert!(!v.retryable && !asked.get(), "the exit code said why");
        let v = judge(
            &CX,
            &Documented,
            &ran(ExitStatus::Code(75), None, StreamOutcome::default()),
            || None,
        );
        assert!(v.retryable);

        let v = judge(
            &CX,
            &Documented,
            &ran(ExitStatus::Signal(9), None, StreamOutcome::default()),
            || Some("Segmentation fault".into()),
        );
        assert_eq!(
            v.error.as_deref(),
            Some("agent was killed by SIGKILL: Segmentation fault; log: /l/agent-1.log")
        );
        let v = judge(
            &CX,
            &Documented,
            &ran(ExitStatus::Code(2), None, StreamOutcome::default()),
            || None,
        );
        assert_eq!(
            v.error.as_deref(),
            Some("agent exited with status 2; log: /l/agent-1.log")
        );
    }
}
