//! The few `git` commands the runner needs, always as argv.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// `git ARGS…` in `dir`; its trimmed stdout, or an error quoting git's message.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::system(format!("run `git {}`: {e}", args.join(" "))))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
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

/// `git rev-list --count base..HEAD` and `git diff --numstat base HEAD` in `dir`.
pub fn diff_stats(dir: &Path, base: &str) -> Result<DiffStats> {
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
