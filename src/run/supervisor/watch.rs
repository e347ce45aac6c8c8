//! Step 3 of a task: wait for the agent, and end its whole process tree when
//! its time is up, when it stalls, or when it is cancelled.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Ev, Log, Spec};
use crate::run::claude::StreamOutcome;
use crate::run::proctree::Tree;

/// How the run is ending, when something other than the agent ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Cancelled,
    TimedOut,
    Stalled,
}

/// What one run of the agent came to.
#[derive(Debug, Default)]
pub struct Ran {
    pub ending: Option<Ending>,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stream: StreamOutcome,
}

impl Ran {
    /// A run ended before the agent started.
    pub fn ended(ending: Ending) -> Ran {
        Ran {
            ending: Some(ending),
            ..Ran::default()
        }
    }
}

/// The limits one run is watched against.
pub struct Limits {
    pub deadline: Instant,
    pub stall: Option<Duration>,
    pub grace: Duration,
}

impl Limits {
    pub fn of(spec: &Spec, started: Instant) -> Limits {
        Limits {
            deadline: started + Duration::from_secs_f64(spec.timeout_secs.max(0.0)),
            stall: spec.stall_secs.map(|s| Duration::from_secs_f64(s.max(0.1))),
            grace: Duration::from_secs_f64(spec.grace_secs.max(0.0)),
        }
    }
}

/// Milliseconds since the epoch of the agent's last output.
pub type Activity = AtomicU64;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Wait until the agent exits, ending `tree` on a timeout, a stall or a
/// cancel; then end whatever the agent left behind. Returns how it ended and
/// the agent's exit code and signal.
#[allow(clippy::too_many_arguments)]
pub fn wait(
    spec: &Spec,
    rx: &mpsc::Receiver<Ev>,
    tree: &Tree,
    limits: &Limits,
    activity: &Activity,
    cancel: &AtomicBool,
    force: &AtomicBool,
    log: &Log,
) -> (Option<Ending>, Option<(i32, Option<i32>)>) {
    let mut ending: Option<Ending> = None;
    let mut exited: Option<(i32, Option<i32>)> = None;
    let mut reaped = false;
    let end = |why: Ending, note: String, ending: &mut Option<Ending>| {
        log.note(&note);
        *ending = Some(why);
        tree.kill(limits.grace, force);
    };
    if cancel.load(Ordering::SeqCst) {
        end(
            Ending::Cancelled,
            "cancelled: ending the agent's process tree".into(),
            &mut ending,
        );
    }
    while exited.is_none() {
        let wait = if ending.is_some() {
            Duration::from_secs(3600)
        } else {
            let mut w = limits.deadline.saturating_duration_since(Instant::now());
            if let Some(st) = limits.stall {
                w = w.min((st / 4).clamp(Duration::from_millis(100), Duration::from_secs(5)));
            }
            w
        };
        match rx.recv_timeout(wait) {
            Ok(Ev::Exited { code, signal }) => exited = Some((code, signal)),
            Ok(Ev::Reaped) => reaped = true,
            Ok(Ev::Signal) if ending.is_none() => end(
                Ending::Cancelled,
                "cancelled: ending the agent's process tree".into(),
                &mut ending,
            ),
            Ok(Ev::Signal) => {}
            Err(mpsc::RecvTimeoutError::Timeout) if ending.is_some() => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if Instant::now() >= limits.deadline {
                    end(
                        Ending::TimedOut,
                        format!(
                            "timeout after {}s: ending the agent's process tree",
                            spec.timeout_secs
                        ),
                        &mut ending,
                    );
                } else if let Some(st) = limits.stall
                    && idle_for(spec, activity) >= st
                {
                    end(
                        Ending::Stalled,
                        format!(
                            "no output and no status update for {}s: ending the agent's process \
                             tree",
                            st.as_secs_f64()
                        ),
                        &mut ending,
                    );
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    end_leftovers(rx, tree, limits.grace, force, log, reaped, ending.is_some());
    (ending, exited)
}

/// Whatever the agent left behind goes too: no task keeps processes alive
/// after its result is recorded. Orphaned descendants are reparented to this
/// subreaper, so once the reaper finds no child left there is nothing to look
/// for, and the /proc scan is skipped.
fn end_leftovers(
    rx: &mpsc::Receiver<Ev>,
    tree: &Tree,
    grace: Duration,
    force: &AtomicBool,
    log: &Log,
    mut reaped: bool,
    ended: bool,
) {
    let drain = |limit: Duration| {
        let until = Instant::now() + limit;
        while let Ok(ev) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            if matches!(ev, Ev::Reaped) {
                return true;
            }
        }
        false
    };
    // Unless the tree was ended already, give the reaper a moment to find
    // the agent's children gone.
    if !reaped && !ended {
        reaped = drain(Duration::from_millis(100));
    }
    if reaped {
        return;
    }
    let leftover = tree.kill(grace, force);
    if leftover > 0 {
        log.note(&format!(
            "ended {leftover} leftover process(es) of the agent"
        ));
    }
    // Every child is gone or being reaped; wait for the reaper to see it.
    drain(Duration::from_secs(10));
}

fn mtime_ms(p: &std::path::Path) -> u64 {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Time since the agent last wrote output or its status file changed.
fn idle_for(spec: &Spec, activity: &Activity) -> Duration {
    let last = activity
        .load(Ordering::SeqCst)
        .max(mtime_ms(&spec.log_file))
        .max(mtime_ms(&spec.status_file));
    Duration::from_millis(now_ms().saturating_sub(last))
}
