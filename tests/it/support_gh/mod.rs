//! Test support: the GitHub double (the `gh` program beside this file, which
//! keeps issues, labels, comments and pull requests in `state/state.json` and
//! refuses what GitHub refuses), temp git repositories, and crafted
//! orchestrations.
//!
//! Use from a test file with `#[path = "support_gh/mod.rs"] mod support_gh;`.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Duration, TimeZone, Utc};
use po::protocol::{AgentStatus, Orchestration, Source, State, store};
use serde_json::{Value, json};

/// The GitHub double: first on `PATH` through its own bin directory.
pub struct FakeGh {
    pub bin: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
}

impl FakeGh {
    /// A fresh repository `owner/repo` under `dir` (its bin, state directory
    /// and call log), with GitHub's default labels and nothing else.
    pub fn new(dir: &Path) -> FakeGh {
        let root = dir.join("fake-gh");
        let bin = root.join("bin");
        let state = root.join("state");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support_gh/gh");
        std::os::unix::fs::symlink(&script, bin.join("gh")).unwrap();
        let gh = FakeGh {
            bin,
            state,
            log: root.join("calls.jsonl"),
        };
        // The double writes its fresh state on the first call: make one that
        // changes nothing, so the state file exists from the start.
        let out = Command::new(gh.program())
            .args(["auth", "status"])
            .env("FAKE_GH_STATE", &gh.state)
            .env("FAKE_GH_LOG", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        gh
    }

    /// `PATH` with the double first.
    pub fn path_env(&self) -> OsString {
        let mut p = OsString::from(&self.bin);
        if let Some(old) = std::env::var_os("PATH") {
            p.push(":");
            p.push(old);
        }
        p
    }

    /// Point `cmd` at the double: `PATH`, its state and log; fast backoff.
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("PATH", self.path_env())
            .env_remove("PO_GH")
            .env("FAKE_GH_STATE", &self.state)
            .env("FAKE_GH_LOG", &self.log)
            .env("PO_GH_BACKOFF_MS", "10")
    }

    /// The program path, for `Gh::with_program` in library tests (the double
    /// then finds its state and log beside itself).
    pub fn program(&self) -> PathBuf {
        self.bin.join("gh")
    }

    /// Read-modify-write the state under the double's own lock.
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let lock = File::options()
            .create(true)
            .append(true)
            .open(self.state.join(".lock"))
            .unwrap();
        lock.lock().unwrap();
        let path = self.state.join("state.json");
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut v);
        let tmp = self.state.join("state.json.edit");
        std::fs::write(&tmp, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    /// The whole state, as the double keeps it.
    pub fn snapshot(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.state.join("state.json")).unwrap())
            .unwrap()
    }

    /// An open issue `number` (the next number GitHub hands out moves past it).
    pub fn add_issue(&self, number: u64, title: &str, body: &str) {
        self.edit(|s| {
            s["issues"][number.to_string()] = json!({
                "title": title,
                "body": body,
                "url": format!("https://github.com/owner/repo/issues/{number}"),
                "state": "OPEN",
                "labels": [],
                "author": "someone",
                "created_at": "2026-01-01T00:00:00Z",
                "comments": [],
            });
            let next = s["next_number"].as_u64().unwrap();
            s["next_number"] = json!(next.max(number + 1));
        });
    }

    /// Issue `number` of another repository `name` (`org/other`), which
    /// the double can only read (`gh issue view N --repo org/other`).
    pub fn add_foreign_issue(&self, name: &str, number: u64, title: &str) {
        self.edit(|s| {
            s["foreign"][name]["issues"][number.to_string()] = json!({
                "title": title,
                "body": "",
                "url": format!("https://github.com/{name}/issues/{number}"),
                "state": "OPEN",
                "author": "stranger",
            });
        });
    }

    /// Pull request `number` of another repository `name`.
    pub fn add_foreign_pr(&self, name: &str, number: u64, title: &str) {
        self.edit(|s| {
            s["foreign"][name]["pulls"][number.to_string()] = json!({
                "title": title,
                "url": format!("https://github.com/{name}/pull/{number}"),
                "author": "stranger",
            });
        });
    }

    /// `gh repo view` fails as in a repository without a GitHub remote.
    pub fn no_github_remote(&self) {
        self.edit(|s| s["no_github_remote"] = json!(true));
    }

    /// A comment by someone else on issue `number`.
    pub fn add_foreign_comment(&self, number: u64, body: &str) {
        self.edit(|s| {
            let id = s["next_comment_id"].as_u64().unwrap();
            s["next_comment_id"] = json!(id + 1);
            s["issues"][number.to_string()]["comments"]
                .as_array_mut()
                .expect("the issue exists")
                .push(json!({
                    "id": id,
                    "author": "someone",
                    "body": body,
                    "created_at": "2026-01-01T00:00:00Z",
                }));
        });
    }

    /// The number the next issue or pull request gets (they share one
    /// sequence, as on GitHub).
    pub fn set_next_number(&self, n: u64) {
        self.edit(|s| s["next_number"] = json!(n));
    }

    /// Where pushed branches are looked up for `pr create` (a bare repository).
    pub fn use_remote(&self, bare: &Path) {
        self.edit(|s| s["remote"] = json!(bare));
    }

    /// A pull request `number` from `head` (whose commit on GitHub is
    /// `head_oid`) into main, in `state` (`OPEN`, `CLOSED`, `MERGED`).
    pub fn add_pr(&self, number: u64, head: &str, head_oid: &str, state: &str) {
        self.edit(|s| {
            s["pulls"][number.to_string()] = json!({
                "title": format!("Work on {head}"),
                "body": "",
                "url": format!("https://github.com/owner/repo/pull/{number}"),
                "state": state,
                "head": head,
                "base": "main",
                "head_oid": head_oid,
                "draft": false,
                "labels": [],
                "author": "tester",
                "created_at": "2026-01-01T00:00:00Z",
                "comments": [],
            });
            let next = s["next_number"].as_u64().unwrap();
            s["next_number"] = json!(next.max(number + 1));
        });
    }

    /// A CI check `name` on every pull request's head: it fails when the
    /// head's file `path` contains `fails_when`, with `log` as its failed log.
    pub fn add_ci(&self, name: &str, path: &str, fails_when: &str, log: &str) {
        self.edit(|s| {
            if s["ci"].is_null() {
                s["ci"] = json!([]);
            }
            s["ci"].as_array_mut().unwrap().push(json!({
                "name": name, "workflow": "CI", "path": path,
                "fails_when": fails_when, "log": log,
            }));
        });
    }

    /// Keep every CI check running (`pending`) or let them finish.
    pub fn ci_pending(&self, pending: bool) {
        self.edit(|s| {
            for rule in s["ci"].as_array_mut().unwrap() {
                rule["pending"] = json!(pending);
            }
        });
    }

    /// `login` gets `role` (`admin`, `maintain`, `write`, `triage`, `read`).
    pub fn add_collaborator(&self, login: &str, role: &str) {
        self.edit(|s| s["collaborators"][login] = json!(role));
    }

    /// A review of pull request `pr` by `author` in `state`
    /// (`CHANGES_REQUESTED`, `COMMENTED`, `APPROVED`).
    pub fn add_review(&self, pr: u64, author: &str, state: &str, body: &str) {
        self.edit(|s| {
            let id = s["next_comment_id"].as_u64().unwrap();
            s["next_comment_id"] = json!(id + 1);
            let p = &mut s["pulls"][pr.to_string()];
            let head = p["head_oid"].clone();
            if p["reviews"].is_null() {
                p["reviews"] = json!([]);
            }
            p["reviews"].as_array_mut().unwrap().push(json!({
                "id": id, "author": author, "state": state, "body": body, "commit": head,
            }));
        });
    }

    /// An inline review comment on `path` line `line` of pull request `pr`.
    pub fn add_review_comment(&self, pr: u64, author: &str, path: &str, line: u64, body: &str) {
        self.edit(|s| {
            let id = s["next_comment_id"].as_u64().unwrap();
            s["next_comment_id"] = json!(id + 1);
            let p = &mut s["pulls"][pr.to_string()];
            let head = p["head_oid"].clone();
            if p["review_comments"].is_null() {
                p["review_comments"] = json!([]);
            }
            p["review_comments"].as_array_mut().unwrap().push(json!({
                "id": id, "author": author, "path": path, "line": line, "body": body,
                "commit": head,
            }));
        });
    }

    /// Set pull request `n`'s state (`OPEN`, `CLOSED`, `MERGED`).
    pub fn set_pr_state(&self, n: u64, state: &str) {
        self.edit(|s| s["pulls"][n.to_string()]["state"] = json!(state));
    }

    /// The bodies of pull request `n`'s comments, oldest first.
    pub fn pr_comments(&self, n: u64) -> Vec<String> {
        self.pull(n)["comments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["body"].as_str().unwrap().to_string())
            .collect()
    }

    /// Pull request `n`'s labels.
    pub fn pr_labels(&self, n: u64) -> Vec<String> {
        self.pull(n)["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    }

    /// Fail the next `n` calls with a rate-limit error.
    pub fn rate_limit(&self, n: u32) {
        self.edit(|s| s["rate_limited_calls"] = json!(n));
    }

    /// What `gh api rate_limit` says is left; every call spends one.
    pub fn set_remaining(&self, core: u64, graphql: u64) {
        self.edit(|s| s["remaining"] = json!({"core": core, "graphql": graphql}));
    }

    /// No login: every call fails as `gh` does before `gh auth login`.
    pub fn log_out(&self) {
        self.edit(|s| s["auth"] = json!("none"));
    }

    /// An invalid token: every call fails with HTTP 401.
    pub fn bad_token(&self) {
        self.edit(|s| s["auth"] = json!("bad-token"));
    }

    /// `gh label create` is refused, as for a token that may not write labels.
    pub fn forbid_labels(&self) {
        self.edit(|s| {
            s["labels_forbidden"] = json!(
                "HTTP 403: Resource not accessible by integration \
                 (https://api.github.com/repos/owner/repo/labels)"
            )
        });
    }

    /// Make every `gh VERB1 VERB2` call fail with `message`.
    pub fn fail(&self, verb: &str, message: &str) {
        self.edit(|s| s["fail"][verb] = json!(message));
    }

    /// Stop failing `gh VERB1 VERB2`.
    pub fn unfail(&self, verb: &str) {
        self.edit(|s| {
            s["fail"].as_object_mut().unwrap().remove(verb);
        });
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

    /// Issue `n` as kept: title, body, labels, comments.
    pub fn issue(&self, n: u64) -> Value {
        let v = self.snapshot()["issues"][n.to_string()].clone();
        assert!(!v.is_null(), "no issue #{n}");
        v
    }

    /// The comments of issue `n`, oldest first.
    pub fn comments(&self, n: u64) -> Vec<Value> {
        self.issue(n)["comments"].as_array().unwrap().clone()
    }

    /// The numbers of the issues, ascending.
    pub fn issue_numbers(&self) -> Vec<u64> {
        let mut ns: Vec<u64> = self.snapshot()["issues"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect();
        ns.sort();
        ns
    }

    /// Pull request `n` as kept: title, body, head, base, state.
    pub fn pull(&self, n: u64) -> Value {
        let v = self.snapshot()["pulls"][n.to_string()].clone();
        assert!(!v.is_null(), "no pull request #{n}");
        v
    }

    /// The numbers of the pull requests, ascending.
    pub fn pull_numbers(&self) -> Vec<u64> {
        let mut ns: Vec<u64> = self.snapshot()["pulls"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect();
        ns.sort();
        ns
    }

    /// The repository's label names.
    pub fn labels(&self) -> Vec<String> {
        self.snapshot()["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect()
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
