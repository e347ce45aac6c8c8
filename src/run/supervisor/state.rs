//! One attempt's state, as the supervisor sees it: preparing, running (with
//! its process group and start), ending (and why), exited (and how).

use std::time::Instant;

use crate::run::agent::StreamOutcome;

/// Why the supervisor ends a run, when the agent does not end it itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// A signal reached the supervisor (po-spawn's Ctrl-C, a budget, Slurm).
    Cancelled,
    /// `--timeout` passed.
    TimedOut,
    /// No output and no status update for `--stall-timeout`.
    Stalled,
}

/// How the agent ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
    /// It never started (cancelled while its task was being prepared).
    NeverStarted,
    /// Its exit status never reached the supervisor (the reaper lost it).
    Unknown,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        *self == ExitStatus::Code(0)
    }

    /// The status file's `exit_code`: the code, or 128 + the signal as a
    /// shell reports it; none when there is no such number.
    pub fn code(&self) -> Option<i32> {
        match self {
            ExitStatus::Code(c) => Some(*c),
            ExitStatus::Signal(s) => Some(128 + s),
            ExitStatus::NeverStarted | ExitStatus::Unknown => None,
        }
    }

    /// "exited with status 3", "was killed by SIGKILL", read after "agent".
    pub fn describe(&self) -> String {
        match self {
            ExitStatus::Code(c) => format!("exited with status {c}"),
            ExitStatus::Signal(s) => format!("was killed by {}", signal_name(*s)),
            ExitStatus::NeverStarted => "never started".into(),
            ExitStatus::Unknown => "ended (its exit status was lost)".into(),
        }
    }
}

/// `SIGKILL`, or `signal 64` for a number with no name.
pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// Where one attempt is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The worktree, the prompt, the setup command.
    Preparing,
    /// The agent runs in its process group `pgid`, since `started`.
    Running { pgid: i32, started: Instant },
    /// The supervisor is ending the agent's tree.
    Ending {
        pgid: i32,
        started: Instant,
        why: Ending,
    },
    /// The agent is gone: how, and what ended it when the supervisor did.
    Exited {
        status: ExitStatus,
        ending: Option<Ending>,
    },
}

impl Attempt {
    /// What ends the run, once the supervisor decided to end it.
    pub fn ending(&self) -> Option<Ending> {
        match self {
            Attempt::Ending { why, .. } => Some(*why),
            Attempt::Exited { ending, .. } => *ending,
            Attempt::Preparing | Attempt::Running { .. } => None,
        }
    }

    /// The supervisor ends the run for `why` (the first reason stays).
    pub fn end(&mut self, why: Ending) {
        *self = match *self {
            Attempt::Running { pgid, started } => Attempt::Ending { pgid, started, why },
            Attempt::Preparing => Attempt::Exited {
                status: ExitStatus::NeverStarted,
                ending: Some(why),
            },
            other => other,
        };
    }

    /// The agent ended with `status`.
    pub fn exited(&mut self, status: ExitStatus) {
        let ending = self.ending();
        *self = Attempt::Exited { status, ending };
    }

    /// The exit, once there is one.
    pub fn exit(&self) -> Option<(ExitStatus, Option<Ending>)> {
        match self {
            Attempt::Exited { status, ending } => Some((*status, *ending)),
            _ => None,
        }
    }
}

/// What one run of the agent came to.
#[derive(Clone, Debug, PartialEq)]
pub struct Ran {
    pub status: ExitStatus,
    pub ending: Option<Ending>,
    pub stream: StreamOutcome,
}

/// A step that failed in a way that is the task's failure (recorded as its
/// error in `phase`), not the supervisor's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed {
    pub phase: &'static str,
    pub error: String,
}

impl Failed {
    pub fn new(phase: &'static str, error: impl Into<String>) -> Failed {
        Failed {
            phase,
            error: error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_moves_from_running_through_ending_to_exited() {
        let started = Instant::now();
        let mut a = Attempt::Running { pgid: 42, started };
        assert_eq!(a.ending(), None);
        a.end(Ending::TimedOut);
        assert_eq!(
            a,
            Attempt::Ending {
                pgid: 42,
                started,
                why: Ending::TimedOut
            }
        );
        a.end(Ending::Cancelled);
        assert_eq!(a.ending(), Some(Ending::TimedOut), "the first reason stays");
        a.exited(ExitStatus::Signal(15));
        assert_eq!(
            a.exit(),
            Some((ExitStatus::Signal(15), Some(Ending::TimedOut)))
        );
        let mut p = Attempt::Preparing;
        p.end(Ending::Cancelled);
        assert_eq!(
            p.exit(),
            Some((ExitStatus::NeverStarted, Some(Ending::Cancelled)))
        );
    }

    #[test]
    fn exit_statuses_read_and_record_without_sentinels() {
        assert_eq!(ExitStatus::Code(3).describe(), "exited with status 3");
        assert_eq!(ExitStatus::Signal(9).describe(), "was killed by SIGKILL");
        assert_eq!(ExitStatus::Signal(9).code(), Some(137));
        assert_eq!(ExitStatus::NeverStarted.code(), None);
        assert_eq!(ExitStatus::Unknown.code(), None);
        assert!(ExitStatus::Code(0).success() && !ExitStatus::Signal(0).success());
    }
}
