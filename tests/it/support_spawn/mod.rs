//! Shared fixtures for the po-spawn tests: a real temporary git repository, an
//! orchestration written through the library, agents that are small sh scripts.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use po::protocol::{AgentStatus, Orchestration, Source, State, Wave, layout, store};

pub struct Repo {
    pub tmp: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .envs(git_env())
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn git_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("GIT_AUTHOR_NAME", "Test"),
        ("GIT_AUTHOR_EMAIL", "test@example.com"),
        ("GIT_COMMITTER_NAME", "Test"),
        ("GIT_COMMITTER_EMAIL", "test@example.com"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
    ]
}

impl Repo {
    pub fn new() -> Repo {
        Repo::within(tempfile::tempdir().unwrap())
    }

    /// A repository in a temporary directory under `base` (outside `/tmp`,
    /// where a sandbox has a private directory of its own).
    pub fn new_in(base: &Path) -> Repo {
        std::fs::create_dir_all(base).unwrap();
        Repo::within(tempfile::tempdir_in(base).unwrap())
    }

    fn within(tmp: tempfile::TempDir) -> Repo {
        let path = tmp.path().join("repo");
        std::fs::create_dir_all(&path).unwrap();
        let path = path.canonicalize().unwrap();
        git(&path, &["init", "--quiet", "-b", "main"]);
        std::fs::write(path.join("README.md"), "hello\n").unwrap();
        git(&path, &["add", "."]);
        git(&path, &["commit", "--quiet", "-m", "initial"]);
        Repo { tmp, path }
    }

    /// A scratch directory outside the repository.
    pub fn scratch(&self) -> PathBuf {
        let p = self.tmp.path().join("scratch");
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    pub fn runtime(&self) -> PathBuf {
        self.path.join(".claude").join("runtime")
    }

    pub fn orch_dir(&self, id: &str) -> PathBuf {
        self.runtime().join("parallel").join(id)
    }

    /// An executable sh script in the scratch directory.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.scratch().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    pub fn spawn(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_po-spawn"));
        cmd.current_dir(&self.path);
        for (k, _) in std::env::vars() {
            if k.starts_with("PO_") || k.starts_with("AMPLIHACK_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(git_env());
        cmd.env("SCRATCH", self.scratch());
        cmd
    }

    pub fn branches(&self) -> Vec<String> {
        git(&self.path, &["branch", "--format=%(refname:short)"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn worktrees(&self) -> Vec<String> {
        git(&self.path, &["worktree", "list", "--porcelain"])
            .lines()
            .filter_map(|l| l.strip_prefix("worktree ").map(str::to_string))
            .collect()
    }
}

/// One task of a test orchestration.
#[derive(Clone, Default)]
pub struct TaskDef {
    pub title: String,
    pub wave: u32,
    pub depends_on: Vec<String>,
    pub task_id: Option<String>,
}

pub fn task(title: &str) -> TaskDef {
    TaskDef {
        title: title.into(),
        wave: 1,
        ..TaskDef::default()
    }
}

/// Write `parallel/<id>/` with `orchestration.json` and one pending status
/// file per task; returns the status paths.
pub fn orchestrate(
    repo: &Repo,
    id: &str,
    tasks: &[TaskDef],
    validations: &[(u32, &str)],
) -> Vec<PathBuf> {
    let dir = repo.orch_dir(id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut waves: Vec<Wave> = Vec::new();
    let mut paths = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        let n = i as u64 + 1;
        let agent_id = format!("agent-{n}");
        let mut s = AgentStatus::new(&agent_id, id);
        s.title = t.title.clone();
        s.body = format!("Do {} well.", t.title);
        s.wave = t.wave.max(1);
        s.depends_on = t.depends_on.clone();
        s.task_id = t.task_id.clone();
        s.branch = Some(po::protocol::sanitize::branch_name(id, None, n));
        let p = layout::status_path(&dir, &agent_id);
        store::write_status(&p, &s).unwrap();
        paths.push(p);
        match waves.iter_mut().find(|w| w.number == s.wave) {
            Some(w) => w.agents.push(agent_id),
            None => waves.push(Wave {
                number: s.wave,
                agents: vec![agent_id],
                validation: None,
                result: None,
            }),
        }
    }
    for (n, v) in validations {
        if let Some(w) = waves.iter_mut().find(|w| w.number == *n) {
            w.validation = Some(v.to_string());
        }
    }
    let orch = Orchestration {
        schema_version: po::protocol::SCHEMA_VERSION,
        id: id.into(),
        source: Source {
            kind: "markdown".into(),
            value: "tasks.md".into(),
        },
        master_issue: None,
        title: Some("Test orchestration".into()),
        url: None,
        body: Some("The master task list.".into()),
        created_at: None,
        waves,
        report: serde_json::Value::Null,
        options: Default::default(),
        extra: Default::default(),
    };
    store::write_json(&dir.join("orchestration.json"), &orch).unwrap();
    paths
}

pub fn status(p: &Path) -> AgentStatus {
    store::read_status(p).unwrap()
}

pub fn states(paths: &[PathBuf]) -> Vec<State> {
    paths.iter().map(|p| status(p).status).collect()
}

/// Run a command (stdin from /dev/null) with a hang guard; panics if it takes
/// longer than `limit`.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    cmd.stdin(std::process::Stdio::null());
    output_with_stdin_within(cmd, limit)
}

/// [`output_within`] keeping the stdin the command was given.
pub fn output_with_stdin_within(cmd: &mut Command, limit: Duration) -> Output {
    cmd.stdout(std::process::Stdio::piped());
    cmd.stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("start po-spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait po-spawn"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("po-spawn did not finish within {limit:?} (hang guard)");
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Wait until `cond` holds (hang guard `limit`).
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until the file at `path` has exactly `n` lines (agents append to ledgers).
pub fn wait_for_lines(path: &std::path::Path, n: usize) {
    wait_until(
        Duration::from_secs(120),
        &format!("{n} lines in {}", path.display()),
        || {
            std::fs::read_to_string(path)
                .map(|l| l.lines().count() == n)
                .unwrap_or(false)
        },
    );
}

/// Pids of live (non-zombie) processes whose environment holds `marker`.
pub fn processes_with_env(marker: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !env.split(|b| *b == 0).any(|v| v == marker.as_bytes()) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string))
            .unwrap_or_default();
        if state != "Z" && !state.is_empty() {
            out.push(pid);
        }
    }
    out
}
