//! Slurm's queue as the launcher sees it: one `squeue` call a second for
//! every job it watches, and a quicker look at the status files of running
//! tasks, from one thread that wakes the scheduler when something changed.
//!
//! A job is live while Slurm has it pending, configuring, running,
//! completing (or suspended, requeued); it has ended when Slurm says so
//! (`COMPLETED`, `CANCELLED`, `TIMEOUT`, `NODE_FAIL`, …), or when Slurm no
//! longer knows it (accounting is not needed: `squeue -t all` shows ended
//! jobs for `MinJobAge`, 300 s by default).
//!
//! A task is done with its job once its status file records a final state
//! and its supervisor let go of the task's liveness lock: the job has
//! nothing left to do but exit. That is seen from the status file within a
//! tick (0.1 s, slower with many jobs); from then on Slurm is asked every
//! tick until it says the job ended, which frees the task's worker slot
//! (a job counts against `--max-workers` until Slurm finished it).
//!
//! While a job waits, why it waits (`Resources`, `Priority`, a limit) is
//! written to its task's `queued` field under the file's lock, and cleared
//! when it leaves the queue; never a change of the task's state.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::protocol::{State, runner, store};
use crate::run::launcher::Waker;

/// How often Slurm is asked about the jobs.
pub const SQUEUE_EVERY: Duration = Duration::from_secs(1);

/// What `squeue` said of one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: u64,
    /// `PENDING`, `RUNNING`, `CANCELLED`, …
    pub state: String,
    /// Why it waits or ended (`Resources`, `TimeLimit`), `None` for none.
    pub reason: String,
    /// Where it runs or ran; empty while it waits.
    pub node: String,
}

/// Where a job is, in the launcher's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Queued,
    Running,
    Ended,
}

impl Job {
    pub fn phase(&self) -> Phase {
        match self.state.as_str() {
            "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED"
            | "RESV_DEL_HOLD" => Phase::Queued,
            "COMPLETED" | "CANCELLED" | "FAILED" | "TIMEOUT" | "NODE_FAIL" | "PREEMPTED"
            | "BOOT_FAIL" | "DEADLINE" | "OUT_OF_MEMORY" | "REVOKED" | "SPECIAL_EXIT" => {
                Phase::Ended
            }
            // RUNNING, COMPLETING, SUSPENDED, SIGNALING, STAGE_OUT, RESIZING,
            // STOPPED: the job holds its node.
            _ => Phase::Running,
        }
    }

    /// Why it waits, as the task's `queued` field says it: Slurm's reason,
    /// else its state.
    pub fn waiting_for(&self) -> String {
        match self.has_reason() {
            true => self.reason.clone(),
            false => self.state.clone(),
        }
    }

    /// Slurm gave a reason (`Resources`, `TimeLimit`), not `None`.
    pub fn has_reason(&self) -> bool {
        !matches!(self.reason.as_str(), "" | "None" | "(null)")
    }

    /// How an ended job ended, in words for the task's error:
    /// `Slurm job 56 on n01 was cancelled (CANCELLED)`.
    pub fn how(&self) -> String {
        let what = match self.state.as_str() {
            "COMPLETED" => "ended",
            "CANCELLED" => "was cancelled by scancel or an administrator",
            "TIMEOUT" => "reached its Slurm time limit",
            "NODE_FAIL" => "was lost with its node",
            "FAILED" => "failed",
            "PREEMPTED" => "was preempted",
            "OUT_OF_MEMORY" => "ran out of memory",
            "BOOT_FAIL" => "could not boot its node",
            "DEADLINE" => "missed its deadline",
            _ => "ended",
        };
        let node = match self.node.as_str() {
            "" | "(null)" => String::new(),
            n => format!(" on {n}"),
        };
        let reason = match self.reason.as_str() {
            "" | "None" | "(null)" => String::new(),
            r => format!(", reason {r}"),
        };
        format!(
            "Slurm job {}{node} {what} ({}{reason})",
            self.id, self.state
        )
    }
}

/// The words for a job Slurm no longer knows.
pub fn vanished(id: u64) -> String {
    format!(
        "Slurm job {id} is no longer known to Slurm (it ended longer ago than MinJobAge, or the \
         controller lost it)"
    )
}

/// One line of `squeue -o %i|%T|%r|%N[|%j|%k]`: the job, and the fields
/// after it (name, comment).
pub fn parse_line(line: &str) -> Option<(Job, Vec<&str>)> {
    let mut parts = line.trim_end_matches('\n').splitn(6, '|');
    let id = parts.next()?.trim().parse().ok()?;
    let state = parts.next()?.trim().to_string();
    let reason = parts.next()?.trim().to_string();
    let node = parts.next()?.trim().to_string();
    Some((
        Job {
            id,
            state,
            reason,
            node,
        },
        parts.collect(),
    ))
}

/// `squeue` for these jobs, ended ones included; jobs Slurm does not know
/// are left out of the answer.
pub fn squeue(ids: &[u64]) -> Result<HashMap<u64, Job>> {
    let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%i|%T|%r|%N", "-j", &list])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::system(format!("run squeue: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // A single unknown job is an error; several are simply not listed.
        if ids.len() == 1 && stderr.contains("Invalid job id") {
            return Ok(HashMap::new());
        }
        return Err(Error::system(format!(
            "ask Slurm about jobs {list} (squeue): {}",
            stderr.trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(parse_line)
        .map(|(job, _)| (job.id, job))
        .collect())
}

/// A status file's identity: its inode and mtime in nanoseconds (writers
/// replace it by rename, so a change always shows).
type Version = (u64, i128);

/// One watched job.
struct Watched {
    status_file: PathBuf,
    /// What squeue said last; `None` until asked.
    seen: Option<Job>,
    /// Slurm no longer knows it.
    vanished: bool,
    /// Its task recorded a result and its supervisor let go of it: the job
    /// is about to end.
    done: bool,
    /// The status file as last looked at.
    version: Option<Version>,
    /// What was last written to the task's `queued` field.
    noted: Option<String>,
}

/// What the launcher knows of a job now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Known {
    /// Not asked yet.
    Unknown,
    Live(Job),
    Ended(Job),
    Vanished,
}

struct Shared {
    jobs: Mutex<HashMap<u64, Watched>>,
    waker: Waker,
    stop: AtomicBool,
}

/// The watched jobs and the thread that watches them.
pub struct Queue {
    shared: Arc<Shared>,
}

impl Queue {
    /// Start watching; `waker` is called when a job or its task changed.
    pub fn start(waker: Waker) -> Queue {
        let shared = Arc::new(Shared {
            jobs: Mutex::new(HashMap::new()),
            waker,
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("squeue".into())
            .spawn(move || watch(&s))
            .expect("start the squeue thread");
        Queue { shared }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Watched>> {
        self.shared.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watch job `id`, which runs the task of `status_file`; `seen` is what
    /// Slurm said of it already.
    pub fn watch(&self, id: u64, status_file: &Path, seen: Option<Job>) {
        self.jobs().entry(id).or_insert(Watched {
            status_file: status_file.to_path_buf(),
            seen,
            vanished: false,
            done: false,
            version: None,
            noted: None,
        });
    }

    /// Ask Slurm about every watched job now, from the caller's thread.
    pub fn refresh(&self) -> Result<()> {
        ask_slurm(&self.shared).map(|_| ())
    }

    pub fn known(&self, id: u64) -> Known {
        match self.jobs().get(&id) {
            None => Known::Unknown,
            Some(w) if w.vanished => Known::Vanished,
            Some(w) => match &w.seen {
                Some(j) if j.phase() == Phase::Ended => Known::Ended(j.clone()),
                Some(j) => Known::Live(j.clone()),
                None => Known::Unknown,
            },
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

/// The watching thread: look at running tasks' status files every tick,
/// ask Slurm every [`SQUEUE_EVERY`] (every tick while a job whose task is
/// done is about to end), wake the scheduler when a job changed.
fn watch(shared: &Shared) {
    let mut last_squeue: Option<Instant> = None;
    let mut failing = false;
    while !shared.stop.load(Ordering::SeqCst) {
        let (active, ending) = counts(shared);
        // 0.1 s for a few jobs, up to 1 s for hundreds: a stat per running
        // task and tick. While a job is about to end, a squeue a tick, 25 ms
        // for a few jobs, up to 0.25 s.
        let active = active as u64;
        let tick = match ending {
            0 => Duration::from_millis((100 + 2 * active).min(1000)),
            _ => Duration::from_millis((25 + active / 10).min(250)),
        };
        std::thread::sleep(tick);
        look_at_tasks(shared);
        let (active, ending) = counts(shared);
        let due = ending > 0 || last_squeue.is_none_or(|t| t.elapsed() >= SQUEUE_EVERY);
        let mut changed = false;
        if active > 0 && due {
            last_squeue = Some(Instant::now());
            match ask_slurm(shared) {
                Ok(c) => {
                    changed = c;
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!("po-spawn: failed to {e}; asking again");
                    }
                    failing = true;
                }
            }
        }
        if changed {
            (shared.waker)();
        }
    }
}

/// Still worth watching: Slurm has not said it ended.
fn active(w: &Watched) -> bool {
    !w.vanished && w.seen.as_ref().is_none_or(|j| j.phase() != Phase::Ended)
}

/// Jobs still watched, and how many of them are done with their task.
fn counts(shared: &Shared) -> (usize, usize) {
    let jobs = shared.jobs.lock().unwrap_or_else(|e| e.into_inner());
    let active: Vec<&Watched> = jobs.values().filter(|w| active(w)).collect();
    (active.len(), active.iter().filter(|w| w.done).count())
}

/// The status files of tasks whose jobs run (or may): a task recorded and
/// let go of is done with its job. A stat each; the file is read only when
/// it changed.
fn look_at_tasks(shared: &Shared) {
    let candidates: Vec<(u64, PathBuf, Option<Version>)> = {
        let jobs = shared.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.iter()
            .filter(|(_, w)| {
                active(w) && !w.done && w.seen.as_ref().is_none_or(|j| j.phase() != Phase::Queued)
            })
            .map(|(id, w)| (*id, w.status_file.clone(), w.version))
            .collect()
    };
    for (id, file, before) in candidates {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let version = (
            meta.ino(),
            meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        );
        if Some(version) == before {
            continue;
        }
        let terminal = store::read_status(&file).is_ok_and(|s| s.status.is_terminal());
        let done = terminal && !store::is_live(&file);
        let mut jobs = shared.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = jobs.get_mut(&id) {
            w.done |= done;
            // A recorded task whose supervisor still holds it (opening its
            // pull request) is looked at again next tick.
            if !terminal || done {
                w.version = Some(version);
            }
        }
    }
}

/// One `squeue` for every active job; record why queued jobs wait.
fn ask_slurm(shared: &Shared) -> Result<bool> {
    let ids: Vec<u64> = {
        let jobs = shared.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<u64> = jobs
            .iter()
            .filter(|(_, w)| active(w))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    };
    if ids.is_empty() {
        return Ok(false);
    }
    let answer = squeue(&ids)?;
    let mut changed = false;
    let mut notes: Vec<(PathBuf, Option<String>)> = Vec::new();
    {
        let mut jobs = shared.jobs.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            let Some(w) = jobs.get_mut(&id) else {
                continue;
            };
            match answer.get(&id) {
                None => {
                    w.vanished = true;
                    changed = true;
                }
                Some(job) => {
                    if w.seen.as_ref() != Some(job) {
                        w.seen = Some(job.clone());
                        changed = true;
                    }
                    // A job Slurm has not considered yet (PENDING, reason
                    // None) is not written down: most start at the next
                    // scheduling pass, and that would be a write per task.
                    let want = (job.phase() == Phase::Queued
                        && (job.state != "PENDING" || job.has_reason()))
                    .then(|| job.waiting_for());
                    if want != w.noted {
                        w.noted = want.clone();
                        notes.push((w.status_file.clone(), want));
                    }
                }
            }
        }
    }
    for (file, why) in notes {
        note_queued(&file, why.as_deref());
    }
    Ok(changed)
}

/// Write why the task's job waits (`None`: it waits no more) into its
/// status file, under its lock, while the task is pending. A task its
/// supervisor took is left alone: the supervisor clears the field.
pub fn note_queued(status_file: &Path, why: Option<&str>) {
    let want = why.map_or(Value::Null, Value::from);
    let current = match store::read_status(status_file) {
        Ok(s) if s.status == State::Pending => s.extra.get(runner::QUEUED).cloned(),
        _ => return,
    };
    if current.unwrap_or(Value::Null) == want {
        return;
    }
    let _ = store::update_status(status_file, |s| {
        if s.status != State::Pending {
            // Nothing to write: the supervisor runs it now.
            return Err(Error::system("the task left its queue"));
        }
        s.extra.insert(runner::QUEUED.into(), want.clone());
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: &str, reason: &str, node: &str) -> Job {
        Job {
            id: 56,
            state: state.into(),
            reason: reason.into(),
            node: node.into(),
        }
    }

    #[test]
    fn squeue_lines_parse_with_a_comment_holding_bars() {
        let (j, rest) =
            parse_line("56|PENDING|Resources||po-7-agent-1|/a|b/agent-1.status.json\n").unwrap();
        assert_eq!(j, job("PENDING", "Resources", ""));
        assert_eq!(rest, vec!["po-7-agent-1", "/a|b/agent-1.status.json"]);
        let (j, rest) = parse_line("57|RUNNING|None|n01").unwrap();
        assert_eq!((j.id, j.node.as_str(), rest.len()), (57, "n01", 0));
        assert!(
            parse_line("56_1|PENDING|None|").is_none(),
            "array jobs are not po's"
        );
        assert!(parse_line("garbage").is_none());
    }

    #[test]
    fn the_states_the_issue_names_are_live_and_the_rest_ended() {
        for (state, phase) in [
            ("PENDING", Phase::Queued),
            ("CONFIGURING", Phase::Queued),
            ("RUNNING", Phase::Running),
            ("COMPLETING", Phase::Running),
            ("SUSPENDED", Phase::Running),
            ("COMPLETED", Phase::Ended),
            ("CANCELLED", Phase::Ended),
            ("TIMEOUT", Phase::Ended),
            ("NODE_FAIL", Phase::Ended),
            ("OUT_OF_MEMORY", Phase::Ended),
        ] {
            assert_eq!(job(state, "None", "").phase(), phase, "{state}");
        }
    }

    #[test]
    fn how_a_job_ended_names_slurm_state_reason_and_node() {
        assert_eq!(
            job("CANCELLED", "None", "n01").how(),
            "Slurm job 56 on n01 was cancelled by scancel or an administrator (CANCELLED)"
        );
        assert_eq!(
            job("TIMEOUT", "TimeLimit", "n02").how(),
            "Slurm job 56 on n02 reached its Slurm time limit (TIMEOUT, reason TimeLimit)"
        );
        assert_eq!(
            job("NODE_FAIL", "None", "").how(),
            "Slurm job 56 was lost with its node (NODE_FAIL)"
        );
        assert!(vanished(56).contains("no longer known to Slurm"));
        assert_eq!(job("PENDING", "Priority", "").waiting_for(), "Priority");
        assert_eq!(job("PENDING", "None", "").waiting_for(), "PENDING");
    }

    #[test]
    fn queued_reasons_are_written_only_to_pending_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent-1.status.json");
        let mut s = crate::protocol::AgentStatus::new("agent-1", "7");
        store::write_status(&p, &s).unwrap();
        note_queued(&p, Some("Resources"));
        let r = store::read_status(&p).unwrap();
        assert_eq!(runner::queued(&r).as_deref(), Some("Resources"));
        assert_eq!(r.status, State::Pending, "never a change of state");
        note_queued(&p, None);
        assert_eq!(runner::queued(&store::read_status(&p).unwrap()), None);
        // A running task is its supervisor's: left as it is.
        s.status = State::InProgress;
        store::write_status(&p, &s).unwrap();
        let before = std::fs::read(&p).unwrap();
        note_queued(&p, Some("Priority"));
        assert_eq!(std::fs::read(&p).unwrap(), before);
    }
}
