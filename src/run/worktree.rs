//! One git worktree per task: created on the task's branch from its base,
//! reused as it is when a retry finds it, never clobbered or deleted; plus the
//! ignored files `.worktreeinclude` asks for.

use std::fs;
use std::path::{Path, PathBuf};

use ignore::gitignore::GitignoreBuilder;

use super::git::{branch_exists, git};
use crate::error::{Error, Result};

/// What [`ensure`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prepared {
    Created,
    Reused,
    /// Taken from the warm pool (see [`super::worktree_pool`]).
    Pooled,
}

/// Make sure `path` is a worktree of `repo` with `branch` checked out: reuse
/// it if it is, take one from the warm pool or create it (and the branch
/// from `base` if the branch is new) if nothing is there, refuse if
/// something else is.
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
    if super::worktree_pool::take(repo, path, branch, base)? {
        return Ok(Prepared::Pooled);
    }
    let p = path.to_string_lossy();
    // A new branch is the common case: try that first and fall back to
    // checking out the existing branch (git refuses `-b` for one before it
    // touches anything).
    let add = |repo: &Path| -> Result<()> {
        match worktree_add(repo, &["--no-checkout", "-b", branch, &p, base]) {
            Err(e) if e.to_string().contains("already exists") && branch_exists(repo, branch) => {
                worktree_add(repo, &["--no-checkout", &p, branch])
            }
            other => other,
        }
    };
    match add(repo) {
        Ok(()) => {}
        Err(e) if e.to_string().contains("already registered") => {
            // The directory is gone but git still lists it: forget the missing
            // entry (nothing on disk is lost) and try again.
            git(repo, &["worktree", "prune"])?;
            add(repo)?;
        }
        Err(e) => return Err(e),
    }
    // The checkout: registration only wrote metadata.
    git(path, &["reset", "--quiet", "--hard"])?;
    Ok(Prepared::Created)
}

/// `git worktree add --quiet ARGS…`, tried again when it trips over another
/// worktree being registered at the same moment: git reads every worktree's
/// metadata and dies on a `commondir` that is not written yet ("failed to
/// read .git/worktrees/…/commondir"). That check comes before git creates
/// anything but the branch of `-b`, so a second try (which finds the branch
/// and checks it out instead) is safe.
pub fn worktree_add(repo: &Path, args: &[&str]) -> Result<()> {
    let mut argv = vec!["worktree", "add", "--quiet"];
    argv.extend_from_slice(args);
    let mut last = None;
    for attempt in 0..40u64 {
        match git(repo, &argv) {
            Ok(_) => return Ok(()),
            Err(e) if is_registration_race(&e) => {
                last = Some(e);
                let jitter = (u64::from(std::process::id()) * 7 + attempt * 13) % 40;
                std::thread::sleep(std::time::Duration::from_millis(5 + jitter));
                // `-b BRANCH`: the first try may have created the branch.
                if let Some(i) = argv.iter().position(|a| *a == "-b")
                    && branch_exists(repo, argv[i + 1])
                {
                    let (branch, path) = (argv[i + 1], argv[i + 2]);
                    argv.truncate(i);
                    argv.extend([path, branch]);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::system("add a worktree: git kept failing")))
}

fn is_registration_race(e: &Error) -> bool {
    let m = e.to_string();
    m.contains("failed to read") && m.contains("worktrees")
}

/// Remove a worktree of po's own that holds nothing of anyone (a scratch or
/// pooled one), whatever is in it; its directory at least, if git will not.
pub fn discard(repo: &Path, worktree: &Path) {
    let p = worktree.to_string_lossy();
    if git(repo, &["worktree", "remove", "--force", "--force", &p]).is_err() {
        let _ = fs::remove_dir_all(worktree);
        let _ = git(repo, &["worktree", "prune"]);
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

/// Remove git's lock files that a killed attempt left in the worktree at
/// `path` (`index.lock` after an agent was killed inside `git commit`), so
/// the retry's git works. Only when no process works in the worktree: the
/// task's own tree was ended before its retry starts, so a process there is
/// someone else's git, whose lock stays. Returns the files removed.
pub fn clear_stale_locks(path: &Path) -> Vec<PathBuf> {
    let Some(gitdir) = fs::read_to_string(path.join(".git"))
        .ok()
        .and_then(|d| Some(PathBuf::from(d.strip_prefix("gitdir:")?.trim())))
    else {
        return Vec::new();
    };
    let locks: Vec<PathBuf> = ["index.lock", "HEAD.lock"]
        .iter()
        .map(|l| gitdir.join(l))
        .filter(|l| l.exists())
        .collect();
    if locks.is_empty() || anyone_in(path) {
        return Vec::new();
    }
    locks
        .into_iter()
        .filter(|l| fs::remove_file(l).is_ok())
        .collect()
}

/// Whether a live process has its working directory inside `dir`.
fn anyone_in(dir: &Path) -> bool {
    let Ok(procs) = fs::read_dir("/proc") else {
        return true;
    };
    procs.filter_map(|e| e.ok()).any(|e| {
        e.file_name().to_string_lossy().parse::<u32>().is_ok()
            && fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
    })
}
