//! Test support: a recording fake `gh` (the `gh` script beside this file),
//! temp git repositories, and crafted orchestrations.
//!
//! Use from a test file with `#[path = "support_gh/mod.rs"] mod support_gh;`.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Duration, TimeZone, Utc};
use po::protocol::{AgentStatus, Orchestration, Source, State, store};
use serde_json::{Value, json};

/// The fake `gh`: first on `PATH` through its own bin directory.
pub struct FakeGh {
    pub bin: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
}

impl FakeGh {
    /// A fresh fake under `dir` (its bin, state directory and call log).
    pub fn new(dir: &Path) -> FakeGh {
        let root = dir.join("fake-gh");
        let bin = root.join("bin");
        let state = root.join("state");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support_gh/gh");
        std::os::unix::fs::symlink(&script, bin.join("gh")).unwrap();
        FakeGh {
            bin,
            state,
            log: root.join("calls.jsonl"),
        }
    }

    /// `PATH` with the fake first.
    pub fn path_env(&self) -> OsString {
        let mut p = OsString::from(&self.bin);
        if let Some(old) = std::env::var_os("PATH") {
            p.push(":");
            p.push(old);
        }
        p
    }

    /// Point `cmd` at the fake: `PATH`, its state and log; fast backoff.
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("PATH", self.path_env())
            .env_remove("PO_GH")
            .env("FAKE_GH_STATE", &self.state)
            .env("FAKE_GH_LOG", &self.log)
            .env("PO_GH_BACKOFF_MS", "10")
    }

    /// The program path, for `Gh::with_program` in library tests (the env
    /// variables for state and log are then read from this process).
    pub fn program(&self) -> PathBuf {
        self.bin.join("gh")
    }

    /// Serve `gh issue view N`.
    pub fn serve_issue(&self, number: u64, title: &str, body: &str) {
        let issue = json!({
            "number": number,
            "title": title,
            "body": body,
            "url": format!("https://github.com/owner/repo/issues/{number}"),
        });
        std::fs::write(
            self.state.join(format!("issue-{number}.json")),
            issue.to_string(),
        )
        .unwrap();
    }

    pub fn set_next_issue(&self, n: u64) {
        std::fs::write(self.state.join("next-issue"), n.to_string()).unwrap();
    }

    pub fn set_next_pr(&self, n: u64) {
        std::fs::write(self.state.join("next-pr"), n.to_string()).unwrap();
    }

    /// Serve `gh pr view N` (and `gh pr view HEAD`): a pull request from
    /// `head` at commit `head_oid` in `state` (`OPEN`, `CLOSED`, `MERGED`).
    pub fn serve_pr(&self, number: u64, head: &str, head_oid: &str, state: &str) {
        let pr = json!({
            "number": number,
            "state": state,
            "headRefName": head,
            "headRefOid": head_oid,
            "url": format!("https://github.com/owner/repo/pull/{number}"),
        });
        std::fs::write(self.state.join(format!("pr-{number}.json")), pr.to_string()).unwrap();
    }

    /// Fail the next `n` calls with a rate-limit error.
    pub fn rate_limit(&self, n: u32) {
        std::fs::write(self.state.join("rate-limited"), n.to_string()).unwrap();
    }

    /// Fail every call that sets a label, as a repository without them does.
    pub fn without_labels(&self) {
        std::fs::write(self.state.join("missing-labels"), "").unwrap();
    }

    /// Make every `gh VERB1 VERB2` call fail with `message`.
    pub fn fail(&self, verb: &str, message: &str) {
        std::fs::write(
            self.state.join(format!("fail-{}", verb.replace(' ', "-"))),
            message,
        )
        .unwrap();
    }

    /// Every call so far: argv without the program name.
    pub fn calls(&self) -> Vec<Vec<String>> {
        match std::fs::read_to_string(&self.log) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON line per call"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The issue the fake saved for `gh issue create` number `n`.
    pub fn created_issue(&self, n: u64) -> Value {
        let text = std::fs::read_to_string(self.state.join(format!("issue-{n}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// Run git in `dir`; panic with its stderr on failure; stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository on `main` with one commit, and a bare `origin` beside it.
pub fn repo_with_origin(dir: &Path) -> (PathBuf, PathBuf) {
    let repo = dir.join("repo");
    let origin = dir.join("origin.git");
    std::fs::create_dir_all(&repo).unwrap();
    git(dir, &["init", "-q", "--bare", "-b", "main", "origin.git"]);
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.name", "Test"]);
    git(&repo, &["config", "user.email", "test@example.com"]);
    git(&repo, &["config", "commit.gpgsign", "false"]);
    std::fs::write(repo.join("README.md"), "# demo\n").unwrap();
    git(&repo, &["add", "README.md"]);
    git(&repo, &["commit", "-q", "-m", "Initial commit"]);
    git(
        &repo,
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    git(&repo, &["push", "-q", "origin", "main"]);
    (repo, origin)
}

/// Parse `summary.json`-like stdout.
pub fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(secs)
}

/// A finished agent: started at `start`, ran `secs`, in `state`.
pub fn agent(n: u64, state: State, start: i64, secs: i64) -> AgentStatus {
    let mut s = AgentStatus::new(format!("agent-{n}"), "1234");
    s.status = state;
    s.start_time = Some(at(start));
    if state.is_terminal() {
        s.completion_time = Some(at(start + secs));
        s.metrics.duration_seconds = Some(secs as f64);
    }
    s.branch = Some(format!("feat/issue-{}-agent-{n}", 1234 + n));
    s
}

pub fn orchestration(id: &str, master: Option<(u64, &str)>) -> Orchestration {
    Orchestration {
        schema_version: 1,
        id: id.into(),
        source: match master {
            Some((n, _)) => Source {
                kind: "issue".into(),
                value: n.to_string(),
            },
            None => Source {
                kind: "markdown".into(),
                value: "tasks.md".into(),
            },
        },
        master_issue: master.map(|m| m.0),
        title: master.map(|m| m.1.to_string()),
        url: None,
        body: None,
        created_at: Some(t0()),
        waves: Vec::new(),
        report: Value::Null,
        options: Default::default(),
        extra: Default::default(),
    }
}

/// Write an orchestration directory under `rt/parallel/<id>`.
pub fn craft(rt: &Path, orch: &Orchestration, agents: &[AgentStatus]) -> PathBuf {
    let dir = rt.join("parallel").join(&orch.id);
    std::fs::create_dir_all(&dir).unwrap();
    store::write_json(&dir.join("orchestration.json"), orch).unwrap();
    for a in agents {
        store::write_status(&dir.join(format!("{}.status.json", a.agent_id)), a).unwrap();
    }
    dir
}
