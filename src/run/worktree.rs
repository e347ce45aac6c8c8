//! One git worktree per task: created on the task's branch from its base,
//! reused as it is when a retry finds it, never clobbered or deleted; plus the
//! ignored files `.worktreeinclude` asks for.

use std::fs;
use std::path::{Path, PathBuf};

use ignore::gitignore::GitignoreBuilder;

use super::git::{branch_exists, git};
use crate::error::{Error, Result};
use crate::protocol::store;

/// What [`ensure`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prepared {
    Created,
    Reused,
}

/// Make sure `path` is a worktree of `repo` with `branch` checked out: reuse
/// it if it is, create it (and the branch from `base` if the branch is new)
/// if nothing is there, refuse if something else is.
pub fn ensure(repo: &Path, path: &Path, branch: &str, base: &str) -> Result<Prepared> {
    if path.join(".git").exists() {
        let head = git(path, &["symbolic-ref", "--quiet", "--short", "HEAD"]).unwrap_or_default();
        if head == branch {
            return Ok(Prepared::Reused);
        }
        return Err(Error::system(format!(
            "use worktree {}: it has {} checked out, not {branch}; move it away (po never \
             deletes a worktree)",
            path.display(),
            if head.is_empty() {
                "a detached HEAD".to_string()
            } else {
                head
            }
        )));
    }
    if path.exists() && fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::system(format!(
            "create worktree {}: the directory exists and is not empty; move it away",
            path.display()
        )));
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    let p = path.to_string_lossy();
    // `git worktree add` reads every other worktree's metadata and trips over
    // one being created at the same moment ("failed to read
    // .git/worktrees/…/commondir"), so registrations are serialised on a lock
    // in the repository; the checkout, the slow part, runs concurrently after.
    let add = |repo: &Path| -> Result<()> {
        let _guard = store::lock_exclusive(&add_lock(repo, path))?;
        if branch_exists(repo, branch) {
            git(
                repo,
                &["worktree", "add", "--quiet", "--no-checkout", &p, branch],
            )?;
        } else {
            git(
                repo,
                &[
                    "worktree",
                    "add",
                    "--quiet",
                    "--no-checkout",
                    "-b",
                    branch,
                    &p,
                    base,
                ],
            )?;
        }
        Ok(())
    };
    match add(repo) {
        Ok(()) => {}
        Err(e) if e.to_string().contains("already registered") => {
            // The directory is gone but git still lists it: forget the missing
            // entry (nothing on disk is lost) and try again.
            {
                let _guard = store::lock_exclusive(&add_lock(repo, path))?;
                git(repo, &["worktree", "prune"])?;
            }
            add(repo)?;
        }
        Err(e) => return Err(e),
    }
    git(path, &["reset", "--quiet", "--hard"])?;
    Ok(Prepared::Created)
}

/// The lock serialising `git worktree add` in one repository.
pub fn add_lock(repo: &Path, fallback: &Path) -> PathBuf {
    let git_dir = repo.join(".git");
    if git_dir.is_dir() {
        git_dir.join("po-worktree-add.lock")
    } else {
        fallback
            .parent()
            .unwrap_or(fallback)
            .join(".po-worktree-add.lock")
    }
}

/// Ignored files of `repo` that `.worktreeinclude` (gitignore syntax) selects,
/// relative to the repository root. Empty when there is no such file.
pub fn included_files(repo: &Path, skip: &Path) -> Result<Vec<PathBuf>> {
    let spec = repo.join(".worktreeinclude");
    if !spec.is_file() {
        return Ok(Vec::new());
    }
    let mut builder = GitignoreBuilder::new(repo);
    if let Some(e) = builder.add(&spec) {
        return Err(Error::parse(spec.display().to_string(), e.to_string()));
    }
    let matcher = builder
        .build()
        .map_err(|e| Error::parse(spec.display().to_string(), e.to_string()))?;
    let listed = git(
        repo,
        &["ls-files", "--others", "--ignored", "--exclude-standard"],
    )?;
    let skip_rel = skip.strip_prefix(repo).ok().map(Path::to_path_buf);
    Ok(listed
        .lines()
        .map(PathBuf::from)
        .filter(|rel| !skip_rel.as_ref().is_some_and(|s| rel.starts_with(s)))
        .filter(|rel| matcher.matched_path_or_any_parents(rel, false).is_ignore())
        .collect())
}

/// Copy `files` (relative to `repo`) into `worktree`, leaving existing ones alone.
pub fn copy_included(repo: &Path, worktree: &Path, files: &[PathBuf]) -> Result<usize> {
    let mut copied = 0;
    for rel in files {
        let (from, to) = (repo.join(rel), worktree.join(rel));
        if to.exists() || !from.is_file() {
            continue;
        }
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        }
        fs::copy(&from, &to).map_err(Error::io("copy", &from))?;
        copied += 1;
    }
    Ok(copied)
}
