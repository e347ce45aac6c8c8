//! Step 3 of a task: wait for the agent, and end its whole process tree when
//! its time is up, when it stalls, or when it is cancelled.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Spec;
use super::process::{Ev, ProcessTree};
use super::run::Supervision;
use super::state::{Attempt, Ending, ExitStatus};

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

impl<P: ProcessTree> Supervision<'_, P> {
    /// Wait until the agent exits, ending its tree on a timeout, a stall or
    /// a cancel; then end whatever it left behind. How the agent ended; the
    /// attempt's state says what ended it.
    pub(super) fn watch(&mut self, limits: &Limits, activity: &Activity) -> ExitStatus {
        let mut reaped = false;
        if self.control.cancelled() {
            self.end(limits, Ending::Cancelled, "cancelled".into());
        }
        while self.state.exit().is_none() {
            let wait = match self.state {
                Attempt::Ending { .. } => Duration::from_secs(3600),
                _ => {
                    let mut w = limits.deadline.saturating_duration_since(Instant::now());
                    if let Some(st) = limits.stall {
                        w = w.min(
                            (st / 4).clamp(Duration::from_millis(100), Duration::from_secs(5)),
                        );
                    }
                    w
                }
            };
            match self.rx.recv_timeout(wait) {
                Ok(Ev::Exited(status)) => self.state.exited(status),
                Ok(Ev::Reaped) => reaped = true,
                Ok(Ev::Signal) => self.end(limits, Ending::Cancelled, "cancelled".into()),
                Err(RecvTimeoutError::Timeout) => self.check_limits(limits, activity),
                Err(RecvTimeoutError::Disconnected) => self.state.exited(ExitStatus::Unknown),
            }
        }
        let ended = self.state.ending().is_some();
        self.end_leftovers(limits.grace, reaped, ended);
        self.state.exit().map_or(ExitStatus::Unknown, |(s, _)| s)
    }

    /// A timeout or a stall, if one is due.
    fn check_limits(&mut self, limits: &Limits, activity: &Activity) {
        if self.state.ending().is_some() {
            return;
        }
        if Instant::now() >= limits.deadline {
            let note = format!("timeout after {}s", self.spec.timeout_secs);
            self.end(limits, Ending::TimedOut, note);
        } else if let Some(st) = limits.stall
            && idle_for(self.spec, activity) >= st
        {
            let note = format!("no output and no status update for {}s", st.as_secs_f64());
            self.end(limits, Ending::Stalled, note);
        }
    }

    /// End the run for `why`, once: note it and end the tree (a second
    /// signal while the tree is going cuts the grace period short).
    fn end(&mut self, limits: &Limits, why: Ending, note: String) {
        if self.state.ending().is_some() {
            return;
        }
        self.log
            .note(&format!("{note}: ending the agent's process tree"));
        self.state.end(why);
        let control = self.control;
        self.procs.end(limits.grace, &|| control.forced());
    }

    /// Whatever the agent left behind goes too: no task keeps processes
    /// alive after its result is recorded. Orphaned descendants are
    /// reparented to this subreaper, so once the reaper finds no child left
    /// there is nothing to look for, and the /proc scan is skipped.
    fn end_leftovers(&mut self, grace: Duration, mut reaped: bool, ended: bool) {
        // Unless the tree was ended already, give the reaper a moment to find
        // the agent's children gone.
        if !reaped && !ended {
            reaped = self.drain(Duration::from_millis(100));
        }
        if reaped {
            return;
        }
        let control = self.control;
        let leftover = self.procs.end(grace, &|| control.forced());
        if leftover > 0 {
            self.log.note(&format!(
                "ended {leftover} leftover process(es) of the agent"
            ));
        }
        // Every child is gone or being reaped; wait for the reaper to see it.
        self.drain(Duration::from_secs(10));
    }

    /// Wait up to `limit` for the last reap; whether it came.
    fn drain(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while let Ok(ev) = self
            .rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            if matches!(ev, Ev::Reaped) {
                return true;
            }
        }
        false
    }
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
