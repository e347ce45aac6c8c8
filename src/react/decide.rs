//! What to do about one pull request, from what was found on it, the
//! task's earlier rounds and the limits: nothing, a round, or a person.

use super::gather::Found;
use crate::protocol::reaction::{self, Reaction, Trigger};

/// The limits a task's rounds stay within.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_rounds: u32,
    /// The orchestration's budget, and what it spent so far.
    pub budget: Option<(f64, f64)>,
}

/// What a pass does about one pull request.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Merged or closed: nothing more, ever.
    Closed(String),
    /// Nothing to answer now (why, for the report).
    Nothing(String),
    /// Answer these, as round `round`.
    React { round: u32, triggers: Vec<Trigger> },
    /// Hand it to a person: why, and what is still open.
    Escalate {
        reason: String,
        triggers: Vec<Trigger>,
    },
}

/// Decide for `found`, given the task's `rounds`.
pub fn decide(found: &Found, rounds: &[Reaction], limits: Limits) -> Decision {
    if !found.open() {
        return Decision::Closed(found.pr.state.to_lowercase());
    }
    let head = found.head();
    let mut triggers = Vec::new();
    let mut waiting = Vec::new();
    if !found.failed.is_empty() {
        if !found.pending.is_empty() {
            waiting.push(format!(
                "{} still running",
                crate::text::count(found.pending.len(), "check")
            ));
        } else if !reaction::answered(rounds, head, Trigger::CiFailed) {
            triggers.push(Trigger::CiFailed);
        } else {
            waiting.push("its failed checks on this head were answered".into());
        }
    }
    if !found.items.is_empty() {
        triggers.push(Trigger::ChangesRequested);
    }
    if found.conflict.is_some() {
        triggers.push(Trigger::Conflict);
    }
    if triggers.is_empty() {
        let why = if !waiting.is_empty() {
            waiting.join("; ")
        } else if !found.pending.is_empty() {
            format!(
                "{} still running",
                crate::text::count(found.pending.len(), "check")
            )
        } else if found.pr.mergeable == "UNKNOWN" {
            "checks pass; GitHub has not computed mergeability yet".into()
        } else {
            "checks pass, no changes requested, it merges".into()
        };
        return Decision::Nothing(why);
    }
    // A round po-react was stopped in is done again, not counted.
    let taken = rounds
        .iter()
        .filter(|r| r.outcome != reaction::Outcome::Interrupted)
        .count() as u32;
    let open: Vec<&str> = triggers.iter().map(|t| t.told()).collect();
    if taken >= limits.max_rounds {
        return Decision::Escalate {
            reason: format!(
                "{} after {} (--max-rounds {})",
                open.join(", "),
                crate::text::count(taken as usize, "round"),
                limits.max_rounds
            ),
            triggers,
        };
    }
    if let Some((budget, spent)) = limits.budget
        && spent >= budget
    {
        return Decision::Escalate {
            reason: format!(
                "{}; the orchestration's budget of ${budget:.2} is spent (${spent:.2})",
                open.join(", ")
            ),
            triggers,
        };
    }
    Decision::React {
        round: rounds.iter().map(|r| r.round).max().unwrap_or(0) + 1,
        triggers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::feedback::PullState;
    use crate::protocol::reaction::Outcome;
    use crate::react::gather::Failure;

    fn found(head: &str) -> Found {
        Found {
            pr: PullState {
                number: 7,
                state: "OPEN".into(),
                head_ref_oid: head.into(),
                mergeable: "MERGEABLE".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn answered_round(head: &str) -> Reaction {
        serde_json::from_value(serde_json::json!({
            "round": 1, "triggers": ["ci_failed"], "head": head, "outcome": "pushed"
        }))
        .unwrap()
    }

    const LIMITS: Limits = Limits {
        max_rounds: 3,
        budget: None,
    };

    #[test]
    fn a_failure_is_answered_once_per_head_and_escalated_after_the_last_round() {
        let mut f = found("aaa");
        assert!(matches!(decide(&f, &[], LIMITS), Decision::Nothing(_)));
        f.failed.push(Failure {
            check: "CI / test".into(),
            run: Some(1),
        });
        assert_eq!(
            decide(&f, &[], LIMITS),
            Decision::React {
                round: 1,
                triggers: vec![Trigger::CiFailed]
            }
        );
        let rounds = vec![answered_round("aaa")];
        assert!(matches!(decide(&f, &rounds, LIMITS), Decision::Nothing(_)));
        f.pr.head_ref_oid = "bbb".into();
        assert!(matches!(
            decide(&f, &rounds, LIMITS),
            Decision::React { round: 2, .. }
        ));
        let one = Limits {
            max_rounds: 1,
            budget: None,
        };
        match decide(&f, &rounds, one) {
            Decision::Escalate { reason, .. } => {
                assert!(reason.contains("CI failed after 1 round"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let broke = Limits {
            max_rounds: 3,
            budget: Some((1.0, 1.5)),
        };
        assert!(matches!(
            decide(&f, &rounds, broke),
            Decision::Escalate { .. }
        ));
        // A check still running: wait for it.
        f.pending.push("lint".into());
        assert!(matches!(decide(&f, &rounds, LIMITS), Decision::Nothing(_)));
        let mut merged = found("aaa");
        merged.pr.state = "MERGED".into();
        assert_eq!(
            decide(&merged, &[], LIMITS),
            Decision::Closed("merged".into())
        );
        let _ = Outcome::Pushed;
    }
}
