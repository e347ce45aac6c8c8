//! Bringing branches together without touching the user's checkout.
//!
//! * Between waves: merge a wave's completed branches into
//!   `po/<id>/wave-<n>` in a scratch worktree, run the wave's validation
//!   command there (with a time limit), and hand the result on as the next
//!   wave's base.
//! * In a dependency graph: the base of a task with dependencies is its
//!   dependency's branch, or a merge of its dependencies' branches made with
//!   `git merge-tree` (no worktree at all).
//!
//! The scheduler calls these through [`Integrate`], so its logic can be
//! tested without git.

use std::fs::OpenOptions;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::git::{self, git};
use super::proctree::Tree;
use crate::error::{Error, Result};

/// What the scheduler asks of integration.
pub trait Integrate {
    /// Merge wave `wave`'s completed branches (`merges`, in order) onto
    /// `base`, run `validation` on the result; the next wave's base commit.
    fn wave(
        &mut self,
        wave: u32,
        base: &str,
        merges: &[Merge],
        validation: Option<&str>,
    ) -> Result<String>;

    /// The commit a task that depends on `deps` starts from: the one
    /// dependency's branch, or a merge of all their branches. A conflict is
    /// an error naming the branches and files.
    fn deps_base(&mut self, base: &str, deps: &[Merge]) -> Result<String>;
}

/// Integration with git, in the repository of a run.
pub struct GitIntegration {
    pub repo: PathBuf,
    /// The scratch worktree waves are merged in.
    pub scratch: PathBuf,
    pub id: String,
    pub logs: PathBuf,
    /// Worktree runs: without them there are no branches, only validation.
    pub isolated: bool,
    pub validation_timeout: Duration,
    pub grace: Duration,
    /// Set when po-spawn is interrupted: a running validation is ended.
    pub interrupt: Arc<AtomicBool>,
}

impl Integrate for GitIntegration {
    fn wave(
        &mut self,
        wave: u32,
        base: &str,
        merges: &[Merge],
        validation: Option<&str>,
    ) -> Result<String> {
        let log = self.logs.join(format!("wave-{wave}-validation.log"));
        if !self.isolated {
            if let Some(cmd) = validation {
                self.validate(&self.repo, wave, cmd, &log)?;
            }
            return Ok(base.to_string());
        }
        let into = branch(&self.id, wave);
        let merges: Vec<Merge> = merges
            .iter()
            .filter(|m| git::branch_exists(&self.repo, &m.branch))
            .cloned()
            .collect();
        prepare(&self.repo, &self.scratch, &into, base)?;
        merge_all(&self.scratch, &into, base, &merges)?;
        if let Some(cmd) = validation {
            self.validate(&self.scratch, wave, cmd, &log)?;
        }
        git(&self.scratch, &["rev-parse", "HEAD"])
    }

    fn deps_base(&mut self, base: &str, deps: &[Merge]) -> Result<String> {
        if !self.isolated || deps.is_empty() {
            return Ok(base.to_string());
        }
        let head = |m: &Merge| {
            git::resolve_commit(&self.repo, &m.branch).map_err(|_| {
                Error::validation(
                    format!("start from {} ({})", m.branch, m.label),
                    "the dependency's branch does not exist; run it again with `po-spawn --retry`",
                )
            })
        };
        let mut commit = head(&deps[0])?;
        for (i, m) in deps.iter().enumerate().skip(1) {
            let theirs = head(m)?;
            let merged = git::merge_tree(&self.repo, &commit, &theirs)?;
            if !merged.conflicts.is_empty() {
                let names: Vec<String> = deps[..=i]
                    .iter()
                    .map(|d| format!("{} ({})", d.branch, d.label))
                    .collect();
                return Err(Error::validation(
                    "merge the branches of its dependencies",
                    format!(
                        "{} conflict in {}; merge them by hand (po-merge shows them) or make it \
                         depend on one of them",
                        names.join(" and "),
                        merged.conflicts.join(", ")
                    ),
                ));
            }
            let msg = format!("Merge {} ({}) for a dependent task", m.branch, m.label);
            let mut args: Vec<&str> = git::identity_args(&self.repo);
            args.extend([
                "commit-tree",
                &merged.tree,
                "-p",
                &commit,
                "-p",
                &theirs,
                "-m",
                &msg,
            ]);
            commit = git(&self.repo, &args)?;
        }
        Ok(commit)
    }
}

impl GitIntegration {
    fn validate(&self, dir: &Path, wave: u32, command: &str, log: &Path) -> Result<()> {
        validate(
            dir,
            wave,
            command,
            log,
            &Limits {
                timeout: self.validation_timeout,
                grace: self.grace,
                interrupt: &self.interrupt,
            },
        )
    }
}

/// The integration branch of wave `n`.
pub fn branch(id: &str, wave: u32) -> String {
    format!(
        "po/{}/wave-{wave}",
        crate::protocol::sanitize::branch_component(id)
    )
}

/// Prepare the scratch worktree at `path` on `branch`, reset to `base`.
/// The worktree and branch belong to po and are rebuilt on every run.
pub fn prepare(repo: &Path, path: &Path, branch: &str, base: &str) -> Result<()> {
    if path.join(".git").exists() {
        let _ = git(path, &["merge", "--abort"]);
        git(
            path,
            &["checkout", "--quiet", "--force", "-B", branch, base],
        )?;
        git(path, &["reset", "--quiet", "--hard", base])?;
        git(path, &["clean", "--quiet", "-fd"])?;
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    let p = path.to_string_lossy();
    let add = || super::worktree::worktree_add(repo, &["-B", branch, &p, base]);
    match add() {
        Ok(()) => Ok(()),
        Err(e) if e.to_string().contains("already registered") => {
            git(repo, &["worktree", "prune"])?;
            add().map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// One branch to merge, with the label people know it by.
#[derive(Clone, Debug)]
pub struct Merge {
    pub label: String,
    pub branch: String,
}

/// Merge `merges` in order with `--no-ff`. On a conflict the merge is aborted
/// and the error names both branches and the conflicting files.
pub fn merge_all(path: &Path, into: &str, base: &str, merges: &[Merge]) -> Result<()> {
    let ident = git::identity_args(path);
    let mut done: Vec<&Merge> = Vec::new();
    for m in merges {
        let msg = format!("Merge {} ({}) into {into}", m.branch, m.label);
        let mut args: Vec<&str> = ident.clone();
        args.extend(["merge", "--no-ff", "--quiet", "-m", &msg, &m.branch]);
        if git(path, &args).is_ok() {
            done.push(m);
            continue;
        }
        let conflicted: Vec<String> = git(path, &["diff", "--name-only", "--diff-filter=U"])
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        let _ = git(path, &["merge", "--abort"]);
        if conflicted.is_empty() {
            return Err(Error::validation(
                format!("merge {} into {into}", m.branch),
                "git merge failed without conflicting files; see `git merge` in the \
                 integration worktree"
                    .to_string(),
            ));
        }
        let others: Vec<String> = done
            .iter()
            .filter(|d| {
                git(path, &["diff", "--name-only", base, &d.branch])
                    .unwrap_or_default()
                    .lines()
                    .any(|f| conflicted.iter().any(|c| c == f))
            })
            .map(|d| format!("{} ({})", d.branch, d.label))
            .collect();
        let with = if others.is_empty() {
            "the wave's base".to_string()
        } else {
            others.join(" and ")
        };
        return Err(Error::validation(
            format!("merge the wave into {into}"),
            format!(
                "{} ({}) conflicts with {with} in {}; merge them by hand or run those tasks in \
                 different waves",
                m.branch,
                m.label,
                conflicted.join(", ")
            ),
        ));
    }
    Ok(())
}

/// How long a validation may run, and what ends it early.
pub struct Limits<'a> {
    pub timeout: Duration,
    pub grace: Duration,
    pub interrupt: &'a AtomicBool,
}

/// Run a wave's validation command through `sh -c` in `dir`, in its own
/// process group, output to `log`. On timeout or interrupt its whole tree is
/// ended (SIGTERM, grace, SIGKILL) and the wave fails.
pub fn validate(dir: &Path, wave: u32, command: &str, log: &Path, limits: &Limits) -> Result<()> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(Error::io("open", log))?;
    let err = out.try_clone().map_err(Error::io("open", log))?;
    let marker = format!(
        "PO_VALIDATION={}-wave-{wave}-{}",
        std::process::id(),
        log.display()
    );
    let (key, value) = marker.split_once('=').unwrap_or_default();
    let mut child = Command::new("sh")
        .args(["-c", command])
        .current_dir(dir)
        .env(key, value)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::system(format!("start validation {command:?}: {e}")))?;
    let tree = Tree {
        root: None,
        pgid: Some(child.id() as i32),
        marker: Some(marker.clone().into_bytes()),
    };
    let deadline = Instant::now() + limits.timeout;
    let ended = |why: String| {
        tree.kill(limits.grace, &AtomicBool::new(false));
        Error::validation(
            format!("wave {wave}"),
            format!(
                "validation {command:?} {why}; its whole process tree was ended; its output is \
                 in {}",
                log.display()
            ),
        )
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                return Err(Error::system(format!(
                    "wait for validation {command:?}: {e}"
                )));
            }
        }
        if limits.interrupt.load(Ordering::SeqCst) {
            let e = ended("was interrupted".into());
            let _ = child.wait();
            return Err(e);
        }
        if Instant::now() >= deadline {
            let e = ended(format!(
                "ran past --validation-timeout {}s",
                limits.timeout.as_secs_f64()
            ));
            let _ = child.wait();
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Whatever it left behind goes too.
    tree.kill(limits.grace, &AtomicBool::new(false));
    if status.success() {
        return Ok(());
    }
    Err(Error::validation(
        format!("wave {wave}"),
        format!(
            "validation {command:?} exited with {}; its output is in {}",
            match (status.code(), status.signal()) {
                (Some(c), _) => format!("status {c}"),
                (None, Some(s)) => format!("signal {s}"),
                _ => "an unknown status".into(),
            },
            log.display()
        ),
    ))
}
