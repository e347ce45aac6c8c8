//! The few `git` commands po runs, always as argv.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// `git ARGS…` in `dir`; its trimmed stdout, or an error quoting git's message.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    git_raw(dir, args).map(|out| out.trim().to_string())
}

/// `git ARGS…` in `dir`; its stdout as given (for `-z` output), or an error
/// quoting git's message.
pub fn git_raw(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::system(format!("run `git {}`: {e}", args.join(" "))))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let msg = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::system(format!(
        "run `git {}` in {}: {}",
        args.join(" "),
        dir.display(),
        if msg.is_empty() {
            format!("exit status {}", out.status)
        } else {
            msg
        }
    )))
}

/// Whether `git ARGS…` succeeds (quietly).
pub fn git_ok(dir: &Path, args: &[&str]) -> bool {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The commit `rev` names, as a full hash.
pub fn resolve_commit(repo: &Path, rev: &str) -> Result<String> {
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .map_err(|_| {
        Error::usage(format!(
            "resolve base {rev:?} in {}: no such commit; pass --base with a branch, tag or commit",
            repo.display()
        ))
    })
}

/// The branch checked out in `repo`, if any.
pub fn current_branch(repo: &Path) -> Option<String> {
    git(repo, &["symbolic-ref", "--quiet", "--short", "HEAD"]).ok()
}

pub fn branch_exists(repo: &Path, branch: &str) -> bool {
    git_ok(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    )
}

/// What merging two commits gives, computed without a worktree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeTree {
    /// The merged tree (with conflict markers where there are conflicts).
    pub tree: String,
    /// Files that conflict; empty for a clean merge.
    pub conflicts: Vec<String>,
}

/// `git merge-tree --write-tree` of `ours` and `theirs` (git ≥ 2.38): the
/// merge's tree and its conflicting files, touching no worktree, index or
/// ref.
pub fn merge_tree(repo: &Path, ours: &str, theirs: &str) -> Result<MergeTree> {
    let args = [
        "merge-tree",
        "--write-tree",
        "--name-only",
        "--no-messages",
        "-z",
        ours,
        theirs,
    ];
    let out = Command::new("git")
        .args(args)
        .current_dir(repo)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::system(format!("run `git merge-tree`: {e}")))?;
    match out.status.code() {
        Some(0) | Some(1) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let mut fields = text.split('\0').filter(|f| !f.is_empty());
            let tree = fields.next().unwrap_or_default().trim().to_string();
            Ok(MergeTree {
                tree,
                conflicts: fields.map(str::to_string).collect(),
            })
        }
        _ => Err(Error::system(format!(
            "run `git merge-tree --write-tree {ours} {theirs}` in {}: {} (git 2.38 or later is \
             needed)",
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// Identity flags for commits po makes itself (merges), when the user has none.
pub fn identity_args(repo: &Path) -> Vec<&'static str> {
    if git_ok(repo, &["var", "GIT_COMMITTER_IDENT"]) {
        Vec::new()
    } else {
        vec!["-c", "user.name=po", "-c", "user.email=po@localhost"]
    }
}

/// What a task changed against its base.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffStats {
    pub commits: u64,
    pub files_changed: u64,
    pub lines_added: u64,
    pub lines_removed: u64,
}

/// The commit a worktree's branch points at, read from its loose ref without
/// running git; `None` when it is not that simple (packed refs, detached HEAD).
pub fn loose_head(worktree: &Path) -> Option<String> {
    let dotgit = std::fs::read_to_string(worktree.join(".git")).ok()?;
    let gitdir = PathBuf::from(dotgit.strip_prefix("gitdir:")?.trim());
    let head = std::fs::read_to_string(gitdir.join("HEAD")).ok()?;
    let refname = head.strip_prefix("ref:")?.trim();
    if !refname.starts_with("refs/heads/") || refname.contains("..") {
        return None;
    }
    let common = std::fs::read_to_string(gitdir.join("commondir")).ok()?;
    let common = gitdir.join(common.trim());
    let value = std::fs::read_to_string(common.join(refname)).ok()?;
    let value = value.trim();
    (value.len() >= 40 && value.chars().all(|c| c.is_ascii_hexdigit())).then(|| value.to_string())
}

/// `git rev-list --count base..HEAD` and `git diff --numstat base HEAD` in `dir`.
pub fn diff_stats(dir: &Path, base: &str) -> Result<DiffStats> {
    if loose_head(dir).is_some_and(|head| head == base) {
        // The branch did not move: nothing to count, no git to run.
        return Ok(DiffStats::default());
    }
    let commits: u64 = git(dir, &["rev-list", "--count", &format!("{base}..HEAD")])?
        .parse()
        .unwrap_or(0);
    let mut stats = DiffStats {
        commits,
        ..DiffStats::default()
    };
    if commits == 0 {
        return Ok(stats);
    }
    for line in git(dir, &["diff", "--numstat", base, "HEAD"])?.lines() {
        let mut f = line.split('\t');
        let added = f.next().and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
        let removed = f.next().and_then(|r| r.parse::<u64>().ok()).unwrap_or(0);
        stats.files_changed += 1;
        stats.lines_added += added;
        stats.lines_removed += removed;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn a_worktrees_loose_head_matches_git_and_stats_count_commits() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r");
        std::fs::create_dir(&repo).unwrap();
        run(&repo, &["init", "-q", "-b", "main"]);
        run(&repo, &["commit", "-q", "--allow-empty", "-m", "base"]);
        let base = run(&repo, &["rev-parse", "HEAD"]);
        let wt = tmp.path().join("wt");
        run(
            &repo,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "feat/x",
                wt.to_str().unwrap(),
                &base,
            ],
        );
        assert_eq!(loose_head(&wt), Some(base.clone()));
        assert_eq!(diff_stats(&wt, &base).unwrap(), DiffStats::default());
        std::fs::write(wt.join("a.txt"), "one\ntwo\n").unwrap();
        run(&wt, &["add", "a.txt"]);
        run(&wt, &["commit", "-q", "-m", "a"]);
        assert_eq!(loose_head(&wt), Some(run(&wt, &["rev-parse", "HEAD"])));
        assert_eq!(
            diff_stats(&wt, &base).unwrap(),
            DiffStats {
                commits: 1,
                files_changed: 1,
                lines_added: 2,
                lines_removed: 0
            }
        );
        // The main checkout is not a linked worktree: no shortcut.
        assert_eq!(loose_head(&repo), None);
    }
}
