//! Shared fixtures of the po-watch tests: crafted orchestration directories
//! and a running po-watch whose lines are read as they come.
#![allow(dead_code, clippy::new_without_default)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use po::protocol::{AgentStatus, Orchestration, Source, State, store};

/// Only a guard against hangs; nothing depends on speed.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("runtime");
        std::fs::create_dir_all(root.join("parallel")).unwrap();
        Fixture { tmp, root }
    }

    /// An orchestration directory with its `orchestration.json`.
    pub fn orch(&self, id: &str) -> PathBuf {
        let dir = self.root.join("parallel").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let o = Orchestration {
            schema_version: 1,
            id: id.into(),
            source: Source {
                kind: "markdown".into(),
                value: "tasks.md".into(),
            },
            master_issue: None,
            title: Some(format!("Orchestration {id} title")),
            url: None,
            body: None,
            created_at: None,
            waves: Vec::new(),
            report: serde_json::Value::Null,
            options: Default::default(),
            extra: Default::default(),
        };
        store::write_json(&dir.join("orchestration.json"), &o).unwrap();
        dir
    }

    pub fn logs(&self) -> PathBuf {
        let d = self.root.join("logs").join("session");
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// po-watch with this runtime root, no colour variables, 80 columns.
    pub fn watch(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_po-watch"));
        c.env("PO_RUNTIME_DIR", &self.root)
            .env_remove("NO_COLOR")
            .env_remove("COLUMNS")
            .env_remove("PO_WATCH_POLL")
            .env_remove("PO_SUCCESS_THRESHOLD")
            .env_remove("AMPLIHACK_SUCCESS_THRESHOLD")
            .current_dir(self.tmp.path());
        c
    }
}

/// Write `agent-<n>.status.json` in `dir` through the library (under its lock).
pub fn task(dir: &Path, n: u32, f: impl FnOnce(&mut AgentStatus)) -> PathBuf {
    let id = format!("agent-{n}");
    let mut s = AgentStatus::new(&id, dir.file_name().unwrap().to_string_lossy());
    s.title = format!("Task {n}");
    f(&mut s);
    let path = dir.join(format!("{id}.status.json"));
    store::write_status(&path, &s).unwrap();
    path
}

pub fn ago(secs: i64) -> po::timefmt::Timestamp {
    po::timefmt::now() - chrono::Duration::seconds(secs)
}

/// Move a task to `state` through the library's read-modify-write.
pub fn set_state(path: &Path, state: State, f: impl FnOnce(&mut AgentStatus)) {
    store::update_status(path, |s| {
        s.status = state;
        if state.is_terminal() {
            s.completion_time = Some(po::timefmt::now());
        }
        f(s);
        Ok(())
    })
    .unwrap();
}

/// The real `po-status set FILE ARGS…`.
pub fn po_status_set(path: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_po-status"))
        .arg("set")
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "po-status set failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running po-watch; its stdout lines arrive on a channel.
pub struct Live {
    child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Live {
    pub fn spawn(mut cmd: Command) -> Live {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Live {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// The next line; panics (naming what was awaited) if none comes.
    pub fn next(&mut self, what: &str) -> String {
        match self.lines.recv_timeout(HANG_GUARD) {
            Ok(l) => {
                self.seen.push(l.clone());
                l
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("no line for {what}; lines so far: {:#?}", self.seen)
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("po-watch ended before {what}; lines: {:#?}", self.seen)
            }
        }
    }

    /// Read lines until one contains `needle`; return it.
    pub fn expect(&mut self, needle: &str) -> String {
        loop {
            let l = self.next(needle);
            if l.contains(needle) {
                return l;
            }
        }
    }

    /// Lines until stdout closes.
    pub fn rest(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(HANG_GUARD) {
            self.seen.push(l.clone());
            out.push(l);
        }
        out
    }

    /// Wait for the exit code (hang guard: killed after [`HANG_GUARD`]).
    pub fn wait(&mut self) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            if start.elapsed() > HANG_GUARD {
                let _ = self.child.kill();
                panic!("po-watch did not exit; lines: {:#?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Names, sizes, mtimes and contents of every file under `dir`, as one string.
pub fn fingerprint(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut entries: Vec<String> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .map(|e| {
            let m = e.metadata().unwrap();
            let content = if m.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            format!(
                "{} {} {}.{} {:?}",
                e.path().display(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                content
            )
        })
        .collect();
    entries.sort();
    entries.join("\n")
}

/// Record a po-spawn run's `--budget-usd` in `orchestration.json`, as
/// po-spawn does (`options.last_run.budget_usd`).
pub fn set_budget(dir: &Path, usd: f64) {
    store::update_json(&dir.join("orchestration.json"), |v| {
        v["options"] = serde_json::json!({"last_run": {"budget_usd": usd}});
        Ok(())
    })
    .unwrap();
}

/// Three tasks with spend: one that reported its cost, one running that
/// reported its cost so far, and one that reported tokens but no cost.
pub fn spending(fx: &Fixture, id: &str) -> (PathBuf, Vec<PathBuf>) {
    let dir = fx.orch(id);
    let a1 = task(&dir, 1, |s| {
        s.status = State::Completed;
        s.start_time = Some(ago(120));
        s.completion_time = Some(ago(60));
        s.metrics.cost_usd = Some(0.0168);
        s.metrics.model = Some("claude-opus-5-5".into());
    });
    let a2 = task(&dir, 2, |s| {
        s.status = State::InProgress;
        s.start_time = Some(ago(30));
        s.metrics.cost_usd = Some(0.01);
    });
    let a3 = task(&dir, 3, |s| {
        s.status = State::Completed;
        s.start_time = Some(ago(90));
        s.completion_time = Some(ago(80));
        s.metrics.input_tokens = Some(6900);
        s.metrics.output_tokens = Some(100);
    });
    (dir, vec![a1, a2, a3])
}
