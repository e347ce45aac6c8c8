//! What may start now: waves with their barriers, batches, or a dependency
//! graph.
//!
//! * **Waves** ([`Mode::Waves`]): a manifest's waves, and any orchestration
//!   with a wave validation command. Wave N+1 starts when wave N is over,
//!   from an integration branch where wave N's completed branches are
//!   merged (and validated).
//! * **A dependency graph** ([`Mode::Graph`]): waves that come only from
//!   dependencies in the issue text. A task starts as soon as every task it
//!   depends on has completed, from its dependency's branch (or a merge of
//!   its dependencies' branches); free slots never idle while a task is
//!   ready.
//!
//! Batches (`--batch-size`) apply to both: a batch finishes before the next
//! one starts.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::time::Instant;

use super::setup::branch_of;
use super::{Scheduler, Slot, Stopping, Task};
use crate::error::Result;
use crate::protocol::view::Reader;
use crate::protocol::{
    AgentStatus, Orchestration, State, WaveResult, WaveState, layout, lifecycle, store,
};
use crate::run::integration::Merge;

/// How tasks wait for each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Waves with a barrier between them.
    Waves,
    /// Each task waits only for its own dependencies.
    Graph,
}

impl Mode {
    /// Waves from a manifest, or with a validation command, keep their
    /// barrier; waves that only encode dependencies (there are some, and
    /// every task after the first wave depends on something) run as a graph.
    pub fn of<'a>(
        orch: Option<&Orchestration>,
        validations: &HashMap<u32, String>,
        tasks: impl IntoIterator<Item = &'a AgentStatus>,
    ) -> Mode {
        let manifest = orch.is_some_and(|o| o.source.kind == "manifest");
        let (mut any_deps, mut from_deps) = (false, true);
        for s in tasks {
            any_deps |= !s.depends_on.is_empty();
            from_deps &= s.wave <= 1 || !s.depends_on.is_empty();
        }
        if manifest || !validations.is_empty() || !from_deps || !any_deps {
            Mode::Waves
        } else {
            Mode::Graph
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Waves => "waves",
            Mode::Graph => "dependency graph",
        }
    }
}

/// Where a wave-by-wave run is.
pub struct Waves {
    /// The waves of this run's tasks, in order.
    numbers: Vec<u32>,
    /// The index of the current wave.
    at: usize,
    /// The wave last announced (`Wave 2:`).
    announced: Option<u32>,
    /// The first wave's base commit.
    first_base: String,
    /// Each finished wave's integration commit: the next wave's base.
    bases: HashMap<u32, String>,
    /// The batch running now (task indexes) and how many there were.
    batch: Vec<usize>,
    batches: usize,
}

impl Waves {
    pub fn new(tasks: &[Task], base: String) -> Waves {
        Waves {
            numbers: tasks
                .iter()
                .map(|t| t.status.wave)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            at: 0,
            announced: None,
            first_base: base,
            bases: HashMap::new(),
            batch: Vec::new(),
            batches: 0,
        }
    }

    /// The base commit of wave `at`.
    fn base(&self, at: usize) -> String {
        match at {
            0 => self.first_base.clone(),
            n => self
                .bases
                .get(&self.numbers[n - 1])
                .cloned()
                .unwrap_or_else(|| self.first_base.clone()),
        }
    }
}

/// What a dependency is, seen from the task that waits for it.
enum Dep {
    /// Completed: its branch is where the dependent task starts.
    Completed,
    /// It will not complete (failed, cancelled, missing): why.
    Never(String),
    /// Not yet.
    Pending,
}

impl Scheduler {
    /// Start what may start; cancel what never can; integrate finished waves.
    pub(super) fn advance(&mut self) -> Result<()> {
        match self.mode {
            super::Mode::Waves => self.advance_waves(),
            super::Mode::Graph => self.advance_graph(),
        }
    }

    fn advance_waves(&mut self) -> Result<()> {
        while self.waves.at < self.waves.numbers.len() && !self.stopping() {
            let wave = self.waves.numbers[self.waves.at];
            let base = self.waves.base(self.waves.at);
            self.cancel_unsatisfiable();
            let in_wave = self.tally.wave(wave);
            if self.waves.announced != Some(wave) && self.tally.wave_open(wave) {
                self.out.wave(wave, self.waves.announced.is_some());
                self.waves.announced = Some(wave);
            }
            self.next_batch(in_wave.clone());
            self.launch_ready(in_wave.clone(), |_, _| Some(base.clone()))?;
            if self.any_running() {
                return Ok(());
            }
            if self.tally.wave_open(wave) {
                // Nothing runs and nothing could start: a retry's backoff, or
                // tasks whose dependencies cannot run before them.
                if self.backing_off() {
                    return Ok(());
                }
                for idx in in_wave {
                    if matches!(self.tasks[idx].slot, Slot::Waiting { .. }) {
                        let reason = format!(
                            "cancelled: its dependencies ({}) cannot finish before it; put them \
                             in an earlier wave",
                            self.tasks[idx].status.depends_on.join(", ")
                        );
                        self.cancel(idx, &reason);
                    }
                }
                continue;
            }
            // The wave is over: integrate it for the next one, and validate.
            self.wave_over(wave, &base)?;
            self.waves.at += 1;
        }
        Ok(())
    }

    /// Merge a finished wave for the next one and run its validation, when
    /// there is a next wave or a validation due; a failure stops the run.
    fn wave_over(&mut self, wave: u32, base: &str) -> Result<()> {
        let later = self.tally.later_open(wave);
        let validation = self.validations.get(&wave).cloned();
        let ran_here = self.tally.ran.contains(&wave);
        if !(later || validation.is_some() && ran_here) {
            return Ok(());
        }
        match self.integrate(wave, base, validation.as_deref()) {
            Ok(next) => {
                self.waves.bases.insert(wave, next);
            }
            Err(e) => {
                self.out.wave_failed(wave, &e);
                let reason = format!("wave {wave} did not pass: {e}");
                self.stopping = Stopping::WaveFailed;
                self.cancel_waiting(&format!("cancelled: {reason}"));
            }
        }
        Ok(())
    }

    /// Merge wave `wave`'s completed branches onto `base`, then validate.
    fn integrate(&mut self, wave: u32, base: &str, validation: Option<&str>) -> Result<String> {
        let merges: Vec<Merge> = self.tasks[self.tally.wave(wave)]
            .iter()
            .filter(|t| t.status.status == State::Completed)
            .filter_map(|t| {
                Some(Merge {
                    label: t.label.clone(),
                    branch: t.status.branch.clone()?,
                })
            })
            .collect();
        self.out.log(&format!(
            "wave {wave}: integrating {} branch(es) onto {base}",
            merges.len()
        ));
        if let Some(cmd) = validation {
            self.out.validating(wave, cmd);
            self.record_wave(wave, WaveState::Validating, None);
        }
        match self.integration.wave(wave, base, &merges, validation) {
            Ok(next) => {
                self.out.merged(wave, &merges);
                if validation.is_some() {
                    self.out.validated(wave);
                }
                self.record_wave(wave, WaveState::Passed, None);
                Ok(next)
            }
            Err(e) => {
                self.record_wave(wave, WaveState::Failed, Some(e.to_string()));
                Err(e)
            }
        }
    }

    /// What became of wave `wave`, in `orchestration.json`: readers (cpo,
    /// po-watch) learn it from there.
    fn record_wave(&self, wave: u32, state: WaveState, error: Option<String>) {
        let file = &self.ctx.orchestration_file;
        if !file.exists() {
            return;
        }
        let result = WaveResult {
            state,
            error,
            log: self
                .validations
                .contains_key(&wave)
                .then(|| self.ctx.logs.join(format!("wave-{wave}-validation.log"))),
            time: Some(crate::timefmt::now()),
        };
        let recorded = store::update_json(file, |v| {
            let result = serde_json::to_value(&result)
                .map_err(|e| crate::Error::system(format!("serialise a wave result: {e}")))?;
            for w in v
                .get_mut("waves")
                .and_then(|w| w.as_array_mut())
                .into_iter()
                .flatten()
            {
                if w.get("number").and_then(|n| n.as_u64()) == Some(u64::from(wave)) {
                    w["result"] = result.clone();
                }
            }
            Ok(())
        });
        if let Err(e) = recorded {
            self.out.warn(&format!("po-spawn: failed to {e}"));
        }
    }

    /// Tasks of a later wave named on their own still start from the waves
    /// before theirs: rebuild those integrations from what is on disk.
    pub(super) fn rebuild_earlier_waves(&mut self) -> Result<()> {
        let Some(&first) = self.waves.numbers.first() else {
            return Ok(());
        };
        if self.mode != super::Mode::Waves
            || !self.ctx.cfg.isolated
            || self.tally.waiting.is_empty()
        {
            return Ok(());
        }
        let earlier: Vec<AgentStatus> = Reader::plain()
            .read(&self.ctx.dir)
            .tasks()
            .map(|t| t.status.clone())
            .filter(|s| s.wave < first)
            .collect();
        let waves: BTreeSet<u32> = earlier.iter().map(|s| s.wave).collect();
        for w in waves {
            self.out.log(&format!(
                "wave {w} (before this run's tasks): rebuilding its integration"
            ));
            let merges: Vec<Merge> = earlier
                .iter()
                .filter(|s| s.wave == w && s.status == State::Completed)
                .filter_map(|s| {
                    Some(Merge {
                        label: crate::protocol::view::label(s),
                        branch: s.branch.clone()?,
                    })
                })
                .collect();
            self.waves.first_base =
                self.integration
                    .wave(w, &self.waves.first_base.clone(), &merges, None)?;
        }
        Ok(())
    }

    fn advance_graph(&mut self) -> Result<()> {
        loop {
            if self.stopping() {
                return Ok(());
            }
            self.cancel_unsatisfiable();
            let all = 0..self.tasks.len();
            self.next_batch(all.clone());
            let base = self.waves.first_base.clone();
            self.launch_ready(all, |sched, idx| sched.graph_base(idx, &base))?;
            if self.tally.waiting.is_empty() || self.any_running() || self.backing_off() {
                return Ok(());
            }
            // Nothing runs and nothing could start: the rest wait for each
            // other, or for tasks that are not part of this run.
            let waiting: Vec<usize> = self.tally.waiting.iter().copied().collect();
            for idx in waiting {
                let reason = format!(
                    "cancelled: its dependencies ({}) can never complete in this run",
                    self.tasks[idx].status.depends_on.join(", ")
                );
                self.cancel(idx, &reason);
            }
        }
    }

    /// The base of task `idx` in a graph: `base` without dependencies, else
    /// its dependencies' branches (merged). `None` when that failed: the task
    /// is recorded failed.
    fn graph_base(&mut self, idx: usize, base: &str) -> Option<String> {
        let deps: Vec<Merge> = self.tasks[idx]
            .status
            .depends_on
            .iter()
            .filter_map(|d| {
                let (label, branch) = match self.tally.find(d).map(|i| &self.tasks[i]) {
                    Some(t) => (t.label.clone(), t.status.branch.clone()),
                    None => {
                        let s = store::read_status(&layout::status_path(&self.ctx.dir, d)).ok()?;
                        (crate::protocol::view::label(&s), s.branch)
                    }
                };
                Some(Merge {
                    label,
                    branch: branch?,
                })
            })
            .collect();
        match self.integration.deps_base(base, &deps) {
            Ok(commit) => Some(commit),
            Err(e) => {
                let t = &mut self.tasks[idx];
                match lifecycle::fail(&t.path, "base", &format!("failed to {e}")) {
                    Ok(s) => t.status = s,
                    Err(e) => self.out.say(&format!("po-spawn: failed to {e}")),
                }
                self.set_slot(idx, Slot::Done);
                let t = &self.tasks[idx];
                self.out.finished(&t.label, &t.status);
                self.out.path(&t.path);
                None
            }
        }
    }

    /// With `--batch-size`: when the batch is over, the next one from the
    /// waiting tasks in `eligible`.
    fn next_batch(&mut self, eligible: Range<usize>) {
        let Some(size) = self.ctx.cfg.batch_size else {
            return;
        };
        self.waves
            .batch
            .retain(|&i| self.tasks[i].slot != Slot::Done);
        if !self.waves.batch.is_empty() {
            return;
        }
        self.waves.batch = self
            .tally
            .waiting
            .range(eligible)
            .copied()
            .take(size.max(1))
            .collect();
        if !self.waves.batch.is_empty() {
            self.waves.batches += 1;
            let members: Vec<&AgentStatus> = self
                .waves
                .batch
                .iter()
                .map(|&i| &self.tasks[i].status)
                .collect();
            self.out.batch(self.waves.batches, &members);
        }
    }

    /// Start waiting tasks in `eligible` whose dependencies are met, whose
    /// backoff is over and that are in the batch, up to `--max-workers` at
    /// once; `base_of` says where each starts from. Only tasks that are
    /// ready are looked at, from the tally.
    fn launch_ready(
        &mut self,
        eligible: Range<usize>,
        mut base_of: impl FnMut(&mut Scheduler, usize) -> Option<String>,
    ) -> Result<()> {
        let now = Instant::now();
        let batch = self.ctx.cfg.batch_size.is_some();
        let mut from = eligible.start;
        while self.tally.running.len() < self.ctx.cfg.max_workers {
            let next = match batch {
                true => self
                    .waves
                    .batch
                    .iter()
                    .copied()
                    .filter(|&i| i >= from)
                    .min(),
                false => Scheduler::next_in(&self.tally.ready, from, eligible.end),
            };
            let Some(idx) = next else {
                break;
            };
            from = idx + 1;
            let t = &self.tasks[idx];
            let backing_off = match t.slot {
                Slot::Waiting { not_before } => not_before.is_some_and(|nb| nb > now),
                _ => continue,
            };
            if backing_off
                || !self.tally.ready.contains(&idx)
                || !t
                    .status
                    .depends_on
                    .iter()
                    .all(|d| matches!(self.dep(d), Dep::Completed))
            {
                continue;
            }
            if self.budget_check() {
                // Spent + committed reached the budget: the waiting tasks
                // were cancelled; nothing more starts.
                break;
            }
            let Some(base) = base_of(self, idx) else {
                continue;
            };
            self.launch(idx, &base)?;
        }
        Ok(())
    }

    /// Hand task `idx` to the launcher, from `base`.
    fn launch(&mut self, idx: usize, base: &str) -> Result<()> {
        let t = &self.tasks[idx];
        let branch = branch_of(&self.ctx.id, &t.status);
        let spec = self.ctx.spec(&t.path, &t.status, &branch, base);
        match self.launcher.start(&spec) {
            Ok(runner) => {
                let t = &self.tasks[idx];
                self.out.running(&t.label, &t.status, &runner, &spec);
                self.set_slot(
                    idx,
                    Slot::Running {
                        runner,
                        adopted: false,
                    },
                );
            }
            Err(e) => {
                let t = &mut self.tasks[idx];
                self.out
                    .log(&format!("{}: failed to {e}", t.status.agent_id));
                if let Ok(s) = lifecycle::fail(
                    &t.path,
                    crate::protocol::phase::STARTING,
                    &format!("failed to {e}"),
                ) {
                    t.status = s;
                }
                self.set_slot(idx, Slot::Done);
                let t = &self.tasks[idx];
                self.out.finished(&t.label, &t.status);
                self.out.path(&t.path);
            }
        }
        Ok(())
    }

    /// Whether a waiting task waits for its retry's backoff.
    fn backing_off(&self) -> bool {
        !self.tally.backing_off.is_empty()
    }

    /// A dependency's state, from this run or from disk.
    fn dep(&self, dep: &str) -> Dep {
        let (state, over, in_run) = match self.tally.find(dep).map(|i| &self.tasks[i]) {
            Some(t) => (t.status.status, t.slot == Slot::Done, true),
            None => match store::read_status(&layout::status_path(&self.ctx.dir, dep)) {
                Ok(s) => (s.status, s.status.is_terminal(), false),
                Err(_) => {
                    return Dep::Never(format!(
                        "cancelled: dependency {dep} has no readable status file in {}",
                        self.ctx.dir.display()
                    ));
                }
            },
        };
        match (state, over) {
            (State::Completed, true) => Dep::Completed,
            (state, true) => Dep::Never(format!("cancelled: dependency {dep} {state}")),
            (state, false) if !in_run => Dep::Never(format!(
                "cancelled: dependency {dep} is {state} and not part of this run; run it first or \
                 include it"
            )),
            _ => Dep::Pending,
        }
    }

    /// Cancel waiting tasks whose dependencies will never complete. They are
    /// looked at again only after a task ended without completing (the
    /// tasks outside this run do not change while it holds the spawn lock).
    fn cancel_unsatisfiable(&mut self) {
        if !std::mem::take(&mut self.tally.recheck) {
            return;
        }
        let waiting: Vec<usize> = self
            .tally
            .waiting
            .iter()
            .copied()
            .filter(|&i| !self.tasks[i].status.depends_on.is_empty())
            .collect();
        for idx in waiting {
            if !matches!(self.tasks[idx].slot, Slot::Waiting { .. }) {
                continue;
            }
            let never = self.tasks[idx]
                .status
                .depends_on
                .iter()
                .find_map(|d| match self.dep(d) {
                    Dep::Never(reason) => Some(reason),
                    _ => None,
                });
            if let Some(reason) = never {
                self.cancel(idx, &reason);
            }
        }
    }
}
