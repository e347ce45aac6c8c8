//! Between waves: merge a wave's completed branches into `po/<id>/wave-<n>`
//! in a scratch worktree, run the wave's validation command there, and hand
//! the result on as the next wave's base.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::git::{self, git};
use super::proctree;
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

/// How a validation command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// Its exit status, or `None` when a signal ended it.
    Failed(Option<i32>),
    /// It ran past its timeout; its whole process tree was ended.
    TimedOut,
    /// `cancel` was set while it ran; its whole process tree was ended.
    Cancelled,
}

/// A validation command to run.
#[derive(Clone, Copy, Debug)]
pub struct Check<'a> {
    /// Where it runs.
    pub dir: &'a Path,
    /// Run by `sh -c`: the user's own command line (a manifest's
    /// `validation`, `--validate`).
    pub command: &'a str,
    /// Its stdout and stderr are appended here.
    pub log: &'a Path,
    pub timeout: Option<Duration>,
    /// Set from elsewhere (a signal) to end it early.
    pub cancel: Option<&'a AtomicBool>,
}

/// Grace between SIGTERM and SIGKILL when a validation is ended.
const GRACE: Duration = Duration::from_secs(2);

/// Run `check.command` in its own process group, output to its log. On the
/// timeout (or `cancel`) its whole process tree is ended, descendants that
/// left the group included (they carry a marker in their environment); so
/// are processes it left behind when it exits.
pub fn run_check(check: &Check<'_>) -> Result<Verdict> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let log = check.log;
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
        "{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let mut child = Command::new("sh")
        .args(["-c", check.command])
        .current_dir(check.dir)
        .env(MARKER_ENV, &marker)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::system(format!("start validation {:?}: {e}", check.command)))?;
    let marker = Some(format!("{MARKER_ENV}={marker}").into_bytes());
    let deadline = check.timeout.map(|t| Instant::now() + t);
    let mut nap = Duration::from_millis(1);
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::system(format!("wait for validation: {e}")))?
        {
            // Whatever it left running: found by the marker alone, since
            // its group id may be reused once the leader is reaped.
            let leftovers = proctree::Tree {
                root: None,
                pgid: None,
                marker: marker.clone(),
            };
            leftovers.kill(GRACE, &AtomicBool::new(false));
            return Ok(if status.success() {
                Verdict::Passed
            } else {
                Verdict::Failed(status.code())
            });
        }
        let cancelled = check.cancel.is_some_and(|c| c.load(Ordering::SeqCst));
        let late = deadline.is_some_and(|d| Instant::now() >= d);
        if cancelled || late {
            let tree = proctree::Tree {
                root: None,
                pgid: Some(child.id() as i32),
                marker,
            };
            tree.kill(GRACE, &AtomicBool::new(false));
            let _ = child.wait();
            let what = if late {
                format!(
                    "timed out after {}",
                    crate::timefmt::human_duration(check.timeout.unwrap_or_default().as_secs_f64())
                )
            } else {
                "was interrupted".to_string()
            };
            if let Ok(mut f) = OpenOptions::new().append(true).open(log) {
                let _ = writeln!(f, "po: the validation {what}; its process tree was ended");
            }
            return Ok(if late {
                Verdict::TimedOut
            } else {
                Verdict::Cancelled
            });
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}

/// The environment variable every process of a validation inherits.
pub const MARKER_ENV: &str = "PO_VALIDATION";

/// Run a wave's validation command through `sh -c` in `dir`, output to `log`.
pub fn validate(dir: &Path, wave: u32, command: &str, log: &PathBuf) -> Result<()> {
    let verdict = run_check(&Check {
        dir,
        command,
        log,
        timeout: None,
        cancel: None,
    })?;
    let how = match verdict {
        Verdict::Passed => return Ok(()),
        Verdict::Failed(Some(c)) => format!("status {c}"),
        Verdict::Failed(None) => "a signal".into(),
        Verdict::TimedOut | Verdict::Cancelled => "an interruption".into(),
    };
    Err(Error::validation(
        format!("wave {wave}"),
        format!(
            "validation {command:?} exited with {how}; its output is in {}",
            log.display()
        ),
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
        let verdict = run_check(&Check {
            dir: tmp.path(),
            command: cmd,
            log: &log,
            timeout: Some(Duration::from_secs(3)),
            cancel: None,
        })
        .unwrap();
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
        let check = |command| {
            run_check(&Check {
                dir: tmp.path(),
                command,
                log: &log,
                timeout: Some(Duration::from_secs(60)),
                cancel: None,
            })
            .unwrap()
        };
        assert_eq!(check("echo fine"), Verdict::Passed);
        assert_eq!(check("echo bad >&2; exit 3"), Verdict::Failed(Some(3)));
        assert_eq!(
            check("setsid sleep 60 & echo $! > pids; exit 0"),
            Verdict::Passed
        );
        for pid in pids(&tmp.path().join("pids")) {
            assert!(!alive(pid), "a leftover {pid} kept running");
        }
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("fine") && text.contains("bad"), "{text}");
        let err = validate(tmp.path(), 2, "exit 5", &log).unwrap_err();
        assert_eq!(err.exit_code(), crate::exit::VALIDATION);
        assert!(err.to_string().contains("status 5"), "{err}");
    }
}
