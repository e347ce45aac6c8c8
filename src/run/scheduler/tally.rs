//! Where every task is, kept up to date as each one moves, so that what the
//! scheduler asks on every event (what runs, what may start, is this wave
//! over, when to look again) costs the same for ten tasks as for 100,000:
//! an event touches the tasks it concerns, never all of them.
//!
//! Every change of a task's [`Slot`] goes through [`Scheduler::set_slot`],
//! which keeps the tally.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use super::{Scheduler, Slot, Task};
use crate::protocol::State;

/// The tasks by where they are (indexes into the scheduler's task list,
/// which is in wave order).
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub waiting: BTreeSet<usize>,
    /// Waiting tasks whose dependencies in this run have all completed.
    pub ready: BTreeSet<usize>,
    pub running: BTreeSet<usize>,
    /// Waiting tasks that wait for a retry's backoff.
    pub backing_off: BTreeSet<usize>,
    /// How many tasks of each wave are not done.
    open: BTreeMap<u32, usize>,
    /// Each wave's tasks: a range of indexes.
    waves: HashMap<u32, Range<usize>>,
    /// Waves in which this run started or adopted a task.
    pub ran: BTreeSet<u32>,
    /// The task of each agent id (the first, if two files claim one).
    by_id: HashMap<String, usize>,
    /// For each task, its dependencies in this run that have not completed.
    unmet: Vec<usize>,
    /// For each task, the tasks of this run that depend on it.
    dependents: Vec<Vec<usize>>,
    /// A task ended without completing since dependencies were last looked
    /// at: some waiting task's dependency may never complete now.
    pub recheck: bool,
}

impl Tally {
    /// The tally of `tasks`, all of them waiting.
    pub fn new(tasks: &[Task]) -> Tally {
        let mut t = Tally {
            recheck: true,
            unmet: vec![0; tasks.len()],
            dependents: vec![Vec::new(); tasks.len()],
            ..Tally::default()
        };
        for (idx, task) in tasks.iter().enumerate() {
            t.by_id.entry(task.status.agent_id.clone()).or_insert(idx);
            t.waves
                .entry(task.wave)
                .and_modify(|r| r.end = idx + 1)
                .or_insert(idx..idx + 1);
            *t.open.entry(task.wave).or_default() += 1;
            t.waiting.insert(idx);
        }
        for (idx, task) in tasks.iter().enumerate() {
            let deps: BTreeSet<usize> = task
                .status
                .depends_on
                .iter()
                .filter_map(|d| t.by_id.get(d).copied())
                .collect();
            t.unmet[idx] = deps.len();
            for d in deps {
                t.dependents[d].push(idx);
            }
            if t.unmet[idx] == 0 {
                t.ready.insert(idx);
            }
        }
        t
    }

    /// The task of `agent_id` in this run.
    pub fn find(&self, agent_id: &str) -> Option<usize> {
        self.by_id.get(agent_id).copied()
    }

    /// The indexes of wave `wave`'s tasks.
    pub fn wave(&self, wave: u32) -> Range<usize> {
        self.waves.get(&wave).cloned().unwrap_or(0..0)
    }

    /// Whether wave `wave` has tasks that are not done.
    pub fn wave_open(&self, wave: u32) -> bool {
        self.open.get(&wave).is_some_and(|&n| n > 0)
    }

    /// Whether a wave after `wave` has tasks that are not done.
    pub fn later_open(&self, wave: u32) -> bool {
        self.open
            .range(wave.saturating_add(1)..)
            .any(|(&w, &n)| w > wave && n > 0)
    }

    fn leave(&mut self, idx: usize, wave: u32, slot: &Slot) {
        match slot {
            Slot::Waiting { .. } => {
                self.waiting.remove(&idx);
                self.ready.remove(&idx);
                self.backing_off.remove(&idx);
            }
            Slot::Running { .. } => {
                self.running.remove(&idx);
            }
            Slot::Done => *self.open.entry(wave).or_default() += 1,
        }
    }

    fn enter(&mut self, idx: usize, wave: u32, slot: &Slot) {
        match slot {
            Slot::Waiting { not_before } => {
                self.waiting.insert(idx);
                if self.unmet[idx] == 0 {
                    self.ready.insert(idx);
                }
                if not_before.is_some() {
                    self.backing_off.insert(idx);
                }
            }
            Slot::Running { .. } => {
                self.running.insert(idx);
                self.ran.insert(wave);
            }
            Slot::Done => {
                let open = self.open.entry(wave).or_default();
                *open = open.saturating_sub(1);
            }
        }
    }

    /// Task `idx` completed: its dependents have one dependency less to wait for.
    fn completed(&mut self, idx: usize) {
        for d in std::mem::take(&mut self.dependents[idx]) {
            self.unmet[d] = self.unmet[d].saturating_sub(1);
            if self.unmet[d] == 0 && self.waiting.contains(&d) {
                self.ready.insert(d);
            }
        }
    }
}

impl Scheduler {
    /// Move task `idx` to `slot`, keeping the tally.
    pub(super) fn set_slot(&mut self, idx: usize, slot: Slot) {
        let t = &mut self.tasks[idx];
        let old = std::mem::replace(&mut t.slot, slot);
        let (wave, done_now) = (t.wave, !matches!(old, Slot::Done) && t.slot == Slot::Done);
        self.tally.leave(idx, wave, &old);
        self.tally.enter(idx, wave, &self.tasks[idx].slot);
        if done_now {
            match self.tasks[idx].status.status {
                State::Completed => self.tally.completed(idx),
                _ => self.tally.recheck = true,
            }
        }
    }

    /// Whether a task runs.
    pub(super) fn any_running(&self) -> bool {
        !self.tally.running.is_empty()
    }

    /// The next index of `set` at or after `from`.
    pub(super) fn next_in(set: &BTreeSet<usize>, from: usize, before: usize) -> Option<usize> {
        set.range(from..before).next().copied()
    }
}
