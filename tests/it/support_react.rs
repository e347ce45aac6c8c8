//! Test support for po-react: a real repository with a bare `origin`, the
//! GitHub double pointed at it, a task run by the real po-spawn with a test
//! agent that commits (and opens its pull request), and po-react run against
//! it. The test agent reads what it is told from its prompt and from
//! `$REACT_AGENT_MODE`, and keeps every prompt it got.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use po::protocol::reaction::{self, Reaction};
use po::protocol::{AgentStatus, State, store};

use crate::support_gh::{self, FakeGh, git, orchestration, repo_with_origin};

/// The test agent. Its first run (no "needs another round" in the prompt)
/// writes `lib.txt` with a BUG and commits; a round does what
/// `$REACT_AGENT_MODE` (a file's content) says:
/// * `fix`: `lib.txt` without the bug, committed;
/// * `again`: a new commit that still has the bug;
/// * `nothing`: no commit;
/// * `fail`: exit 3;
/// * `slow`: write its pid to `$REACT_AGENT_SEEN.pid`, sleep a minute;
/// * `merge`: merge the commit the prompt names, keep both sides, commit.
///
/// Every prompt is appended to `$REACT_AGENT_SEEN`.
pub const AGENT: &str = r#"#!/bin/sh
set -e
prompt="$1"
{ echo "=== prompt ==="; cat "$prompt"; } >> "$REACT_AGENT_SEEN"
if ! grep -q "needs another round" "$prompt"; then
  printf 'BUG\n' > lib.txt
  git add lib.txt
  git commit -qm "Add lib"
  exit 0
fi
mode=$(cat "$REACT_AGENT_MODE" 2>/dev/null || echo fix)
case "$mode" in
  fix)
    po-status set --cost-usd 0.25 --phase "Fixing lib.txt"
    printf 'fixed\n' > lib.txt
    git commit -qam "Fix the bug" ;;
  again)
    n=$(grep -c . lib.txt || true)
    printf 'BUG\nstill %s\n' "$n" > lib.txt
    git commit -qam "Try again" ;;
  nothing) ;;
  fail) echo "agent: cannot do it" >&2; exit 3 ;;
  slow) echo $$ > "$REACT_AGENT_SEEN.pid"; sleep 60 ;;
  merge)
    base=$(grep -o 'git merge [0-9a-f]\{40\}' "$prompt" | head -n 1 | cut -d' ' -f3)
    git merge -q --no-edit "$base" || true
    printf 'fixed\nfrom main\n' > lib.txt
    git add lib.txt
    git commit -qm "Merge the base" ;;
esac
"#;

pub struct World {
    pub tmp: tempfile::TempDir,
    pub repo: PathBuf,
    pub origin: PathBuf,
    pub gh: FakeGh,
    pub dir: PathBuf,
    pub agent: PathBuf,
    pub mode: PathBuf,
    pub seen: PathBuf,
}

pub const BRANCH: &str = "feat/issue-501-agent-1";

impl World {
    /// An issue orchestration `500` with one task, run by po-spawn with
    /// the test agent: its pull request is #1, its CI check `test` fails
    /// while `lib.txt` has a BUG.
    pub fn new() -> World {
        World::new_in(&std::env::temp_dir())
    }

    /// [`World::new`], its directories under `base`.
    pub fn new_in(base: &Path) -> World {
        std::fs::create_dir_all(base).unwrap();
        let tmp = tempfile::tempdir_in(base).unwrap();
        let (repo, origin) = repo_with_origin(tmp.path());
        let mut orch = orchestration("500", Some((500, "Master task")));
        orch.source.kind = "issue".into();
        let mut s = AgentStatus::new("agent-1", "500");
        s.title = "Add lib".into();
        s.body = "Write lib.txt".into();
        s.sub_issue = Some(501);
        s.branch = Some(BRANCH.into());
        let dir = support_gh::craft(&repo.join(".claude/runtime"), &orch, &[s]);
        let gh = FakeGh::new(tmp.path());
        gh.use_remote(&origin);
        gh.set_next_number(1);
        let agent = tmp.path().join("agent.sh");
        std::fs::write(&agent, AGENT).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
        let w = World {
            mode: tmp.path().join("mode"),
            seen: tmp.path().join("seen.md"),
            tmp,
            repo,
            origin,
            gh,
            dir,
            agent,
        };
        w.gh.add_ci(
            "test",
            "lib.txt",
            "BUG",
            "running 3 tests\nassertion failed: lib.txt still has a BUG\nerror: test failed",
        );
        let out = w.po("po-spawn", &["--id", "500", "--create-pr"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(w.status().pr_number, Some(1));
        w
    }

    pub fn status_file(&self) -> PathBuf {
        self.dir.join("agent-1.status.json")
    }

    pub fn status(&self) -> AgentStatus {
        store::read_status(&self.status_file()).unwrap()
    }

    pub fn rounds(&self) -> Vec<Reaction> {
        reaction::of_status(&self.status())
    }

    pub fn worktree(&self) -> PathBuf {
        self.status().worktree.unwrap()
    }

    pub fn set_mode(&self, mode: &str) {
        std::fs::write(&self.mode, mode).unwrap();
    }

    /// The prompts the agent got, first run included.
    pub fn prompts(&self) -> Vec<String> {
        std::fs::read_to_string(&self.seen)
            .unwrap_or_default()
            .split("=== prompt ===\n")
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The branch's commit on origin.
    pub fn origin_tip(&self) -> String {
        git(&self.origin, &["rev-parse", BRANCH]).trim().to_string()
    }

    /// Run a po tool in the repository with the double and the test agent.
    pub fn po(&self, tool: &str, args: &[&str]) -> Output {
        self.po_env(tool, args, &[])
    }

    /// [`World::po`] with more environment, given last.
    pub fn po_env(&self, tool: &str, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let program = match tool {
            "po-spawn" => env!("CARGO_BIN_EXE_po-spawn"),
            "po-react" => env!("CARGO_BIN_EXE_po-react"),
            "po-watch" => env!("CARGO_BIN_EXE_po-watch"),
            "po-summarize" => env!("CARGO_BIN_EXE_po-summarize"),
            other => panic!("no tool {other}"),
        };
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.repo);
        for (k, _) in std::env::vars() {
            if k.starts_with("PO_") || k.starts_with("AMPLIHACK_") {
                cmd.env_remove(k);
            }
        }
        self.gh.apply(&mut cmd);
        cmd.env("REACT_AGENT_MODE", &self.mode)
            .env("REACT_AGENT_SEEN", &self.seen)
            .env("GIT_AUTHOR_NAME", "Agent")
            .env("GIT_AUTHOR_EMAIL", "agent@example.com")
            .env("GIT_COMMITTER_NAME", "Agent")
            .env("GIT_COMMITTER_EMAIL", "agent@example.com");
        if tool == "po-spawn" || tool == "po-react" {
            cmd.arg("--agent-cmd")
                .arg(format!("{} {{prompt_file}}", self.agent.display()));
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args).output().unwrap()
    }

    /// po-react started, not waited for.
    pub fn react_child(&self, args: &[&str]) -> std::process::Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_po-react"));
        cmd.current_dir(&self.repo);
        for (k, _) in std::env::vars() {
            if k.starts_with("PO_") || k.starts_with("AMPLIHACK_") {
                cmd.env_remove(k);
            }
        }
        self.gh.apply(&mut cmd);
        cmd.env("REACT_AGENT_MODE", &self.mode)
            .env("REACT_AGENT_SEEN", &self.seen)
            .arg("--agent-cmd")
            .arg(format!("{} {{prompt_file}}", self.agent.display()))
            .arg("500")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// One po-react pass (or more, with `--follow`) on orchestration 500.
    pub fn react(&self, args: &[&str]) -> Output {
        let mut all = vec!["500"];
        all.extend_from_slice(args);
        self.po("po-react", &all)
    }

    /// The gh calls po-react made since `from` (an index into the log).
    pub fn calls_since(&self, from: usize) -> Vec<Vec<String>> {
        self.gh.calls().split_off(from)
    }

    /// A commit on origin's main that changes `lib.txt` (a base that moves).
    pub fn move_base(&self) {
        let side = self.tmp.path().join("side");
        git(
            self.tmp.path(),
            &["clone", "-q", self.origin.to_str().unwrap(), "side"],
        );
        std::fs::write(side.join("lib.txt"), "from main\n").unwrap();
        git(&side, &["add", "lib.txt"]);
        git(&side, &["commit", "-q", "-m", "main moves"]);
        git(&side, &["push", "-q", "origin", "main"]);
    }

    pub fn completed(&self) -> bool {
        self.status().status == State::Completed
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether a call is `gh VERB1 VERB2 …`.
pub fn is(call: &[String], verbs: &[&str]) -> bool {
    call.len() >= verbs.len() && call.iter().zip(verbs).all(|(a, b)| a == b)
}

/// How many calls are `gh VERB1 VERB2 …`.
pub fn count(calls: &[Vec<String>], verbs: &[&str]) -> usize {
    calls.iter().filter(|c| is(c, verbs)).count()
}
