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

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// What merging one branch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergeOutcome {
    /// A merge commit was made; its hash.
    Merged(String),
    /// The branch's commits were there already.
    AlreadyMerged,
    /// The merge stopped on these paths and was aborted; nothing changed.
    Conflict(Vec<String>),
    /// git refused the merge without a conflict (unrelated histories, an
    /// untracked file in the way); its message. Nothing changed.
    Failed(String),
}

/// Merge `branch` into what is checked out in `path` with `--no-ff`. A
/// conflicting merge is aborted, so the worktree is as it was.
pub fn merge_one(path: &Path, branch: &str, message: &str) -> Result<MergeOutcome> {
    if git::is_ancestor(path, branch, "HEAD") {
        return Ok(MergeOutcome::AlreadyMerged);
    }
    let mut args: Vec<&str> = git::identity_args(path);
    args.extend(["merge", "--no-ff", "--quiet", "-m", message, branch]);
    let failure = match git(path, &args) {
        Ok(_) => return git(path, &["rev-parse", "HEAD"]).map(MergeOutcome::Merged),
        Err(e) => e,
    };
    let conflicted: Vec<String> = git(path, &["diff", "--name-only", "--diff-filter=U"])
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let _ = git(path, &["merge", "--abort"]);
    if conflicted.is_empty() {
        return Ok(MergeOutcome::Failed(failure.to_string()));
    }
    Ok(MergeOutcome::Conflict(conflicted))
}

/// Merge `merges` in order with `--no-ff`. On a conflict the merge is aborted
/// and the error names both branches and the conflicting files.
pub fn merge_all(path: &Path, into: &str, base: &str, merges: &[Merge]) -> Result<()> {
    let mut done: Vec<&Merge> = Vec::new();
    for m in merges {
        let msg = format!("Merge {} ({}) into {into}", m.branch, m.label);
        let conflicted = match merge_one(path, &m.branch, &msg)? {
            MergeOutcome::Merged(_) | MergeOutcome::AlreadyMerged => {
                done.push(m);
                continue;
            }
            MergeOutcome::Conflict(files) => files,
            MergeOutcome::Failed(why) => {
                return Err(Error::validation(
                    format!("merge {}", m.branch),
                    format!("git merge failed without conflicting files: {why}"),
                ));
            }
        };
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

/// How a validation command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// Its exit status, or the signal that ended it.
    Failed {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// It ran past its timeout; its whole process tree was ended.
    TimedOut,
    /// The interrupt was set while it ran; its whole process tree was ended.
    Interrupted,
}

/// The environment variable every process of a validation inherits.
pub const MARKER_ENV: &str = "PO_VALIDATION";

/// Run `command` (the user's own command line: a manifest's `validation`,
/// `--validate`) through `sh -c` in `dir`, in its own process group, output
/// appended to `log`. On the timeout or the interrupt its whole process tree
/// is ended (SIGTERM, grace, SIGKILL), descendants that left the group
/// included (they carry a marker in their environment); so are processes it
/// leaves behind when it exits.
pub fn run_check(dir: &Path, command: &str, log: &Path, limits: &Limits) -> Result<Verdict> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    let out = crate::fsx::append(log, true).map_err(Error::io("open", log))?;
    let err = out.try_clone().map_err(Error::io("open", log))?;
    let marker = format!(
        "{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let mut child = super::signals::unblocked(
        Command::new("sh")
            .args(["-c", command])
            .current_dir(dir)
            .env(MARKER_ENV, &marker)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0),
    )
    .spawn()
    .map_err(|e| Error::system(format!("start validation {command:?}: {e}")))?;
    let marker = Some(format!("{MARKER_ENV}={marker}").into_bytes());
    let deadline = Instant::now() + limits.timeout;
    let mut nap = Duration::from_millis(1);
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::system(format!("wait for validation {command:?}: {e}")))?
        {
            // Whatever it left running: found by the marker alone, since its
            // group id may be reused once the leader is reaped.
            let leftovers = Tree {
                root: None,
                pgid: None,
                marker: marker.clone(),
                spared: None,
            };
            leftovers.kill(limits.grace, &AtomicBool::new(false));
            return Ok(if status.success() {
                Verdict::Passed
            } else {
                Verdict::Failed {
                    code: status.code(),
                    signal: status.signal(),
                }
            });
        }
        let interrupted = limits.interrupt.load(Ordering::SeqCst);
        let late = Instant::now() >= deadline;
        if interrupted || late {
            let tree = Tree {
                root: None,
                pgid: Some(child.id() as i32),
                marker,
                spared: None,
            };
            tree.kill(limits.grace, &AtomicBool::new(false));
            let _ = child.wait();
            let what = if late {
                format!("timed out after {}s", limits.timeout.as_secs_f64())
            } else {
                "was interrupted".to_string()
            };
            if let Ok(mut f) = crate::fsx::append(log, false) {
                let _ = writeln!(f, "po: the validation {what}; its process tree was ended");
            }
            return Ok(if late {
                Verdict::TimedOut
            } else {
                Verdict::Interrupted
            });
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// Run a wave's validation command (see [`run_check`]); a validation error
/// naming the wave unless it passed.
pub fn validate(dir: &Path, wave: u32, command: &str, log: &Path, limits: &Limits) -> Result<()> {
    let why = match run_check(dir, command, log, limits)? {
        Verdict::Passed => return Ok(()),
        Verdict::Failed { code, signal } => format!(
            "exited with {}; its output is in {}",
            match (code, signal) {
                (Some(c), _) => format!("status {c}"),
                (None, Some(s)) => format!("signal {s}"),
                _ => "an unknown status".into(),
            },
            log.display()
        ),
        Verdict::Interrupted => format!(
            "was interrupted; its whole process tree was ended; its output is in {}",
            log.display()
        ),
        Verdict::TimedOut => format!(
            "ran past --validation-timeout {}s; its whole process tree was ended; its output is \
             in {}",
            limits.timeout.as_secs_f64(),
            log.display()
        ),
    };
    Err(Error::validation(
        format!("wave {wave}"),
        format!("validation {command:?} {why}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let rest = &s[s.rfind(')')? + 1..];
                rest.split_whitespace()
                    .next()
                    .map(|st| st != "Z" && st != "X")
            })
            .unwrap_or(false)
    }

    fn pids(file: &Path) -> Vec<i32> {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    #[test]
    fn a_validation_past_its_timeout_ends_with_its_whole_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("v.log");
        // One child in the group, one that leaves it (setsid), both ignoring SIGTERM.
        let cmd = "trap '' TERM; sleep 60 & echo $! > pids; setsid sh -c 'trap \"\" TERM; \
                   echo $$ >> pids; exec sleep 60' & sleep 60; wait";
        let started = Instant::now();
        let limits = Limits {
            timeout: Duration::from_secs(3),
            grace: Duration::from_millis(200),
            interrupt: &AtomicBool::new(false),
        };
        let verdict = run_check(tmp.path(), cmd, &log, &limits).unwrap();
        assert_eq!(verdict, Verdict::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(30));
        let pids = pids(&tmp.path().join("pids"));
        assert_eq!(pids.len(), 2, "both children wrote their pid");
        for pid in pids {
            assert!(!alive(pid), "process {pid} of the validation survived");
        }
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("timed out after"), "{text}");
    }

    #[test]
    fn a_validation_passes_fails_and_leaves_nothing_running() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("v.log");
        let limits = Limits {
            timeout: Duration::from_secs(60),
            grace: Duration::from_millis(200),
            interrupt: &AtomicBool::new(false),
        };
        let check = |command| run_check(tmp.path(), command, &log, &limits).unwrap();
        assert_eq!(check("echo fine"), Verdict::Passed);
        assert_eq!(
            check("echo bad >&2; exit 3"),
            Verdict::Failed {
                code: Some(3),
                signal: None
            }
        );
        assert_eq!(
            check("setsid sleep 60 & echo $! > pids; exit 0"),
            Verdict::Passed
        );
        for pid in pids(&tmp.path().join("pids")) {
            assert!(!alive(pid), "a leftover {pid} kept running");
        }
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("fine") && text.contains("bad"), "{text}");
        let err = validate(tmp.path(), 2, "exit 5", &log, &limits).unwrap_err();
        assert_eq!(err.exit_code(), crate::exit::VALIDATION);
        assert!(err.to_string().contains("status 5"), "{err}");
    }
}
