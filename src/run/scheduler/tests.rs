//! The scheduler's logic, with a fake launcher and a fake integration: no
//! processes, no git. Status files are real files in a temporary directory;
//! a test plays the supervisors by writing them through the lifecycle.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::sys::signal::Signal;

use super::console::captured_paths;
use super::setup::Context;
use super::*;
use crate::error::Error;
use crate::protocol::lifecycle::{Outcome, Start};
use crate::protocol::view::Reader;
use crate::protocol::{Orchestration, Source, Wave, layout};
use crate::run::integration::Merge;

/// What the fake launcher was asked and what it answers.
#[derive(Default)]
struct Launches {
    /// (agent id, base) of every start, in order.
    started: Vec<(String, String)>,
    keys: HashMap<String, u64>,
    states: HashMap<u64, RunnerState>,
    /// Runners ended: (agent id, force).
    ended: Vec<(String, bool)>,
    /// Tasks whose earlier supervisor is alive.
    alive: HashSet<String>,
    cleaned: Vec<String>,
    next: u64,
}

struct FakeLauncher(Rc<RefCell<Launches>>);

fn agent_of(path: &Path) -> String {
    layout::agent_id_of(path)
}

impl Launcher for FakeLauncher {
    fn start(&mut self, spec: &crate::run::supervisor::Spec) -> crate::Result<Runner> {
        let mut l = self.0.borrow_mut();
        l.next += 1;
        let (key, agent) = (l.next, agent_of(&spec.status_file));
        l.started.push((agent.clone(), spec.base.clone()));
        l.keys.insert(agent, key);
        l.states.insert(key, RunnerState::Running);
        Ok(Runner {
            key,
            shown: format!("fake {key}"),
        })
    }

    fn adopt(&mut self, status_file: &Path, _: &AgentStatus) -> Option<Runner> {
        let mut l = self.0.borrow_mut();
        let agent = agent_of(status_file);
        if !l.alive.contains(&agent) {
            return None;
        }
        l.next += 1;
        let key = l.next;
        l.keys.insert(agent, key);
        l.states.insert(key, RunnerState::Running);
        Some(Runner {
            key,
            shown: "adopted".into(),
        })
    }

    fn end(&mut self, runner: &Runner, force: bool) {
        let mut l = self.0.borrow_mut();
        let agent = l
            .keys
            .iter()
            .find(|(_, k)| **k == runner.key)
            .map(|(a, _)| a.clone())
            .unwrap_or_default();
        l.ended.push((agent, force));
    }

    fn state(&mut self, runner: &Runner) -> RunnerState {
        self.0.borrow().states[&runner.key].clone()
    }

    fn clean_up(&mut self, status_file: &Path, _: &AgentStatus) -> usize {
        self.0.borrow_mut().cleaned.push(agent_of(status_file));
        0
    }
}

/// What the fake integration was asked.
#[derive(Default)]
struct Integrations {
    calls: Vec<String>,
    fail_wave: Option<u32>,
    conflict: bool,
}

struct FakeIntegration(Rc<RefCell<Integrations>>);

impl Integrate for FakeIntegration {
    fn wave(
        &mut self,
        wave: u32,
        base: &str,
        merges: &[Merge],
        validation: Option<&str>,
    ) -> crate::Result<String> {
        let mut i = self.0.borrow_mut();
        let branches: Vec<&str> = merges.iter().map(|m| m.branch.as_str()).collect();
        i.calls.push(format!(
            "wave {wave} from {base} merging {} validating {}",
            branches.join(","),
            validation.unwrap_or("-")
        ));
        if i.fail_wave == Some(wave) {
            return Err(Error::validation(format!("wave {wave}"), "tests failed"));
        }
        Ok(format!("wave-{wave}-head"))
    }

    fn deps_base(&mut self, base: &str, deps: &[Merge]) -> crate::Result<String> {
        let mut i = self.0.borrow_mut();
        let branches: Vec<&str> = deps.iter().map(|m| m.branch.as_str()).collect();
        i.calls
            .push(format!("deps from {base} of {}", branches.join(",")));
        if i.conflict && deps.len() > 1 {
            return Err(Error::validation(
                "merge the branches of its dependencies",
                "they conflict in src/user.py",
            ));
        }
        Ok(match deps {
            [] => base.to_string(),
            [one] => format!("head of {}", one.branch),
            _ => format!("merge of {}", branches.join("+")),
        })
    }
}

/// One task of a test orchestration: agent number, wave, dependencies.
struct Def(u64, u32, &'static [u64]);

struct Harness {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    launches: Rc<RefCell<Launches>>,
    integrations: Rc<RefCell<Integrations>>,
}

impl Harness {
    /// An orchestration from `kind` (`manifest` or `markdown`) with `defs`,
    /// validation commands by wave.
    fn new(kind: &str, defs: &[Def], validations: &[(u32, &str)]) -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("runtime/parallel/7");
        std::fs::create_dir_all(&dir).unwrap();
        let mut waves: Vec<Wave> = Vec::new();
        for Def(n, wave, deps) in defs {
            let mut s = AgentStatus::new(format!("agent-{n}"), "7");
            s.title = format!("Task {n}");
            s.wave = *wave;
            s.depends_on = deps.iter().map(|d| format!("agent-{d}")).collect();
            s.branch = Some(format!("feat/issue-7-agent-{n}"));
            store::write_status(&layout::status_path(&dir, &s.agent_id), &s).unwrap();
            match waves.iter_mut().find(|w| w.number == *wave) {
                Some(w) => w.agents.push(s.agent_id.clone()),
                None => waves.push(Wave {
                    number: *wave,
                    agents: vec![s.agent_id.clone()],
                    validation: validations
                        .iter()
                        .find(|(w, _)| w == wave)
                        .map(|(_, v)| v.to_string()),
                    result: None,
                }),
            }
        }
        let orch = Orchestration {
            schema_version: crate::protocol::SCHEMA_VERSION,
            id: "7".into(),
            source: Source {
                kind: kind.into(),
                value: "x".into(),
            },
            master_issue: None,
            title: None,
            url: None,
            body: None,
            created_at: None,
            waves,
            report: serde_json::Value::Null,
            options: Default::default(),
            extra: Default::default(),
        };
        store::write_json(&dir.join(layout::ORCHESTRATION_FILE), &orch).unwrap();
        Harness {
            _tmp: tmp,
            dir,
            launches: Rc::default(),
            integrations: Rc::default(),
        }
    }

    fn path(&self, n: u64) -> PathBuf {
        layout::status_path(&self.dir, &format!("agent-{n}"))
    }

    fn status(&self, n: u64) -> AgentStatus {
        store::read_status(&self.path(n)).unwrap()
    }

    fn set(&self, n: u64, f: impl FnOnce(&mut AgentStatus)) {
        store::update_status(&self.path(n), |s| {
            f(s);
            Ok(())
        })
        .unwrap();
    }

    /// A scheduler over the orchestration as it is on disk now.
    fn scheduler(&self, cfg: Config) -> Scheduler {
        Scheduler::new(self.parts(cfg))
    }

    /// The parts of a scheduler over the orchestration as it is on disk now.
    fn parts(&self, cfg: Config) -> Parts {
        let orch: Orchestration =
            store::read_json(&self.dir.join(layout::ORCHESTRATION_FILE)).unwrap();
        let validations: HashMap<u32, String> = orch
            .waves
            .iter()
            .filter_map(|w| Some((w.number, w.validation.clone()?)))
            .collect();
        let view = Reader::plain().read(&self.dir);
        let mode = Mode::of(Some(&orch), &validations, view.tasks().map(|t| &t.status));
        let root = self.dir.parent().unwrap().parent().unwrap().to_path_buf();
        let ctx = Context {
            cfg,
            runtime: Runtime::at(root.clone(), None),
            id: "7".into(),
            dir: self.dir.clone(),
            orchestration_file: self.dir.join(layout::ORCHESTRATION_FILE),
            repo: root.clone(),
            logs: root.join("logs"),
            bin_dir: None,
            include_files: Vec::new(),
            prompt_dirs: Vec::new(),
            pr: None,
        };
        Parts {
            ctx,
            mode,
            validations,
            rows: view.rows,
            explicit: false,
            base: "base".into(),
            previous_session: Some("orch-7-20261130-1200".into()),
            launcher: Box::new(FakeLauncher(self.launches.clone())),
            integration: Box::new(FakeIntegration(self.integrations.clone())),
            console: Console::capture(),
        }
    }

    fn started(&self) -> Vec<String> {
        self.launches
            .borrow()
            .started
            .iter()
            .map(|(a, _)| a.clone())
            .collect()
    }

    fn base_of(&self, n: u64) -> String {
        let agent = format!("agent-{n}");
        let l = self.launches.borrow();
        let (_, base) = l
            .started
            .iter()
            .rev()
            .find(|(a, _)| *a == agent)
            .unwrap_or_else(|| panic!("{agent} never started"));
        base.clone()
    }

    fn runner_ends(&self, n: u64, state: RunnerState) {
        let mut l = self.launches.borrow_mut();
        let key = l.keys[&format!("agent-{n}")];
        l.states.insert(key, state);
    }

    /// Play agent `n`'s supervisor: run it to `state` and let go.
    fn finish(&self, n: u64, state: State) {
        let p = self.path(n);
        if store::read_status(&p).unwrap().status == State::Pending {
            lifecycle::start(
                &p,
                &Start {
                    phase: "running".into(),
                    ..Start::default()
                },
            )
            .unwrap();
        }
        let error = (state != State::Completed).then(|| "tests did not pass".to_string());
        lifecycle::finish(&p, Outcome::of(state, error)).unwrap();
        self.runner_ends(n, ended("its supervisor exited with status 0", false));
    }
}

fn ended(how: &str, interrupted: bool) -> RunnerState {
    RunnerState::Ended(Ended {
        how: how.into(),
        interrupted,
    })
}

fn cfg() -> Config {
    Config {
        isolated: false,
        agent: AgentSpec::command(vec!["true".into()]),
        ..Config::default()
    }
}

fn lines(s: &Scheduler) -> Vec<String> {
    s.out.lines()
}

#[test]
fn a_wave_waits_for_the_one_before_and_starts_from_its_integration() {
    let h = Harness::new(
        "manifest",
        &[Def(1, 1, &[]), Def(2, 1, &[]), Def(3, 2, &[])],
        &[],
    );
    let mut s = h.scheduler(cfg());
    s.begin().unwrap();
    assert_eq!(h.started(), ["agent-1", "agent-2"]);
    h.finish(1, State::Completed);
    s.handle(Event::Wake).unwrap();
    assert_eq!(
        h.started(),
        ["agent-1", "agent-2"],
        "wave 2 waits for all of wave 1"
    );
    h.finish(2, State::Completed);
    s.handle(Event::Wake).unwrap();
    assert_eq!(h.started(), ["agent-1", "agent-2", "agent-3"]);
    assert_eq!(h.base_of(1), "base");
    assert_eq!(h.base_of(3), "wave-1-head");
    assert_eq!(
        h.integrations.borrow().calls,
        ["wave 1 from base merging feat/issue-7-agent-1,feat/issue-7-agent-2 validating -"]
    );
    h.finish(3, State::Completed);
    s.handle(Event::Wake).unwrap();
    assert!(s.finished());
    assert_eq!(s.close(), exit::SUCCESS);
    // The last wave has no validation and nothing after it: not integrated.
    assert_eq!(h.integrations.borrow().calls.len(), 1);
    let out = lines(&s);
    assert!(out.contains(&"Wave 1:".to_string()), "{out:?}");
    assert!(out.contains(&"Wave 2:".to_string()), "{out:?}");
    assert_eq!(
        captured_paths(&out).len(),
        3,
        "each finished path is printed"
    );
}

#[test]
fn a_batch_finishes_before_the_next_starts_and_workers_are_capped() {
    let defs: Vec<Def> = (1..=5).map(|n| Def(n, 1, &[])).collect();
    let h = Harness::new("markdown", &defs, &[]);
    let mut s = h.scheduler(Config {
        batch_size: Some(2),
        ..cfg()
    });
    s.begin().unwrap();
    assert_eq!(h.started(), ["agent-1", "agent-2"]);
    h.finish(1, State::Completed);
    s.handle(Event::Wake).unwrap();
    assert_eq!(h.started().len(), 2, "batch 2 waits for all of batch 1");
    h.finish(2, State::Failed);
    s.handle(Event::Wake).unwrap();
    assert_eq!(h.started(), ["agent-1", "agent-2", "agent-3", "agent-4"]);
    let out = lines(&s);
    assert!(
        out.contains(&"[Batch 1: Agents 1-2]".to_string()),
        "{out:?}"
    );
    assert!(
        out.contains(&"[Batch 2: Agents 3-4]".to_string()),
        "{out:?}"
    );

    let h = Harness::new(
        "markdown",
        &[Def(1, 1, &[]), Def(2, 1, &[]), Def(3, 1, &[])],
        &[],
    );
    let mut s = h.scheduler(Config {
        max_workers: 1,
        ..cfg()
    });
    s.begin().unwrap();
    assert_eq!(h.started(), ["agent-1"]);
    h.finish(1, State::Completed);
    s.handle(Event::Wake).unwrap();
    assert_eq!(h.started(), ["agent-1", "agent-2"]);
}

#[test]
fn the_seeds_lines_tell_a_deployment_a_retry_and_its_success() {
    let h = Harness::new("markdown", &[Def(1, 1, &[]), Def(2, 1, &[])], &[]);
    let mut s = h.scheduler(cfg());
    s.begin().unwrap();
    let out = lines(&s);
    assert!(
        out.contains(&"🤖 Deployed 2 agents (max_workers=5)".to_string()),
        "{out:?}"
    );
    assert!(
        out.contains(&"⏱️  Monitoring progress (updates every 30s)...".to_string()),
        "{out:?}"
    );

    let h = Harness::new("markdown", &[Def(1, 1, &[]), Def(2, 1, &[])], &[]);
    h.set(1, |s| s.status = State::Completed);
    h.set(2, |s| {
        s.status = State::Failed;
        s.error = Some("Import resolution error; log: /tmp/agent-2.log".into());
    });
    let mut s = h.scheduler(Config {
        retry: true,
        ..cfg()
    });
    s.begin().unwrap();
    let out = lines(&s);
    let block = [
        "🔄 Retry mode: Loading previous orchestration state",
        "📂 Found orchestration: orch-7-20261130-1200",
        "📋 Previous results: 1/2 succeeded, 1 failed",
        "",
        "Retrying failed tasks:",
        "- agent-2: Import resolution error",
        "",
        "🤖 Deployed 1 agent for retry",
    ];
    let at = out
        .iter()
        .position(|l| l == block[0])
        .expect("the retry block");
    assert_eq!(&out[at..at + block.len()], block, "{out:?}");
    h.finish(2, State::Completed);
    s.handle(Event::Wake).unwrap();
    assert_eq!(s.close(), exit::SUCCESS);
    assert!(
        lines(&s)
            .contains(&"🎉 Retry successful! Original orchestration now complete.".to_string()),
        "{:?}",
        lines(&s)
    );
}

#[test]
fn retry_runs_failed_tasks_again_and_never_completed_ones() {
    let h = Harness::new(
        "markdown",
        &[Def(1, 1, &[]), Def(2, 1, &[]), Def(3, 1, &[])],
        &[],
    );
    h.set(1, |s| s.status = State::Failed);
    h.set(2, |s| s.status = State::Completed);
    let mut s = h.scheduler(cfg());
    s.begin().unwrap();
    assert_eq!(
        h.started(),
        ["agent-3"],
        "without --retry a failed task stays"
    );
    assert_eq!(h.status(1).status, State::Failed);

    let h2 = Harness::new("markdown", &[Def(1, 1, &[]), Def(2, 1, &[])], &[]);
    h2.set(1, |s| s.status = State::TimedOut);
    h2.set(2, |s| s.status = State::Completed);
    let mut s = h2.scheduler(Config {
        retry: true,
        ..cfg()
    });
    s.begin().unwrap();
    assert_eq!(h2.started(), ["agent-1"]);
    assert_eq!(
        (h2.status(1).status, h2.status(1).attempt),
        (State::Pending, 2)
    );
    assert_eq!(h2.status(2).status, State::Completed);
}

#[test]
fn a_task_whose_supervisor_lives_is_adopted_and_an_orphan_is_recorded_failed() {
    let h = Harness::new("markdown", &[Def(1, 1, &[]), Def(2, 1, &[])], &[]);
    h.set(1, |s| s.status = State::InProgress);
    h.set(2, |s| {
        s.status = State::InProgress;
        s.extra.insert(SUPERVISOR_PID_FIELD.into(), 4242.into());
    });
    h.launches.borrow_mut().alive.insert("agent-1".into());
    let mut s = h.scheduler(cfg());
    s.begin().unwrap();
    assert!(h.started().is_empty(), "nothing runs twice");
    assert!(
        lines(&s).contains(&"  agent-1: RUNNING (adopted)".to_string()),
        "{:?}",
        lines(&s)
    );
    assert_eq!(h.launches.borrow().cleaned, ["agent-2"]);
    let orphan = h.status(2);
    assert_eq!(orphan.status, State::Failed);
    assert!(
        orphan
            .error
            .as_deref()
            .unwrap()
            .contains("supervisor (pid 4242) died before recording a result"),
        "{orphan:?}"
    );
    assert!(!s.finished(), "the adopted task still runs");
    h.finish(1, State::Completed);
    s.handle(Event::Wake).unwrap();
    assert!(s.finished());
    assert_eq!(s.close(), exit::MAJORITY_FAILURE);

    // With --retry the orphan runs again.
    let h = Harness::new("markdown", &[Def(1, 1, &[])], &[]);
    h.set(1, |s| s.status = State::InProgress);
    let mut s = h.scheduler(Config {
        retry: true,
        ..cfg()
    });
    s.begin().unwrap();
    assert_eq!(h.started(), ["agent-1"]);
    assert_eq!(h.status(1).attempt, 2);
}

#[test]
fn ctrl_c_cancels_then_forces_then_leaves() {
    let defs: Vec<Def> = (1..=3).map(|n| Def(n, 1, &[])).collect();
    let h = Harness::new("markdown", &defs, &[]);
    let mut s = h.scheduler(Config {
        max_workers: 1,
        ..cfg()
    });
    s.begin().unwrap();
    s.handle(Event::Signal(Signal::SIGINT)).unwrap();
    assert_eq!(h.status(2).status, State::Cancelled);
    assert_eq!(h.status(3).status, State::Cancelled);
    assert_eq!(h.launches.borrow().ended, [("agent-1".to_string(), false)]);
    assert!(!s.finished(), "agent-1 is still being cancelled");
    s.handle(Event::Signal(Signal::SIGINT)).unwrap();
    assert_eq!(h.launches.borrow().ended[1], ("agent-1".to_string(), true));
    assert!(lines(&s).iter().any(|l| l.contains("Forcing")));
    assert!(!s.finished());
    s.handle(Event::Signal(Signal::SIGINT)).unwrap();
    assert!(s.finished(), "a third Ctrl-C leaves at once");
    assert_eq!(s.close(), exit::INTERRUPTED);
    assert_eq!(h.started(), ["agent-1"], "nothing new started after Ctrl-C");
}

#[test]
fn a_cancelled_runner_that_recorded_nothing_leaves_its_task_cancelled() {
    let h = Harness::new("markdown", &[Def(1, 1, &[])], &[]);
    let mut s = h.scheduler(cfg());
    s.begin().unwrap();
    lifecycle::start(&h.path(1), &Start::default()).unwrap();
    s.handle(Event::Signal(Signal::SIGTERM)).unwrap();
    h.runner_ends(1, ended("its supervisor was killed by SIGTERM", true));
    s.handle(Event::Wake).unwrap();
    assert_eq!(h.status(1).status, State::Cancelled);
    assert!(s.finished());
    assert_eq!(s.close(), exit::INTERRUPTED);
}

#[test]
fn a_runner_gone_without_a_result_fails_its_task_and_what_it_left_is_ended() {
    let h = Harness::new("markdown", &[Def(1, 1, &[])], &[]);
    let mut s = h.scheduler(cfg());
    s.begin().unwrap();
    lifecycle::start(&h.path(1), &Start::default()).unwrap();
    h.runner_ends(1, ended("its supervisor was killed by SIGKILL", false));
    s.handle(Event::Wake).unwrap();
    let st = h.status(1);
    assert_eq!(st.status, State::Failed);
    assert!(
        st.error
            .as_deref()
            .unwrap()
            .starts_with("its supervisor was killed by SIGKILL before recording a result"),
        "{st:?}"
    );
    assert_eq!(h.launches.borrow().cleaned, ["agent-1"]);
}

#[test]
fn tasks_that_can_never_run_are_cancelled_with_the_reason() {
    // A failed dependency.
    let h = Harness::new("markdown", &[Def(1, 1, &[]), Def(2, 2, &[1])], &[]);
    let mut s = h.scheduler(cfg());
    s.begin().unwrap();
    h.finish(1, State::Failed);
    s.handle(Event::Wake).unwrap();
    let st = h.status(2);
    assert_eq!(st.status, State::Cancelled);
    assert_eq!(
        st.error.as_deref(),
        Some("cancelled: dependency agent-1 failed")
    );
    assert!(s.finished());
    assert_eq!(s.close(), exit::MAJORITY_FAILURE);

    // A dependency in a later wave cannot finish first.
    let h = Harness::new("manifest", &[Def(1, 1, &[2]), Def(2, 2, &[])], &[]);
    let mut s = h.scheduler(cfg());
    s.begin().unwrap();
    assert!(h.started().contains(&"agent-2".to_string()));
    let st = h.status(1);
    assert_eq!(st.status, State::Cancelled);
    assert!(
        st.error
            .as_deref()
            .unwrap()
            .contains("cannot finish before it"),
        "{st:?}"
    );
}

#[test]
fn in_a_graph_a_dependent_starts_once_its_dependency_completed_from_its_branch() {
    let h = Harness::new(
        "markdown",
        &[Def(1, 1, &[]), Def(2, 1, &[]), Def(3, 2, &[1])],
        &[],
    );
    let mut s = h.scheduler(cfg());
    assert_eq!(s.mode, Mode::Graph);
    s.begin().unwrap();
    assert_eq!(h.started(), ["agent-1", "agent-2"]);
    h.finish(1, State::Completed);
    s.handle(Event::Wake).unwrap();
    assert_eq!(
        h.started(),
        ["agent-1", "agent-2", "agent-3"],
        "agent-3 starts while agent-2 still runs"
    );
    assert_eq!(h.base_of(3), "head of feat/issue-7-agent-1");
    assert!(
        !h.integrations
            .borrow()
            .calls
            .iter()
            .any(|c| c.starts_with("wave")),
        "no wave barrier: {:?}",
        h.integrations.borrow().calls
    );
}

#[test]
fn in_a_graph_two_dependencies_are_merged_and_a_conflict_fails_the_task() {
    let defs = [Def(1, 1, &[]), Def(2, 1, &[]), Def(3, 2, &[1, 2])];
    let h = Harness::new("markdown", &defs, &[]);
    let mut s = h.scheduler(cfg());
    s.begin().unwrap();
    h.finish(1, State::Completed);
    h.finish(2, State::Completed);
    s.handle(Event::Wake).unwrap();
    assert_eq!(
        h.base_of(3),
        "merge of feat/issue-7-agent-1+feat/issue-7-agent-2"
    );

    let h = Harness::new("markdown", &defs, &[]);
    h.integrations.borrow_mut().conflict = true;
    let mut s = h.scheduler(cfg());
    s.begin().unwrap();
    h.finish(1, State::Completed);
    h.finish(2, State::Completed);
    s.handle(Event::Wake).unwrap();
    let st = h.status(3);
    assert_eq!(
        (st.status, st.phase.as_deref()),
        (State::Failed, Some("base"))
    );
    assert!(
        st.error.as_deref().unwrap().contains("src/user.py"),
        "{st:?}"
    );
    assert!(s.finished());
}

#[test]
fn waves_with_a_validation_keep_their_barrier_and_a_failure_stops_the_rest() {
    let h = Harness::new(
        "markdown",
        &[Def(1, 1, &[]), Def(2, 2, &[1])],
        &[(1, "make test")],
    );
    h.integrations.borrow_mut().fail_wave = Some(1);
    let mut s = h.scheduler(cfg());
    assert_eq!(
        s.mode,
        Mode::Waves,
        "a validation command keeps the barrier"
    );
    s.begin().unwrap();
    h.finish(1, State::Completed);
    s.handle(Event::Wake).unwrap();
    assert_eq!(
        h.integrations.borrow().calls,
        ["wave 1 from base merging feat/issue-7-agent-1 validating make test"]
    );
    let st = h.status(2);
    assert_eq!(st.status, State::Cancelled);
    assert!(st.error.as_deref().unwrap().contains("wave 1 did not pass"));
    assert!(s.finished());
    assert_eq!(s.close(), exit::VALIDATION);
    // Readers learn it from orchestration.json.
    let orch: Orchestration = store::read_json(&h.dir.join(layout::ORCHESTRATION_FILE)).unwrap();
    let result = orch.waves[0]
        .result
        .clone()
        .expect("wave 1's result is recorded");
    assert_eq!(result.state, crate::protocol::WaveState::Failed);
    assert!(result.error.unwrap().contains("tests failed"));
}

#[test]
fn the_last_waves_validation_runs_when_tasks_ran_in_it() {
    let h = Harness::new("manifest", &[Def(1, 1, &[])], &[(1, "make check")]);
    let mut s = h.scheduler(cfg());
    s.begin().unwrap();
    h.finish(1, State::Completed);
    s.handle(Event::Wake).unwrap();
    assert_eq!(h.integrations.borrow().calls.len(), 1);
    assert!(lines(&s).contains(&"✅ Wave 1 validation passed".to_string()));
    let orch: Orchestration = store::read_json(&h.dir.join(layout::ORCHESTRATION_FILE)).unwrap();
    let result = orch.waves[0]
        .result
        .clone()
        .expect("wave 1's result is recorded");
    assert_eq!(result.state, crate::protocol::WaveState::Passed);
}

#[test]
fn a_retryable_failure_runs_again_after_its_backoff() {
    let h = Harness::new("markdown", &[Def(1, 1, &[])], &[]);
    let mut s = h.scheduler(Config {
        retries: 2,
        retry_backoff_secs: 0.0,
        ..cfg()
    });
    s.begin().unwrap();
    h.finish(1, State::Failed);
    h.set(1, |st| st.retryable = Some(true));
    s.handle(Event::Wake).unwrap();
    assert_eq!(h.status(1).attempt, 2);
    s.handle(Event::Tick).unwrap();
    assert_eq!(h.started(), ["agent-1", "agent-1"]);
    assert!(lines(&s).iter().any(|l| l.contains("retry 1/2")));
}

#[test]
fn the_mode_follows_where_the_waves_came_from() {
    let dep = |wave: u32, deps: &[&str]| {
        let mut s = AgentStatus::new("agent-1", "7");
        s.wave = wave;
        s.depends_on = deps.iter().map(|d| d.to_string()).collect();
        s
    };
    let none = HashMap::new();
    let graph = [dep(1, &[]), dep(2, &["agent-1"])];
    assert_eq!(Mode::of(None, &none, &graph), Mode::Graph);
    let no_deps = [dep(1, &[]), dep(1, &[])];
    assert_eq!(Mode::of(None, &none, &no_deps), Mode::Waves);
    let wave_without_deps = [dep(1, &[]), dep(2, &[])];
    assert_eq!(Mode::of(None, &none, &wave_without_deps), Mode::Waves);
    let validated: HashMap<u32, String> = [(1, "make".to_string())].into();
    assert_eq!(Mode::of(None, &validated, &graph), Mode::Waves);
}

impl Harness {
    /// Play agent `n`'s supervisor: run it to `state`, its agent having
    /// reported `cost_usd`, and let go.
    fn finish_costing(&self, n: u64, state: State, cost_usd: f64) {
        let p = self.path(n);
        if store::read_status(&p).unwrap().status == State::Pending {
            lifecycle::start(&p, &Start::default()).unwrap();
        }
        self.set(n, |s| s.metrics.cost_usd = Some(cost_usd));
        self.finish(n, state);
    }

    /// A scheduler over the tasks `only` (as if their status files were
    /// named one by one); the others are not part of its run.
    fn scheduler_for(&self, cfg: Config, only: &[u64]) -> Scheduler {
        let mut parts = self.parts(cfg);
        let keep: Vec<PathBuf> = only.iter().map(|&n| self.path(n)).collect();
        parts
            .rows
            .retain(|r| keep.iter().any(|k| k.as_path() == r.file()));
        Scheduler::new(parts)
    }
}

fn budget(usd: f64, hard: bool) -> Config {
    Config {
        limits: budget::Limits {
            budget_usd: Some(usd),
            hard,
            ..budget::Limits::default()
        },
        ..cfg()
    }
}

#[test]
fn a_budget_launches_nothing_once_spent_reaches_it_and_cancels_the_rest() {
    let defs: Vec<Def> = (1..=5).map(|n| Def(n, 1, &[])).collect();
    let h = Harness::new("markdown", &defs, &[]);
    let mut s = h.scheduler(Config {
        max_workers: 1,
        ..budget(0.025, false)
    });
    s.begin().unwrap();
    for n in 1..=3 {
        assert_eq!(h.started().len(), n as usize, "{:?}", h.started());
        h.finish_costing(n, State::Completed, 0.01);
        s.handle(Event::Wake).unwrap();
    }
    assert_eq!(h.started(), ["agent-1", "agent-2", "agent-3"]);
    for n in [4, 5] {
        let st = h.status(n);
        assert_eq!(st.status, State::Cancelled, "{st:?}");
        assert!(
            st.error.as_deref().unwrap().starts_with(
                "cancelled: the budget was reached before it started ($0.0300 of $0.0250"
            ),
            "{st:?}"
        );
    }
    assert!(s.finished());
    assert_eq!(s.close(), exit::MAJORITY_FAILURE);
    let out = lines(&s);
    assert!(
        out.iter().any(|l| l
            == "💰 Budget reached: spent $0.0300 of $0.0250 budget — reached; launching nothing more"),
        "{out:?}"
    );
    assert!(
        out.iter()
            .any(|l| l.starts_with("💰 Budget: $0.0250 for orchestration 7")),
        "{out:?}"
    );
    assert!(
        out.contains(&"💰 Spend: spent $0.0300 of $0.0250 budget — reached".to_string()),
        "{out:?}"
    );
}

#[test]
fn running_agents_commit_what_they_spent_so_far_reported_or_priced() {
    let defs: Vec<Def> = (1..=3).map(|n| Def(n, 1, &[])).collect();
    let h = Harness::new("markdown", &defs, &[]);
    let mut s = h.scheduler(Config {
        max_workers: 2,
        ..budget(0.03, false)
    });
    s.begin().unwrap();
    assert_eq!(h.started(), ["agent-1", "agent-2"]);
    // agent-1 runs and its stream reported two model calls' tokens: $0.0132
    // at claude-sonnet-4-5's price, no cost yet.
    lifecycle::start(&h.path(1), &Start::default()).unwrap();
    h.set(1, |st| {
        st.metrics.model = Some("claude-sonnet-4-5".into());
        st.metrics.input_tokens = Some(7000);
        st.metrics.cache_creation_input_tokens = Some(600);
        st.metrics.cache_read_input_tokens = Some(4000);
        st.metrics.output_tokens = Some(170);
    });
    // agent-2 finishes at $0.02: spent $0.02 + committed $0.0132 ≥ $0.03.
    h.finish_costing(2, State::Completed, 0.02);
    s.handle(Event::Wake).unwrap();
    assert_eq!(h.started(), ["agent-1", "agent-2"], "agent-3 never starts");
    assert_eq!(h.status(3).status, State::Cancelled);
    let out = lines(&s);
    assert!(
        out.iter().any(|l| l.contains(
            "Budget reached: spent $0.0200 + $0.0132 running of $0.0300 budget — reached"
        )),
        "{out:?}"
    );
    // Without --budget-hard the running agent goes on.
    assert!(h.launches.borrow().ended.is_empty());
    assert!(!s.finished());

    // A model po cannot price: said once, and it counts once it reports.
    h.set(1, |st| st.metrics.model = Some("mystery-1".into()));
    s.handle(Event::Wake).unwrap();
    s.handle(Event::Wake).unwrap();
    let said = lines(&s)
        .iter()
        .filter(|l| l.contains("no price for the model mystery-1"))
        .count();
    assert_eq!(said, 1, "{:?}", lines(&s));
}

#[test]
fn a_hard_budget_ends_running_agents_which_end_cancelled_for_it() {
    let defs: Vec<Def> = (1..=3).map(|n| Def(n, 1, &[])).collect();
    let h = Harness::new("markdown", &defs, &[]);
    let mut s = h.scheduler(Config {
        max_workers: 2,
        ..budget(0.01, true)
    });
    s.begin().unwrap();
    lifecycle::start(&h.path(2), &Start::default()).unwrap();
    h.finish_costing(1, State::Completed, 0.02);
    s.handle(Event::Wake).unwrap();
    assert_eq!(h.launches.borrow().ended, [("agent-2".to_string(), false)]);
    assert_eq!(h.status(3).status, State::Cancelled, "never started");
    // agent-2's supervisor, told to stop, records the cancel: the reason is
    // the budget's, not an interrupt's.
    let st = h.status(2);
    assert_eq!(st.status, State::InProgress);
    assert!(st.stop_reason.as_deref().unwrap().contains("--budget-hard"));
    lifecycle::finish(
        &h.path(2),
        Outcome::of(
            State::Cancelled,
            Some("cancelled: po-spawn was interrupted".into()),
        ),
    )
    .unwrap();
    h.runner_ends(2, ended("its supervisor exited with status 0", true));
    s.handle(Event::Wake).unwrap();
    let st = h.status(2);
    assert_eq!(st.status, State::Cancelled);
    assert!(
        st.error.as_deref().unwrap().starts_with(
            "cancelled: the budget was spent while it ran ($0.0200 of $0.0100, --budget-hard)"
        ),
        "{st:?}"
    );
    assert_eq!(st.stop_reason, None);
    assert!(s.finished());
    assert_eq!(
        h.launches.borrow().ended.len(),
        1,
        "each agent is ended once"
    );
    assert!(
        lines(&s)
            .iter()
            .any(|l| l.contains("agent-2: ending it, the budget is spent")),
        "{:?}",
        lines(&s)
    );
}

#[test]
fn the_budget_counts_the_whole_orchestration_and_a_retry_after_raising_it_runs_the_rest() {
    let defs: Vec<Def> = (1..=3).map(|n| Def(n, 1, &[])).collect();
    let h = Harness::new("markdown", &defs, &[]);
    // agent-1 ran in an earlier po-spawn and cost $0.05.
    lifecycle::start(&h.path(1), &Start::default()).unwrap();
    h.set(1, |st| st.metrics.cost_usd = Some(0.05));
    lifecycle::finish(&h.path(1), Outcome::of(State::Completed, None)).unwrap();
    // A run of agent-2 alone: agent-1's spend (not part of it) counts.
    let mut s = h.scheduler_for(budget(0.04, false), &[2]);
    s.begin().unwrap();
    assert!(h.started().is_empty());
    let st = h.status(2);
    assert_eq!(st.status, State::Cancelled, "{st:?}");
    assert!(st.error.as_deref().unwrap().contains("budget was reached"));
    assert_eq!(h.status(3).status, State::Pending, "not part of the run");

    // --retry with the same budget: still nothing.
    let mut s = h.scheduler(Config {
        retry: true,
        ..budget(0.04, false)
    });
    s.begin().unwrap();
    assert!(h.started().is_empty());
    assert_eq!(h.status(2).status, State::Cancelled);
    assert_eq!(h.status(3).status, State::Cancelled);

    // Raised: the cancelled tasks run.
    let mut s = h.scheduler(Config {
        retry: true,
        ..budget(0.2, false)
    });
    s.begin().unwrap();
    assert_eq!(h.started(), ["agent-2", "agent-3"]);
    assert_eq!(
        h.status(2).attempt,
        3,
        "cancelled twice, run the third time"
    );
}

#[test]
fn retries_count_against_the_runs_cap_and_the_budget() {
    let h = Harness::new("markdown", &[Def(1, 1, &[]), Def(2, 1, &[])], &[]);
    let mut s = h.scheduler(Config {
        retries: 5,
        retry_backoff_secs: 0.0,
        limits: budget::Limits {
            max_total_retries: 1,
            ..budget::Limits::default()
        },
        ..cfg()
    });
    s.begin().unwrap();
    for n in [1, 2] {
        h.finish(n, State::Failed);
        h.set(n, |st| st.retryable = Some(true));
    }
    s.handle(Event::Wake).unwrap();
    assert_eq!(h.status(1).attempt, 2, "the first retry is within the cap");
    assert_eq!(
        (h.status(2).status, h.status(2).attempt),
        (State::Failed, 1)
    );
    assert!(
        lines(&s)
            .iter()
            .any(|l| l
                == "🛑 agent-2 is not retried: this run used its 1 retries (--max-total-retries)"),
        "{:?}",
        lines(&s)
    );

    // A rate-limited attempt that spent the budget is not retried either;
    // what it cost stays counted.
    let h = Harness::new("markdown", &[Def(1, 1, &[])], &[]);
    let mut s = h.scheduler(Config {
        retries: 5,
        retry_backoff_secs: 0.0,
        ..budget(0.04, false)
    });
    s.begin().unwrap();
    h.finish_costing(1, State::Failed, 0.05);
    h.set(1, |st| st.retryable = Some(true));
    s.handle(Event::Wake).unwrap();
    assert_eq!(
        (h.status(1).status, h.status(1).attempt),
        (State::Failed, 1)
    );
    assert!(s.finished());
    assert!(
        lines(&s)
            .iter()
            .any(|l| l.contains("agent-1 is not retried: the budget is reached")),
        "{:?}",
        lines(&s)
    );
}

#[test]
fn a_retried_attempts_cost_stays_spent() {
    let h = Harness::new("markdown", &[Def(1, 1, &[])], &[]);
    let mut s = h.scheduler(Config {
        retries: 1,
        retry_backoff_secs: 0.0,
        ..budget(1.0, false)
    });
    s.begin().unwrap();
    h.finish_costing(1, State::Failed, 0.3);
    h.set(1, |st| st.retryable = Some(true));
    s.handle(Event::Wake).unwrap();
    let st = h.status(1);
    assert_eq!(st.attempt, 2);
    assert_eq!(
        (st.metrics.previous_cost_usd, st.metrics.cost_usd),
        (Some(0.3), None)
    );
    assert_eq!(s.spend().spent, 0.3);
}
