//! po-merge end to end: real repositories, real branches, the real binary.

use crate::support_spawn;

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::cargo_bin_cmd;
use po::protocol::{State, store};
use serde_json::Value;
use support_spawn::{Repo, git, git_env, orchestrate, task};

/// Commit `files` on a new branch `branch` from `from`, back on `main` after.
fn branch_with(repo: &Repo, branch: &str, from: &str, files: &[(&str, &str)]) -> String {
    git(&repo.path, &["checkout", "-q", "-b", branch, from]);
    for (path, text) in files {
        let p = repo.path.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        git(&repo.path, &["add", path]);
    }
    git(
        &repo.path,
        &["commit", "-q", "-m", &format!("work on {branch}")],
    );
    let tip = git(&repo.path, &["rev-parse", "HEAD"]);
    git(&repo.path, &["checkout", "-q", "main"]);
    tip
}

/// Mark a task completed from `base`.
fn complete(status: &Path, base: &str) {
    store::update_status(status, |s| {
        s.status = State::Completed;
        s.base_commit = Some(base.to_string());
        Ok(())
    })
    .unwrap();
}

fn branch_of(status: &Path) -> String {
    store::read_status(status).unwrap().branch.unwrap()
}

/// Everything of the user's checkout: every file outside `.git` and po's
/// runtime directory, the index and HEAD, byte for byte.
fn checkout_snapshot(repo: &Path) -> Vec<(String, Vec<u8>)> {
    let runtime = repo.join(".claude").join("runtime");
    let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(repo)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.path() != repo.join(".git") && e.path() != runtime)
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            let rel = e.path().strip_prefix(repo).unwrap().display().to_string();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect();
    for name in ["index", "HEAD"] {
        files.push((
            format!(".git/{name}"),
            std::fs::read(repo.join(".git").join(name)).unwrap(),
        ));
    }
    files.push((
        "HEAD commit".into(),
        git(repo, &["rev-parse", "HEAD"]).into_bytes(),
    ));
    files
}

fn merge_cmd(repo: &Repo) -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("po-merge");
    cmd.current_dir(&repo.path).envs(git_env());
    for (k, _) in std::env::vars() {
        if k.starts_with("PO_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

fn is_ancestor(repo: &Path, a: &str, b: &str) -> bool {
    Command::new("git")
        .args(["merge-base", "--is-ancestor", a, b])
        .current_dir(repo)
        .status()
        .unwrap()
        .success()
}

/// A repository with `src/user.py` and three completed tasks: agent-1 and
/// agent-2 both rewrite `src/user.py`, agent-3 adds `src/other.py`.
fn three_tasks(repo: &Repo) -> (String, Vec<PathBuf>) {
    std::fs::create_dir_all(repo.path.join("src")).unwrap();
    std::fs::write(repo.path.join("src/user.py"), "def user():\n    pass\n").unwrap();
    git(&repo.path, &["add", "src/user.py"]);
    git(&repo.path, &["commit", "-q", "-m", "user module"]);
    let base = git(&repo.path, &["rev-parse", "HEAD"]);
    let paths = orchestrate(
        repo,
        "7",
        &[task("Users"), task("Users again"), task("Other")],
        &[],
    );
    let files = [
        ("src/user.py", "def user():\n    return 'one'\n"),
        ("src/user.py", "def user():\n    return 'two'\n"),
        ("src/other.py", "OTHER = 3\n"),
    ];
    for (p, file) in paths.iter().zip(files) {
        branch_with(repo, &branch_of(p), &base, &[file]);
        complete(p, &base);
    }
    (base, paths)
}

#[test]
fn two_conflicting_branches_are_named_and_the_clean_ones_merged_without_touching_the_checkout() {
    let repo = Repo::new();
    let (base, paths) = three_tasks(&repo);
    // The user is in the middle of something: changed, staged and new files.
    std::fs::write(repo.path.join("README.md"), "hello, edited\n").unwrap();
    std::fs::write(repo.path.join("staged.txt"), "staged\n").unwrap();
    git(&repo.path, &["add", "staged.txt"]);
    std::fs::write(repo.path.join("untracked.txt"), "mine\n").unwrap();
    let before = checkout_snapshot(&repo.path);

    let out = merge_cmd(&repo).arg("7").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("agent-1 ↔ agent-2 conflict: src/user.py"),
        "{stdout}"
    );
    assert!(
        stdout.contains("conflicts with agent-1 in src/user.py"),
        "{stdout}"
    );
    assert!(
        stdout.contains("git merge feat/issue-7-agent-2"),
        "{stdout}"
    );

    let branch = "po/7/integration";
    let tip = git(&repo.path, &["rev-parse", branch]);
    assert!(is_ancestor(&repo.path, &branch_of(&paths[0]), &tip));
    assert!(is_ancestor(&repo.path, &branch_of(&paths[2]), &tip));
    assert!(!is_ancestor(&repo.path, &branch_of(&paths[1]), &tip));
    assert!(is_ancestor(&repo.path, &base, &tip));
    assert_eq!(
        git(&repo.path, &["show", &format!("{branch}:src/user.py")]),
        "def user():\n    return 'one'"
    );
    assert_eq!(
        git(&repo.path, &["show", &format!("{branch}:src/other.py")]),
        "OTHER = 3"
    );
    // Two merge commits on top of the base, nothing else.
    assert_eq!(
        git(
            &repo.path,
            &["rev-list", "--count", "--merges", &format!("{base}..{tip}")]
        ),
        "2"
    );

    assert_eq!(
        checkout_snapshot(&repo.path),
        before,
        "the user's checkout changed"
    );
    assert_eq!(repo.worktrees().len(), 1, "{:?}", repo.worktrees());
    let scratch = std::fs::read_dir(repo.runtime().join("worktrees/7"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(scratch, 0, "the scratch worktree was left behind");

    // Again, as JSON: the clean merges are there already; the conflict is still one.
    let out = merge_cmd(&repo).args(["7", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let r = json(&out.stdout);
    assert_eq!(r["exit_code"], 4);
    assert_eq!(r["into"], branch);
    assert_eq!(r["head"], tip.as_str());
    let outcomes: Vec<(&str, &str)> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["agent_id"].as_str().unwrap(),
                s["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("agent-1", "already_merged"),
            ("agent-2", "conflict"),
            ("agent-3", "already_merged")
        ]
    );
    assert_eq!(r["steps"][1]["files"], serde_json::json!(["src/user.py"]));
    assert_eq!(
        r["steps"][1]["conflicts_with"],
        serde_json::json!(["agent-1"])
    );
    assert_eq!(
        r["predicted_conflicts"][0]["files"],
        serde_json::json!(["src/user.py"])
    );
    assert_eq!(
        checkout_snapshot(&repo.path),
        before,
        "the user's checkout changed"
    );
}

#[test]
fn a_clean_merge_is_validated_per_wave_and_at_the_end() {
    let repo = Repo::new();
    let base = git(&repo.path, &["rev-parse", "HEAD"]);
    let mut second = task("B");
    second.wave = 2;
    let paths = orchestrate(
        &repo,
        "8",
        &[task("A"), second],
        &[
            (1, "grep -q alpha a.txt"),
            (2, "grep -q alpha a.txt && grep -q beta b.txt"),
        ],
    );
    let a = branch_with(&repo, &branch_of(&paths[0]), &base, &[("a.txt", "alpha\n")]);
    complete(&paths[0], &base);
    // Wave 2 started from wave 1's result.
    branch_with(&repo, &branch_of(&paths[1]), &a, &[("b.txt", "beta\n")]);
    complete(&paths[1], &a);

    let out = merge_cmd(&repo)
        .args([
            "8",
            "--validate",
            "test -f a.txt && test -f b.txt",
            "--json",
        ])
        .output()
        .unwrap();
    let r = json(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    let validations = r["validations"].as_array().unwrap();
    assert_eq!(validations.len(), 3, "{r:#}");
    assert_eq!(validations[0]["wave"], 1);
    assert_eq!(validations[1]["wave"], 2);
    assert!(validations[2]["wave"].is_null());
    assert!(
        validations.iter().all(|v| v["outcome"] == "passed"),
        "{r:#}"
    );
    for v in validations {
        assert!(Path::new(v["log"].as_str().unwrap()).is_file());
    }
    let tip = git(&repo.path, &["rev-parse", "po/8/integration"]);
    assert_eq!(r["head"], tip.as_str());
    assert_eq!(git(&repo.path, &["show", "po/8/integration:b.txt"]), "beta");
    assert!(
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["in_branch"] == true)
    );
}

#[test]
fn a_failed_validation_leaves_the_branch_at_the_last_good_merge() {
    let repo = Repo::new();
    let base = git(&repo.path, &["rev-parse", "HEAD"]);
    let mut second = task("B");
    second.wave = 2;
    let paths = orchestrate(
        &repo,
        "9",
        &[task("A"), second],
        &[(2, "test -f nothing-here")],
    );
    let a = branch_with(&repo, &branch_of(&paths[0]), &base, &[("a.txt", "alpha\n")]);
    complete(&paths[0], &base);
    branch_with(&repo, &branch_of(&paths[1]), &a, &[("b.txt", "beta\n")]);
    complete(&paths[1], &a);

    let out = merge_cmd(&repo).arg("9").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains("wave 2: test -f nothing-here failed with status 1"),
        "{stdout}"
    );
    assert!(stdout.contains("rolled back"), "{stdout}");
    // Wave 1 merged and (with no validation of its own) good; wave 2 rolled back.
    let tip = git(&repo.path, &["rev-parse", "po/9/integration"]);
    assert!(is_ancestor(&repo.path, &a, &tip));
    assert!(!is_ancestor(&repo.path, &branch_of(&paths[1]), &tip));

    // --validate failing: the branch does not move at all.
    let out = merge_cmd(&repo)
        .args(["9", "--into", "other", "--validate", "exit 3", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let r = json(&out.stdout);
    assert_eq!(git(&repo.path, &["rev-parse", "other"]), base);
    // Both merged cleanly, then wave 2's validation failed: --validate never
    // ran, so nothing is known good and neither is in the branch.
    for step in r["steps"].as_array().unwrap() {
        assert_eq!(step["outcome"], "merged", "{r:#}");
        assert_eq!(step["in_branch"], false, "{r:#}");
    }
    let validations = r["validations"].as_array().unwrap();
    assert_eq!(validations.len(), 1, "{r:#}");
    assert_eq!(validations[0]["outcome"], "failed");
    assert_eq!(validations[0]["exit_code"], 1);
}

#[test]
fn a_validation_past_its_timeout_is_ended_with_its_whole_tree() {
    let repo = Repo::new();
    let base = git(&repo.path, &["rev-parse", "HEAD"]);
    let paths = orchestrate(&repo, "10", &[task("A")], &[]);
    branch_with(&repo, &branch_of(&paths[0]), &base, &[("a.txt", "alpha\n")]);
    complete(&paths[0], &base);
    let pids = repo.scratch().join("pids");
    let cmd = format!(
        "trap '' TERM; sleep 120 & echo $! >> {p}; setsid sh -c 'trap \"\" TERM; exec sleep 120' & \
         echo $! >> {p}; wait",
        p = pids.display()
    );
    let started = std::time::Instant::now();
    let out = merge_cmd(&repo)
        .args(["10", "--timeout", "2", "--validate", &cmd, "--json"])
        .timeout(std::time::Duration::from_secs(90))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let r = json(&out.stdout);
    assert_eq!(r["validations"][0]["outcome"], "timed_out");
    let pids: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .map(|i| stat[i + 1..].trim_start().chars().next());
        assert!(
            matches!(state, None | Some(Some('Z'))),
            "validation process {pid} survived its timeout: {stat}"
        );
    }
    assert_eq!(git(&repo.path, &["rev-parse", "po/10/integration"]), base);
}

#[test]
fn a_dry_run_predicts_and_writes_nothing() {
    let repo = Repo::new();
    three_tasks(&repo);
    let refs = git(&repo.path, &["for-each-ref"]);
    let out = merge_cmd(&repo).args(["7", "--dry-run"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains("agent-1 ↔ agent-2 conflict: src/user.py"),
        "{stdout}"
    );
    assert!(stdout.contains("would merge"), "{stdout}");
    let would = stdout.matches("➕").count();
    assert!(would > 0, "{stdout}");
    assert!(
        stdout.contains(&format!("Dry run: nothing was merged ({would} would merge")),
        "{stdout}"
    );
    assert!(!stdout.contains("no tasks"), "{stdout}");
    assert_eq!(git(&repo.path, &["for-each-ref"]), refs);
    assert!(!repo.orch_dir("7").join(".conflicts.json").exists());
}

#[test]
fn a_checked_out_branch_is_refused_and_so_is_an_old_git() {
    let repo = Repo::new();
    three_tasks(&repo);
    merge_cmd(&repo)
        .args(["7", "--into", "main"])
        .assert()
        .code(64)
        .stderr(predicates::str::contains("it is checked out in"));
    merge_cmd(&repo)
        .args(["7", "--into", "bad..name"])
        .assert()
        .code(64)
        .stderr(predicates::str::contains("not a valid branch name"));

    // A git that says it is 2.30: a clear message, exit 9.
    let bin = repo.scratch().join("oldgit");
    std::fs::create_dir_all(&bin).unwrap();
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::write(
        bin.join("git"),
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'git version 2.30.2'; exit 0; fi\nexec {} \"$@\"\n",
            real.trim()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("git"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    merge_cmd(&repo)
        .arg("7")
        .env("PATH", path)
        .assert()
        .code(9)
        .stderr(predicates::str::contains("git 2.30 is too old"))
        .stderr(predicates::str::contains("2.38"));
}

#[test]
fn a_branch_git_will_not_merge_is_reported_and_the_rest_still_merged() {
    let repo = Repo::new();
    let base = git(&repo.path, &["rev-parse", "HEAD"]);
    let paths = orchestrate(&repo, "11", &[task("Orphan"), task("Fine")], &[]);
    // An unrelated history: git refuses it without any conflict.
    git(
        &repo.path,
        &["checkout", "-q", "--orphan", &branch_of(&paths[0])],
    );
    git(&repo.path, &["rm", "-rq", "--cached", "."]);
    std::fs::write(repo.path.join("alone.txt"), "alone\n").unwrap();
    git(&repo.path, &["add", "alone.txt"]);
    git(&repo.path, &["commit", "-q", "-m", "unrelated"]);
    std::fs::remove_file(repo.path.join("alone.txt")).unwrap();
    git(&repo.path, &["checkout", "-q", "-f", "main"]);
    complete(&paths[0], &base);
    branch_with(
        &repo,
        &branch_of(&paths[1]),
        &base,
        &[("fine.txt", "fine\n")],
    );
    complete(&paths[1], &base);

    let out = merge_cmd(&repo).args(["11", "--json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out.stdout);
    assert_eq!(r["steps"][0]["outcome"], "failed", "{r:#}");
    assert!(
        r["steps"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("unrelated histories"),
        "{r:#}"
    );
    assert_eq!(r["steps"][1]["outcome"], "merged");
    assert_eq!(r["failed"], 1);
    assert_eq!(
        git(&repo.path, &["show", "po/11/integration:fine.txt"]),
        "fine"
    );
}
