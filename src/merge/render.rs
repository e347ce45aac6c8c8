//! `po-merge`'s report for people. Labels and branch names come from status
//! files, so they are flattened to one line.

use std::fmt::Write as _;

use super::integrate::{Outcome, Report, Step, Validation, ValidationOutcome};
use crate::text::one_line;
use crate::timefmt::human_duration;

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(7)]
}

/// The whole report, ending with what to do next when something failed.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let into = one_line(&r.into);
    let _ = writeln!(
        o,
        "{} {} ({}) for orchestration {}",
        if r.dry_run {
            "Would merge into"
        } else {
            "Merging into"
        },
        into,
        if r.created {
            format!("new, from {}", short(&r.start))
        } else {
            format!("at {}", short(&r.start))
        },
        one_line(&r.orchestration_id)
    );
    if !r.predicted_conflicts.is_empty() {
        let _ = writeln!(o, "\nPredicted conflicts (git merge-tree):");
        for c in &r.predicted_conflicts {
            let _ = writeln!(o, "  {}", one_line(&c.line()));
        }
    }
    let _ = writeln!(o);
    let width = r
        .steps
        .iter()
        .map(|s| one_line(&s.label).chars().count())
        .max()
        .unwrap_or(0);
    for s in &r.steps {
        let _ = writeln!(o, "{}", step_line(r, s, width));
    }
    for u in &r.unreadable {
        let _ = writeln!(o, "  ➖ {}: unreadable, not merged", u.path.display());
    }
    if !r.validations.is_empty() {
        let _ = writeln!(o, "\nValidation:");
        for v in &r.validations {
            let _ = writeln!(o, "{}", validation_line(v));
        }
    }
    let _ = writeln!(o, "\n{}", outcome_line(r));
    o.push_str(&next_steps(r));
    o
}

/// A task's step: its outcome, branch and commit, and why.
fn step_line(r: &Report, s: &Step, width: usize) -> String {
    let (mark, word) = match s.outcome {
        Outcome::Merged => ("✅", "merged"),
        Outcome::AlreadyMerged => ("✅", "already merged"),
        Outcome::WouldMerge => ("➕", "would merge"),
        Outcome::Conflict | Outcome::Failed => ("❌", "not merged"),
        Outcome::NotReached => ("⏸", "not reached"),
        Outcome::Skipped => ("➖", "skipped"),
    };
    let mut line = format!("  {mark} {:<width$}  {word:<14}", one_line(&s.label));
    if let Some(b) = &s.branch
        && s.outcome != Outcome::Skipped
    {
        let _ = write!(line, "  {}", one_line(b));
    }
    if let Some(c) = &s.commit {
        let _ = write!(line, " ({})", short(c));
        if r.head.is_some() && !s.in_branch {
            let _ = write!(line, ", rolled back: a validation failed");
        }
    }
    if s.outcome == Outcome::Conflict {
        let with = if s.conflicts_with.is_empty() {
            String::new()
        } else {
            format!(" with {}", one_line(&s.conflicts_with.join(", ")))
        };
        let _ = write!(
            line,
            ": conflicts{with} in {}",
            one_line(&s.files.join(", "))
        );
    }
    if let Some(why) = &s.reason {
        let _ = write!(line, ": {}", one_line(why));
    }
    line.trim_end().to_string()
}

/// A validation: what ran, how it ended, how long, where its log is.
fn validation_line(v: &Validation) -> String {
    let what = match v.wave {
        Some(w) => format!("wave {w}"),
        None => "--validate".to_string(),
    };
    let (mark, how) = match v.outcome {
        ValidationOutcome::Passed => ("✅", "passed".to_string()),
        ValidationOutcome::Failed => (
            "❌",
            match v.exit_code {
                Some(c) => format!("failed with status {c}"),
                None => "failed (killed by a signal)".to_string(),
            },
        ),
        ValidationOutcome::TimedOut => ("❌", "timed out; its process tree was ended".into()),
        ValidationOutcome::Interrupted => ("⏸", "interrupted".to_string()),
    };
    format!(
        "  {mark} {what}: {} {how} in {} (log: {})",
        one_line(&v.command),
        human_duration(v.seconds),
        v.log.display()
    )
}

fn outcome_line(r: &Report) -> String {
    let mut counts = Vec::new();
    for (n, what) in [
        (r.merged, "merged"),
        (r.already_merged, "already merged"),
        (r.conflicts, "conflicting"),
        (r.failed, "refused by git"),
        (r.skipped, "skipped"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {what}"));
        }
    }
    let steps = |o: Outcome| r.steps.iter().filter(|s| s.outcome == o).count();
    for (n, what) in [
        (steps(Outcome::WouldMerge), "would merge"),
        (steps(Outcome::NotReached), "not reached"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {what}"));
        }
    }
    if counts.is_empty() {
        counts.push("no tasks".into());
    }
    let into = one_line(&r.into);
    match &r.head {
        Some(h) => format!("{into} is at {} ({})", short(h), counts.join(", ")),
        None if r.dry_run => format!("Dry run: nothing was merged ({})", counts.join(", ")),
        None => format!(
            "Nothing to merge: no completed task has a branch ({}); {into} was not written",
            counts.join(", ")
        ),
    }
}

fn next_steps(r: &Report) -> String {
    let mut o = String::new();
    let into = one_line(&r.into);
    for s in r.steps.iter().filter(|s| s.outcome == Outcome::Conflict) {
        let _ = writeln!(
            o,
            "To merge {} by hand: git switch {into} && git merge {} (then run po-merge again)",
            one_line(&s.label),
            one_line(s.branch.as_deref().unwrap_or_default())
        );
    }
    if r.validations
        .iter()
        .any(|v| v.outcome != ValidationOutcome::Passed)
    {
        let _ = writeln!(
            o,
            "A validation did not pass: {into} stays at its last good state; see the log above"
        );
    }
    o
}
