//! The signals that reach a supervisor, as one state shared with its signal
//! thread: how many arrived, whether the first was Slurm's, and the running
//! task's event channel.

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::process::Ev;

#[derive(Debug, Default)]
struct Received {
    /// SIGINT, SIGTERM and SIGHUP so far: one cancels, two force.
    count: u32,
    /// The first signal was a one-task supervisor's SIGTERM: Slurm ends the
    /// job from outside po-spawn.
    outside: bool,
    /// The running task's events; `None` between tasks.
    task: Option<mpsc::Sender<Ev>>,
}

/// What the signal thread shares with the task running now.
#[derive(Clone, Debug)]
pub struct Control {
    received: Arc<Mutex<Received>>,
    /// The supervisor of one task, in a Slurm job.
    pub one_task: bool,
}

impl Control {
    /// A control no signal reaches but through [`Control::signal`].
    pub fn new(one_task: bool) -> Control {
        Control {
            received: Arc::new(Mutex::new(Received::default())),
            one_task,
        }
    }

    /// Take SIGINT, SIGTERM and SIGHUP: the first cancels the running task,
    /// the second forces. A signal between tasks (a pool supervisor waiting
    /// for its next task) ends the process at once: it runs nothing.
    ///
    /// A `one_task` supervisor runs as a Slurm job: po-spawn cancels it with
    /// SIGINT (`scancel --batch --signal=INT`), so a SIGTERM that comes first
    /// is Slurm ending the job (`scancel`, its time limit, a node going
    /// down). The tree is ended all the same, but the result is left to
    /// po-spawn, which records Slurm's reason.
    pub fn install(one_task: bool) -> Control {
        let c = Control::new(one_task);
        let handle = c.clone();
        crate::signals::forward(move |sig| {
            if !handle.signal(sig) {
                std::process::exit(0);
            }
        });
        crate::proctree::become_subreaper();
        c
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A signal arrived; whether a task was running to take it.
    pub fn signal(&self, sig: Signal) -> bool {
        let mut r = self.lock();
        if self.one_task && sig == Signal::SIGTERM && r.count == 0 {
            r.outside = true;
        }
        r.count += 1;
        match &r.task {
            Some(tx) => {
                let _ = tx.send(Ev::Signal);
                true
            }
            None => false,
        }
    }

    /// The running task's events go to `tx` (`None`: no task runs).
    pub fn attach(&self, tx: Option<mpsc::Sender<Ev>>) {
        self.lock().task = tx;
    }

    pub fn cancelled(&self) -> bool {
        self.lock().count >= 1
    }

    /// A second signal: end trees at once, without the grace period.
    pub fn forced(&self) -> bool {
        self.lock().count >= 2
    }

    pub fn ended_outside(&self) -> bool {
        self.lock().outside
    }

    /// Whether a signal arrives within `wait` (or came already).
    pub fn settle(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while !self.cancelled() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_signal_cancels_two_force_and_slurms_sigterm_is_outside() {
        let c = Control::new(false);
        assert!(!c.signal(Signal::SIGINT), "no task: the process ends");
        let (tx, rx) = mpsc::channel();
        c.attach(Some(tx));
        assert!(c.cancelled() && !c.forced());
        assert!(c.signal(Signal::SIGINT));
        assert!(c.forced());
        assert!(matches!(rx.try_recv(), Ok(Ev::Signal)));
        assert!(!c.ended_outside());

        let slurm = Control::new(true);
        slurm.signal(Signal::SIGTERM);
        assert!(slurm.ended_outside());
        let cancelled = Control::new(true);
        cancelled.signal(Signal::SIGINT);
        cancelled.signal(Signal::SIGTERM);
        assert!(!cancelled.ended_outside(), "po-spawn's SIGINT came first");
    }
}
