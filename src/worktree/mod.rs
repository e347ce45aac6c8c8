//! One git worktree per task: created on the task's branch from its base,
//! reused as it is when a retry finds it, never clobbered or deleted; plus the
//! ignored files `.worktreeinclude` asks for.
//!
//! A worktree is handed to an agent only once its checkout is known to be
//! complete. While po builds one (a new checkout, one taken from the warm
//! pool, one being retired into it), the worktree is locked (`git worktree
//! lock`) with a reason that starts with [`LOCK_PREFIX`]:
//!
//! * git writes that lock before anything else of a new worktree (before its
//!   `.git` file and HEAD), so no half-made worktree lacks it;
//! * `git worktree prune` never removes a locked worktree, not even in the
//!   instant a move leaves git's record naming the old place;
//! * po removes the lock only once the checkout is complete, and makes the
//!   removal durable (`fsync` of git's directory for the worktree) before
//!   anyone works there, so a lock never comes back over an agent's work.
//!
//! So a worktree that still carries po's lock was never given to an agent:
//! nothing in it is anyone's work, and the next po-spawn of its task finishes
//! it (git's record repaired, its branch checked out over whatever is there,
//! untracked files deleted, index flags cleared) without moving the branch.
//! One without the lock is complete, and is reused as it is: its edits are a
//! previous attempt's. Telling the two apart reads two small files; nothing
//! is hashed. A worktree an older po left with no index at all (its checkout
//! was killed) gets its checkout finished; a file that differed from HEAD
//! (the one the kill cut short, most likely) is moved aside first, into
//! git's directory for the worktree, never deleted.
//!
//! A kill loses nothing the kernel has; a power cut can lose files written
//! shortly before it, as for any git checkout (git syncs objects and refs,
//! not checked-out files). Rather than sync every checkout (a `syncfs` costs
//! seconds on a busy disk), po records the boot a checkout completed in
//! ([`INTACT_FILE`]); a worktree reused after the machine restarted is
//! checked once for tracked files that are missing or empty where HEAD's are
//! not, and refused, naming them, if it has any: an agent never commits what
//! a power cut took.
//!
//! Retired worktrees wait in a warm [`pool`] for the next task.

pub mod pool;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use ignore::gitignore::GitignoreBuilder;

use crate::error::{Error, GitRefusal, Result};
use crate::git::{self, branch_exists, git};

/// What [`ensure`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prepared {
    /// Checked out anew, or a half-made one (see the module) finished.
    Created,
    Reused,
    /// Taken from the warm pool (see [`pool`]).
    Pooled,
}

/// Make sure `path` is a worktree of `repo` with `branch` checked out: reuse
/// it if it is, finish it if a killed run left it half-made, take one from
/// the warm pool or create it (and the branch from `base` if the branch is
/// new) if nothing is there, refuse if something else is.
pub fn ensure(repo: &Path, path: &Path, branch: &str, base: &str) -> Result<Prepared> {
    ensure_noting(repo, path, branch, base, &mut |m| tracing::info!("{m}"))
}

/// [`ensure`], telling `note` what it repaired.
pub fn ensure_noting(
    repo: &Path,
    path: &Path,
    branch: &str,
    base: &str,
    note: &mut dyn FnMut(String),
) -> Result<Prepared> {
    if fs::symlink_metadata(path.join(".git")).is_ok() {
        match git::private_dir(path).filter(|p| p.is_dir()) {
            Some(private) if unfinished_in(&private).is_some() => {
                if repair(repo, path, &private, branch, base, note)? {
                    return Ok(Prepared::Created);
                }
                // Only git's registration was begun: make it anew.
            }
            _ => return reuse(path, branch, note),
        }
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
    if let Some(lock) = stale_ref_lock(repo, branch) {
        note(format!("removed {} that a killed git left", lock.display()));
    }
    if pool::take(repo, path, branch, base)? {
        return Ok(Prepared::Pooled);
    }
    create(repo, path, branch, base)?;
    Ok(Prepared::Created)
}

/// Register a new worktree at `path` (locked as half-made), check it out and
/// mark it complete.
fn create(repo: &Path, path: &Path, branch: &str, base: &str) -> Result<()> {
    let p = path.to_string_lossy();
    let head = ["--no-checkout", "--lock", "--reason", CHECKING_OUT];
    // A new branch is the common case: try that first and fall back to
    // checking out the existing branch (git refuses `-b` for one before it
    // touches anything).
    let add = |repo: &Path| -> Result<()> {
        let mut new = head.to_vec();
        new.extend(["-b", branch, &p, base]);
        match worktree_add(repo, &new) {
            Err(e)
                if e.git_refusal() == Some(GitRefusal::AlreadyExists)
                    && branch_exists(repo, branch) =>
            {
                let mut existing = head.to_vec();
                existing.extend([&*p, branch]);
                worktree_add(repo, &existing)
            }
            other => other,
        }
    };
    match add(repo) {
        Ok(()) => {}
        Err(e) if e.git_refusal() == Some(GitRefusal::MissingButRegistered) => {
            // The directory is gone (or was never made) but git still lists
            // it: forget that record (nothing on disk is lost) and try again.
            forget_registration(repo, path)?;
            add(repo)?;
        }
        Err(e) => return Err(e),
    }
    // The checkout: registration only wrote metadata.
    git(path, &["reset", "--quiet", "--hard"])?;
    complete(path)
}

/// The worktree at `path` is complete (no lock of po's): reuse it if it has
/// `branch` checked out.
fn reuse(path: &Path, branch: &str, note: &mut dyn FnMut(String)) -> Result<Prepared> {
    if let Some(private) = git::private_dir(path)
        && !private.is_dir()
    {
        return Err(Error::system(format!(
            "use worktree {}: git's directory for it ({}) is gone (pruned?); move it away, \
             its files are as they were",
            path.display(),
            private.display()
        )));
    }
    let head = git(path, &["symbolic-ref", "--quiet", "--short", "HEAD"]).unwrap_or_default();
    if head != branch {
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
    let gitdir = git::private_dir(path).unwrap_or_else(|| path.join(".git"));
    if !gitdir.join("index").exists() {
        finish_checkout(path, note)?;
    }
    check_after_restart(path)?;
    Ok(Prepared::Reused)
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
    e.git_refusal() == Some(GitRefusal::WorktreeRace)
}

/// Remove a worktree of po's own that holds nothing of anyone (a scratch or
/// pooled one), whatever is in it; its directory at least, if git will not.
/// Never one that holds a nested repository: that is left where it is, and
/// said (`false`).
pub fn discard(repo: &Path, worktree: &Path) -> bool {
    let nested = nested_repos(worktree);
    if !nested.is_empty() {
        tracing::warn!(
            "left {} in place: it holds a nested repository ({}), which po never deletes",
            worktree.display(),
            nested.join(", ")
        );
        return false;
    }
    let p = worktree.to_string_lossy();
    if git(repo, &["worktree", "remove", "--force", "--force", &p]).is_err() {
        let _ = fs::remove_dir_all(worktree);
        let _ = git(repo, &["worktree", "prune"]);
    }
    true
}

/// Ignored files of `repo` that `.worktreeinclude` (gitignore syntax) selects,
/// relative to the repository root. Empty when there is no such file.
pub fn included_files(repo: &Path, skip: &Path) -> Result<Vec<PathBuf>> {
    let spec = repo.join(".worktreeinclude");
    let text = match crate::fsx::read_to_string(&spec, crate::fsx::SMALL_MAX) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", &spec)(e)),
    };
    let mut builder = GitignoreBuilder::new(repo);
    for line in text.trim_start_matches('\u{feff}').lines() {
        builder
            .add_line(Some(spec.clone()), line)
            .map_err(|e| Error::parse(spec.display().to_string(), e.to_string()))?;
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
    let Some(gitdir) = git::private_dir(path) else {
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

/// How every lock reason of po's begins (`git worktree list` shows it): a
/// worktree locked with one is half-made, see the module.
pub const LOCK_PREFIX: &str = "po: half-made";
/// While a new worktree is checked out (or a half-made one finished).
const CHECKING_OUT: &str = "po: half-made: checkout in progress; the next po-spawn of its task \
                            finishes it";
/// While a pooled worktree becomes a task's.
pub(crate) const TAKING: &str = "po: half-made: being taken from the warm pool; the next \
                                 po-spawn of its task finishes it";
/// While po-clean retires a task's worktree into the pool.
pub(crate) const RETIRING: &str = "po: half-made: being retired into the warm pool; po-clean \
                                   finishes it";

/// What po was doing to a worktree that still carries its lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfinished {
    /// Making it a task's worktree (a checkout, or a take from the pool).
    Checkout,
    /// Retiring a finished task's worktree into the pool.
    Retiring,
}

/// Which of po's unfinished jobs a `git worktree lock` reason names, if any.
pub fn unfinished_reason(reason: &str) -> Option<Unfinished> {
    let reason = reason.trim();
    if !reason.starts_with(LOCK_PREFIX) {
        None
    } else if reason == RETIRING {
        Some(Unfinished::Retiring)
    } else {
        Some(Unfinished::Checkout)
    }
}

/// Whether the worktree whose private git directory is `private` is half-made.
pub fn unfinished_in(private: &Path) -> Option<Unfinished> {
    unfinished_reason(&lock_reason(private)?)
}

/// The reason of the `git worktree lock` on the worktree whose private git
/// directory is `private`, if it is locked.
pub fn lock_reason(private: &Path) -> Option<String> {
    read_small(&private.join("locked")).map(|r| r.trim().to_string())
}

/// A small regular file's text; `None` for anything else (never blocks on a FIFO).
fn read_small(path: &Path) -> Option<String> {
    crate::fsx::read_to_string(path, 64 * 1024).ok()
}

/// Lock the worktree whose private git directory is `private` with `reason`,
/// durably (what `git worktree lock` writes: gitrepository-layout(5)).
pub(crate) fn write_lock(private: &Path, reason: &str) -> Result<()> {
    crate::protocol::store::write_atomic(&private.join("locked"), reason.as_bytes())?;
    fsync_dir(private)
}

/// Unlock it, durably.
pub(crate) fn unlock(private: &Path) -> Result<()> {
    let lock = private.join("locked");
    match fs::remove_file(&lock) {
        Ok(()) => fsync_dir(private),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", &lock)(e)),
    }
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("fsync", dir))
}

/// The checkout at `path` is done: record the boot it completed in, then
/// remove po's lock, durably. After this the worktree may be handed to an
/// agent.
pub(crate) fn complete(path: &Path) -> Result<()> {
    let private = git::private_dir(path).ok_or_else(|| {
        Error::system(format!(
            "finish worktree {}: its .git file does not name git's directory for it",
            path.display()
        ))
    })?;
    mark_intact(&private)?;
    unlock(&private)
}

/// The file in a worktree's private git directory naming the boot (Linux's
/// `boot_id`) in which its checkout was last known complete.
pub const INTACT_FILE: &str = "po-checkout-boot";

/// This boot's id; `None` where the system has none.
fn boot_id() -> Option<String> {
    read_small(Path::new("/proc/sys/kernel/random/boot_id")).map(|b| b.trim().to_string())
}

fn mark_intact(private: &Path) -> Result<()> {
    let Some(boot) = boot_id() else {
        return Ok(());
    };
    crate::protocol::store::write_atomic(&private.join(INTACT_FILE), boot.as_bytes())?;
    fsync_dir(private)
}

/// A complete worktree about to be reused: if the machine restarted since
/// its checkout was known complete, check that no tracked file is missing,
/// or empty where HEAD's is not (what a power cut leaves of files written
/// just before it); refuse it if some are. Then (or when there was nothing
/// to check) it is known complete in this boot.
fn check_after_restart(path: &Path) -> Result<()> {
    let Some(private) = git::private_dir(path) else {
        return Ok(()); // not a linked worktree: nothing recorded
    };
    let Some(boot) = boot_id() else {
        return Ok(());
    };
    if read_small(&private.join(INTACT_FILE)).is_some_and(|b| b.trim() == boot) {
        return Ok(());
    }
    let missing = crate::git::git_raw(path, &["ls-files", "-z", "--deleted"])?;
    let mut lost: Vec<String> = missing
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    let changed = crate::git::git_raw(path, &["diff-files", "-z", "--name-only"])?;
    let emptied: Vec<&str> = changed
        .split('\0')
        .filter(|f| !f.is_empty())
        .filter(|f| fs::symlink_metadata(path.join(f)).is_ok_and(|m| m.is_file() && m.len() == 0))
        .collect();
    if !emptied.is_empty() {
        let input: String = emptied.iter().map(|f| format!("HEAD:{f}\n")).collect();
        let sizes = crate::git::git_stdin(
            path,
            &["cat-file", "--batch-check=%(objectsize)"],
            input.as_bytes(),
        )?;
        lost.extend(
            emptied
                .iter()
                .zip(sizes.lines())
                .filter(|(_, size)| size.trim().parse::<u64>().is_ok_and(|n| n > 0))
                .map(|(f, _)| f.to_string()),
        );
    }
    if !lost.is_empty() {
        lost.sort();
        let shown: Vec<&str> = lost.iter().take(5).map(String::as_str).collect();
        return Err(Error::system(format!(
            "use worktree {}: the machine restarted since its checkout, and {} file{} git \
             tracks {} missing or empty ({}{}): a power cut may have taken them. If so, `git -C \
             {} checkout HEAD -- FILE…` restores them; if an agent removed them, commit that; \
             then retry",
            path.display(),
            lost.len(),
            if lost.len() == 1 { "" } else { "s" },
            if lost.len() == 1 { "is" } else { "are" },
            shown.join(", "),
            if lost.len() > 5 { ", …" } else { "" },
            path.display()
        )));
    }
    mark_intact(&private)
}

/// Finish the half-made worktree at `path` (locked by po; its private git
/// directory `private`) as `branch`'s: `true` when done, `false` when git's
/// registration of it was only begun and has been undone (the caller makes
/// the worktree anew). Nothing in a half-made worktree is anyone's work: it
/// was never handed to an agent. The branch is never moved.
fn repair(
    repo: &Path,
    path: &Path,
    private: &Path,
    branch: &str,
    base: &str,
    note: &mut dyn FnMut(String),
) -> Result<bool> {
    for lock in clear_stale_locks(path) {
        note(format!(
            "removed {} that a killed attempt left",
            lock.display()
        ));
    }
    if !crate::git::git_ok(path, &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]) {
        // Killed inside `git worktree add`, before it wrote HEAD.
        abandon(path, private)?;
        note(format!(
            "undid the registration of worktree {} that a killed run began",
            path.display()
        ));
        return Ok(false);
    }
    if !points_here(private, path) {
        // Killed inside `git worktree move`: the directory is here, git's
        // record still names the old place.
        git(repo, &["worktree", "repair", &path.to_string_lossy()])?;
    }
    pool::switch(path, branch, base, true)?;
    complete(path)?;
    note(format!(
        "finished worktree {} on {branch}, which a killed run left half-made",
        path.display()
    ));
    Ok(true)
}

/// Undo a registration `git worktree add` only began: the directory holds
/// nothing but the `.git` file.
fn abandon(path: &Path, private: &Path) -> Result<()> {
    let others = fs::read_dir(path)
        .map_err(Error::io("read", path))?
        .flatten()
        .filter(|e| e.file_name() != ".git")
        .count();
    let in_worktrees = private
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "worktrees");
    if others > 0 || !in_worktrees {
        return Err(Error::system(format!(
            "finish worktree {}: git cannot read it, and it holds files; move it away",
            path.display()
        )));
    }
    fs::remove_file(path.join(".git")).map_err(Error::io("remove", path.join(".git")))?;
    fs::remove_dir_all(private).map_err(Error::io("remove", private))
}

/// Whether git's record of the worktree (`<private>/gitdir`) names `path`.
fn points_here(private: &Path, path: &Path) -> bool {
    let Some(recorded) = read_small(&private.join("gitdir")) else {
        return false;
    };
    let recorded = Path::new(recorded.trim());
    let recorded = if recorded.is_absolute() {
        recorded.to_path_buf()
    } else {
        private.join(recorded)
    };
    match (
        fs::canonicalize(&recorded),
        fs::canonicalize(path.join(".git")),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Forget git's record of a worktree at `path` whose directory is gone or
/// empty: unlock it if po locked it (half-made), then `git worktree prune`.
/// A lock of anyone else's stays, and is reported.
fn forget_registration(repo: &Path, path: &Path) -> Result<()> {
    let common = git(
        repo,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?;
    let want = absolute(path).join(".git");
    if let Ok(entries) = fs::read_dir(Path::new(&common).join("worktrees")) {
        for e in entries.flatten() {
            let private = e.path();
            let named = read_small(&private.join("gitdir"))
                .is_some_and(|g| absolute(Path::new(g.trim())) == want);
            if !named {
                continue;
            }
            match lock_reason(&private) {
                Some(r) if unfinished_reason(&r).is_none() => {
                    return Err(Error::system(format!(
                        "create worktree {}: git lists a locked worktree there ({r}); \
                         `git worktree unlock` and `git worktree prune` clear it",
                        path.display()
                    )));
                }
                Some(_) => unlock(&private)?,
                None => {}
            }
        }
    }
    git(repo, &["worktree", "prune"]).map(|_| ())
}

/// `path` made absolute with its existing ancestors' symbolic links resolved
/// (what git records).
fn absolute(path: &Path) -> PathBuf {
    if let Ok(p) = fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => absolute(parent).join(name),
        _ => path.to_path_buf(),
    }
}

/// Remove the lock of `branch`'s ref that a `git branch` killed mid-way left
/// (`refs/heads/<branch>.lock`), which would make every later try fail.
/// Only the task's own runner writes that branch, and it holds the task's
/// liveness lock: a lock file met here is a dead process's. Returns it.
fn stale_ref_lock(repo: &Path, branch: &str) -> Option<PathBuf> {
    let common = git(
        repo,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )
    .ok()?;
    let lock = Path::new(&common)
        .join("refs/heads")
        .join(format!("{branch}.lock"));
    (plain_ref_name(branch)
        && fs::symlink_metadata(&lock).is_ok_and(|m| m.is_file())
        && fs::remove_file(&lock).is_ok())
    .then_some(lock)
}

/// Whether `name` stays inside `refs/heads/` as a path (no empty, `.` or
/// `..` component).
fn plain_ref_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'))
}

/// Where [`finish_checkout`] keeps the files it replaced, in the worktree's
/// private git directory.
pub const REPLACED_DIR: &str = "po-replaced";

/// Finish a checkout that an older po (or `git worktree add --no-checkout`)
/// left without an index. No index means no `git add` or `git commit` ever
/// ran there: the files are git's, one of them perhaps cut short by the
/// kill. The index comes from HEAD and every file that is missing or
/// differs from HEAD is checked out; a differing one is first copied to
/// `<private>/po-replaced/`, so nothing is lost even if it was someone's.
fn finish_checkout(path: &Path, note: &mut dyn FnMut(String)) -> Result<()> {
    for lock in clear_stale_locks(path) {
        note(format!(
            "removed {} that a killed attempt left",
            lock.display()
        ));
    }
    git(path, &["read-tree", "HEAD"])?;
    // The index from read-tree has no file times: compare contents once
    // (refresh exits 1 when some differ, which the next command lists).
    crate::git::git_ok(path, &["update-index", "-q", "--refresh"]);
    let differ = crate::git::git_raw(path, &["diff-files", "--name-only", "-z"])?;
    let differ: Vec<&str> = differ.split('\0').filter(|f| !f.is_empty()).collect();
    let private = git::private_dir(path).unwrap_or_else(|| path.join(".git"));
    let keep = private.join(REPLACED_DIR);
    let mut replaced = Vec::new();
    for rel in &differ {
        let from = path.join(rel);
        if fs::symlink_metadata(&from).is_err() {
            continue; // missing: nothing to keep
        }
        let to = keep.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        }
        fs::rename(&from, &to).map_err(Error::io("move aside", &from))?;
        replaced.push(*rel);
    }
    if !differ.is_empty() {
        let mut input = differ.join("\0").into_bytes();
        input.push(0);
        crate::git::git_stdin(path, &["checkout-index", "-f", "-z", "--stdin"], &input)?;
    }
    note(format!(
        "finished the checkout of worktree {}, which a killed run left without an index{}",
        path.display(),
        if replaced.is_empty() {
            String::new()
        } else {
            format!(
                "; {} file{} that differed from HEAD moved to {}: {}",
                replaced.len(),
                if replaced.len() == 1 { "" } else { "s" },
                keep.display(),
                replaced
                    .iter()
                    .take(5)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ));
    Ok(())
}

/// The nested repositories in the worktree at `dir` (relative paths), which
/// po never deletes. When git cannot list them, any directory below `dir`
/// holding a `.git` counts.
pub fn nested_repos(dir: &Path) -> Vec<String> {
    match crate::git::untracked(dir) {
        Ok(list) => list
            .into_iter()
            .filter(|e| crate::git::is_nested_repo(e))
            .collect(),
        Err(_) => {
            let mut found = Vec::new();
            walk_for_repos(dir, dir, &mut found);
            found
        }
    }
}

fn walk_for_repos(top: &Path, dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        let p = e.path();
        if e.file_name() == ".git" && dir != top {
            let rel = dir.strip_prefix(top).unwrap_or(dir);
            found.push(format!("{}/", rel.display()));
        } else if kind.is_dir() && e.file_name() != ".git" {
            walk_for_repos(top, &p, found);
        }
    }
}

#[cfg(test)]
mod tests {
    //! Each half-made state a kill can leave, made directly, then `ensure`.

    use super::*;
    use std::process::Command;

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
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    struct Fixture {
        _tmp: tempfile::TempDir,
        repo: PathBuf,
        /// `<root>/worktrees`, as po lays it out.
        worktrees: PathBuf,
        base: String,
    }

    /// A repository of 60 files in three directories.
    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let repo = root.join("repo");
        fs::create_dir(&repo).unwrap();
        run(&repo, &["init", "-q", "-b", "main"]);
        for d in 0..3 {
            fs::create_dir(repo.join(format!("d{d}"))).unwrap();
            for f in 0..20 {
                fs::write(repo.join(format!("d{d}/f{f}.txt")), format!("{d} {f}\n")).unwrap();
            }
        }
        fs::write(repo.join(".gitignore"), "out/\n").unwrap();
        run(&repo, &["add", "-A"]);
        run(&repo, &["commit", "-q", "-m", "base"]);
        let base = run(&repo, &["rev-parse", "HEAD"]);
        Fixture {
            worktrees: root.join("worktrees"),
            _tmp: tmp,
            repo,
            base,
        }
    }

    impl Fixture {
        fn task(&self, n: u32) -> PathBuf {
            self.worktrees.join("o").join(format!("agent-{n}"))
        }

        fn ensure(&self, path: &Path, branch: &str) -> (Prepared, Vec<String>) {
            let mut notes = Vec::new();
            let got = ensure_noting(&self.repo, path, branch, &self.base, &mut |m| notes.push(m))
                .unwrap();
            (got, notes)
        }

        /// The worktree is complete: on `branch` at `tip`, every file of
        /// HEAD there and equal, nothing else, no lock, no index flag.
        fn assert_complete(&self, path: &Path, branch: &str, tip: &str) {
            assert_eq!(run(path, &["symbolic-ref", "--short", "HEAD"]), branch);
            assert_eq!(run(path, &["rev-parse", "HEAD"]), tip);
            assert_eq!(
                run(path, &["status", "--porcelain", "--ignored", "-uall"]),
                "",
                "{}",
                path.display()
            );
            assert_eq!(run(path, &["ls-files"]).lines().count(), 61);
            let private = git::private_dir(path).unwrap();
            assert!(lock_reason(&private).is_none(), "still locked");
            assert!(git::hidden_entries(path).unwrap().is_empty());
        }

        fn private(&self, path: &Path) -> PathBuf {
            git::private_dir(path).unwrap()
        }
    }

    use crate::git;

    /// What a kill mid-checkout leaves: some files written, one cut short.
    fn partial_files(path: &Path) {
        fs::create_dir_all(path.join("d0")).unwrap();
        for f in 0..7 {
            fs::write(path.join(format!("d0/f{f}.txt")), format!("0 {f}\n")).unwrap();
        }
        fs::write(path.join("d0/f7.txt"), "0").unwrap();
    }

    #[test]
    fn a_new_worktree_is_complete_and_unlocked_and_then_reused_with_its_edits() {
        let fx = fixture();
        let wt = fx.task(1);
        assert_eq!(fx.ensure(&wt, "b1").0, Prepared::Created);
        fx.assert_complete(&wt, "b1", &fx.base);
        // A previous attempt's edits stay.
        fs::write(wt.join("d1/f1.txt"), "edited\n").unwrap();
        fs::write(wt.join("new.txt"), "new\n").unwrap();
        assert_eq!(fx.ensure(&wt, "b1").0, Prepared::Reused);
        assert_eq!(
            fs::read_to_string(wt.join("d1/f1.txt")).unwrap(),
            "edited\n"
        );
        assert!(wt.join("new.txt").is_file());
    }

    #[test]
    fn a_worktree_reused_after_a_restart_is_refused_if_tracked_files_went_missing_or_empty() {
        let fx = fixture();
        let wt = fx.task(1);
        fx.ensure(&wt, "b1");
        let marker = fx.private(&wt).join(INTACT_FILE);
        assert_eq!(
            fs::read_to_string(&marker).unwrap(),
            boot_id().unwrap(),
            "the checkout's boot is recorded"
        );
        // What a power cut can leave: an emptied file, a missing one; and
        // an agent's ordinary edits, which do not count.
        fs::write(&marker, "an earlier boot").unwrap();
        fs::write(wt.join("d0/f1.txt"), "").unwrap();
        fs::remove_file(wt.join("d2/f9.txt")).unwrap();
        fs::write(wt.join("d1/f1.txt"), "edited\n").unwrap();
        let err = ensure(&fx.repo, &wt, "b1", &fx.base)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the machine restarted")
                && err.contains("2 files git tracks are missing or empty (d0/f1.txt, d2/f9.txt)"),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&marker).unwrap(), "an earlier boot");
        run(&wt, &["checkout", "HEAD", "--", "d0/f1.txt", "d2/f9.txt"]);
        assert_eq!(fx.ensure(&wt, "b1").0, Prepared::Reused);
        assert_eq!(fs::read_to_string(&marker).unwrap(), boot_id().unwrap());
        assert_eq!(
            fs::read_to_string(wt.join("d1/f1.txt")).unwrap(),
            "edited\n"
        );
        // In this boot, nothing is checked again.
        fs::remove_file(wt.join("d2/f9.txt")).unwrap();
        assert_eq!(fx.ensure(&wt, "b1").0, Prepared::Reused);
    }

    #[test]
    fn a_registration_with_po_lock_and_a_partial_checkout_is_finished() {
        let fx = fixture();
        let wt = fx.task(1);
        fs::create_dir_all(wt.parent().unwrap()).unwrap();
        run(
            &fx.repo,
            &[
                "worktree",
                "add",
                "-q",
                "--no-checkout",
                "--lock",
                "--reason",
                CHECKING_OUT,
                "-b",
                "b1",
                wt.to_str().unwrap(),
                &fx.base,
            ],
        );
        partial_files(&wt);
        // Killed while git wrote the index, too.
        fs::write(fx.private(&wt).join("index.lock"), "").unwrap();
        let (got, notes) = fx.ensure(&wt, "b1");
        assert_eq!(got, Prepared::Created, "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("half-made")), "{notes:?}");
        fx.assert_complete(&wt, "b1", &fx.base);
    }

    #[test]
    fn a_registration_an_older_po_left_without_an_index_is_finished_and_keeps_a_copy_of_what_differed()
     {
        let fx = fixture();
        let wt = fx.task(1);
        fs::create_dir_all(wt.parent().unwrap()).unwrap();
        // Exactly what issue 15's kill left: registered, no lock, no index.
        run(
            &fx.repo,
            &[
                "worktree",
                "add",
                "-q",
                "--no-checkout",
                "-b",
                "b1",
                wt.to_str().unwrap(),
                &fx.base,
            ],
        );
        partial_files(&wt);
        fs::create_dir_all(wt.join("d2")).unwrap();
        fs::write(wt.join("d2/new.txt"), "someone's\n").unwrap();
        let (got, notes) = fx.ensure(&wt, "b1");
        assert_eq!(got, Prepared::Reused);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("1 file that differed") && n.contains("d0/f7.txt")),
            "the cut-short file is named: {notes:?}"
        );
        // Every file of HEAD is there and whole; the untracked one stays.
        assert_eq!(run(&wt, &["status", "--porcelain"]), "?? d2/new.txt");
        let kept = fx.private(&wt).join(REPLACED_DIR).join("d0/f7.txt");
        assert_eq!(fs::read_to_string(kept).unwrap(), "0");
        run(&wt, &["add", "-A"]);
        let staged = run(&wt, &["diff", "--cached", "--name-status"]);
        assert_eq!(staged, "A\td2/new.txt");
    }

    #[test]
    fn a_branch_made_before_the_kill_is_used_and_never_moved() {
        let fx = fixture();
        // `git branch` ran, with commits of an earlier attempt on it; its
        // ref lock of a second, killed `git branch` is still there.
        run(&fx.repo, &["branch", "b1", &fx.base]);
        let scratch = fx.worktrees.join("scratch");
        run(
            &fx.repo,
            &["worktree", "add", "-q", scratch.to_str().unwrap(), "b1"],
        );
        fs::write(scratch.join("work.txt"), "work\n").unwrap();
        run(&scratch, &["add", "work.txt"]);
        run(&scratch, &["commit", "-q", "-m", "work"]);
        run(&fx.repo, &["worktree", "remove", scratch.to_str().unwrap()]);
        let tip = run(&fx.repo, &["rev-parse", "b1"]);
        let lock = fx.repo.join(".git/refs/heads/b1.lock");
        fs::write(&lock, "").unwrap();
        let wt = fx.task(1);
        let (got, notes) = fx.ensure(&wt, "b1");
        assert_eq!(got, Prepared::Created, "{notes:?}");
        assert!(!lock.exists());
        assert!(wt.join("work.txt").is_file());
        assert_eq!(run(&fx.repo, &["rev-parse", "b1"]), tip);
        assert_eq!(run(&wt, &["rev-parse", "HEAD"]), tip);
        assert_eq!(run(&wt, &["status", "--porcelain"]), "");
    }

    #[test]
    fn a_registration_killed_before_its_git_file_is_made_anew() {
        let fx = fixture();
        let wt = fx.task(1);
        fs::create_dir_all(wt.parent().unwrap()).unwrap();
        run(
            &fx.repo,
            &[
                "worktree",
                "add",
                "-q",
                "--no-checkout",
                "--lock",
                "--reason",
                CHECKING_OUT,
                "-b",
                "b1",
                wt.to_str().unwrap(),
                &fx.base,
            ],
        );
        // git had written its lock and record, not yet the `.git` file.
        fs::remove_file(wt.join(".git")).unwrap();
        let (got, _) = fx.ensure(&wt, "b1");
        assert_eq!(got, Prepared::Created);
        fx.assert_complete(&wt, "b1", &fx.base);
        let listed = run(&fx.repo, &["worktree", "list", "--porcelain"]);
        assert_eq!(listed.matches("worktree ").count(), 2, "{listed}");
    }

    #[test]
    fn a_registration_killed_before_git_wrote_head_is_made_anew() {
        let fx = fixture();
        let wt = fx.task(1);
        fs::create_dir_all(wt.parent().unwrap()).unwrap();
        run(
            &fx.repo,
            &[
                "worktree",
                "add",
                "-q",
                "--no-checkout",
                "--lock",
                "--reason",
                CHECKING_OUT,
                "-b",
                "b1",
                wt.to_str().unwrap(),
                &fx.base,
            ],
        );
        let private = fx.private(&wt);
        fs::remove_file(private.join("HEAD")).unwrap();
        fs::remove_file(private.join("commondir")).unwrap();
        let (got, notes) = fx.ensure(&wt, "b1");
        assert_eq!(got, Prepared::Created, "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("undid")), "{notes:?}");
        fx.assert_complete(&wt, "b1", &fx.base);
    }

    #[test]
    fn a_worktree_someone_else_locked_is_not_taken_for_half_made() {
        let fx = fixture();
        let wt = fx.task(1);
        fx.ensure(&wt, "b1");
        run(
            &fx.repo,
            &[
                "worktree",
                "lock",
                "--reason",
                "on a usb disk",
                wt.to_str().unwrap(),
            ],
        );
        fs::write(wt.join("d0/f0.txt"), "mine\n").unwrap();
        assert_eq!(fx.ensure(&wt, "b1").0, Prepared::Reused);
        assert_eq!(fs::read_to_string(wt.join("d0/f0.txt")).unwrap(), "mine\n");
    }

    /// A worktree retired into the pool of `fx` (as po-clean does), with
    /// what got into it since: untracked and ignored files, an edit hidden
    /// by an index flag.
    fn pooled(fx: &Fixture) -> PathBuf {
        let donor = fx.task(9);
        fx.ensure(&donor, "donor");
        let pool = super::pool::pool_dir(&fx.worktrees);
        let entry = super::pool::retire(&fx.repo, &donor, &pool).unwrap();
        fs::write(entry.join("junk.txt"), "junk\n").unwrap();
        fs::create_dir_all(entry.join("out")).unwrap();
        fs::write(entry.join("out/o.bin"), "o\n").unwrap();
        fs::write(entry.join("d1/f3.txt"), "hidden edit\n").unwrap();
        run(&entry, &["update-index", "--assume-unchanged", "d1/f3.txt"]);
        fs::write(entry.join("d1/f4.txt"), "hidden too\n").unwrap();
        run(&entry, &["update-index", "--skip-worktree", "d1/f4.txt"]);
        entry
    }

    #[test]
    fn a_pooled_worktree_brings_no_index_flag_and_no_hidden_edit() {
        let fx = fixture();
        let entry = pooled(&fx);
        let wt = fx.task(1);
        assert_eq!(fx.ensure(&wt, "b1").0, Prepared::Pooled);
        assert!(!entry.exists());
        fx.assert_complete(&wt, "b1", &fx.base);
        assert_eq!(fs::read_to_string(wt.join("d1/f3.txt")).unwrap(), "1 3\n");
        assert_eq!(fs::read_to_string(wt.join("d1/f4.txt")).unwrap(), "1 4\n");
    }

    #[test]
    fn a_take_killed_after_the_move_or_inside_it_is_finished() {
        for inside_move in [false, true] {
            let fx = fixture();
            let entry = pooled(&fx);
            let wt = fx.task(1);
            fs::create_dir_all(wt.parent().unwrap()).unwrap();
            write_lock(&fx.private(&entry), TAKING).unwrap();
            if inside_move {
                // The directory renamed, git's record not yet updated.
                fs::rename(&entry, &wt).unwrap();
            } else {
                run(
                    &fx.repo,
                    &[
                        "worktree",
                        "move",
                        "-f",
                        "-f",
                        entry.to_str().unwrap(),
                        wt.to_str().unwrap(),
                    ],
                );
            }
            // A prune meanwhile (po-clean, git itself) must not lose it.
            run(&fx.repo, &["worktree", "prune"]);
            let (got, notes) = fx.ensure(&wt, "b1");
            assert_eq!(got, Prepared::Created, "{notes:?}");
            fx.assert_complete(&wt, "b1", &fx.base);
            let listed = run(&fx.repo, &["worktree", "list", "--porcelain"]);
            assert!(
                listed.contains(&format!("worktree {}", wt.display())),
                "{listed}"
            );
            assert!(!listed.contains("prunable"), "{listed}");
        }
    }

    #[test]
    fn a_retire_killed_midway_is_finished_on_the_tasks_branch_with_its_commits() {
        let fx = fixture();
        let wt = fx.task(1);
        fx.ensure(&wt, "b1");
        fs::write(wt.join("work.txt"), "work\n").unwrap();
        run(&wt, &["add", "work.txt"]);
        run(&wt, &["commit", "-q", "-m", "work"]);
        let tip = run(&wt, &["rev-parse", "HEAD"]);
        // po-clean locked it and detached it, then was killed.
        write_lock(&fx.private(&wt), RETIRING).unwrap();
        run(&wt, &["checkout", "-q", "--detach"]);
        assert_eq!(unfinished_in(&fx.private(&wt)), Some(Unfinished::Retiring));
        let (got, _) = fx.ensure(&wt, "b1");
        assert_eq!(got, Prepared::Created);
        assert_eq!(run(&wt, &["rev-parse", "HEAD"]), tip);
        assert_eq!(run(&wt, &["symbolic-ref", "--short", "HEAD"]), "b1");
        assert!(lock_reason(&fx.private(&wt)).is_none());
    }

    #[test]
    fn a_nested_repository_is_never_deleted_nor_carried_into_a_task() {
        let fx = fixture();
        let entry = pooled(&fx);
        let nested = entry.join("out/lib");
        fs::create_dir_all(&nested).unwrap();
        run(&nested, &["init", "-q"]);
        fs::write(nested.join("x"), "x\n").unwrap();
        run(&nested, &["add", "x"]);
        run(&nested, &["commit", "-q", "-m", "theirs"]);
        let wt = fx.task(1);
        // Left in the pool, unused; the task gets a fresh checkout.
        assert_eq!(fx.ensure(&wt, "b1").0, Prepared::Created);
        fx.assert_complete(&wt, "b1", &fx.base);
        assert!(nested.join(".git").is_dir() && nested.join("x").is_file());
        // Nor does discarding the worktree delete it.
        assert_eq!(nested_repos(&entry), ["out/lib/"]);
        assert!(!discard(&fx.repo, &entry));
        assert_eq!(run(&nested, &["log", "--format=%s"]), "theirs");
        // A half-made task worktree holding one: an error, nothing deleted.
        let wt2 = fx.task(2);
        fx.ensure(&wt2, "b2");
        write_lock(&fx.private(&wt2), CHECKING_OUT).unwrap();
        let inner = wt2.join("out/inner");
        fs::create_dir_all(&inner).unwrap();
        run(&inner, &["init", "-q"]);
        let err = ensure(&fx.repo, &wt2, "b2", &fx.base).unwrap_err();
        assert!(
            err.to_string().contains("nested repository out/inner/"),
            "{err}"
        );
        assert!(inner.join(".git").is_dir());
    }
}
