//! po-spawn opens pull requests for completed tasks: on by default for a
//! GitHub-issue orchestration, `--no-pr` turns it off, a failure is the task's
//! error and a later run picks it up. The GitHub double first on PATH; a real
//! local bare repository as `origin`, where the double looks for the branch.

use crate::support_gh;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use po::protocol::{AgentStatus, State, store};
use support_gh::{FakeGh, git, orchestration, repo_with_origin};

fn issue_orchestration(repo: &Path) -> PathBuf {
    let mut orch = orchestration("500", Some((500, "Master task")));
    orch.source.kind = "issue".into();
    let mut s = AgentStatus::new("agent-1", "500");
    s.title = "Add login".into();
    s.body = "Write login.txt".into();
    s.sub_issue = Some(501);
    s.branch = Some("feat/issue-501-agent-1".into());
    support_gh::craft(&repo.join(".claude/runtime"), &orch, &[s])
}

fn spawn(repo: &Path, fake: &FakeGh, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_po-spawn"));
    cmd.current_dir(repo);
    for (k, _) in std::env::vars() {
        if k.starts_with("PO_") || k.starts_with("AMPLIHACK_") {
            cmd.env_remove(k);
        }
    }
    fake.apply(&mut cmd);
    cmd.args(["--id", "500", "--agent-cmd"])
        .arg("sh -c 'echo hi > login.txt && git add login.txt && git commit -qm login'")
        .args(extra)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_completed_task_of_an_issue_gets_a_pull_request() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, origin) = repo_with_origin(tmp.path());
    let dir = issue_orchestration(&repo);
    let fake = FakeGh::new(tmp.path());
    fake.set_next_number(1240);
    let out = spawn(&repo, &fake, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("✅ agent-1 completed → PR #1240 ("),
        "{stderr}"
    );
    let s = store::read_status(&dir.join("agent-1.status.json")).unwrap();
    assert_eq!(s.status, State::Completed);
    assert_eq!(s.pr_number, Some(1240));
    assert_eq!(s.error, None);
    // The branch reached origin and exactly one PR was asked for.
    let tip = git(&repo, &["rev-parse", "feat/issue-501-agent-1"]);
    assert_eq!(git(&origin, &["rev-parse", "feat/issue-501-agent-1"]), tip);
    // The pre-flight looks at the rate limit first; then one PR.
    let mut calls = fake.calls();
    assert_eq!(calls[0], ["api", "rate_limit"], "{calls:?}");
    calls.remove(0);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        calls[0][..8],
        [
            "pr",
            "create",
            "--head",
            "feat/issue-501-agent-1",
            "--base",
            "main",
            "--title",
            "[Master #500] Add login"
        ]
    );
    assert!(calls[0][9].starts_with("Closes #501"), "{:?}", calls[0][9]);
    assert_eq!(fake.pull_numbers(), [1240]);
    assert_eq!(fake.pull(1240)["head"], "feat/issue-501-agent-1");
}

#[test]
fn no_pr_opens_none_and_a_failed_pr_is_picked_up_later() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, origin) = repo_with_origin(tmp.path());
    let dir = issue_orchestration(&repo);
    let status = dir.join("agent-1.status.json");
    let fake = FakeGh::new(tmp.path());

    let out = spawn(&repo, &fake, &["--no-pr"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(fake.calls().is_empty());
    assert!(
        git(&origin, &["branch", "--list"])
            .trim()
            .lines()
            .all(|b| !b.contains("feat/"))
    );

    // Asked for now, gh fails: the task stays completed with the error.
    fake.fail("pr create", "GraphQL: something went wrong");
    let out = spawn(&repo, &fake, &["--create-pr"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = store::read_status(&status).unwrap();
    assert_eq!(s.status, State::Completed);
    assert_eq!(s.pr_number, None);
    let err = s.error.unwrap();
    assert!(
        err.contains("open a pull request") && err.contains("something went wrong"),
        "{err}"
    );

    // gh works again: the next run opens it, without running the agent again.
    fake.unfail("pr create");
    fake.set_next_number(77);
    let out = spawn(&repo, &fake, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = store::read_status(&status).unwrap();
    assert_eq!(s.pr_number, Some(77));
    assert_eq!(s.error, None);
    assert_eq!(fake.pull_numbers(), [77]);
    assert_eq!(s.attempt, 1);
    assert_eq!(
        git(
            &repo,
            &["rev-list", "--count", "main..feat/issue-501-agent-1"]
        )
        .trim(),
        "1"
    );
}
