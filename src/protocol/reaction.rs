//! What a task's pull request got back, and what po-react did about it: the
//! status file's `reactions` list (one entry a round) and its `escalation`.
//!
//! A round answers the pull request's head commit: the failed checks on it,
//! the review items (a review asking for changes, an inline comment) of
//! people with write access, a conflict with the base. A trigger is answered
//! once per head ([`answered`]), a review item once ever. Both fields are
//! kept in the status file's extra fields (older tools keep them on
//! rewrite); every change is a read-modify-write under the file's lock. A
//! round never changes the task's state: it stays `completed`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::schema::{AgentStatus, State};
use super::store;
use crate::error::{Error, Result};
use crate::timefmt::{self, Timestamp, opt_rfc3339};

/// The status file's field holding the rounds.
pub const KEY: &str = "reactions";
/// The status file's field set when the task is handed to a person.
pub const ESCALATION_KEY: &str = "escalation";

/// What a round answers.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A check failed on the head commit.
    CiFailed,
    /// A person with write access asked for changes or commented a line.
    ChangesRequested,
    /// The pull request no longer merges into its base.
    Conflict,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::CiFailed => "ci_failed",
            Trigger::ChangesRequested => "changes_requested",
            Trigger::Conflict => "conflict",
        }
    }

    /// How a person reads it: "CI failed".
    pub fn told(self) -> &'static str {
        match self {
            Trigger::CiFailed => "CI failed",
            Trigger::ChangesRequested => "changes requested",
            Trigger::Conflict => "merge conflict",
        }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a round ended.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The agent runs (or its po-react was killed: see [`interrupted`]).
    Running,
    /// The agent committed and po pushed the new head.
    Pushed,
    /// The agent ended without a new commit.
    NoChange,
    /// The agent failed (exit status, stream error, timeout).
    AgentFailed,
    /// The commits could not be pushed.
    PushFailed,
    /// po-react was stopped (a signal, or killed) before the round ended.
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Pushed => "pushed",
            Outcome::NoChange => "no_change",
            Outcome::AgentFailed => "agent_failed",
            Outcome::PushFailed => "push_failed",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// The round answered its triggers (they are not answered again on
    /// the same head).
    pub fn answered(self) -> bool {
        matches!(self, Outcome::Pushed | Outcome::NoChange)
    }
}

/// One round.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Reaction {
    /// 1, 2, … per task.
    pub round: u32,
    pub triggers: Vec<Trigger>,
    /// The pull request's head commit the round answers.
    pub head: String,
    /// The review items it answers (`review:ID`, `comment:ID`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    #[serde(default, with = "opt_rfc3339")]
    pub started: Option<Timestamp>,
    #[serde(default, with = "opt_rfc3339")]
    pub finished: Option<Timestamp>,
    /// What the agent's run cost (reported, else estimated from tokens).
    #[serde(default)]
    pub cost_usd: Option<f64>,
    pub outcome: Outcome,
    /// The head po pushed.
    #[serde(default)]
    pub pushed: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    #[serde(default)]
    pub prompt_file: Option<PathBuf>,
    /// The comment po left on the pull request.
    #[serde(default)]
    pub comment_url: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why a task was handed to a person.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Escalation {
    #[serde(default, with = "opt_rfc3339")]
    pub time: Option<Timestamp>,
    pub reason: String,
    /// The label put on the pull request.
    #[serde(default)]
    pub label: Option<String>,
    /// What was still open.
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The task's rounds, oldest first (none when the field is missing or not
/// a list of rounds).
pub fn of_status(s: &AgentStatus) -> Vec<Reaction> {
    s.extra
        .get(KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// The task's escalation, if it has one.
pub fn escalation(s: &AgentStatus) -> Option<Escalation> {
    s.extra
        .get(ESCALATION_KEY)
        .filter(|v| !v.is_null())
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// Whether a round is running on the task (its agent may report on it).
pub fn running(s: &AgentStatus) -> bool {
    of_status(s).iter().any(|r| r.outcome == Outcome::Running)
}

/// Whether `trigger` was answered on `head` already.
pub fn answered(rounds: &[Reaction], head: &str, trigger: Trigger) -> bool {
    rounds
        .iter()
        .any(|r| r.head == head && r.outcome.answered() && r.triggers.contains(&trigger))
}

/// Whether review item `item` was answered by an earlier round.
pub fn item_answered(rounds: &[Reaction], item: &str) -> bool {
    rounds
        .iter()
        .any(|r| r.outcome.answered() && r.items.iter().any(|i| i == item))
}

fn set(s: &mut AgentStatus, rounds: &[Reaction]) {
    s.extra.insert(
        KEY.into(),
        serde_json::to_value(rounds).unwrap_or(Value::Array(Vec::new())),
    );
}

/// Start a round on a completed task: what its current run cost moves to
/// `metrics.previous_cost_usd` (so the round's figures are its own and the
/// budget still counts both), and the round is appended as `running`.
/// Refused for a task that is not completed. The round's number. `price`
/// says what the current run cost, as for a retry
/// ([`super::lifecycle::retry`]).
pub fn begin(path: &Path, mut round: Reaction, price: super::lifecycle::Price) -> Result<u32> {
    let mut number = 0;
    store::update_status(path, |s| {
        if s.status != State::Completed {
            return Err(Error::validation(
                path.display().to_string(),
                format!(
                    "{} is {}, not completed: po-react answers only completed tasks",
                    s.agent_id, s.status
                ),
            ));
        }
        let mut rounds = of_status(s);
        number = rounds.iter().map(|r| r.round).max().unwrap_or(0) + 1;
        round.round = number;
        round.outcome = Outcome::Running;
        round.started = Some(timefmt::now());
        super::lifecycle::settle_attempt_cost(&mut s.metrics, price);
        rounds.push(round.clone());
        set(s, &rounds);
        Ok(())
    })?;
    Ok(number)
}

/// End round `number`: its outcome, its cost (the run's own figure), the
/// head pushed and the error. `price` says what the run cost.
pub fn finish(
    path: &Path,
    number: u32,
    outcome: Outcome,
    pushed: Option<&str>,
    error: Option<&str>,
    price: super::lifecycle::Price,
) -> Result<Reaction> {
    let mut done = None;
    store::update_status(path, |s| {
        let cost = price(&s.metrics);
        let mut rounds = of_status(s);
        if let Some(r) = rounds.iter_mut().find(|r| r.round == number) {
            r.outcome = outcome;
            r.finished = Some(timefmt::now());
            r.cost_usd = cost;
            r.pushed = pushed.map(str::to_string);
            r.error = error.map(super::lifecycle::one_line);
            done = Some(r.clone());
        }
        set(s, &rounds);
        Ok(())
    })?;
    done.ok_or_else(|| {
        Error::system(format!(
            "record round {number} in {}: it is not there",
            path.display()
        ))
    })
}

/// Record the comment po left for round `number`.
pub fn commented(path: &Path, number: u32, url: &str) -> Result<()> {
    store::update_status(path, |s| {
        let mut rounds = of_status(s);
        if let Some(r) = rounds.iter_mut().find(|r| r.round == number) {
            r.comment_url = Some(url.to_string()).filter(|u| !u.is_empty());
        }
        set(s, &rounds);
        Ok(())
    })
    .map(|_| ())
}

/// Rounds left `running` by a po-react that is gone become `interrupted`
/// (with what they cost); the caller holds the task's liveness lock, so
/// none of them still runs. How many there were. `price` says what a run
/// cost.
pub fn interrupted(path: &Path, price: super::lifecycle::Price) -> Result<usize> {
    let s = store::read_status(path)?;
    if !of_status(&s).iter().any(|r| r.outcome == Outcome::Running) {
        return Ok(0);
    }
    let mut n = 0;
    store::update_status(path, |s| {
        let cost = price(&s.metrics);
        let mut rounds = of_status(s);
        for r in rounds.iter_mut().filter(|r| r.outcome == Outcome::Running) {
            r.outcome = Outcome::Interrupted;
            r.finished = Some(timefmt::now());
            r.cost_usd = r.cost_usd.or(cost);
            r.error = Some("po-react stopped before the round ended".into());
            n += 1;
        }
        set(s, &rounds);
        Ok(())
    })?;
    Ok(n)
}

/// Hand the task to a person (once: a later call keeps the first reason).
pub fn escalate(path: &Path, esc: &Escalation) -> Result<AgentStatus> {
    store::update_status(path, |s| {
        if escalation(s).is_none() {
            s.extra.insert(
                ESCALATION_KEY.into(),
                serde_json::to_value(esc).unwrap_or(Value::Null),
            );
        }
        Ok(())
    })
}

/// How readers show a task's rounds beside its pull request: `2 rounds`,
/// `needs a person`; `None` when it had none.
pub fn shown(s: &AgentStatus) -> Option<String> {
    if escalation(s).is_some() {
        return Some("needs a person".into());
    }
    let rounds = of_status(s);
    match rounds.len() {
        0 => None,
        1 => Some("1 round".into()),
        n => Some(format!("{n} rounds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(head: &str, t: Trigger, outcome: Outcome) -> Reaction {
        Reaction {
            round: 1,
            triggers: vec![t],
            head: head.into(),
            items: vec!["review:7".into()],
            started: None,
            finished: None,
            cost_usd: None,
            outcome,
            pushed: None,
            error: None,
            log_file: None,
            prompt_file: None,
            comment_url: None,
            extra: Map::new(),
        }
    }

    #[test]
    fn a_trigger_is_answered_per_head_and_only_by_a_round_that_ended() {
        let rounds = vec![
            round("aaa", Trigger::CiFailed, Outcome::Pushed),
            round("bbb", Trigger::Conflict, Outcome::Interrupted),
        ];
        assert!(answered(&rounds, "aaa", Trigger::CiFailed));
        assert!(!answered(&rounds, "aaa", Trigger::Conflict));
        assert!(!answered(&rounds, "ccc", Trigger::CiFailed));
        assert!(
            !answered(&rounds, "bbb", Trigger::Conflict),
            "an interrupted round is redone"
        );
        assert!(item_answered(&rounds, "review:7"));
        assert!(!item_answered(&rounds, "review:8"));
    }

    #[test]
    fn rounds_round_trip_through_a_status_file_and_are_shown() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("agent-1.status.json");
        let mut s = AgentStatus::new("agent-1", "7");
        s.status = State::Completed;
        s.metrics.cost_usd = Some(1.5);
        store::write_status(&path, &s).unwrap();
        let n = begin(
            &path,
            round("aaa", Trigger::CiFailed, Outcome::Pushed),
            |m| m.cost_usd,
        )
        .unwrap();
        assert_eq!(n, 1);
        let s = store::read_status(&path).unwrap();
        assert_eq!(s.metrics.previous_cost_usd, Some(1.5));
        assert_eq!(s.metrics.cost_usd, None);
        assert_eq!(of_status(&s)[0].outcome, Outcome::Running);
        store::update_status(&path, |s| {
            s.metrics.cost_usd = Some(0.25);
            Ok(())
        })
        .unwrap();
        let r = finish(&path, 1, Outcome::Pushed, Some("bbb"), None, |m| m.cost_usd).unwrap();
        assert_eq!(r.cost_usd, Some(0.25));
        let s = store::read_status(&path).unwrap();
        assert_eq!(shown(&s).as_deref(), Some("1 round"));
        assert_eq!(crate::cost::Spend::of(&s).spent, 1.75);
        escalate(
            &path,
            &Escalation {
                time: None,
                reason: "CI still fails".into(),
                label: None,
                triggers: vec![],
                extra: Map::new(),
            },
        )
        .unwrap();
        let s = store::read_status(&path).unwrap();
        assert_eq!(shown(&s).as_deref(), Some("needs a person"));
    }
}
