//! Bringing branches together for the scheduler, without touching the
//! user's checkout (the merges themselves are [`crate::integration`]'s).
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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::git::{self, git};
pub use crate::integration::Merge;
use crate::integration::{Limits, branch, merge_all, prepare, validate};

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
