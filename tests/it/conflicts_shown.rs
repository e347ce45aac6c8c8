//! Conflicts as soon as they exist: po-watch (table and --json) and
//! po-summarize (summary.json, summary.md) name completed branches that do not
//! merge cleanly, found with `git merge-tree` and cached by commit ids.

use crate::support_spawn;

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use po::protocol::{State, store};
use serde_json::Value;
use support_spawn::{Repo, git, git_env, orchestrate, task};

fn tool(repo: &Repo, name: &str) -> assert_cmd::Command {
    let mut cmd = match name {
        "po-watch" => cargo_bin_cmd!("po-watch"),
        _ => cargo_bin_cmd!("po-summarize"),
    };
    cmd.current_dir(&repo.path)
        .envs(git_env())
        .env("COLUMNS", "120");
    for (k, _) in std::env::vars() {
        if k.starts_with("PO_") || k.starts_with("AMPLIHACK_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Three tasks on `src/user.py`'s repository; the first two rewrite it.
/// Only the first `completed` are marked completed.
fn tasks(repo: &Repo, completed: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(repo.path.join("src")).unwrap();
    std::fs::write(repo.path.join("src/user.py"), "user = 0\n").unwrap();
    git(&repo.path, &["add", "src"]);
    git(&repo.path, &["commit", "-q", "-m", "user"]);
    let base = git(&repo.path, &["rev-parse", "HEAD"]);
    let paths = orchestrate(repo, "12", &[task("a"), task("b"), task("c")], &[]);
    let files = [
        ("src/user.py", "user = 1\n"),
        ("src/user.py", "user = 2\n"),
        ("src/other.py", "other = 3\n"),
    ];
    for (i, (p, (file, text))) in paths.iter().zip(files).enumerate() {
        let branch = store::read_status(p).unwrap().branch.unwrap();
        git(&repo.path, &["checkout", "-q", "-b", &branch, &base]);
        std::fs::write(repo.path.join(file), text).unwrap();
        git(&repo.path, &["add", file]);
        git(&repo.path, &["commit", "-q", "-m", &branch]);
        git(&repo.path, &["checkout", "-q", "main"]);
        if i < completed {
            store::update_status(p, |s| {
                s.status = State::Completed;
                s.base_commit = Some(base.clone());
                Ok(())
            })
            .unwrap();
        }
    }
    paths
}

fn bytes_of(paths: &[PathBuf]) -> Vec<Vec<u8>> {
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn cache(repo: &Repo) -> PathBuf {
    repo.orch_dir("12").join(".conflicts.json")
}

const LINE: &str = "agent-1 ↔ agent-2 conflict: src/user.py";

#[test]
fn po_watch_names_conflicting_completed_branches_and_changes_no_task() {
    let repo = Repo::new();
    let paths = tasks(&repo, 1);
    // One completed branch: nothing to compare, nothing written.
    let out = tool(&repo, "po-watch").arg("12").output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("conflict"));
    assert!(!cache(&repo).exists());

    for p in &paths {
        store::update_status(p, |s| {
            s.status = State::Completed;
            s.base_commit = Some(git(&repo.path, &["rev-parse", "main"]));
            Ok(())
        })
        .unwrap();
    }
    let before = bytes_of(&paths);
    let out = tool(&repo, "po-watch").arg("12").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    assert!(table.contains(&format!("! {LINE}\n")), "{table}");
    assert_eq!(table.matches("conflict").count(), 1, "{table}");

    let out = tool(&repo, "po-watch")
        .args(["12", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let conflicts = &v["orchestrations"][0]["conflicts"];
    assert_eq!(conflicts.as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(conflicts[0]["a"], "agent-1");
    assert_eq!(conflicts[0]["b"], "agent-2");
    assert_eq!(conflicts[0]["files"], serde_json::json!(["src/user.py"]));
    assert_eq!(bytes_of(&paths), before, "po-watch changed a status file");

    let out = tool(&repo, "po-watch")
        .args(["12", "--no-conflicts"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("conflict"));
}

#[test]
fn answers_are_cached_by_commit_ids() {
    let repo = Repo::new();
    tasks(&repo, 3);
    tool(&repo, "po-watch").arg("12").assert().success();
    let text = std::fs::read_to_string(cache(&repo)).unwrap();
    let mut c: Value = serde_json::from_str(&text).unwrap();
    let tip = |b: &str| git(&repo.path, &["rev-parse", b]);
    let (t1, t3) = (tip("feat/issue-12-agent-1"), tip("feat/issue-12-agent-3"));
    assert!(c["pairs"].as_object().unwrap().len() == 1, "{c:#}");
    // Plant an answer for the clean pair 1–3: the cache is what is read.
    let base = tip("main");
    c["touched"][format!("{base}...{t3}")] = serde_json::json!(["src/user.py"]);
    let key = if t1 < t3 {
        format!("{t1} {t3}")
    } else {
        format!("{t3} {t1}")
    };
    c["pairs"][key] = serde_json::json!(["planted.txt"]);
    std::fs::write(cache(&repo), c.to_string()).unwrap();
    let out = tool(&repo, "po-watch").arg("12").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("agent-1 ↔ agent-3 conflict: planted.txt"),
        "{table}"
    );

    // A new commit on agent-3's branch is a new key: computed afresh.
    git(&repo.path, &["checkout", "-q", "feat/issue-12-agent-3"]);
    std::fs::write(repo.path.join("src/more.py"), "more\n").unwrap();
    git(&repo.path, &["add", "src/more.py"]);
    git(&repo.path, &["commit", "-q", "-m", "more"]);
    git(&repo.path, &["checkout", "-q", "main"]);
    let out = tool(&repo, "po-watch").arg("12").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(!table.contains("planted.txt"), "{table}");
    assert!(table.contains(LINE), "{table}");
}

#[test]
fn po_summarize_reports_conflicts_in_both_files() {
    let repo = Repo::new();
    tasks(&repo, 3);
    let out = tool(&repo, "po-summarize").arg("12").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let dir = repo.orch_dir("12");
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(md.contains("### Conflicts\n"), "{md}");
    assert!(md.contains(&format!("- {LINE}\n")), "{md}");
    assert!(md.contains("`po-merge 12`"), "{md}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["conflicts"].as_array().unwrap().len(), 1, "{json:#}");
    assert_eq!(
        json["conflicts"][0]["files"],
        serde_json::json!(["src/user.py"])
    );
    assert!(Path::new(&cache(&repo)).is_file());
}
