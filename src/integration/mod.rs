//! Bringing branches together without touching the user's checkout: the
//! merges that po-spawn's waves and po-merge share, in worktrees of po's
//! own, and the validation commands run on the result.
//!
//! * [`prepare`] a worktree of po's on a branch reset to a base, and
//!   [`merge_one`] branch after branch into it ([`merge_all`] for a wave);
//! * [`Scratch`]: a detached worktree for one po-merge run, named so that
//!   po-clean knows a stale one ([`scratch_owner`]);
//! * [`run_check`]: a validation command, with a time limit, its whole
//!   process tree ended;
//! * [`conflicts`]: which branches would conflict, predicted with
//!   `git merge-tree`.

pub mod conflicts;

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, GitRefusal, Result};
use crate::git::{self, git};
use crate::proctree::Tree;
use crate::worktree;

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
    let add = || worktree::worktree_add(repo, &["-B", branch, &p, base]);
    match add() {
        Ok(()) => Ok(()),
        Err(e) if e.git_refusal() == Some(GitRefusal::MissingButRegistered) => {
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
    let mut child = crate::signals::unblocked(
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

/// The prefix of a po-merge scratch worktree's name: `.merge-<pid>-<n>`.
const SCRATCH_PREFIX: &str = ".merge-";

/// A detached worktree for one run of po-merge, removed when dropped. Its
/// name says which process made it ([`scratch_owner`]), so a stale one can
/// be told from one in use.
pub struct Scratch {
    repo: PathBuf,
    path: PathBuf,
}

impl Scratch {
    /// A scratch worktree in `parent`, detached at `start`.
    pub fn create(repo: &Path, parent: &Path, start: &str) -> Result<Scratch> {
        static N: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        let path = parent.join(format!(
            "{SCRATCH_PREFIX}{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let scratch = Scratch {
            repo: repo.to_path_buf(),
            path,
        };
        if scratch.path.exists() {
            scratch.remove();
        }
        let p = scratch.path.to_string_lossy().into_owned();
        worktree::worktree_add(repo, &["--detach", &p, start])?;
        Ok(scratch)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn remove(&self) {
        worktree::discard(&self.repo, &self.path);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The pid of the process that made the scratch worktree named `name`, if
/// it is one.
pub fn scratch_owner(name: &str) -> Option<u32> {
    name.strip_prefix(SCRATCH_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
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
    fn a_scratch_worktree_is_named_for_its_owner() {
        assert_eq!(scratch_owner(".merge-1234-0"), Some(1234));
        assert_eq!(scratch_owner(".merge-x-0"), None);
        assert_eq!(scratch_owner("agent-1"), None);
        let name = format!("{SCRATCH_PREFIX}{}-7", std::process::id());
        assert_eq!(scratch_owner(&name), Some(std::process::id()));
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
