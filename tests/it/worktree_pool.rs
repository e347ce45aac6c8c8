//! The warm pool of worktrees: po-clean --pool retires a finished task's
//! worktree, po-spawn takes it for the next task, and nothing of the
//! previous task comes along.

use crate::support_spawn;

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::cargo::cargo_bin_cmd;
use po::protocol::State;
use support_spawn::{Repo, git, git_env, orchestrate, output_within, status, task, text};

const LIMIT: Duration = Duration::from_secs(120);

fn pool(repo: &Repo) -> PathBuf {
    repo.runtime().join("worktrees").join(".pool")
}

fn pooled(repo: &Repo) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(pool(repo))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn ok(dir: &Path, args: &[&str]) -> bool {
    std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
        .status
        .success()
}

/// What an agent of the second run saw in its worktree, one `key=value` a line.
const REPORTER: &str = r#"
out="$SCRATCH/seen-$PO_AGENT_ID.txt"
{
  echo "branch=$(git rev-parse --abbrev-ref HEAD)"
  echo "head=$(git rev-parse HEAD)"
  echo "status=$(git status --porcelain --ignored --untracked-files=all | sort | tr '\n' ';')"
  echo "reflog=$(git reflog | tr '\n' ';')"
  echo "staged=$(git diff --cached --name-only | tr '\n' ';')"
  echo "env=$(cat .env)"
  echo "setup=$(cat setup.txt)"
  echo "files=$(ls -A | sort | tr '\n' ' ')"
  echo "flags=$(git ls-files -v | cut -c1 | sort -u | tr -d '\n')"
  echo "ignore=$(cat .gitignore | tr '\n' ';')"
} > "$out"
"#;

fn seen(repo: &Repo, agent: &str) -> std::collections::HashMap<String, String> {
    let text = std::fs::read_to_string(repo.scratch().join(format!("seen-{agent}.txt"))).unwrap();
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_pooled_worktree_carries_nothing_of_its_previous_task() {
    let repo = Repo::new();
    std::fs::write(repo.path.join(".gitignore"), ".env\nbuild/\n").unwrap();
    std::fs::write(repo.path.join(".worktreeinclude"), ".env\n").unwrap();
    git(&repo.path, &["add", "."]);
    git(&repo.path, &["commit", "-q", "-m", "ignore rules"]);
    std::fs::write(repo.path.join(".env"), "SECRET=1\n").unwrap();
    let base = git(&repo.path, &["rev-parse", "HEAD"]);

    // The first task commits, builds (ignored files) and has a reflog.
    let first = orchestrate(&repo, "first", &[task("First")], &[]);
    let agent = repo.script(
        "first.sh",
        "echo first > first.txt && git add first.txt && git commit -qm first \
         && mkdir -p build && echo obj > build/out.o && echo more > build/more.o\n",
    );
    let out = output_within(
        repo.spawn().arg("--agent-cmd").arg(&agent).args(&first),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first_branch = status(&first[0]).branch.unwrap();
    let first_commit = git(&repo.path, &["rev-parse", &first_branch]);
    let first_wt = status(&first[0]).worktree.unwrap();
    assert!(first_wt.join("build/out.o").is_file());

    // Its build output is ignored, and not po's: kept, named, unless asked.
    let out = cargo_bin_cmd!("po-clean")
        .current_dir(&repo.path)
        .envs(git_env())
        .args(["first", "--pool"])
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    assert!(
        said.contains(
            "kept         .claude/runtime/worktrees/first/agent-1: 2 files ignored by git that \
             po did not put there: build/ (2 files)\n             hint: "
        ) && said.contains("--include-ignored"),
        "{said}"
    );
    assert!(first_wt.join("build/out.o").is_file() && pooled(&repo).is_empty());
    let out = cargo_bin_cmd!("po-clean")
        .current_dir(&repo.path)
        .envs(git_env())
        .args(["first", "--pool", "--include-ignored"])
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    assert!(
        said.contains("pooled       .claude/runtime/worktrees/first/agent-1 (freed "),
        "{said}"
    );
    assert!(!first_wt.exists());
    let entries = pooled(&repo);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert!(
        !ok(entry, &["symbolic-ref", "-q", "HEAD"]),
        "a pooled worktree is detached"
    );
    assert!(!entry.join("build").exists() && !entry.join(".env").exists());
    assert_eq!(git(entry, &["reflog"]), "");
    assert_eq!(git(entry, &["status", "--porcelain", "--ignored"]), "");
    // The task's branch is free again (nothing has it checked out).
    assert!(repo.branches().contains(&first_branch));

    // Whatever else got in there since: untracked, ignored, staged, edited.
    std::fs::write(entry.join("junk.txt"), "junk\n").unwrap();
    std::fs::create_dir_all(entry.join("build")).unwrap();
    std::fs::write(entry.join("build/junk.o"), "junk\n").unwrap();
    std::fs::write(entry.join("README.md"), "edited\n").unwrap();
    std::fs::write(entry.join("staged.txt"), "staged\n").unwrap();
    git(entry, &["add", "staged.txt"]);
    // And edits hidden by index flags, which checkout and clean leave alone.
    git(entry, &["update-index", "--assume-unchanged", "README.md"]);
    std::fs::write(entry.join(".gitignore"), "hidden\n").unwrap();
    git(entry, &["update-index", "--skip-worktree", ".gitignore"]);

    // Two new tasks at once: one takes the pooled worktree, one is created.
    let second = orchestrate(&repo, "second", &[task("A"), task("B")], &[]);
    let agent = repo.script("second.sh", REPORTER);
    let out = output_within(
        repo.spawn()
            .args([
                "--max-workers",
                "2",
                "--setup",
                "echo ran > setup.txt",
                "--agent-cmd",
            ])
            .arg(&agent)
            .args(&second),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        pooled(&repo).is_empty(),
        "the pooled worktree was not taken"
    );
    let mut from_pool = 0;
    for (i, p) in second.iter().enumerate() {
        let s = status(p);
        assert_eq!(s.status, State::Completed);
        let log = std::fs::read_to_string(s.log_file.unwrap()).unwrap();
        from_pool += usize::from(log.contains("from the pool"));
        let agent = format!("agent-{}", i + 1);
        let seen = seen(&repo, &agent);
        assert_eq!(Some(&seen["branch"]), s.branch.as_ref());
        assert_eq!(seen["head"], base);
        assert_eq!(seen["status"], "!! .env;?? setup.txt;", "{agent}: {seen:?}");
        assert_eq!(seen["staged"], "");
        assert_eq!(
            seen["flags"], "H",
            "{agent}: an index flag came along: {seen:?}"
        );
        assert_eq!(seen["ignore"], ".env;build/;", "{agent}");
        assert!(
            !seen["reflog"].contains(&first_commit[..7]),
            "{agent}: {seen:?}"
        );
        assert_eq!(seen["env"], "SECRET=1");
        assert_eq!(seen["setup"], "ran");
        assert_eq!(
            seen["files"].trim(),
            ".env .git .gitignore .worktreeinclude README.md setup.txt",
            "{agent}"
        );
        assert_eq!(
            std::fs::read_to_string(s.worktree.unwrap().join("README.md")).unwrap(),
            "hello\n"
        );
    }
    assert_eq!(
        from_pool, 1,
        "exactly one task takes the one pooled worktree"
    );
}
