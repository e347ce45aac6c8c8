//! The git side of a sandboxed worktree: where its admin directory and the
//! repository's `.git` are, the private copy of the branch's ref directory
//! the agent commits into, and the files that link the worktree to its
//! repository, which the agent must not change.
//!
//! Git updates a branch by making `<ref>.lock` in the ref's directory and
//! renaming it over the ref, so the ref's directory must be writable, and
//! that directory (`refs/heads/feat/`) holds other branches too. The agent
//! gets a private directory in its place holding only its own branch; when
//! it is done, po moves the real branch to the tip it left there (`git
//! update-ref` with the old value, which also refuses anything that is not
//! a commit). `packed-refs`, the other refs, `config` and `hooks/` stay
//! read-only.
//!
//! The worktree's `.git` file and its admin directory's `commondir` and
//! `gitdir` say where git finds the repository (and so its config and
//! hooks). They are writable to the agent, and po runs git in the worktree
//! afterwards, outside the sandbox: a changed link could point that git at
//! a config of the agent's making (`core.fsmonitor` runs a command). They
//! are checked after the run and put back if changed, and the attempt fails.

use std::path::{Path, PathBuf};

use super::policy::GitPaths;
use crate::{fsx, git};

/// One sandboxed run's branch, from before the agent starts until it is done.
#[derive(Debug)]
pub struct Branch {
    pub paths: GitPaths,
    repo: PathBuf,
    refname: String,
    leaf: String,
    /// The branch's tip when the agent started.
    seeded: String,
    /// The link files and what they held.
    links: Vec<(PathBuf, Option<Vec<u8>>)>,
}

/// The admin directory of `worktree` and the repository's `.git`, from the
/// worktree's `.git` file and the admin directory's `commondir`.
pub fn locate(worktree: &Path) -> Result<(PathBuf, PathBuf), String> {
    let dotgit = worktree.join(".git");
    let admin = git::private_dir(worktree).ok_or_else(|| {
        format!(
            "read {}: it is missing, unreadable or not a worktree's link",
            dotgit.display()
        )
    })?;
    let common = git::common_of(&admin).ok_or_else(|| {
        format!(
            "read {}: missing or unreadable",
            admin.join("commondir").display()
        )
    })?;
    let canon = |p: &Path| {
        p.canonicalize()
            .map_err(|e| format!("find {}: {e}", p.display()))
    };
    Ok((canon(&admin)?, canon(&common)?))
}

impl Branch {
    /// Make the private ref directories under `private` for `branch` of
    /// `worktree`, holding the branch's current tip.
    pub fn prepare(
        repo: &Path,
        worktree: &Path,
        branch: &str,
        private: &Path,
    ) -> Result<Branch, String> {
        if branch.is_empty()
            || branch.starts_with('/')
            || branch
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(format!(
                "sandbox the branch {branch:?}: not a plain branch name"
            ));
        }
        let (admin, common) = locate(worktree)?;
        let refname = format!("refs/heads/{branch}");
        let (parent, leaf) = match branch.rsplit_once('/') {
            Some((p, l)) => (Some(p), l),
            None => (None, branch),
        };
        let under = |base: &str| match parent {
            Some(p) => common.join(base).join(p),
            None => common.join(base),
        };
        let paths = GitPaths {
            ref_dir: under("refs/heads"),
            log_dir: under("logs/refs/heads"),
            private_refs: private.join("refs"),
            private_logs: private.join("logs"),
            admin,
            common,
        };
        for d in [
            &paths.ref_dir,
            &paths.log_dir,
            &paths.private_refs,
            &paths.private_logs,
        ] {
            std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        let seeded = crate::git::git(worktree, &["rev-parse", "--verify", "--quiet", &refname])
            .map_err(|e| format!("read the branch {branch}: {e}"))?;
        let own = paths.private_refs.join(leaf);
        std::fs::write(&own, format!("{seeded}\n"))
            .map_err(|e| format!("write {}: {e}", own.display()))?;
        // Its reflog so far, so `git reflog` inside reads as outside.
        let log = paths.log_dir.join(leaf);
        if log.is_file() {
            let _ = std::fs::copy(&log, paths.private_logs.join(leaf));
        }
        let links = [
            worktree.join(".git"),
            paths.admin.join("commondir"),
            paths.admin.join("gitdir"),
            paths.admin.join("config.worktree"),
        ]
        .into_iter()
        .map(|p| {
            let held = fsx::read(&p, fsx::SMALL_MAX).ok();
            (p, held)
        })
        .collect();
        Ok(Branch {
            paths,
            repo: repo.to_path_buf(),
            refname,
            leaf: leaf.to_string(),
            seeded,
            links,
        })
    }

    /// After the run: put back any link the agent changed (an error naming
    /// them), then move the branch to the tip the agent committed. What is
    /// worth a note in the log goes to `note`.
    pub fn finish(&self, note: &mut dyn FnMut(&str)) -> Result<(), String> {
        let changed: Vec<&Path> = self
            .links
            .iter()
            .filter(|(p, held)| fsx::read(p, fsx::SMALL_MAX).ok() != *held)
            .map(|(p, _)| p.as_path())
            .collect();
        if !changed.is_empty() {
            for (p, held) in &self.links {
                let _ = match held {
                    Some(bytes) => std::fs::write(p, bytes),
                    None => std::fs::remove_file(p),
                };
            }
            let names: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
            return Err(format!(
                "the agent changed {}, which tell git where the repository is; po put them back \
                 and does not take this attempt's branch",
                names.join(", ")
            ));
        }
        let own = self.paths.private_refs.join(&self.leaf);
        let tip = match fsx::read_to_string(&own, fsx::SMALL_MAX) {
            Ok(t) => t.trim().to_string(),
            Err(_) => {
                note(&format!(
                    "the agent removed its branch ref inside the sandbox; {} stays at {}",
                    self.refname, self.seeded
                ));
                return Ok(());
            }
        };
        if tip == self.seeded {
            return Ok(());
        }
        if tip.len() < 40 || !tip.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "the agent left {:?} as its branch's tip, which is not a commit id; {} stays at {}",
                crate::text::one_line(&tip)
                    .chars()
                    .take(80)
                    .collect::<String>(),
                self.refname,
                self.seeded
            ));
        }
        crate::git::git(
            &self.repo,
            &[
                "update-ref",
                "-m",
                "po-spawn: the sandboxed agent's commits",
                &self.refname,
                &tip,
                &self.seeded,
            ],
        )
        .map_err(|e| format!("move {} to the agent's commit {tip}: {e}", self.refname))?;
        Ok(())
    }
}
