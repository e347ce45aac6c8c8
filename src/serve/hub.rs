//! The one reader of the runtime: a thread that reads every orchestration
//! whenever po-watch's change source says something changed, and publishes
//! the reading as a numbered [`Snapshot`]. Pages render the latest one; event
//! streams wait for the next.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::protocol::view::{OrchestrationView, Reader};
use crate::protocol::{Runtime, State};
use crate::timefmt::{self, Timestamp};
use crate::watch::source::Changes;
use crate::watch::{self, Scope};

/// One reading of the whole runtime.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every reading that differs from the one before.
    pub generation: u64,
    pub time: Timestamp,
    /// Newest first.
    pub orchestrations: Vec<OrchestrationView>,
}

impl Snapshot {
    /// The orchestration whose directory is called `key`.
    pub fn find(&self, key: &str) -> Option<&OrchestrationView> {
        self.orchestrations.iter().find(|o| dir_key(o) == key)
    }
}

/// How an orchestration is named in URLs: its directory's name.
pub fn dir_key(o: &OrchestrationView) -> String {
    o.dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// How the hub watches.
#[derive(Clone, Debug)]
pub struct Watching {
    pub stall_after: Duration,
    pub poll: bool,
    pub poll_interval: Duration,
}

pub struct Hub {
    current: Mutex<Arc<Snapshot>>,
    changed: Condvar,
}

impl Hub {
    /// Read the runtime once, then keep reading it on a thread of its own.
    pub fn start(runtime: Runtime, how: Watching) -> Arc<Hub> {
        let scope = Scope::All(runtime);
        let mut reader = Reader::watching(how.stall_after);
        // Watch first, then read: a change between the two is seen either way.
        let mut changes = Changes::new(how.poll, how.poll_interval);
        changes.watch(&scope.watch_dirs());
        let views = scope.read(&mut reader);
        let hub = Arc::new(Hub {
            current: Mutex::new(Arc::new(Snapshot {
                generation: 1,
                time: timefmt::now(),
                orchestrations: views,
            })),
            changed: Condvar::new(),
        });
        let publisher = hub.clone();
        std::thread::Builder::new()
            .name("po-serve-hub".into())
            .spawn(move || publisher.follow(scope, reader, changes, how))
            .expect("a thread can be started");
        hub
    }

    fn follow(&self, scope: Scope, mut reader: Reader, mut changes: Changes, how: Watching) {
        let stall_secs = how.stall_after.as_secs();
        loop {
            let views = self.current().orchestrations.clone();
            let mut deadline = watch::next_deadline(&views, stall_secs);
            if views
                .iter()
                .flat_map(|v| v.tasks())
                .any(|t| t.state() == State::InProgress)
            {
                // Running bars grow on the timeline.
                let tick = Instant::now() + Duration::from_secs(5);
                deadline = Some(deadline.map_or(tick, |d| d.min(tick)));
            }
            changes.wait(deadline);
            changes.watch(&scope.watch_dirs());
            let views = scope.read(&mut reader);
            self.publish(views);
        }
    }

    fn publish(&self, views: Vec<OrchestrationView>) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if cur.orchestrations == views {
            return;
        }
        *cur = Arc::new(Snapshot {
            generation: cur.generation + 1,
            time: timefmt::now(),
            orchestrations: views,
        });
        drop(cur);
        self.changed.notify_all();
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The first snapshot newer than `generation`, or the current one when
    /// none came within `timeout`.
    pub fn next_after(&self, generation: u64, timeout: Duration) -> Arc<Snapshot> {
        let guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |s| s.generation <= generation)
            .unwrap_or_else(|p| p.into_inner());
        guard.clone()
    }
}
