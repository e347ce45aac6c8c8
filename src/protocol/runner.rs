//! What a status file says about the runner of its task: which launcher
//! started it, the cluster job and the node it runs on, and why it waits.
//!
//! These are plain fields of the status file (kept in
//! [`AgentStatus::extra`], so older tools keep them on rewrite). Launchers
//! and supervisors write them under the file's lock; they never change a
//! task's state ([`super::lifecycle`] does). Readers take them from here.
//!
//! | field | written by | meaning |
//! |---|---|---|
//! | `supervisor_pid` | the supervisor, at start | its pid, on `node` when there is one |
//! | `launcher` | the launcher or supervisor | `slurm`; absent for the local pool |
//! | `job_id` | the launcher, at submission; the supervisor, at start | the Slurm job running the task |
//! | `node` | the supervisor, at start | the host the task runs (ran) on |
//! | `queued` | the launcher | why the job waits (`Resources`, `Priority`), while it waits; else null |

use serde_json::Value;

use super::AgentStatus;

/// The supervisor's pid.
pub const SUPERVISOR_PID: &str = "supervisor_pid";
/// The launcher that runs the task (`slurm`).
pub const LAUNCHER: &str = "launcher";
/// The Slurm job id.
pub const JOB_ID: &str = "job_id";
/// The host the task runs on.
pub const NODE: &str = "node";
/// Why the task's job waits in its queue.
pub const QUEUED: &str = "queued";

/// Every runner field, as `man 5 po-status.json` documents them.
pub const FIELDS: [&str; 5] = [SUPERVISOR_PID, LAUNCHER, JOB_ID, NODE, QUEUED];

/// The launcher named in the file, if any (the local pool names none).
pub fn launcher(s: &AgentStatus) -> Option<&str> {
    s.extra.get(LAUNCHER)?.as_str().filter(|l| !l.is_empty())
}

/// The Slurm job of the task's current (or last) run.
pub fn job_id(s: &AgentStatus) -> Option<u64> {
    match s.extra.get(JOB_ID)? {
        Value::Number(n) => n.as_u64(),
        Value::String(t) => t.trim().parse().ok(),
        _ => None,
    }
}

/// The host the task runs or ran on.
pub fn node(s: &AgentStatus) -> Option<&str> {
    s.extra
        .get(NODE)?
        .as_str()
        .map(str::trim)
        .filter(|n| !n.is_empty())
}

/// Why a task that has not finished waits for its launcher: `Some("")` when
/// it waits for no stated reason. Read from `queued` (a reason, or `true`),
/// or from a `launcher` record whose `state` is a queue's (`PENDING`,
/// `QUEUED`, `CONFIGURING`) with its `reason`.
pub fn queued(s: &AgentStatus) -> Option<String> {
    if s.status.is_terminal() {
        return None;
    }
    match s.extra.get(QUEUED) {
        Some(Value::Bool(true)) => return Some(String::new()),
        Some(Value::String(r)) => return Some(r.clone()),
        _ => {}
    }
    let l = s.extra.get(LAUNCHER)?.as_object()?;
    let state = l.get("state")?.as_str()?;
    if !["PENDING", "QUEUED", "CONFIGURING"].contains(&state.to_ascii_uppercase().as_str()) {
        return None;
    }
    let reason = l.get("reason").and_then(|r| r.as_str()).unwrap_or(state);
    Some(reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::State;
    use serde_json::json;

    #[test]
    fn runner_fields_read_what_launchers_write() {
        let mut s = AgentStatus::new("agent-1", "7");
        assert_eq!((launcher(&s), job_id(&s), node(&s)), (None, None, None));
        assert_eq!(queued(&s), None);
        s.extra.insert(LAUNCHER.into(), json!("slurm"));
        s.extra.insert(JOB_ID.into(), json!(56));
        s.extra.insert(QUEUED.into(), json!("Resources"));
        assert_eq!((launcher(&s), job_id(&s)), (Some("slurm"), Some(56)));
        assert_eq!(queued(&s).as_deref(), Some("Resources"));
        // Running: no longer queued, on its node.
        s.status = State::InProgress;
        s.extra.insert(QUEUED.into(), Value::Null);
        s.extra.insert(NODE.into(), json!("n01"));
        assert_eq!((queued(&s), node(&s)), (None, Some("n01")));
        // A finished task waits for nothing, whatever a stale field says.
        s.status = State::Failed;
        s.extra.insert(QUEUED.into(), json!(true));
        assert_eq!(queued(&s), None);
        // A job id written as text still reads.
        s.extra.insert(JOB_ID.into(), json!(" 57 "));
        assert_eq!(job_id(&s), Some(57));
    }

    #[test]
    fn a_launcher_record_with_a_queue_state_reads_as_queued() {
        let mut s = AgentStatus::new("agent-1", "7");
        s.extra.insert(
            LAUNCHER.into(),
            json!({"kind": "slurm", "state": "PENDING", "reason": "Priority"}),
        );
        assert_eq!(queued(&s).as_deref(), Some("Priority"));
        s.extra.insert(
            LAUNCHER.into(),
            json!({"kind": "slurm", "state": "RUNNING"}),
        );
        assert_eq!(queued(&s), None);
        s.extra.insert(QUEUED.into(), json!(true));
        assert_eq!(queued(&s).as_deref(), Some(""));
    }
}
