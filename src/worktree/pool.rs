//! A warm pool of worktrees: `po-clean --pool` retires a clean, finished
//! task's worktree into `<runtime>/worktrees/.pool/` (detached, wiped of
//! untracked and ignored files, of index flags and of its private git
//! state), and the next task that needs a worktree takes one from there
//! instead of checking out the whole tree: `git worktree move`, `git
//! checkout --force` of its branch (only the files that differ are
//! rewritten), and `git clean -fdx` if anything untracked got in.
//!
//! A pooled worktree carries nothing of its previous task: no branch (it is
//! detached), no untracked or ignored file, no index change (checkout
//! `--force` rewrites the index from the new commit) and no index flag
//! (`--assume-unchanged`, `--skip-worktree`: cleared first, or checkout would
//! keep them and the file under them), no reflog, per-worktree config or
//! refs. Stashes belong to the repository, not to a worktree; a worktree
//! whose branch has one is never pooled (see po-clean). A nested repository
//! is never deleted: po-clean does not pool a worktree holding one, and an
//! entry someone put one into is left in the pool, unused.
//!
//! Taking is safe between processes: an entry is claimed with an exclusive
//! `flock` on `<entry>.lock` before it is moved out of the pool. It is safe
//! against kills: a worktree on its way into or out of the pool is locked as
//! half-made (see [`super::worktree`]) until it is complete, and whoever
//! meets it next finishes the job.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{self as worktree, RETIRING, TAKING};
use crate::error::{Error, Result};
use crate::git::{self, branch_exists, git};
use crate::protocol::store;

/// The pool's directory name under `<runtime>/worktrees/` (orchestration ids
/// never start with a dot, so it cannot be one).
pub const POOL_DIR: &str = ".pool";
const ENTRY_PREFIX: &str = "wt-";

/// The pool of the worktrees under `worktrees_root` (`<runtime>/worktrees`).
pub fn pool_dir(worktrees_root: &Path) -> PathBuf {
    worktrees_root.join(POOL_DIR)
}

/// The pool a task worktree `<runtime>/worktrees/<id>/<agent>` draws from.
pub fn pool_for(task_worktree: &Path) -> Option<PathBuf> {
    Some(pool_dir(task_worktree.parent()?.parent()?))
}

/// The pooled worktrees, oldest name first.
pub fn entries(pool: &Path) -> Vec<PathBuf> {
    let Ok(dir) = fs::read_dir(pool) else {
        return Vec::new();
    };
    let mut list: Vec<PathBuf> = dir
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(ENTRY_PREFIX))
        })
        .collect();
    list.sort();
    list
}

/// Why `worktree` cannot go into the pool, if it cannot (it can still be removed).
pub fn unpoolable(worktree: &Path) -> Option<String> {
    let gitdir = git::private_dir(worktree)?;
    if gitdir.join("info").join("sparse-checkout").exists() {
        return Some("it is a sparse checkout".into());
    }
    if worktree.join(".gitmodules").exists() {
        return Some("it has submodules (git cannot move it)".into());
    }
    None
}

/// Retire the clean worktree `worktree` into `pool`: detach it, delete its
/// untracked and ignored files, its index flags and its private git state
/// (reflog, ORIG_HEAD, FETCH_HEAD, per-worktree config and refs), and move it
/// into the pool. Returns its place in the pool. The caller checked it holds
/// no work and no nested repository. Locked as half-made throughout: a kill
/// leaves it for po-clean (or the task's next po-spawn) to finish.
pub fn retire(repo: &Path, worktree: &Path, pool: &Path) -> Result<PathBuf> {
    static N: AtomicU64 = AtomicU64::new(0);
    let private = private(worktree)?;
    let branch = git::current_branch(worktree);
    worktree::write_lock(&private, RETIRING)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let to = pool.join(format!(
        "{ENTRY_PREFIX}{stamp}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let moved = (|| {
        unhide(worktree)?;
        git(worktree, &["checkout", "--quiet", "--detach"])?;
        // One -f: git skips a nested repository (there is none, but never one).
        git(worktree, &["clean", "-fdxq"])?;
        forget(worktree)?;
        fs::create_dir_all(pool).map_err(Error::io("create", pool))?;
        move_worktree(repo, worktree, &to)
    })();
    if let Err(e) = moved {
        // Back as it was: on its branch, unlocked (it is still clean).
        if let Some(b) = branch {
            let _ = git(worktree, &["checkout", "--quiet", &b]);
        }
        let _ = worktree::unlock(&private);
        return Err(e);
    }
    // Still locked, it is taken all the same (po's lock).
    let _ = worktree::unlock(&private);
    Ok(to)
}

/// `git worktree move -f -f FROM TO` (twice forced: it is locked, by po).
fn move_worktree(repo: &Path, from: &Path, to: &Path) -> Result<()> {
    git(
        repo,
        &[
            "worktree",
            "move",
            "--force",
            "--force",
            &from.to_string_lossy(),
            &to.to_string_lossy(),
        ],
    )
    .map(|_| ())
}

/// Take a worktree from the pool of `path` and make it `path`, on `branch`
/// (created from `base` if it does not exist, checked out as it is if it
/// does), with nothing else in it. `false` when the pool had none to give.
pub fn take(repo: &Path, path: &Path, branch: &str, base: &str) -> Result<bool> {
    let Some(pool) = pool_for(path) else {
        return Ok(false);
    };
    let candidates = entries(&pool);
    if candidates.is_empty() {
        return Ok(false);
    }
    // A runtime directory shared by several repositories: only this one's.
    let common = git(
        repo,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?;
    for entry in candidates {
        if !belongs_to(&entry, Path::new(&common)) {
            continue;
        }
        let lock_path = store::lock_path(&entry);
        let Some(lock) = store::try_lock_exclusive(&lock_path)? else {
            continue; // another task is taking it
        };
        if !entry.join(".git").is_file() {
            // Taken meanwhile: its lock file outlived it.
            let _ = fs::remove_file(&lock_path);
            continue;
        }
        let Some(private) = git::private_dir(&entry) else {
            continue;
        };
        if let Some(r) = worktree::lock_reason(&private)
            && worktree::unfinished_reason(&r).is_none()
        {
            continue; // someone locked it: theirs
        }
        // What got in since it was pooled; a nested repository is someone's.
        let untracked = match git::untracked(&entry) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!("pooled worktree {}: failed to {e}", entry.display());
                continue;
            }
        };
        if let Some(nested) = untracked.iter().find(|u| git::is_nested_repo(u)) {
            tracing::warn!(
                "pooled worktree {}: left in the pool, unused: it holds a nested repository \
                 {nested}",
                entry.display()
            );
            continue;
        }
        if let Err(e) = worktree::write_lock(&private, TAKING) {
            tracing::warn!("pooled worktree {}: failed to {e}", entry.display());
            continue;
        }
        if path.is_dir() {
            // An empty directory in the way (the caller refuses a full one).
            let _ = fs::remove_dir(path);
        }
        let moved = move_worktree(repo, &entry, path);
        let _ = fs::remove_file(&lock_path);
        drop(lock);
        if let Err(e) = moved {
            tracing::warn!(
                "pooled worktree {}: failed to {e}; removing it",
                entry.display()
            );
            worktree::discard(repo, &entry);
            continue;
        }
        match switch(path, branch, base, !untracked.is_empty())
            .and_then(|()| worktree::complete(path))
        {
            Ok(()) => return Ok(true),
            Err(e) => {
                // Its files were the pool's, nothing of a task: start afresh.
                tracing::warn!("pooled worktree at {}: failed to {e}", path.display());
                worktree::discard(repo, path);
                return Ok(false);
            }
        }
    }
    Ok(false)
}

/// Make the (half-made, po's) worktree at `path` `branch`'s: index flags
/// cleared, then `branch` (new from `base`, or as it is) checked out over
/// whatever is in it; with `untracked`, every untracked and ignored file
/// deleted (never a nested repository: that is an error). The branch itself
/// does not move.
pub(crate) fn switch(path: &Path, branch: &str, base: &str, untracked: bool) -> Result<()> {
    unhide(path)?;
    if git::current_branch(path).as_deref() == Some(branch) {
        git(path, &["reset", "--quiet", "--hard"])?;
    } else if branch_exists(path, branch) {
        git(path, &["checkout", "--quiet", "--force", branch])?;
    } else {
        git(
            path,
            &[
                "checkout",
                "--quiet",
                "--force",
                "--no-track",
                "-b",
                branch,
                base,
            ],
        )?;
    }
    if untracked {
        let left = git::untracked(path)?;
        if let Some(nested) = left.iter().find(|u| git::is_nested_repo(u)) {
            return Err(Error::system(format!(
                "prepare worktree {}: it holds a nested repository {nested} that po did not put \
                 there (po never deletes one); move it away",
                path.display()
            )));
        }
        if !left.is_empty() {
            git(path, &["clean", "-fdxq"])?;
        }
    }
    // The checkout's own reflog entry names the commit it came from.
    forget(path)
}

/// Clear the assume-unchanged and skip-worktree flags of every index entry:
/// a flagged file is one checkout and clean leave alone.
fn unhide(path: &Path) -> Result<()> {
    let hidden = git::hidden_entries(path)?;
    if hidden.is_empty() {
        return Ok(());
    }
    git::unhide(path, &hidden)
}

/// Delete the worktree's private git state a task leaves: the reflog of
/// HEAD (it names the task's commits), ORIG_HEAD, FETCH_HEAD, AUTO_MERGE,
/// per-worktree config and refs.
fn forget(worktree: &Path) -> Result<()> {
    let private = private(worktree)?;
    for name in [
        "logs/HEAD",
        "ORIG_HEAD",
        "FETCH_HEAD",
        "config.worktree",
        "AUTO_MERGE",
    ] {
        let p = private.join(name);
        if p.exists() {
            fs::remove_file(&p).map_err(Error::io("remove", &p))?;
        }
    }
    for name in ["refs/worktree", "refs/bisect", "refs/rewritten"] {
        let p = private.join(name);
        if p.exists() {
            fs::remove_dir_all(&p).map_err(Error::io("remove", &p))?;
        }
    }
    Ok(())
}

/// Whether the worktree at `entry` is one of the repository whose common git
/// directory is `common` (its `.git` file points inside it).
fn belongs_to(entry: &Path, common: &Path) -> bool {
    git::private_dir(entry)
        .and_then(|g| fs::canonicalize(g).ok())
        .is_some_and(|g| fs::canonicalize(common).is_ok_and(|c| g.starts_with(c)))
}

/// The worktree's private git directory (`.git/worktrees/<name>`).
fn private(worktree: &Path) -> Result<PathBuf> {
    git::private_dir(worktree).ok_or_else(|| {
        Error::system(format!(
            "read {}: not a linked worktree's .git file",
            worktree.join(".git").display()
        ))
    })
}
