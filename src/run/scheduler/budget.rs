//! Spend guardrails: a budget for the whole orchestration, and a cap on the
//! retries of one run.
//!
//! The budget (`--budget-usd`) counts every task of the orchestration, not
//! only this run's: **spent** is what finished attempts cost (earlier runs
//! and retries included), **committed** is what running attempts have cost
//! so far ([`crate::cost`]: an agent's own figure, else its tokens at its
//! model's price). The scheduler looks again on every poll, which reads the
//! running tasks' status files.
//!
//! * When spent + committed reaches the budget, nothing more is launched:
//!   the tasks that never started are cancelled with that reason (`--retry`
//!   after raising the budget runs them), and a retryable failure is not
//!   retried.
//! * With `--budget-hard`, running agents are ended too (their whole trees,
//!   worktrees kept); each ends `cancelled` with the same reason.
//!
//! Retries of retryable failures (`--retries`) also count against
//! `--max-total-retries` for the whole run, so a loop of rate limits cannot
//! spin.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::Scheduler;
use crate::cost::{self, Total};
use crate::protocol::lifecycle;
use crate::protocol::view::Reader;

/// The default of `--max-total-retries`.
pub const DEFAULT_MAX_TOTAL_RETRIES: u32 = 10;

/// How often running agents' spend is looked at while a budget is set.
const POLL: Duration = Duration::from_secs(2);

/// What a run may spend.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// `--budget-usd`: the whole orchestration's budget.
    pub budget_usd: Option<f64>,
    /// `--budget-hard`: end running agents once it is reached.
    pub hard: bool,
    /// `--max-total-retries`: retries of retryable failures in this run.
    pub max_total_retries: u32,
    /// `--max-turns`: each agent's model turns (Claude Code's flag).
    pub max_turns: Option<u32>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            budget_usd: None,
            hard: false,
            max_total_retries: DEFAULT_MAX_TOTAL_RETRIES,
            max_turns: None,
        }
    }
}

/// What the scheduler keeps to enforce [`Limits`].
#[derive(Debug, Default)]
pub(super) struct Guard {
    /// Tasks of the orchestration that are not part of this run, as read at
    /// its start (nobody runs them meanwhile: this run holds the spawn lock).
    outside: Total,
    /// Retries of retryable failures started in this run.
    retries: u32,
    /// The budget was reached: said once, waiting tasks cancelled.
    reached: bool,
    /// Running tasks ended for the budget (by index).
    ended: HashSet<usize>,
    /// The spend last shown in a progress line.
    shown: Option<(u64, u64)>,
    /// Models of running agents po has no price for, said once each.
    unpriced: HashSet<String>,
}

impl Scheduler {
    /// Everything the orchestration has spent and has running now.
    pub(super) fn spend(&self) -> Total {
        let mut total = self.guard.outside;
        for t in &self.tasks {
            total.add(&cost::Spend::of(&t.status));
        }
        total
    }

    pub(super) fn budget(&self) -> Option<f64> {
        self.ctx.cfg.limits.budget_usd
    }

    /// Whether spent + committed has reached the budget.
    pub(super) fn over_budget(&self) -> bool {
        self.budget().is_some_and(|b| self.spend().sum() >= b)
    }

    /// At the start: count what tasks outside this run spent, say what the
    /// budget is, and what it cannot see.
    pub(super) fn guard_begin(&mut self) {
        let Some(budget) = self.budget() else {
            self.agent_cmd_turns_note();
            return;
        };
        let mine: HashSet<&std::path::Path> = self.tasks.iter().map(|t| t.path.as_path()).collect();
        let view = Reader::plain().read(&self.ctx.dir);
        let others: Vec<_> = view
            .tasks()
            .filter(|t| !mine.contains(t.file.as_path()))
            .map(|t| t.status.clone())
            .collect();
        self.guard.outside = Total::of(&others);
        let total = self.spend();
        self.out.budget_set(&format!(
            "💰 Budget: {} for orchestration {} (--budget-usd{}); {}",
            cost::usd(budget),
            self.ctx.id,
            if self.ctx.cfg.limits.hard {
                ", --budget-hard"
            } else {
                ""
            },
            total.against(budget)
        ));
        if !self.abilities().reports_spend {
            self.out.budget_blind(&format!(
                "⚠️  {} agents must report their spend for the budget to count it: \
                 `po-status set --cost-usd USD` (or --input-tokens, --output-tokens and \
                 --model); the budget counts what they report and cannot stop an agent that \
                 reports nothing",
                self.agent_label()
            ));
        }
        self.agent_cmd_turns_note();
    }

    /// `--max-turns` reaches only agents whose CLI takes a turn cap: say so
    /// once for the others.
    fn agent_cmd_turns_note(&self) {
        if let Some(n) = self.ctx.cfg.limits.max_turns
            && !self.abilities().max_turns
        {
            self.out.budget_blind(&format!(
                "⚠️  --max-turns {n} applies to agents that take a turn cap; {} agents are \
                 not limited by it",
                self.agent_label()
            ));
        }
    }

    /// What the run's agent can be told and tells.
    fn abilities(&self) -> crate::run::agent::Abilities {
        self.ctx
            .cfg
            .agent
            .agent()
            .map(|a| a.abilities())
            .unwrap_or_default()
    }

    /// `--agent-cmd`, or `--agent NAME`.
    fn agent_label(&self) -> String {
        match self.ctx.cfg.agent.kind.as_str() {
            crate::run::agent::command::NAME => "--agent-cmd".into(),
            name => format!("--agent {name}"),
        }
    }

    /// Once spent + committed reaches the budget: say so, and cancel every
    /// task that has not started. Whether the budget is reached.
    pub(super) fn budget_check(&mut self) -> bool {
        let Some(budget) = self.budget() else {
            return false;
        };
        let total = self.spend();
        if total.sum() < budget {
            return false;
        }
        if !self.guard.reached {
            self.guard.reached = true;
            self.out.budget_reached(&format!(
                "💰 Budget reached: {}; launching nothing more",
                total.against(budget)
            ));
        }
        let reason = format!(
            "cancelled: the budget was reached before it started ({} of {} spent, \
             --budget-usd); raise it and run `po-spawn --retry`",
            cost::usd(total.sum()),
            cost::usd(budget)
        );
        self.cancel_waiting(&reason);
        true
    }

    /// With `--budget-hard`, once the budget is reached: end every running
    /// agent (its whole tree; the worktree stays), recording why first.
    pub(super) fn budget_enforce(&mut self) {
        self.unpriced_note();
        if !self.ctx.cfg.limits.hard || !self.budget_check() {
            return;
        }
        let (spent, budget) = (self.spend().sum(), self.budget().unwrap_or_default());
        let reason = format!(
            "cancelled: the budget was spent while it ran ({} of {}, --budget-hard); its \
             worktree and commits are kept; raise --budget-usd and run `po-spawn --retry`",
            cost::usd(spent),
            cost::usd(budget)
        );
        let running: Vec<usize> = self.tally.running.iter().copied().collect();
        for idx in running {
            let Some(runner) = self.tasks[idx].running().cloned() else {
                continue;
            };
            if !self.guard.ended.insert(idx) {
                continue;
            }
            let t = &self.tasks[idx];
            if let Err(e) = lifecycle::stop_requested(&t.path, &reason) {
                self.out.say(&format!("po-spawn: failed to {e}"));
            }
            self.out.budget_ends(&t.label);
            self.out.log(&format!(
                "end {} ({}): budget",
                t.status.agent_id, runner.shown
            ));
            self.launcher.end(&runner, false);
        }
    }

    /// A running agent whose model po has no price for counts only once it
    /// reports its cost: say so once per model.
    fn unpriced_note(&mut self) {
        if self.budget().is_none() {
            return;
        }
        let unpriced: Vec<String> = self
            .tally
            .running
            .iter()
            .map(|&i| &self.tasks[i])
            .filter(|t| t.status.metrics.cost_usd.is_none())
            .filter_map(|t| t.status.metrics.model.clone())
            .filter(|m| cost::Price::of(m).is_none())
            .collect();
        for model in unpriced {
            if self.guard.unpriced.insert(model.clone()) {
                self.out.budget_blind(&format!(
                    "⚠️  po has no price for the model {}: its running agents count against \
                     the budget only once they report their cost",
                    crate::text::printable(&model)
                ));
            }
        }
    }

    /// Whether task `idx`'s retryable failure may run again: within the run's
    /// retry cap and the budget. Says why not.
    pub(super) fn retry_allowed(&mut self, idx: usize) -> bool {
        let label = self.tasks[idx].label.clone();
        let max = self.ctx.cfg.limits.max_total_retries;
        if self.guard.retries >= max {
            self.out.retry_refused(&format!(
                "🛑 {label} is not retried: this run used its {max} retries \
                 (--max-total-retries)"
            ));
            return false;
        }
        if self.over_budget() {
            self.out.retry_refused(&format!(
                "🛑 {label} is not retried: the budget is reached (--budget-usd)"
            ));
            return false;
        }
        self.guard.retries += 1;
        true
    }

    /// A progress line for the spend when it moved (with a budget only).
    pub(super) fn spend_progress(&mut self) {
        let Some(budget) = self.budget() else {
            return;
        };
        let total = self.spend();
        let cents = |x: f64| (x * 1e4).round() as u64;
        let now = (cents(total.spent), cents(total.committed));
        if self.guard.shown != Some(now) {
            self.guard.shown = Some(now);
            self.out.spend_progress(&total.against(budget));
        }
    }

    /// The closing line: what the orchestration spent, against the budget.
    pub(super) fn spend_close(&self) {
        let total = self.spend();
        match self.budget() {
            Some(budget) => self.out.spend_total(&total.against(budget)),
            None if total.known > 0 => self
                .out
                .spend_total(&format!("spent {} (no budget set)", cost::usd(total.sum()))),
            None => {}
        }
    }

    /// When to look at running agents' spend again, with a budget set.
    pub(super) fn guard_wakeup(&self, next: Instant) -> Instant {
        if self.budget().is_some() && self.any_running() {
            next.min(Instant::now() + POLL)
        } else {
            next
        }
    }
}
