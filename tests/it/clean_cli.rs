//! po-clean end to end: real repositories and worktrees, the real binary,
//! the fake `gh` for pull requests.

use crate::support_gh;
use crate::support_spawn;

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use po::protocol::{Source, State, store};
use serde_json::Value;
use support_gh::FakeGh;
use support_spawn::{Repo, git, git_env, orchestrate, task};

fn clean_cmd(repo: &Repo) -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("po-clean");
    cmd.current_dir(&repo.path).envs(git_env());
    for (k, _) in std::env::vars() {
        if k.starts_with("PO_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Give the task at `status` a real worktree on its branch with one commit
/// (`file`), and mark it finished in `state` `days` ago.
fn run_task(repo: &Repo, id: &str, status: &Path, state: State, days: i64, file: &str) -> PathBuf {
    let s = store::read_status(status).unwrap();
    let branch = s.branch.clone().unwrap();
    let wt = repo.runtime().join("worktrees").join(id).join(&s.agent_id);
    let base = git(&repo.path, &["rev-parse", "main"]);
    git(
        &repo.path,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            &branch,
            wt.to_str().unwrap(),
            &base,
        ],
    );
    std::fs::write(wt.join(file), format!("{file}\n")).unwrap();
    git(&wt, &["add", file]);
    git(&wt, &["commit", "-q", "-m", file]);
    store::update_status(status, |s| {
        s.status = state;
        s.worktree = Some(wt.clone());
        s.base_commit = Some(base.clone());
        s.completion_time = Some(chrono::Utc::now() - chrono::Duration::days(days));
        Ok(())
    })
    .unwrap();
    wt
}

/// `cmd` with the fake `gh` first on PATH (what `FakeGh::apply` does).
fn with_gh(mut cmd: assert_cmd::Command, gh: &FakeGh) -> assert_cmd::Command {
    cmd.env("PATH", gh.path_env())
        .env("FAKE_GH_STATE", &gh.state)
        .env("FAKE_GH_LOG", &gh.log)
        .env("PO_GH_BACKOFF_MS", "10");
    cmd
}

fn lines(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn finished_clean_worktrees_go_and_dirty_or_live_ones_are_named_and_kept() {
    let repo = Repo::new();
    let p = orchestrate(
        &repo,
        "5",
        &[
            task("a"),
            task("b"),
            task("c"),
            task("d"),
            task("e"),
            task("f"),
        ],
        &[],
    );
    let clean = run_task(&repo, "5", &p[0], State::Completed, 1, "a.txt");
    let dirty = run_task(&repo, "5", &p[1], State::Failed, 1, "b.txt");
    std::fs::write(dirty.join("notes.txt"), "unsaved\n").unwrap();
    let live = run_task(&repo, "5", &p[2], State::Completed, 1, "c.txt");
    let _held = store::hold_liveness(&p[2])
        .unwrap()
        .expect("the lock is free");
    let stray = run_task(&repo, "5", &p[3], State::Completed, 1, "d.txt");
    git(&stray, &["checkout", "-q", "--detach"]);
    std::fs::write(stray.join("d2.txt"), "more\n").unwrap();
    git(&stray, &["add", "d2.txt"]);
    git(&stray, &["commit", "-q", "-m", "on no branch"]);
    let running = run_task(&repo, "5", &p[4], State::InProgress, 0, "e.txt");
    let stashed = run_task(&repo, "5", &p[5], State::Completed, 1, "f.txt");
    std::fs::write(stashed.join("f.txt"), "changed\n").unwrap();
    git(&stashed, &["stash", "-q"]);
    let statuses: Vec<Vec<u8>> = p.iter().map(|f| std::fs::read(f).unwrap()).collect();

    let out = clean_cmd(&repo).arg("5").output().unwrap();
    let text = lines(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", lines(&out.stderr));
    assert!(!clean.exists(), "{text}");
    for kept in [&dirty, &live, &stray, &running, &stashed] {
        assert!(
            kept.join(".git").is_file(),
            "{} went: {text}",
            kept.display()
        );
    }
    let expect = [
        "removed      .claude/runtime/worktrees/5/agent-1 (",
        "kept         .claude/runtime/worktrees/5/agent-2: uncommitted changes in 1 file: notes.txt",
        "kept         .claude/runtime/worktrees/5/agent-3: live: its runner holds the liveness lock",
        "kept         .claude/runtime/worktrees/5/agent-4: commits its branch feat/issue-5-agent-4 \
         does not hold",
        "kept         .claude/runtime/worktrees/5/agent-5: in_progress: not finished",
        "kept         .claude/runtime/worktrees/5/agent-6: a stash was made on its branch",
    ];
    for e in expect {
        assert!(text.contains(e), "missing {e:?} in:\n{text}");
    }
    // Each kept worktree says what to do about it, on the line below.
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("kept "))
    {
        assert!(
            lines
                .get(i + 1)
                .is_some_and(|h| h.starts_with("             hint: ")),
            "no advice for {l:?}:\n{text}"
        );
    }
    for hint in [
        "hint: commit them (git -C .claude/runtime/worktrees/5/agent-2 add -A && git -C \
         .claude/runtime/worktrees/5/agent-2 commit), or discard them",
        "hint: its run is still going: wait for it to end, or stop it",
        "hint: save them on a branch (git -C .claude/runtime/worktrees/5/agent-4 branch NAME)",
        "hint: wait for its run to end",
        "hint: apply it (git stash pop) or drop it (git stash drop)",
    ] {
        assert!(text.contains(hint), "missing {hint:?} in:\n{text}");
    }
    assert!(
        text.contains("Freed ") && !text.contains("Freed 0 B"),
        "{text}"
    );
    let listed = repo.worktrees();
    assert_eq!(listed.len(), 6, "{listed:?}");
    assert!(!listed.iter().any(|w| w.ends_with("agent-1")));
    let after: Vec<Vec<u8>> = p.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert_eq!(statuses, after, "po-clean changed a status file");
    // The branch of the removed worktree stays (no --branches).
    assert!(
        repo.branches()
            .contains(&"feat/issue-5-agent-1".to_string())
    );
}

/// Every file under `dir` (the repository, its .git and po's runtime), with
/// its bytes; symlinks by target.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .map(|e| {
            let bytes = if e.file_type().is_file() {
                std::fs::read(e.path()).unwrap()
            } else if e.file_type().is_symlink() {
                std::fs::read_link(e.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                Vec::new()
            };
            (e.path().to_path_buf(), bytes)
        })
        .collect()
}

#[test]
fn a_dry_run_changes_nothing() {
    let repo = Repo::new();
    let p = orchestrate(&repo, "6", &[task("a"), task("b"), task("c")], &[]);
    run_task(&repo, "6", &p[0], State::Completed, 9, "a.txt");
    let dirty = run_task(&repo, "6", &p[1], State::Completed, 9, "b.txt");
    std::fs::write(dirty.join("b.txt"), "edited\n").unwrap();
    let gone = run_task(&repo, "6", &p[2], State::Completed, 9, "c.txt");
    std::fs::remove_dir_all(&gone).unwrap(); // a stale record to prune
    git(
        &repo.path,
        &["merge", "-q", "--ff-only", "feat/issue-6-agent-1"],
    );
    let before = tree(repo.tmp.path());

    for args in [
        vec!["--all", "--dry-run", "--branches", "--older-than", "7d"],
        vec!["6", "--dry-run", "--pool", "--branches"],
    ] {
        let out = clean_cmd(&repo).args(&args).output().unwrap();
        let text = lines(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}{}", lines(&out.stderr));
        assert!(
            text.contains(".claude/runtime/worktrees/6/agent-1 ("),
            "{text}"
        );
        assert!(
            text.contains("would delete branch feat/issue-6-agent-1"),
            "{text}"
        );
        assert!(text.contains("merged into main"), "{text}");
        assert!(text.contains("kept         .claude/runtime/worktrees/6/agent-2: uncommitted"));
        assert!(
            text.contains("would prune 1 stale worktree record"),
            "{text}"
        );
        assert!(text.contains("dry run: nothing was changed"), "{text}");
        assert_eq!(
            tree(repo.tmp.path()),
            before,
            "po-clean {args:?} changed something"
        );
    }
}

#[test]
fn older_than_spares_recent_tasks() {
    let repo = Repo::new();
    let p = orchestrate(&repo, "4", &[task("old"), task("new")], &[]);
    let old = run_task(&repo, "4", &p[0], State::Completed, 8, "a.txt");
    let new = run_task(&repo, "4", &p[1], State::Completed, 1, "b.txt");
    let out = clean_cmd(&repo)
        .args(["4", "--older-than", "7d", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!old.exists() && new.exists());
    assert_eq!(r["worktrees"][0]["action"], "removed");
    assert!(r["worktrees"][0]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(r["worktrees"][1]["action"], "kept");
    assert!(
        r["worktrees"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("(--older-than 7d"),
        "{r:#}"
    );
    clean_cmd(&repo)
        .args(["4", "--older-than", "7 days"])
        .assert()
        .code(64)
        .stderr(predicates::str::contains("unknown unit"));
}

#[test]
fn branches_go_when_merged_into_the_base_or_through_a_merged_pull_request() {
    let repo = Repo::new();
    let gh = FakeGh::new(repo.tmp.path());
    let p = orchestrate(
        &repo,
        "3",
        &[
            task("in main"),
            task("pr merged"),
            task("pr merged, then more"),
            task("pr open"),
            task("no pr"),
        ],
        &[],
    );
    let mut tips = Vec::new();
    for (i, s) in p.iter().enumerate() {
        let wt = run_task(&repo, "3", s, State::Completed, 1, &format!("f{i}.txt"));
        tips.push(git(&wt, &["rev-parse", "HEAD"]));
    }
    git(
        &repo.path,
        &["merge", "-q", "--no-edit", "feat/issue-3-agent-1"],
    );
    gh.add_pr(201, "feat/issue-3-agent-2", &tips[1], "MERGED");
    gh.add_pr(202, "feat/issue-3-agent-3", &tips[2], "MERGED");
    gh.add_pr(203, "feat/issue-3-agent-4", &tips[3], "OPEN");
    for (s, n) in [(&p[1], 201), (&p[2], 202), (&p[3], 203)] {
        store::update_status(s, |t| {
            t.pr_number = Some(n);
            Ok(())
        })
        .unwrap();
    }
    // A commit on agent-3's branch after its pull request was merged.
    let wt3 = repo.runtime().join("worktrees/3/agent-3");
    std::fs::write(wt3.join("late.txt"), "late\n").unwrap();
    git(&wt3, &["add", "late.txt"]);
    git(&wt3, &["commit", "-q", "-m", "late"]);

    let mut cmd = with_gh(clean_cmd(&repo), &gh);
    let out = cmd
        .args(["3", "--branches", "--base", "main"])
        .output()
        .unwrap();
    let text = lines(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", lines(&out.stderr));
    let branches = repo.branches();
    for (n, deleted) in [(1, true), (2, true), (3, false), (4, false), (5, false)] {
        let b = format!("feat/issue-3-agent-{n}");
        assert_eq!(!branches.contains(&b), deleted, "{b}: {text}");
    }
    assert!(
        text.contains("deleted      branch feat/issue-3-agent-1 (was "),
        "{text}"
    );
    assert!(text.contains(": merged into main"), "{text}");
    assert!(
        text.contains("feat/issue-3-agent-2 (was ")
            && text.contains("its pull request #201 is merged")
    );
    assert!(
        text.contains("the branch has commits the pull request does not"),
        "{text}"
    );
    assert!(text.contains("its pull request #203 is open"), "{text}");
    assert!(
        text.contains("kept         branch feat/issue-3-agent-5: not merged into main"),
        "{text}"
    );
    // GitHub is asked by pull-request number, for the tasks that have one.
    let calls = gh.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    for (call, n) in calls.iter().zip(["201", "202", "203"]) {
        assert_eq!(
            call,
            &["pr", "view", n, "--json", "state,number,headRefOid"]
        );
    }

    // A task from a GitHub issue without a recorded PR is looked up by branch;
    // a gh failure keeps the branch and exits 5.
    let mut orch: po::protocol::Orchestration =
        store::read_json(&repo.orch_dir("3").join("orchestration.json")).unwrap();
    orch.source = Source {
        kind: "issue".into(),
        value: "3".into(),
    };
    store::write_json(&repo.orch_dir("3").join("orchestration.json"), &orch).unwrap();
    gh.fail("pr view", "HTTP 502: Bad Gateway");
    let mut cmd = with_gh(clean_cmd(&repo), &gh);
    let out = cmd
        .args(["3", "--branches", "--base", "main"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", lines(&out.stdout));
    assert!(lines(&out.stderr).contains("HTTP 502"));
    assert!(
        repo.branches()
            .contains(&"feat/issue-3-agent-5".to_string())
    );
    assert_eq!(
        gh.calls().last().unwrap(),
        &[
            "pr",
            "view",
            "feat/issue-3-agent-5",
            "--json",
            "state,number,headRefOid"
        ]
    );
}

#[test]
fn the_pool_drains_with_all_and_an_interrupted_merges_scratch_goes() {
    let repo = Repo::new();
    let p = orchestrate(&repo, "2", &[task("a"), task("b")], &[]);
    run_task(&repo, "2", &p[0], State::Completed, 1, "a.txt");
    run_task(&repo, "2", &p[1], State::Completed, 1, "b.txt");
    // What a po-merge killed with SIGKILL leaves: a detached scratch worktree.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    let scratch = repo.runtime().join(format!("worktrees/2/.merge-{pid}-0"));
    git(
        &repo.path,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            scratch.to_str().unwrap(),
            "main",
        ],
    );

    let out = clean_cmd(&repo).args(["2", "--pool"]).output().unwrap();
    let text = lines(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("left by an interrupted po-merge (pid {pid})")),
        "{text}"
    );
    assert!(!scratch.exists());
    let pool = repo.runtime().join("worktrees/.pool");
    assert_eq!(std::fs::read_dir(&pool).unwrap().count(), 2, "{text}");

    let out = clean_cmd(&repo)
        .args(["--all", "--dry-run"])
        .output()
        .unwrap();
    let text = lines(&out.stdout);
    assert_eq!(
        text.matches("would remove .claude/runtime/worktrees/.pool/wt-")
            .count(),
        2,
        "{text}"
    );
    assert_eq!(std::fs::read_dir(&pool).unwrap().count(), 2);
    let out = clean_cmd(&repo).arg("--all").output().unwrap();
    let text = lines(&out.stdout);
    assert_eq!(
        text.matches("removed      .claude/runtime/worktrees/.pool/wt-")
            .count(),
        2,
        "{text}"
    );
    let left: Vec<_> = std::fs::read_dir(&pool)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(repo.worktrees().len(), 1, "{:?}", repo.worktrees());
}

/// `git init` a repository with one commit at `dir` (its own history).
fn nested_repo(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("lib.txt"), "theirs\n").unwrap();
    git(dir, &["add", "lib.txt"]);
    git(dir, &["commit", "-q", "-m", "nested work"]);
    git(dir, &["rev-parse", "HEAD"])
}

#[test]
fn hidden_edits_ignored_files_and_nested_repositories_keep_a_worktree_named_with_what_to_do() {
    let repo = Repo::new();
    std::fs::write(repo.path.join(".gitignore"), "out/\n.env\n").unwrap();
    std::fs::write(repo.path.join(".worktreeinclude"), ".env\n").unwrap();
    git(&repo.path, &["add", "."]);
    git(&repo.path, &["commit", "-q", "-m", "ignore rules"]);
    std::fs::write(repo.path.join(".env"), "SECRET=1\n").unwrap();
    let p = orchestrate(
        &repo,
        "7",
        &[
            task("assume"),
            task("skip"),
            task("results"),
            task("nested"),
            task("env copy"),
            task("env edited"),
            task("untracked nested"),
        ],
        &[],
    );
    let wt: Vec<PathBuf> = p
        .iter()
        .enumerate()
        .map(|(i, s)| run_task(&repo, "7", s, State::Completed, 1, &format!("f{i}.txt")))
        .collect();
    std::fs::write(wt[0].join("f0.txt"), "hidden edit\n").unwrap();
    git(&wt[0], &["update-index", "--assume-unchanged", "f0.txt"]);
    std::fs::write(wt[1].join("f1.txt"), "hidden edit\n").unwrap();
    git(&wt[1], &["update-index", "--skip-worktree", "f1.txt"]);
    std::fs::create_dir_all(wt[2].join("out")).unwrap();
    std::fs::write(wt[2].join("out/results.csv"), "a,b\n1,2\n").unwrap();
    let nested = wt[3].join("out/lib");
    let nested_head = nested_repo(&nested);
    std::fs::write(wt[4].join(".env"), "SECRET=1\n").unwrap();
    std::fs::write(wt[5].join(".env"), "SECRET=2\n").unwrap();
    let untracked_nested = wt[6].join("vendor/dep");
    nested_repo(&untracked_nested);
    // po-spawn's integration worktree, with what a wave validation built.
    let integration = repo.runtime().join("worktrees/7/integration");
    git(
        &repo.path,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "po/7/wave-1",
            integration.to_str().unwrap(),
            "main",
        ],
    );
    std::fs::create_dir_all(integration.join("out")).unwrap();
    std::fs::write(integration.join("out/build.o"), "obj\n").unwrap();
    // git status sees nothing of the hidden edits, nor of the ignored files.
    for w in &wt[..6] {
        assert_eq!(git(w, &["status", "--porcelain"]), "", "{}", w.display());
    }

    let out = clean_cmd(&repo).arg("7").output().unwrap();
    let text = lines(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", lines(&out.stderr));
    let at = |n: usize| format!(".claude/runtime/worktrees/7/agent-{n}");
    let expect = [
        format!(
            "kept         {}: 1 file hidden from git status by git update-index \
             --assume-unchanged: f0.txt\n             hint: show their changes (git -C {} \
             update-index --no-assume-unchanged -- f0.txt)",
            at(1),
            at(1)
        ),
        format!(
            "kept         {}: 1 file hidden from git status by git update-index \
             --skip-worktree: f1.txt\n             hint: show their changes (git -C {} \
             update-index --no-skip-worktree -- f1.txt)",
            at(2),
            at(2)
        ),
        format!(
            "kept         {}: 1 file ignored by git that po did not put there: out/results.csv\n\
             \x20            hint: move what you need out of it; --include-ignored deletes them",
            at(3)
        ),
        format!(
            "kept         {}: holds a nested git repository (out/lib/), which po-clean never \
             deletes\n             hint: move it out of the worktree",
            at(4)
        ),
        format!("removed      {} (", at(5)),
        "removed      .claude/runtime/worktrees/7/integration (".to_string(),
        format!(
            "kept         {}: 1 file ignored by git that po did not put there: .env",
            at(6)
        ),
        format!(
            "kept         {}: holds a nested git repository (vendor/dep/)",
            at(7)
        ),
    ];
    for e in &expect {
        assert!(text.contains(e.as_str()), "missing {e:?} in:\n{text}");
    }
    assert!(!wt[4].exists());
    for (i, w) in wt.iter().enumerate().filter(|(i, _)| *i != 4) {
        assert!(w.join(".git").is_file(), "agent-{} went:\n{text}", i + 1);
    }

    // With --include-ignored the ignored files may go; a nested repository
    // stays, with --pool as without.
    for args in [
        vec!["7", "--include-ignored", "--pool"],
        vec!["7", "--include-ignored"],
    ] {
        let out = clean_cmd(&repo).args(&args).output().unwrap();
        let text = lines(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}{}", lines(&out.stderr));
        assert!(
            text.contains(&format!(
                "kept         {}: holds a nested git repository",
                at(4)
            )),
            "{args:?}: {text}"
        );
    }
    assert!(!wt[2].exists() && !wt[5].exists());
    assert!(wt[0].exists() && wt[1].exists() && wt[3].exists() && wt[6].exists());
    assert_eq!(git(&nested, &["rev-parse", "HEAD"]), nested_head);
    assert_eq!(
        std::fs::read_to_string(nested.join("lib.txt")).unwrap(),
        "theirs\n"
    );
    assert!(untracked_nested.join(".git").is_dir());

    // The JSON report carries the advice too.
    let out = clean_cmd(&repo).args(["7", "--json"]).output().unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept = r["worktrees"].as_array().unwrap();
    assert!(
        kept.iter()
            .all(|w| w["action"] == "kept" && w["advice"].as_str().is_some_and(|a| !a.is_empty())),
        "{r:#}"
    );
}

#[test]
fn a_worktree_a_killed_po_spawn_left_half_made_goes_and_a_pooled_nested_repository_stays() {
    let repo = Repo::new();
    let p = orchestrate(&repo, "8", &[task("half"), task("pooled")], &[]);
    // Registered, locked as half-made, its checkout never done: git status
    // would call every file deleted.
    let wt = repo.runtime().join("worktrees/8/agent-1");
    std::fs::create_dir_all(wt.parent().unwrap()).unwrap();
    let reason = format!("{}: checkout in progress", po::worktree::LOCK_PREFIX);
    git(
        &repo.path,
        &[
            "worktree",
            "add",
            "-q",
            "--no-checkout",
            "--lock",
            "--reason",
            &reason,
            "-b",
            "feat/8-agent-1",
            wt.to_str().unwrap(),
            "main",
        ],
    );
    store::update_status(&p[0], |s| {
        s.status = State::Failed;
        s.worktree = Some(wt.clone());
        Ok(())
    })
    .unwrap();
    // A pooled worktree someone cloned a repository into.
    let other = run_task(&repo, "8", &p[1], State::Completed, 1, "b.txt");
    let out = clean_cmd(&repo).args(["8", "--pool"]).output().unwrap();
    let text = lines(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", lines(&out.stderr));
    let line = text
        .lines()
        .find(|l| l.starts_with("removed      .claude/runtime/worktrees/8/agent-1 ("))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.ends_with(
            "): half-made: a killed po-spawn left its checkout unfinished (no agent worked there)"
        ),
        "{text}"
    );
    assert!(!wt.exists() && !other.exists(), "{text}");
    // The branch stays.
    assert!(repo.branches().contains(&"feat/8-agent-1".to_string()));
    let pool = repo.runtime().join("worktrees/.pool");
    let entry = std::fs::read_dir(&pool)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap();
    let nested = entry.join("lib");
    let head = nested_repo(&nested);
    let out = clean_cmd(&repo).arg("--all").output().unwrap();
    let text = lines(&out.stdout);
    assert!(
        text.contains("holds a nested git repository (lib/), which po-clean never deletes"),
        "{text}"
    );
    assert_eq!(git(&nested, &["rev-parse", "HEAD"]), head);
}
