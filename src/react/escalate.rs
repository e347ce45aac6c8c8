//! Handing a task to a person: a label on its pull request, a comment that
//! names what is still failing, and the status file's `escalation`; po-react
//! answers that pull request no more.

use std::path::Path;

use super::Context;
use crate::error::Result;
use crate::forge::labels::NEEDS_PERSON;
use crate::protocol::AgentStatus;
use crate::protocol::reaction::{self, Escalation, Trigger};
use crate::timefmt;

/// Escalate the task in `path` (pull request `pr`) for `reason`. A label
/// or a comment GitHub refuses is a warning (returned); the escalation is
/// recorded all the same.
pub fn escalate(
    cx: &Context,
    path: &Path,
    task: &AgentStatus,
    pr: u64,
    reason: &str,
    triggers: &[Trigger],
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let label = match cx.gh.pr_add_label(pr, &NEEDS_PERSON) {
        Ok(()) => Some(NEEDS_PERSON.name.to_string()),
        Err(e) => {
            warnings.push(format!("failed to label PR #{pr}: {e}"));
            None
        }
    };
    let rounds = reaction::of_status(task);
    let mut body = format!(
        "**po-react** stops here for {}: {reason}. A person takes it from here.\n\n",
        task.agent_id
    );
    if !triggers.is_empty() {
        let open: Vec<&str> = triggers.iter().map(|t| t.told()).collect();
        body.push_str(&format!("- Still open: {}\n", open.join(", ")));
    }
    body.push_str(&format!(
        "- Rounds taken: {} (of --max-rounds {})\n",
        rounds.len(),
        cx.max_rounds
    ));
    if let Some(last) = rounds.last()
        && let Some(e) = last.error.as_deref()
    {
        body.push_str(&format!("- Last round: {}: {e}\n", last.outcome.as_str()));
    }
    if let Some(wt) = &task.worktree {
        body.push_str(&format!(
            "- The task's worktree is kept: `{}` on `{}`\n",
            wt.display(),
            task.branch.as_deref().unwrap_or("?")
        ));
    }
    if let Err(e) = cx.gh.pr_comment(pr, &body) {
        warnings.push(format!("failed to comment on PR #{pr}: {e}"));
    }
    reaction::escalate(
        path,
        &Escalation {
            time: Some(timefmt::now()),
            reason: crate::protocol::lifecycle::one_line(reason),
            label,
            triggers: triggers.to_vec(),
            extra: Default::default(),
        },
    )?;
    Ok(warnings)
}
