//! The supervisor driven with a process double: no agent process starts.
//! Each test scripts what the "agent" prints and how it ends, then checks
//! the calls the supervisor made on its process tree and what the status
//! file records.

use std::collections::VecDeque;
use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::control::Control;
use super::process::{Ev, ProcessTree, Spawned};
use super::run::Supervision;
use super::state::ExitStatus;
use super::{Log, Spec};
use crate::protocol::{AgentStatus, State, store};
use crate::run::agent::AgentSpec;

/// What the supervisor asked of its process tree.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    /// Started a program with these arguments (argv[0] left out: it may be
    /// resolved to a path).
    Spawn(Vec<String>),
    /// SIGTERM to the tree.
    Term,
    /// SIGKILL to the tree; `forced`: a second signal cut the grace short.
    Kill { forced: bool },
}

type Hook = Box<dyn FnOnce() + Send>;

/// One scripted run of the agent.
#[derive(Default)]
struct Script {
    stdout: Vec<String>,
    /// How it ends on its own; `None`: it runs until its tree is ended.
    exits: Option<ExitStatus>,
    /// It ignores SIGTERM: only SIGKILL ends it.
    ignores_term: bool,
    /// It leaves a process behind when it exits, which only ending the tree removes.
    leaves_children: bool,
    /// Called when it has started.
    on_start: Option<Hook>,
    /// Called when its tree is being ended, before the grace period.
    on_end: Option<Hook>,
    /// Starting it fails with this error.
    fails_to_start: Option<std::io::ErrorKind>,
}

impl Script {
    fn prints(lines: &[&str], exits: ExitStatus) -> Script {
        Script {
            stdout: lines.iter().map(|l| l.to_string()).collect(),
            exits: Some(exits),
            ..Script::default()
        }
    }

    fn runs_until_ended() -> Script {
        Script::default()
    }
}

/// A process tree double, as strict as the real one: one event per exit,
/// a last reap once nothing is left, nothing to end once all is gone.
struct Fake {
    scripts: VecDeque<Script>,
    calls: Arc<Mutex<Vec<Call>>>,
    /// The running agent's events, and whether it ignores SIGTERM; `None`
    /// once it is gone.
    running: Option<(mpsc::Sender<Ev>, bool)>,
    /// Processes left behind by an agent that exited.
    leftover: Option<mpsc::Sender<Ev>>,
    on_end: Option<Hook>,
}

impl Fake {
    fn new(scripts: Vec<Script>) -> (Fake, Arc<Mutex<Vec<Call>>>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let fake = Fake {
            scripts: scripts.into(),
            calls: calls.clone(),
            running: None,
            leftover: None,
            on_end: None,
        };
        (fake, calls)
    }

    fn call(&self, c: Call) {
        self.calls.lock().unwrap().push(c);
    }

    /// The agent ends with `status`; the last reap follows.
    fn exit(&mut self, status: ExitStatus) {
        let tx = self
            .running
            .take()
            .map(|(tx, _)| tx)
            .or(self.leftover.take());
        if let Some(tx) = tx {
            let _ = tx.send(Ev::Exited(status));
            let _ = tx.send(Ev::Reaped);
        }
    }
}

impl ProcessTree for Fake {
    fn spawn(&mut self, cmd: Command, events: mpsc::Sender<Ev>) -> std::io::Result<Spawned> {
        let args = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        self.call(Call::Spawn(args));
        let script = self.scripts.pop_front().expect("a script for every start");
        if let Some(kind) = script.fails_to_start {
            return Err(std::io::Error::from(kind));
        }
        let (reader, mut writer) = std::io::pipe()?;
        for line in &script.stdout {
            writeln!(writer, "{line}")?;
        }
        drop(writer);
        self.on_end = script.on_end;
        match script.exits {
            Some(status) if script.leaves_children => {
                let _ = events.send(Ev::Exited(status));
                self.leftover = Some(events);
            }
            Some(status) => {
                let _ = events.send(Ev::Exited(status));
                let _ = events.send(Ev::Reaped);
            }
            None => self.running = Some((events, script.ignores_term)),
        }
        if let Some(hook) = script.on_start {
            hook();
        }
        Ok(Spawned {
            pid: 4242,
            stdout: Some(Box::new(reader)),
        })
    }

    fn end(&mut self, grace: Duration, forced: &dyn Fn() -> bool) -> usize {
        if let Some(tx) = self.leftover.take() {
            self.call(Call::Term);
            let _ = tx.send(Ev::Reaped);
            return 1;
        }
        let Some((_, ignores_term)) = self.running else {
            return 0;
        };
        if let Some(hook) = self.on_end.take() {
            hook();
        }
        if !forced() {
            self.call(Call::Term);
            if !ignores_term {
                self.exit(ExitStatus::Signal(15));
                return 1;
            }
            let until = Instant::now() + grace;
            while Instant::now() < until && !forced() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.call(Call::Kill { forced: forced() });
        self.exit(ExitStatus::Signal(9));
        1
    }
}

/// A pending task in a temporary directory, run without a worktree.
struct Task {
    _dir: tempfile::TempDir,
    spec: Spec,
}

impl Task {
    fn new(agent: AgentSpec) -> Task {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let status_file = root.join("agent-1.status.json");
        store::write_status(&status_file, &AgentStatus::new("agent-1", "t")).unwrap();
        let spec = Spec {
            status_file,
            orchestration_id: "t".into(),
            orchestration_file: root.join("orchestration.json"),
            prompt_dirs: vec![root.to_path_buf()],
            prompt_file: root.join("prompts/agent-1.md"),
            repo: root.to_path_buf(),
            worktree: None,
            branch: "feat/t-agent-1".into(),
            base: "HEAD".into(),
            include_files: Vec::new(),
            setup: None,
            agent,
            timeout_secs: 60.0,
            stall_secs: None,
            grace_secs: 0.02,
            log_file: root.join("agent-1.log"),
            port: 20000,
            port_count: 100,
            bin_dir: None,
            pr: None,
            session_log: None,
            sandbox: None,
        };
        Task { _dir: dir, spec }
    }

    fn claude() -> Task {
        Task::new(AgentSpec::named("claude"))
    }

    fn command() -> Task {
        Task::new(AgentSpec::command(vec![
            "my-agent".into(),
            "{prompt_file}".into(),
        ]))
    }

    fn with(mut self, f: impl FnOnce(&mut Spec)) -> Task {
        f(&mut self.spec);
        self
    }

    fn recorded(self, f: impl FnOnce(&mut AgentStatus)) -> Task {
        store::update_status(&self.spec.status_file, |s| {
            f(s);
            Ok(())
        })
        .unwrap();
        self
    }

    /// Run the task under `control` with `scripts`; what was asked of the
    /// process tree, and the status file after.
    fn run_with(&self, control: &Control, scripts: Vec<Script>) -> (Vec<Call>, AgentStatus) {
        let log = Log::open(&self.spec.log_file);
        let (fake, calls) = Fake::new(scripts);
        let runner = serde_json::Map::new();
        let mut s = Supervision::new(&self.spec, &log, control, &runner, fake).unwrap();
        s.run().expect("the supervision runs");
        let rest = s.into_procs().scripts.len();
        assert_eq!(rest, 0, "every scripted run started");
        let calls = calls.lock().unwrap().clone();
        (calls, store::read_status(&self.spec.status_file).unwrap())
    }

    fn run(&self, scripts: Vec<Script>) -> (Vec<Call>, AgentStatus) {
        self.run_with(&Control::new(false), scripts)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.spec.log_file).unwrap_or_default()
    }
}

fn args_of(call: &Call) -> &[String] {
    match call {
        Call::Spawn(a) => a,
        other => panic!("not a start: {other:?}"),
    }
}

fn after(args: &[String], flag: &str) -> Option<String> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).cloned()
}

const INIT: &str = r#"{"type":"system","subtype":"init","session_id":"S","cwd":"/w","model":"claude-opus-4-5-20251101"}"#;
const TURN: &str = r#"{"type":"assistant","message":{"id":"m1","model":"claude-opus-4-5-20251101","content":[{"type":"tool_use","name":"Bash","input":{"command":"make"}}],"usage":{"input_tokens":10,"output_tokens":5}},"parent_tool_use_id":null,"session_id":"S"}"#;
const SUCCESS: &str = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"Done.","session_id":"S","total_cost_usd":0.01,"usage":{"input_tokens":10,"output_tokens":5}}"#;

#[test]
fn a_claude_run_that_ends_with_its_final_event_completes_under_the_session_po_chose() {
    let t = Task::claude();
    let (calls, s) = t.run(vec![Script::prints(
        &[INIT, TURN, SUCCESS],
        ExitStatus::Code(0),
    )]);
    assert_eq!(calls.len(), 1, "{calls:?}");
    let chosen = after(args_of(&calls[0]), "--session-id").expect("a chosen session id");
    assert_eq!(s.status, State::Completed, "{:?}", s.error);
    assert_eq!(s.exit_code, Some(0));
    assert_eq!(s.metrics.turns, Some(1));
    assert_eq!(s.metrics.output_tokens, Some(5));
    // The stream's own id wins once it comes; po's was recorded at the start.
    assert_eq!(s.metrics.session_id.as_deref(), Some("S"));
    assert_eq!(chosen.len(), 36, "{chosen}");
    assert_eq!(s.pid, Some(4242));
    assert_eq!(s.prompt_file.as_ref(), Some(&t.spec.prompt_file));
    assert!(t.spec.prompt_file.exists());
}

#[test]
fn a_stream_that_ends_without_its_final_event_is_a_failure_even_with_exit_0() {
    let t = Task::claude();
    let (_, s) = t.run(vec![Script::prints(&[INIT, TURN], ExitStatus::Code(0))]);
    assert_eq!(s.status, State::Failed);
    let err = s.error.unwrap();
    assert!(
        err.starts_with("agent exited with status 0: its output ended without the final event"),
        "{err}"
    );
    assert_eq!(s.retryable, None, "not retryable");
    // What the stream said before it stopped is kept.
    assert_eq!(s.metrics.output_tokens, Some(5));
}

#[test]
fn an_agent_without_a_stream_completes_on_exit_0() {
    let t = Task::command();
    let (calls, s) = t.run(vec![Script::prints(&[], ExitStatus::Code(0))]);
    assert_eq!(s.status, State::Completed, "{:?}", s.error);
    assert_eq!(
        args_of(&calls[0]),
        [t.spec.prompt_file.to_string_lossy().into_owned()]
    );
    assert_eq!(s.metrics.session_id, None);
}

#[test]
fn the_timeout_ends_the_tree_and_the_task_is_timed_out() {
    let t = Task::command().with(|s| s.timeout_secs = 0.05);
    let (calls, s) = t.run(vec![Script::runs_until_ended()]);
    assert_eq!(calls[1..], [Call::Term]);
    assert_eq!(s.status, State::TimedOut);
    assert!(s.error.unwrap().starts_with("--timeout 0.05 reached"));
    assert_eq!(s.exit_code, Some(128 + 15));
    assert!(
        t.log()
            .contains("timeout after 0.05s: ending the agent's process tree")
    );
}

#[test]
fn a_stall_ends_the_tree_and_the_task_is_timed_out_as_stalled() {
    let t = Task::command().with(|s| s.stall_secs = Some(0.1));
    let (calls, s) = t.run(vec![Script::runs_until_ended()]);
    assert_eq!(calls[1..], [Call::Term]);
    assert_eq!(s.status, State::TimedOut);
    let err = s.error.unwrap();
    assert!(
        err.starts_with("stalled: no output and no status update for 0.1s"),
        "{err}"
    );
}

#[test]
fn a_signal_cancels_and_a_tree_that_ignores_sigterm_is_killed_after_the_grace() {
    let t = Task::command();
    let control = Control::new(false);
    let c = control.clone();
    let script = Script {
        ignores_term: true,
        on_start: Some(Box::new(move || {
            c.signal(Signal::SIGINT);
        })),
        ..Script::runs_until_ended()
    };
    let (calls, s) = t.run_with(&control, vec![script]);
    assert_eq!(calls[1..], [Call::Term, Call::Kill { forced: false }]);
    assert_eq!(s.status, State::Cancelled);
    assert!(
        s.error
            .unwrap()
            .starts_with("cancelled: po-spawn was interrupted")
    );
    assert_eq!(s.exit_code, Some(128 + 9));
}

#[test]
fn a_second_signal_kills_the_tree_without_waiting_out_the_grace() {
    // A grace long enough that only the second signal can end it in time
    // (without it, the kill comes unforced and the assertion fails).
    let t = Task::command().with(|s| s.grace_secs = 30.0);
    let control = Control::new(false);
    let (first, second) = (control.clone(), control.clone());
    let script = Script {
        ignores_term: true,
        on_start: Some(Box::new(move || {
            first.signal(Signal::SIGTERM);
        })),
        on_end: Some(Box::new(move || {
            // Arrives while the tree is being ended, after its SIGTERM is due.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                second.signal(Signal::SIGTERM);
            });
        })),
        ..Script::runs_until_ended()
    };
    let (calls, s) = t.run_with(&control, vec![script]);
    assert_eq!(calls[1..], [Call::Term, Call::Kill { forced: true }]);
    assert_eq!(s.status, State::Cancelled);
}

#[test]
fn a_signal_before_the_agent_starts_cancels_the_task_without_starting_it() {
    let t = Task::command();
    let control = Control::new(false);
    let (tx, _rx) = mpsc::channel();
    control.attach(Some(tx));
    control.signal(Signal::SIGINT);
    let (calls, s) = t.run_with(&control, vec![]);
    assert_eq!(calls, []);
    assert_eq!(s.status, State::Cancelled);
    assert_eq!(s.exit_code, None, "it never ran: no exit code");
}

#[test]
fn processes_the_agent_left_behind_are_ended_after_it_exits() {
    let t = Task::command();
    let script = Script {
        leaves_children: true,
        ..Script::prints(&[], ExitStatus::Code(0))
    };
    let (calls, s) = t.run(vec![script]);
    assert_eq!(calls[1..], [Call::Term]);
    assert_eq!(s.status, State::Completed);
    assert!(
        t.log()
            .contains("ended 1 leftover process(es) of the agent")
    );
}

#[test]
fn an_agent_that_cannot_start_fails_in_the_starting_phase_with_how_to_get_it() {
    let t = Task::claude();
    let script = Script {
        fails_to_start: Some(std::io::ErrorKind::NotFound),
        ..Script::default()
    };
    let (_, s) = t.run(vec![script]);
    assert_eq!(s.status, State::Failed);
    assert_eq!(s.phase.as_deref(), Some("starting"));
    let err = s.error.unwrap();
    assert!(
        err.contains("is not on PATH") && err.contains("install Claude Code"),
        "{err}"
    );
    assert_eq!(s.metrics.session_id, None, "no session started");
}

const UNKNOWN: &str = r#"{"type":"result","subtype":"error_during_execution","is_error":true,"num_turns":0,"session_id":"x","total_cost_usd":0,"errors":["No conversation found with session ID: old"]}"#;

#[test]
fn an_unknown_resumed_session_is_started_afresh_in_the_same_attempt() {
    let t = Task::claude().recorded(|s| {
        s.metrics.session_id = Some("old".into());
        s.metrics.session_cost_usd = Some(0.5);
    });
    let (calls, s) = t.run(vec![
        Script::prints(&[UNKNOWN], ExitStatus::Code(1)),
        Script::prints(&[INIT, TURN, SUCCESS], ExitStatus::Code(0)),
    ]);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        after(args_of(&calls[0]), "--resume").as_deref(),
        Some("old")
    );
    let fresh = after(args_of(&calls[1]), "--session-id").expect("a new session");
    assert_ne!(fresh, "old");
    assert!(!args_of(&calls[1]).contains(&"--resume".to_string()));
    assert_eq!(s.status, State::Completed, "{:?}", s.error);
    assert_eq!(s.attempt, 1, "the same attempt");
    assert_eq!(s.error, None);
    // The old session's cost is not this one's.
    assert_eq!(s.metrics.cost_usd, Some(0.01));
    assert!(
        t.log()
            .contains("session old is unknown to the agent; starting a new session")
    );
}

#[test]
fn a_resumed_session_that_fails_otherwise_is_not_restarted() {
    let t = Task::claude().recorded(|s| s.metrics.session_id = Some("old".into()));
    let budget = r#"{"type":"result","subtype":"error_max_budget_usd","is_error":true,"num_turns":2,"session_id":"old","total_cost_usd":0.02,"errors":["Reached maximum budget ($0.01)"]}"#;
    let (calls, s) = t.run(vec![Script::prints(&[budget], ExitStatus::Code(1))]);
    assert_eq!(calls.len(), 1);
    assert_eq!(s.status, State::Failed);
    assert_eq!(
        s.error
            .as_deref()
            .map(|e| e.split("; log:").next().unwrap()),
        Some("agent exited with status 1: Reached maximum budget ($0.01)")
    );
    assert_eq!(s.retryable, None, "not retryable");
}

#[test]
fn an_api_500_the_cli_gave_up_on_is_a_retryable_failure_and_keeps_the_real_model() {
    let t = Task::claude();
    let synthetic = r#"{"type":"assistant","message":{"id":"a","model":"<synthetic>","role":"assistant","usage":{"input_tokens":0,"output_tokens":0},"content":[{"type":"text","text":"API Error: 500 {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal server error\"}}"}]},"parent_tool_use_id":null,"session_id":"S","error":"unknown"}"#;
    let result = r#"{"type":"result","subtype":"success","is_error":true,"num_turns":1,"result":"API Error: 500 {\"type\":\"error\"}","session_id":"S","total_cost_usd":0,"usage":{"input_tokens":0,"output_tokens":0},"modelUsage":{}}"#;
    let (_, s) = t.run(vec![Script::prints(
        &[INIT, synthetic, result],
        ExitStatus::Code(1),
    )]);
    assert_eq!(s.status, State::Failed);
    assert_eq!(s.retryable, Some(true), "{:?}", s.error);
    assert!(
        s.error
            .unwrap()
            .starts_with("agent exited with status 1: API error: API Error: 500")
    );
    assert_eq!(s.metrics.model.as_deref(), Some("claude-opus-4-5-20251101"));
}
