//! Between waves: merge a wave's completed branches into `po/<id>/wave-<n>`
//! in a scratch worktree, run the wave's validation command there, and hand
//! the result on as the next wave's base.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::git::{self, git};
use crate::error::{Error, Result};

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

/// Run a wave's validation command through `sh -c` in `dir`, output to `log`.
pub fn validate(dir: &Path, wave: u32, command: &str, log: &PathBuf) -> Result<()> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(Error::io("open", log))?;
    let err = out.try_clone().map_err(Error::io("open", log))?;
    let status = Command::new("sh")
        .args(["-c", command])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| Error::system(format!("start validation {command:?}: {e}")))?;
    if status.success() {
        return Ok(());
    }
    Err(Error::validation(
        format!("wave {wave}"),
        format!(
            "validation {command:?} exited with {}; its output is in {}",
            status
                .code()
                .map(|c| format!("status {c}"))
                .unwrap_or_else(|| "a signal".into()),
            log.display()
        ),
    ))
}
