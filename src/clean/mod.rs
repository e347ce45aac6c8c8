//! `po-clean`: remove (or pool) what finished runs leave behind, and nothing
//! anyone still needs.
//!
//! A task's worktree goes only when the task is finished (a terminal state)
//! and its liveness lock is free; po-clean holds that lock while it works,
//! so no run can start in the worktree meanwhile. A worktree is kept, and
//! named with the reason and what to do about it, when it has uncommitted
//! changes (untracked files included), edits hidden from `git status` by
//! index flags (`--assume-unchanged`, `--skip-worktree`), a merge or rebase
//! in progress, commits its branch does not hold, a stash made on its
//! branch, a `git worktree lock`, a nested repository (never deleted, by any
//! path), or ignored files po did not put there (unless `--include-ignored`;
//! the files `.worktreeinclude` copied in, unchanged, are po's, and so is
//! everything in po-spawn's integration worktree). Removal is
//! `git worktree remove` without `--force`, so git checks again. A worktree
//! a killed po-spawn left half-made (see [`crate::worktree`]) was never
//! a task's: it goes, unless it holds a nested repository.
//!
//! With `--branches`, the branch of a task whose worktree is gone is
//! deleted when the base holds it, or when its pull request is merged on
//! GitHub with the same head commit (asked through `gh`). With `--pool`,
//! clean worktrees are retired into the warm pool instead of deleted
//! ([`crate::worktree::pool`]). `--dry-run` writes nothing: no lock is
//! taken, git runs without optional locks.

pub mod usage;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::forge::Gh;
use crate::git::{self, git};
use crate::protocol::{AgentStatus, Runtime, sanitize, store};
use crate::report::summary;
use crate::timefmt;
use crate::worktree::{self, Unfinished, pool as worktree_pool};
use usage::disk_usage;

/// What to clean.
pub struct Options<'a> {
    /// Also delete task branches merged into the base or through a merged PR.
    pub branches: bool,
    /// Only tasks finished at least this many seconds ago.
    pub older_than: Option<u64>,
    /// Retire clean worktrees into the warm pool instead of deleting them.
    pub pool: bool,
    pub dry_run: bool,
    /// The branch "merged" means merged into [default: origin's default
    /// branch, else the main checkout's branch].
    pub base: Option<String>,
    /// Also remove the worktrees in the warm pool.
    pub drain_pool: bool,
    /// Delete ignored files po did not put there with their worktree
    /// (nested repositories are kept all the same).
    pub include_ignored: bool,
    pub gh: &'a Gh,
}

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Removed,
    Pooled,
    Kept,
    WouldRemove,
    WouldPool,
    Deleted,
    WouldDelete,
}

/// One worktree looked at.
#[derive(Serialize, Clone, Debug)]
pub struct WorktreeItem {
    pub orchestration_id: String,
    /// The task's agent id, or `integration` for po-spawn's wave merges.
    pub agent_id: String,
    pub path: PathBuf,
    pub action: Action,
    pub reason: Option<String>,
    /// What to do to let a kept worktree go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
    /// Disk space freed (or that would be).
    pub bytes: u64,
    /// Where it went in the pool.
    pub pooled_as: Option<PathBuf>,
}

/// One branch looked at (with `--branches`).
#[derive(Serialize, Clone, Debug)]
pub struct BranchItem {
    pub orchestration_id: String,
    pub agent_id: String,
    pub branch: String,
    /// Its commit, to restore it: `git branch NAME COMMIT`.
    pub commit: String,
    pub action: Action,
    pub reason: String,
    /// What to do to let a kept branch go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

#[derive(Serialize, Debug, Default)]
pub struct Report {
    pub dry_run: bool,
    pub worktrees: Vec<WorktreeItem>,
    pub branches: Vec<BranchItem>,
    /// git's records of worktrees whose directory is gone, pruned.
    pub pruned: Vec<String>,
    pub freed_bytes: u64,
    /// `gh` failures (those branches were kept).
    pub gh_errors: Vec<String>,
}

/// Clean the orchestrations in `dirs`.
pub fn clean(runtime: &Runtime, dirs: &[PathBuf], opts: &Options<'_>) -> Result<Report> {
    let mut report = Report {
        dry_run: opts.dry_run,
        ..Report::default()
    };
    let mut repos: BTreeSet<PathBuf> = BTreeSet::new();
    for dir in dirs {
        let repo = runtime.repo_of(dir, "po-clean")?;
        let mut cleaner = Cleaner::new(&repo, runtime, opts, &mut report)?;
        cleaner.orchestration(dir)?;
        repos.insert(repo);
    }
    if opts.drain_pool
        && let Some(repo) = repos
            .iter()
            .next()
            .cloned()
            .or_else(|| runtime.repo.clone())
    {
        Cleaner::new(&repo, runtime, opts, &mut report)?.drain_pool()?;
        repos.insert(repo);
    }
    for repo in &repos {
        report
            .pruned
            .extend(git::worktree_prune(repo, opts.dry_run)?);
    }
    report.freed_bytes = report
        .worktrees
        .iter()
        .filter(|w| w.action != Action::Kept)
        .map(|w| w.bytes)
        .sum();
    Ok(report)
}

/// One repository's facts, and the report being written.
struct Cleaner<'a> {
    repo: PathBuf,
    runtime: &'a Runtime,
    opts: &'a Options<'a>,
    report: &'a mut Report,
    worktrees: Vec<git::Worktree>,
    tips: HashMap<String, String>,
    /// Branches some stash entry was made on.
    stashed: HashSet<String>,
    /// (name for messages, commit) of the base, when --branches.
    base: Option<(String, String)>,
    id: String,
    /// The ignored files of the repository `.worktreeinclude` copies into
    /// each worktree (relative), once asked.
    included: std::cell::OnceCell<HashSet<PathBuf>>,
}

impl<'a> Cleaner<'a> {
    fn new(
        repo: &Path,
        runtime: &'a Runtime,
        opts: &'a Options<'a>,
        report: &'a mut Report,
    ) -> Result<Cleaner<'a>> {
        let stashed = git(repo, &["stash", "list", "--format=%gs"])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let rest = l
                    .strip_prefix("WIP on ")
                    .or_else(|| l.strip_prefix("On "))?;
                Some(rest.split_once(':')?.0.to_string())
            })
            .collect();
        let base = if opts.branches {
            Some(base_of(repo, opts.base.as_deref())?)
        } else {
            None
        };
        Ok(Cleaner {
            repo: repo.to_path_buf(),
            runtime,
            opts,
            report,
            worktrees: git::worktrees(repo)?,
            tips: git::branch_tips(repo)?,
            stashed,
            base,
            id: String::new(),
            included: std::cell::OnceCell::new(),
        })
    }

    fn orchestration(&mut self, dir: &Path) -> Result<()> {
        let loaded = summary::load(dir)?;
        self.id = loaded.id.clone();
        let github = loaded
            .orchestration
            .as_ref()
            .is_some_and(|o| o.source.kind == "issue");
        let mut active = loaded.bad().next().is_some();
        for b in loaded.bad() {
            eprintln!(
                "po-clean: failed to read status file {}: {}; that task's worktree and branch are left alone",
                b.file.display(),
                b.problem
            );
        }
        for t in loaded.tasks() {
            active |= !t.state().is_terminal() || store::is_live(&t.file);
            self.task(&t.file, &t.status, github)?;
        }
        let id = sanitize::id(&loaded.id)?;
        let worktrees = self.runtime.worktrees_of(&id);
        let integration = self.runtime.integration_dir(&id);
        if self.registered(&integration).is_some() {
            if active {
                self.keep(
                    &integration,
                    "integration",
                    Keep::new(
                        "the orchestration is still running",
                        "run po-clean again once no task of it runs",
                    ),
                );
            } else {
                self.worktree(&integration, "integration", None, false)?;
            }
        }
        for (scratch, pid) in stale_scratch(&worktrees) {
            let why = format!("left by an interrupted po-merge (pid {pid})");
            self.discard(&scratch, "po-merge", &why, true);
        }
        if !self.opts.dry_run {
            // Only when empty.
            let _ = std::fs::remove_dir(&worktrees);
        }
        Ok(())
    }

    /// Remove a worktree of po's own that holds no one's work (a stale
    /// po-merge scratch with `force`, a pooled one without).
    fn discard(&mut self, path: &Path, agent_id: &str, why: &str, force: bool) {
        if let Some(keep) = nested_keep(path) {
            return self.keep(path, agent_id, keep);
        }
        if !self.opts.dry_run
            && let Some(private) = git::private_dir(path)
            && worktree::unfinished_in(&private).is_some()
        {
            // Locked by po on its way into or out of the pool: po's own.
            let _ = worktree::unlock(&private);
        }
        let bytes = disk_usage(path);
        let p = path.to_string_lossy();
        let mut args = vec!["worktree", "remove"];
        if force {
            args.extend(["--force", "--force"]);
        }
        args.push(&p);
        let (action, reason) = if self.opts.dry_run {
            (Action::WouldRemove, why.to_string())
        } else {
            match git(&self.repo, &args) {
                Ok(_) => (Action::Removed, why.to_string()),
                Err(e) => (Action::Kept, format!("failed to {e}")),
            }
        };
        self.report.worktrees.push(WorktreeItem {
            orchestration_id: self.id.clone(),
            agent_id: agent_id.to_string(),
            path: path.to_path_buf(),
            action,
            reason: Some(reason),
            advice: None,
            bytes: if action == Action::Kept { 0 } else { bytes },
            pooled_as: None,
        });
    }

    /// `--all` without `--pool`: remove the pooled worktrees too (git
    /// refuses any that something was written into since).
    fn drain_pool(&mut self) -> Result<()> {
        self.id = String::new();
        let pool = worktree_pool::pool_dir(&self.runtime.worktrees_root());
        for entry in worktree_pool::entries(&pool) {
            let lock_path = store::lock_path(&entry);
            let lock = if self.opts.dry_run {
                None
            } else {
                match store::try_lock_exclusive(&lock_path)? {
                    Some(l) => Some(l),
                    None => continue, // being taken by a new task
                }
            };
            self.discard(&entry, "pool", "pooled", false);
            if lock.is_some() {
                let _ = std::fs::remove_file(&lock_path);
            }
        }
        Ok(())
    }

    /// One task: its worktree, then (with --branches) its branch, holding
    /// its liveness lock throughout.
    fn task(&mut self, status_file: &Path, task: &AgentStatus, github: bool) -> Result<()> {
        let worktree = task
            .worktree
            .as_deref()
            .filter(|w| self.registered(w).is_some())
            .map(Path::to_path_buf);
        let branch = task
            .branch
            .as_deref()
            .filter(|b| self.opts.branches && self.tips.contains_key(*b));
        if worktree.is_none() && branch.is_none() {
            return Ok(());
        }
        let keep = |me: &mut Self, why: Keep| {
            if let Some(b) = branch {
                me.keep_branch(task, b, format!("its task is kept: {}", why.reason));
                if let Some(last) = me.report.branches.last_mut() {
                    last.advice = Some(why.advice.clone());
                }
            }
            if let Some(w) = &worktree {
                me.keep(w, &task.agent_id, why);
            }
        };
        let unfinished = |state: &dyn std::fmt::Display, what: &str| {
            Keep::new(
                format!("{state}: {what}"),
                "wait for its run to end (po-watch shows it), or stop that po-spawn; then run \
                 po-clean again",
            )
        };
        if !task.status.is_terminal() {
            keep(self, unfinished(&task.status, "not finished"));
            return Ok(());
        }
        if let Some(why) = self.too_recent(task) {
            keep(self, why);
            return Ok(());
        }
        let lock = if self.opts.dry_run {
            None
        } else {
            store::hold_liveness(status_file)?
        };
        let live = if self.opts.dry_run {
            store::is_live(status_file)
        } else {
            lock.is_none()
        };
        if live {
            keep(
                self,
                Keep::new(
                    "live: its runner holds the liveness lock",
                    "its run is still going: wait for it to end, or stop it; then run po-clean \
                     again",
                ),
            );
            return Ok(());
        }
        let task = if self.opts.dry_run {
            task.clone()
        } else {
            store::read_status(status_file)?
        };
        if !task.status.is_terminal() {
            keep(self, unfinished(&task.status, "it started again"));
            return Ok(());
        }
        let gone = match &worktree {
            Some(w) => self.worktree(w, &task.agent_id, task.branch.as_deref(), true)?,
            None => true,
        };
        if let Some(b) = branch {
            if gone {
                self.branch(&task, b, github);
            } else {
                self.keep_branch(&task, b, "its worktree is kept".into());
            }
        }
        Ok(())
    }

    /// `--older-than`: why a task finished too recently, if it did.
    fn too_recent(&self, task: &AgentStatus) -> Option<Keep> {
        let min = self.opts.older_than?;
        let finished = task.completion_time.or(task.last_update);
        let age = finished.map(|t| (timefmt::now() - t).num_seconds().max(0) as u64);
        let advice = "run po-clean later, or with a smaller --older-than (or none)";
        match age {
            Some(a) if a >= min => None,
            Some(a) => Some(Keep::new(
                format!(
                    "finished {} ago (--older-than {})",
                    human_age(a),
                    human_age(min)
                ),
                advice,
            )),
            None => Some(Keep::new("no finish time recorded (--older-than)", advice)),
        }
    }

    /// The linked worktree registered at `path`, if git has one there.
    fn registered(&self, path: &Path) -> Option<&git::Worktree> {
        let want = std::fs::canonicalize(path).ok()?;
        self.worktrees
            .iter()
            .skip(1) // the main worktree is never a task's
            .find(|w| !w.bare && std::fs::canonicalize(&w.path).ok().as_deref() == Some(&*want))
    }

    fn keep(&mut self, path: &Path, agent_id: &str, why: Keep) {
        self.report.worktrees.push(WorktreeItem {
            orchestration_id: self.id.clone(),
            agent_id: agent_id.to_string(),
            path: path.to_path_buf(),
            action: Action::Kept,
            reason: Some(why.reason),
            advice: Some(why.advice),
            bytes: 0,
            pooled_as: None,
        });
    }

    /// A worktree po-spawn left half-made (killed while checking it out, or
    /// taking it from the pool): never a task's, so it goes, forced (git
    /// would count the unfinished checkout as changes), unless it holds a
    /// nested repository.
    fn half_made(&mut self, path: &Path, agent_id: &str) -> bool {
        if let Some(keep) = nested_keep(path) {
            self.keep(path, agent_id, keep);
            return false;
        }
        let why = "half-made: a killed po-spawn left its checkout unfinished (no agent worked \
                   there)";
        let bytes = disk_usage(path);
        let (action, reason) = if self.opts.dry_run {
            (Action::WouldRemove, why.to_string())
        } else {
            let p = path.to_string_lossy();
            match git(
                &self.repo,
                &["worktree", "remove", "--force", "--force", &p],
            ) {
                Ok(_) => (Action::Removed, why.to_string()),
                Err(e) => (Action::Kept, format!("failed to {e}")),
            }
        };
        self.report.worktrees.push(WorktreeItem {
            orchestration_id: self.id.clone(),
            agent_id: agent_id.to_string(),
            path: path.to_path_buf(),
            action,
            reason: Some(reason),
            advice: None,
            bytes: if action == Action::Kept { 0 } else { bytes },
            pooled_as: None,
        });
        action != Action::Kept
    }

    /// Remove or pool one worktree unless it holds work; whether it is gone
    /// (or, in a dry run, would be).
    fn worktree(
        &mut self,
        path: &Path,
        agent_id: &str,
        branch: Option<&str>,
        poolable: bool,
    ) -> Result<bool> {
        let po_lock = self
            .registered(path)
            .and_then(|w| w.locked.as_deref())
            .and_then(worktree::unfinished_reason);
        if po_lock == Some(Unfinished::Checkout) {
            return Ok(self.half_made(path, agent_id));
        }
        // The integration worktree is po's: what its validation commands
        // built is po's too.
        let task = poolable;
        if let Some(why) = self.holds_work(path, branch, task) {
            self.keep(path, agent_id, why);
            return Ok(false);
        }
        let not_pooled = worktree_pool::unpoolable(path);
        let pool = self.opts.pool && poolable && not_pooled.is_none();
        let reason = (self.opts.pool && poolable)
            .then_some(not_pooled)
            .flatten()
            .map(|why| format!("not pooled: {why}"));
        let before = disk_usage(path);
        let mut item = WorktreeItem {
            orchestration_id: self.id.clone(),
            agent_id: agent_id.to_string(),
            path: path.to_path_buf(),
            action: Action::Kept,
            reason,
            advice: None,
            bytes: before,
            pooled_as: None,
        };
        let result = match (self.opts.dry_run, pool) {
            (true, true) => {
                item.bytes = ignored_usage(path);
                Ok(Action::WouldPool)
            }
            (true, false) => Ok(Action::WouldRemove),
            (false, true) => {
                let pool_dir = worktree_pool::pool_dir(&self.runtime.worktrees_root());
                worktree_pool::retire(&self.repo, path, &pool_dir).map(|to| {
                    item.bytes = before.saturating_sub(disk_usage(&to));
                    item.pooled_as = Some(to);
                    Action::Pooled
                })
            }
            (false, false) => {
                if po_lock.is_some()
                    && let Some(private) = git::private_dir(path)
                {
                    // A killed po-clean's retiring: it was clean then and is now.
                    worktree::unlock(&private)?;
                }
                git(&self.repo, &["worktree", "remove", &path.to_string_lossy()])
                    .map(|_| Action::Removed)
            }
        };
        let gone = match result {
            Ok(action) => {
                item.action = action;
                true
            }
            Err(e) => {
                item.bytes = 0;
                item.reason = Some(format!("failed to {e}"));
                false
            }
        };
        self.report.worktrees.push(item);
        Ok(gone)
    }

    /// Why the worktree at `path` must stay, if it must, and what to do.
    /// Ignored files count only in a `task`'s worktree.
    fn holds_work(&self, path: &Path, branch: Option<&str>, task: bool) -> Option<Keep> {
        let entry = self.registered(path)?;
        let at = quote(path);
        if let Some(keep) = locked(entry, &at) {
            return Some(keep);
        }
        let private = git::private_dir(path)?;
        if let Some(keep) = in_progress(&private, &at) {
            return Some(keep);
        }
        let ignored = match git::ignored(path) {
            Ok(list) => list,
            Err(e) => return Some(unknown(e)),
        };
        let changes = match git::changed_files(path) {
            Ok(files) => files,
            Err(e) => return Some(unknown(e)),
        };
        uncommitted(&ignored, &changes, &at)
            .or_else(|| hidden_files(path, &private, &at))
            .or_else(|| self.unheld_commits(entry, branch, &at))
            .or_else(|| self.stashed_on(entry, branch))
            .or_else(|| {
                if task && !self.opts.include_ignored {
                    self.foreign_ignored(path, &ignored)
                } else {
                    None
                }
            })
    }

    /// Commits at the worktree's HEAD that `branch` (else any branch) does
    /// not hold.
    fn unheld_commits(
        &self,
        entry: &git::Worktree,
        branch: Option<&str>,
        at: &str,
    ) -> Option<Keep> {
        let head = entry.head.as_deref().unwrap_or_default();
        let held = match branch {
            Some(b) if entry.branch.as_deref() == Some(b) => true,
            Some(b) => self.tips.contains_key(b) && git::is_ancestor(&self.repo, head, b),
            None => entry.branch.is_some(),
        };
        if held {
            return None;
        }
        let short = &head[..head.len().min(7)];
        let place = match &entry.branch {
            Some(other) => format!("on {other}"),
            None => "detached".into(),
        };
        let advice = format!(
            "save them on a branch (git -C {at} branch NAME); if the worktree may go then, \
             git worktree remove {at}"
        );
        Some(Keep::new(
            match branch {
                Some(b) => format!("commits its branch {b} does not hold (HEAD {short}, {place})"),
                None => format!("commits on no branch (HEAD {short}, {place})"),
            },
            advice,
        ))
    }

    /// A stash made on the worktree's branch.
    fn stashed_on(&self, entry: &git::Worktree, branch: Option<&str>) -> Option<Keep> {
        let b = branch.or(entry.branch.as_deref())?;
        self.stashed.contains(b).then(|| {
            Keep::new(
                format!("a stash was made on its branch {b} (git stash list)"),
                "apply it (git stash pop) or drop it (git stash drop), then run po-clean again",
            )
        })
    }

    /// Files ignored by git in a task's worktree that po did not copy there.
    fn foreign_ignored(&self, path: &Path, ignored: &[String]) -> Option<Keep> {
        let theirs: Vec<&str> = ignored
            .iter()
            .map(String::as_str)
            .filter(|f| !self.is_included_copy(path, f))
            .collect();
        if theirs.is_empty() {
            return None;
        }
        Some(Keep::new(
            format!(
                "{} ignored by git that po did not put there: {}",
                plural(theirs.len(), "file"),
                sample(&grouped(&theirs))
            ),
            "move what you need out of it; --include-ignored deletes them with the worktree"
                .to_string(),
        ))
    }

    /// Whether the ignored file `rel` of the worktree at `path` is a copy
    /// `.worktreeinclude` made, unchanged: po's, and it may go.
    fn is_included_copy(&self, path: &Path, rel: &str) -> bool {
        let included = self.included.get_or_init(|| {
            worktree::included_files(&self.repo, &self.runtime.root)
                .unwrap_or_default()
                .into_iter()
                .collect()
        });
        if !included.contains(Path::new(rel)) {
            return false;
        }
        let (ours, theirs) = (path.join(rel), self.repo.join(rel));
        let regular = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file());
        regular(&ours)
            && regular(&theirs)
            && std::fs::read(&ours)
                .ok()
                .is_some_and(|a| std::fs::read(&theirs).ok() == Some(a))
    }

    fn keep_branch(&mut self, task: &AgentStatus, branch: &str, reason: String) {
        let word = shell_word(branch);
        let advice = if reason.starts_with("not merged into") {
            Some(format!(
                "merge it (po-merge), or if it may go: git branch -D {word}"
            ))
        } else if reason.starts_with("checked out in") {
            Some("po-clean deletes it once that worktree is gone".to_string())
        } else if reason == "its worktree is kept" {
            Some("see its worktree's line".to_string())
        } else {
            None
        };
        self.push_branch(task, branch, Action::Kept, reason);
        if let Some(last) = self.report.branches.last_mut() {
            last.advice = advice;
        }
    }

    fn push_branch(&mut self, task: &AgentStatus, branch: &str, action: Action, reason: String) {
        self.report.branches.push(BranchItem {
            orchestration_id: self.id.clone(),
            agent_id: task.agent_id.clone(),
            branch: branch.to_string(),
            commit: self.tips.get(branch).cloned().unwrap_or_default(),
            action,
            reason,
            advice: None,
        });
    }

    /// `--branches`: delete `branch` if the base holds it or its PR is merged.
    fn branch(&mut self, task: &AgentStatus, branch: &str, github: bool) {
        let Some((base_name, base)) = self.base.clone() else {
            return;
        };
        let tip = self.tips.get(branch).cloned().unwrap_or_default();
        // In a dry run the task's own worktree is still there, but would not be.
        let own = task
            .worktree
            .as_deref()
            .and_then(|w| std::fs::canonicalize(w).ok());
        if let Some(w) = git::worktrees(&self.repo)
            .unwrap_or_default()
            .into_iter()
            .filter(|w| !(self.opts.dry_run && std::fs::canonicalize(&w.path).ok() == own))
            .find(|w| w.branch.as_deref() == Some(branch))
        {
            let why = format!("checked out in {}", w.path.display());
            return self.keep_branch(task, branch, why);
        }
        let reason = if git::is_ancestor(&self.repo, &tip, &base) {
            format!("merged into {base_name}")
        } else if github || task.pr_number.is_some() {
            match self.merged_pr(task, branch, &tip) {
                Ok(why) => why,
                Err(why) => {
                    return self.keep_branch(
                        task,
                        branch,
                        format!("not merged into {base_name}; {why}"),
                    );
                }
            }
        } else {
            return self.keep_branch(task, branch, format!("not merged into {base_name}"));
        };
        if self.opts.dry_run {
            return self.push_branch(task, branch, Action::WouldDelete, reason);
        }
        match git(&self.repo, &["branch", "--quiet", "-D", branch]) {
            Ok(_) => self.push_branch(task, branch, Action::Deleted, reason),
            Err(e) => self.keep_branch(task, branch, format!("failed to {e}")),
        }
    }

    /// `Ok(reason)` when the task's pull request is merged with this very
    /// head; `Err(why not)` otherwise.
    fn merged_pr(
        &mut self,
        task: &AgentStatus,
        branch: &str,
        tip: &str,
    ) -> std::result::Result<String, String> {
        let selector = task
            .pr_number
            .map(|n| n.to_string())
            .unwrap_or_else(|| branch.to_string());
        let gh = self.opts.gh.clone().in_dir(&self.repo);
        let pr = match gh.pr_state(&selector) {
            Ok(Some(pr)) => pr,
            Ok(None) => return Err("it has no pull request".into()),
            Err(e) => {
                self.report.gh_errors.push(e.to_string());
                return Err(format!("could not ask GitHub: failed to {e}"));
            }
        };
        if pr.state != "MERGED" {
            return Err(format!(
                "its pull request #{} is {}",
                pr.number,
                pr.state.to_lowercase()
            ));
        }
        let same = pr
            .head_ref_oid
            .as_deref()
            .is_some_and(|h| h == tip || git::is_ancestor(&self.repo, tip, h));
        if same {
            Ok(format!("its pull request #{} is merged", pr.number))
        } else {
            Err(format!(
                "its pull request #{} is merged, but the branch has commits the pull request \
                 does not",
                pr.number
            ))
        }
    }
}

/// po-merge scratch worktrees (`.merge-<pid>-<n>`) in `dir` whose po-merge
/// is gone, with that pid.
fn stale_scratch(dir: &Path) -> Vec<(PathBuf, u32)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = crate::integration::scratch_owner(&name)?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            (comm.trim() != "po-merge").then(|| (e.path(), pid))
        })
        .collect()
}

/// `3d 04h` for long ages, the seed's duration style below a day.
fn human_age(secs: u64) -> String {
    if secs >= 86_400 {
        format!("{}d {:02}h", secs / 86_400, (secs % 86_400) / 3600)
    } else {
        timefmt::human_duration(secs as f64)
    }
}

/// A worktree someone locked (not po's half-made lock).
fn locked(entry: &git::Worktree, at: &str) -> Option<Keep> {
    let why = entry.locked.as_ref()?;
    if worktree::unfinished_reason(why).is_some() {
        return None;
    }
    Some(Keep::new(
        if why.is_empty() {
            "locked (git worktree lock)".to_string()
        } else {
            format!("locked (git worktree lock: {why})")
        },
        format!("if it may go: git worktree unlock {at}; then run po-clean again"),
    ))
}

/// A merge, rebase, cherry-pick, revert or bisect under way in the worktree
/// whose private git directory is `private`.
fn in_progress(private: &Path, at: &str) -> Option<Keep> {
    const UNDER_WAY: [(&str, &str, &str); 6] = [
        (
            "MERGE_HEAD",
            "a merge",
            "merge --continue` or `merge --abort",
        ),
        (
            "rebase-merge",
            "a rebase",
            "rebase --continue` or `rebase --abort",
        ),
        (
            "rebase-apply",
            "a rebase or git am",
            "rebase --abort` or `am --abort",
        ),
        (
            "CHERRY_PICK_HEAD",
            "a cherry-pick",
            "cherry-pick --continue` or `cherry-pick --abort",
        ),
        (
            "REVERT_HEAD",
            "a revert",
            "revert --continue` or `revert --abort",
        ),
        ("BISECT_LOG", "a bisect", "bisect reset"),
    ];
    let (_, what, undo) = UNDER_WAY
        .iter()
        .find(|(file, _, _)| private.join(file).exists())?;
    Some(Keep::new(
        format!("{what} is in progress there"),
        format!("finish it or give it up (`git -C {at} {undo}`), then run po-clean again"),
    ))
}

/// A nested repository (never deleted, with or without
/// --include-ignored), else uncommitted changes.
fn uncommitted(ignored: &[String], changes: &[(String, String)], at: &str) -> Option<Keep> {
    let nested: Vec<&str> = ignored
        .iter()
        .map(String::as_str)
        .filter(|f| git::is_nested_repo(f))
        .chain(
            changes
                .iter()
                .filter(|(code, f)| code == "??" && git::is_nested_repo(f))
                .map(|(_, f)| f.as_str()),
        )
        .collect();
    if !nested.is_empty() {
        return Some(nested_reason(&nested));
    }
    if changes.is_empty() {
        return None;
    }
    let files: Vec<&str> = changes.iter().map(|(_, f)| f.as_str()).collect();
    Some(Keep::new(
        format!(
            "uncommitted changes in {}: {}",
            plural(files.len(), "file"),
            sample(&files)
        ),
        format!(
            "commit them (git -C {at} add -A && git -C {at} commit), or discard them \
             (git -C {at} reset --hard && git -C {at} clean -fd); then run po-clean again"
        ),
    ))
}

/// Files git was told to look away from (assume-unchanged, skip-worktree),
/// except what a sparse checkout leaves out.
fn hidden_files(path: &Path, private: &Path, at: &str) -> Option<Keep> {
    let hidden = match git::hidden_entries(path) {
        Ok(hidden) => hidden,
        Err(e) => return Some(unknown(e)),
    };
    let sparse = private.join("info").join("sparse-checkout").exists();
    // In a sparse checkout, skip-worktree on an absent file is what leaves
    // it out.
    let hidden: Vec<&git::HiddenEntry> = hidden
        .iter()
        .filter(|h| {
            !(sparse
                && h.skip_worktree
                && !h.assume_unchanged
                && std::fs::symlink_metadata(path.join(&h.path)).is_err())
        })
        .collect();
    (!hidden.is_empty()).then(|| hidden_reason(at, &hidden))
}

/// A reason to keep a worktree, and what to do to let it go.
struct Keep {
    reason: String,
    advice: String,
}

impl Keep {
    fn new(reason: impl Into<String>, advice: impl Into<String>) -> Keep {
        Keep {
            reason: reason.into(),
            advice: advice.into(),
        }
    }
}

fn unknown(e: Error) -> Keep {
    Keep::new(
        format!("its state is unknown: failed to {e}"),
        "look at it by hand (git status there)",
    )
}

fn nested_reason(nested: &[&str]) -> Keep {
    Keep::new(
        format!(
            "holds a nested git repository ({}), which po-clean never deletes",
            sample(nested)
        ),
        "move it out of the worktree (it has its own history), then run po-clean again",
    )
}

/// Keep a worktree holding a nested repository, with the reason.
fn nested_keep(path: &Path) -> Option<Keep> {
    let nested = worktree::nested_repos(path);
    if nested.is_empty() {
        return None;
    }
    let names: Vec<&str> = nested.iter().map(String::as_str).collect();
    Some(nested_reason(&names))
}

fn hidden_reason(at: &str, hidden: &[&git::HiddenEntry]) -> Keep {
    let names: Vec<&str> = hidden.iter().map(|h| h.path.as_str()).collect();
    let flags = match (
        hidden.iter().any(|h| h.assume_unchanged),
        hidden.iter().any(|h| h.skip_worktree),
    ) {
        (true, true) => "--assume-unchanged and --skip-worktree",
        (true, false) => "--assume-unchanged",
        _ => "--skip-worktree",
    };
    let listed: String = names
        .iter()
        .take(3)
        .map(|n| format!(" {}", shell_word(n)))
        .collect();
    let mut undo = Vec::new();
    if hidden.iter().any(|h| h.assume_unchanged) {
        undo.push(format!(
            "git -C {at} update-index --no-assume-unchanged --{listed}"
        ));
    }
    if hidden.iter().any(|h| h.skip_worktree) {
        undo.push(format!(
            "git -C {at} update-index --no-skip-worktree --{listed}"
        ));
    }
    Keep::new(
        format!(
            "{} hidden from git status by git update-index {flags}: {}",
            plural(names.len(), "file"),
            sample(&names)
        ),
        format!(
            "show their changes ({}{}), then commit or discard them and run po-clean again",
            undo.join("; "),
            if names.len() > 3 {
                "; and the others"
            } else {
                ""
            }
        ),
    )
}

/// `3 files`, `1 file`.
fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// The first three names, then `…`.
fn sample<S: AsRef<str>>(names: &[S]) -> String {
    let shown: Vec<&str> = names.iter().take(3).map(AsRef::as_ref).collect();
    format!(
        "{}{}",
        shown.join(", "),
        if names.len() > 3 { ", …" } else { "" }
    )
}

/// Files grouped by their top directory: `target/ (1204 files)`, `.env`.
fn grouped(files: &[&str]) -> Vec<String> {
    let mut groups: Vec<(String, usize)> = Vec::new();
    for f in files {
        let key = match f.split_once('/') {
            Some((top, _)) => format!("{top}/"),
            None => f.to_string(),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => groups.push((key, 1)),
        }
    }
    groups
        .into_iter()
        .map(|(k, n)| {
            if n == 1 && k.ends_with('/') {
                files
                    .iter()
                    .find(|f| f.starts_with(&k))
                    .map(|f| f.to_string())
                    .unwrap_or(k)
            } else if n == 1 {
                k
            } else {
                format!("{k} ({n} files)")
            }
        })
        .collect()
}

/// `path` as a shell word for the advice (quoted when it needs to be).
fn quote(path: &Path) -> String {
    shell_word(&path.to_string_lossy())
}

fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=+@%:,".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// What `git clean -fdx` would delete in `path`, in bytes (a dry run's
/// estimate of what pooling frees).
fn ignored_usage(path: &Path) -> u64 {
    git::git_raw(path, &["clean", "-ndx"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("Would remove "))
        .map(|rel| disk_usage(&path.join(rel.trim_end_matches('/'))))
        .sum()
}

/// The base `--branches` compares with: `--base`, else origin's default
/// branch, else the main checkout's branch; (name, commit).
fn base_of(repo: &Path, given: Option<&str>) -> Result<(String, String)> {
    let name = match given {
        Some(b) => b.to_string(),
        None => git(
            repo,
            &[
                "symbolic-ref",
                "--quiet",
                "--short",
                "refs/remotes/origin/HEAD",
            ],
        )
        .ok()
        .filter(|b| !b.is_empty())
        .or_else(|| git::current_branch(repo))
        .unwrap_or_else(|| "HEAD".into()),
    };
    let commit = git::resolve_commit(repo, &name)?;
    Ok((name, commit))
}
