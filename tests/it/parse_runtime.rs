//! Where `po-parse` writes, and what it does to an orchestration that exists.

use crate::parse_support;

use parse_support::*;
use po::protocol::{State, store};
use predicates::prelude::*;

fn git(repo: &Repo, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_runtime_directory_is_excluded_from_git() {
    let repo = Repo::new();
    std::fs::write(repo.path().join("plan.md"), "- [ ] a\n- [ ] b\n").unwrap();
    git(&repo, &["add", "plan.md"]);
    repo.cmd().arg("plan.md").assert().success();
    let exclude = std::fs::read_to_string(repo.path().join(".git/info/exclude")).unwrap();
    assert!(
        exclude.lines().any(|l| l == ".claude/runtime/"),
        "{exclude}"
    );
    assert_eq!(git(&repo, &["status", "--porcelain"]), "A  plan.md\n");
    // Once, however often it runs.
    repo.cmd().arg("plan.md").assert().success();
    let exclude = std::fs::read_to_string(repo.path().join(".git/info/exclude")).unwrap();
    assert_eq!(exclude.matches(".claude/runtime/").count(), 1);
}

#[test]
fn runtime_dir_flag_and_environment_move_the_root() {
    let repo = Repo::new();
    std::fs::write(repo.path().join("plan.md"), "- [ ] a\n").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    repo.cmd()
        .arg("plan.md")
        .arg("--runtime-dir")
        .arg(elsewhere.path())
        .assert()
        .success();
    assert!(
        elsewhere
            .path()
            .join("parallel/plan/agent-1.status.json")
            .is_file()
    );
    repo.cmd()
        .arg("plan.md")
        .args(["--id", "envid"])
        .env("PO_RUNTIME_DIR", elsewhere.path())
        .assert()
        .success();
    assert!(
        elsewhere
            .path()
            .join("parallel/envid/agent-1.status.json")
            .is_file()
    );
    assert!(!repo.path().join(".claude").exists());
}

#[test]
fn parsing_again_refuses_when_tasks_have_started_or_finished() {
    let repo = Repo::new();
    std::fs::write(repo.path().join("plan.md"), "- [ ] a\n- [ ] b\n- [ ] c\n").unwrap();
    repo.cmd().arg("plan.md").assert().success();
    let dir = repo.orchestration_dir("plan");
    for (n, state) in [(1, State::Completed), (3, State::InProgress)] {
        store::update_status(&dir.join(format!("agent-{n}.status.json")), |s| {
            s.status = state;
            Ok(())
        })
        .unwrap();
    }
    let before: Vec<_> = (1..=3)
        .map(|n| std::fs::read(dir.join(format!("agent-{n}.status.json"))).unwrap())
        .collect();
    std::fs::write(repo.path().join("plan.md"), "- [ ] x\n").unwrap();
    repo.cmd().arg("plan.md").assert().code(64).stderr(
        predicate::str::contains("agent-1 completed")
            .and(predicate::str::contains("agent-3 in_progress"))
            .and(predicate::str::contains("po-spawn --id plan --retry"))
            .and(predicate::str::contains("--id NEW-ID")),
    );
    let after: Vec<_> = (1..=3)
        .map(|n| std::fs::read(dir.join(format!("agent-{n}.status.json"))).unwrap())
        .collect();
    assert_eq!(before, after, "a refused parse changed a status file");
    // A dry run is still fine, and a new id works.
    repo.cmd().args(["plan.md", "--dry-run"]).assert().success();
    repo.cmd()
        .args(["plan.md", "--id", "plan-2"])
        .assert()
        .success();
    assert_eq!(titles(&repo, "plan-2"), ["x"]);
}

#[test]
fn parsing_again_replaces_pending_tasks() {
    let repo = Repo::new();
    std::fs::write(repo.path().join("plan.md"), "- [ ] a\n- [ ] b\n- [ ] c\n").unwrap();
    repo.cmd().arg("plan.md").assert().success();
    let dir = repo.orchestration_dir("plan");
    // A sub-issue recorded for "b" stays with "b".
    store::update_status(&dir.join("agent-2.status.json"), |s| {
        s.sub_issue = Some(77);
        Ok(())
    })
    .unwrap();
    std::fs::write(repo.path().join("plan.md"), "- [ ] b\n- [ ] d\n").unwrap();
    let out = repo.cmd().arg("plan.md").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_lines(&out).len(), 2);
    assert_eq!(titles(&repo, "plan"), ["b", "d"]);
    assert!(!dir.join("agent-3.status.json").exists());
    assert_eq!(repo.status("plan", 1)["sub_issue"], 77);
    assert_eq!(repo.status("plan", 1)["branch"], "feat/issue-77-agent-1");
    assert_eq!(repo.status("plan", 2)["sub_issue"], serde_json::Value::Null);
}

#[test]
fn a_parse_waits_for_the_orchestration_lock() {
    let repo = Repo::new();
    std::fs::write(repo.path().join("a.md"), "- [ ] a\n").unwrap();
    let dir = repo.orchestration_dir("same");
    std::fs::create_dir_all(&dir).unwrap();
    let held = store::lock_exclusive(&store::lock_path(&dir.join("orchestration.json"))).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_po-parse"))
        .current_dir(repo.path())
        .env_remove("PO_RUNTIME_DIR")
        .args(["a.md", "--id", "same"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "po-parse did not wait for the lock"
    );
    assert!(!dir.join("agent-1.status.json").exists());
    drop(held);
    assert!(child.wait().unwrap().success());
    assert_eq!(titles(&repo, "same"), ["a"]);
}

#[test]
fn outside_a_repository_po_parse_refuses_unless_told_where_to_write() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.md"), "- [ ] a\n").unwrap();
    let cmd = || {
        let mut c = assert_cmd::cargo::cargo_bin_cmd!("po-parse");
        c.current_dir(dir.path())
            .env_remove("PO_RUNTIME_DIR")
            .env("PO_GH", dir.path().join("no-gh-here"));
        c
    };
    cmd().arg("plan.md").assert().code(64).stderr(
        predicate::str::contains("is not inside a git repository")
            .and(predicate::str::contains("--runtime-dir DIR"))
            .and(predicate::str::contains("--dry-run")),
    );
    assert!(!dir.path().join(".claude").exists(), "nothing written");
    // A dry run only looks.
    cmd().args(["plan.md", "--dry-run"]).assert().success();
    assert!(!dir.path().join(".claude").exists());
    // Told where: there.
    let rt = dir.path().join("rt");
    cmd()
        .args(["plan.md", "--runtime-dir"])
        .arg(&rt)
        .assert()
        .success();
    assert!(rt.join("parallel/plan/agent-1.status.json").is_file());
    let rt2 = dir.path().join("rt2");
    cmd()
        .arg("plan.md")
        .env("PO_RUNTIME_DIR", &rt2)
        .assert()
        .success();
    assert!(rt2.join("parallel/plan/agent-1.status.json").is_file());
    assert!(!dir.path().join(".claude").exists());
}
