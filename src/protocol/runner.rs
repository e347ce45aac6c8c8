//! What a status file says about the runner of its task: which launcher
//! started it, the launcher's id for it (a cluster job, a pod), how people
//! find it, the node it runs on, and why it waits.
//!
//! These are plain fields of the status file (kept in
//! [`AgentStatus::extra`], so older tools keep them on rewrite). Launchers
//! and supervisors write them under the file's lock; they never change a
//! task's state ([`super::lifecycle`] does). Readers take them from here.
//!
//! | field | written by | meaning |
//! |---|---|---|
//! | `supervisor_pid` | the supervisor, at start | its pid, on `node` when there is one |
//! | `launcher` | the launcher or supervisor | its name (`slurm`); absent for the local pool |
//! | `runner_id` | the launcher, at submission; the supervisor, at start | the launcher's id of the runner (a job id), as text |
//! | `runner` | with `runner_id` | how the launcher shows that runner (`Slurm job 56`) |
//! | `job_id` | older files only | a Slurm job id as a number, read as `runner_id` |
//! | `node` | the supervisor, at start | the host the task runs (ran) on |
//! | `queued` | the launcher | why the job waits (`Resources`, `Priority`), while it waits; else null |

use serde_json::{Map, Value};

use super::AgentStatus;

/// The supervisor's pid.
pub const SUPERVISOR_PID: &str = "supervisor_pid";
/// The launcher that runs the task (`slurm`).
pub const LAUNCHER: &str = "launcher";
/// The launcher's id of the task's runner, as text.
pub const RUNNER_ID: &str = "runner_id";
/// How the launcher shows that runner.
pub const RUNNER: &str = "runner";
/// Where files of older versions kept a Slurm job id (a number).
pub const JOB_ID: &str = "job_id";
/// The host the task runs on.
pub const NODE: &str = "node";
/// Why the task's job waits in its queue.
pub const QUEUED: &str = "queued";

/// Every runner field, as `man 5 po-status.json` documents them.
pub const FIELDS: [&str; 7] = [
    SUPERVISOR_PID,
    LAUNCHER,
    RUNNER_ID,
    RUNNER,
    JOB_ID,
    NODE,
    QUEUED,
];

/// The launcher named in the file, if any (the local pool names none).
pub fn launcher(s: &AgentStatus) -> Option<&str> {
    s.extra.get(LAUNCHER)?.as_str().filter(|l| !l.is_empty())
}

/// The launcher's id of the task's current (or last) runner: `runner_id`,
/// or an older file's `job_id`.
pub fn runner_id(s: &AgentStatus) -> Option<String> {
    let text = |v: &Value| match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(t) => Some(t.trim().to_string()),
        _ => None,
    };
    [RUNNER_ID, JOB_ID]
        .iter()
        .find_map(|f| s.extra.get(*f).and_then(text))
        .filter(|id| !id.is_empty())
}

/// How people find the task's runner: as its launcher showed it
/// (`Slurm job 56`), else `job <id>` from an older file.
pub fn shown(s: &AgentStatus) -> Option<String> {
    let recorded = s
        .extra
        .get(RUNNER)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|r| !r.is_empty());
    match recorded {
        Some(r) => Some(r.to_string()),
        None => runner_id(s).map(|id| format!("job {id}")),
    }
}

/// Record (in a status file's fields) that launcher `launcher` runs the
/// task as its runner `id`, shown as `shown`.
pub fn record(fields: &mut Map<String, Value>, launcher: &str, id: &str, shown: &str) {
    fields.insert(LAUNCHER.into(), Value::from(launcher));
    fields.insert(RUNNER_ID.into(), Value::from(id));
    fields.insert(RUNNER.into(), Value::from(shown));
    fields.remove(JOB_ID);
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
        assert_eq!((launcher(&s), runner_id(&s), node(&s)), (None, None, None));
        assert_eq!((queued(&s), shown(&s)), (None, None));
        record(&mut s.extra, "slurm", "56", "Slurm job 56");
        s.extra.insert(QUEUED.into(), json!("Resources"));
        assert_eq!(
            (launcher(&s), runner_id(&s).as_deref()),
            (Some("slurm"), Some("56"))
        );
        assert_eq!(shown(&s).as_deref(), Some("Slurm job 56"));
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
        // A runner that is a name, not a number.
        record(
            &mut s.extra,
            "k8s",
            "po-7-agent-1-x2b",
            "pod po-7-agent-1-x2b",
        );
        assert_eq!(runner_id(&s).as_deref(), Some("po-7-agent-1-x2b"));
    }

    #[test]
    fn an_older_files_numeric_job_id_reads_as_the_runner_id() {
        let mut s = AgentStatus::new("agent-1", "7");
        s.extra.insert(LAUNCHER.into(), json!("slurm"));
        s.extra.insert(JOB_ID.into(), json!(56));
        assert_eq!(runner_id(&s).as_deref(), Some("56"));
        assert_eq!(shown(&s).as_deref(), Some("job 56"));
        s.extra.insert(JOB_ID.into(), json!(" 57 "));
        assert_eq!(runner_id(&s).as_deref(), Some("57"));
        // Recording a runner drops the old field.
        record(&mut s.extra, "slurm", "58", "Slurm job 58");
        assert!(!s.extra.contains_key(JOB_ID));
        assert_eq!(runner_id(&s).as_deref(), Some("58"));
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
