//! What tasks cost: a task's spend over its attempts, and how money is
//! shown (the prices themselves are [`crate::prices`]'s).
//!
//! A task's cost is what its agent reported (`metrics.cost_usd`: Claude
//! Code's own figure, or `po-status set --cost-usd`). Where an agent reports
//! tokens and its model but no cost yet (a Claude Code run before its final
//! `result` event), the cost is estimated from the tokens at the model's list
//! price. Where it reports neither, nothing is known, and nothing is made up:
//! readers show `—`, never `$0.00`.
//!
//! * **spent**: finished attempts (every earlier attempt, `previous_cost_usd`,
//!   and the current one once it is over);
//! * **committed**: running attempts, their figure so far.

pub use crate::prices::{Price, Tokens};
use crate::protocol::{AgentStatus, Metrics, Orchestration, State};

/// The current attempt's tokens at its model's price, when both are known.
pub fn estimate(m: &Metrics) -> Option<f64> {
    let price = crate::prices::of(m.model.as_deref()?)?;
    Some(price.cost(&Tokens::of(m)?))
}

/// `total` (a task's cost) split by model: in the shares of the per-model
/// costs the agent reported (a main model and its subagents'), else all of it
/// to the task's model (`unknown` when none is named).
pub fn split_by_model(m: &Metrics, total: f64) -> Vec<(String, f64)> {
    let priced: Vec<(&String, f64)> = m
        .models
        .iter()
        .filter_map(|(name, u)| Some((name, u.cost_usd?.max(0.0))))
        .collect();
    let sum: f64 = priced.iter().map(|(_, c)| c).sum();
    if sum > 0.0 {
        return priced
            .into_iter()
            .map(|(name, c)| (name.clone(), total * c / sum))
            .collect();
    }
    let model = m.model.clone().unwrap_or_else(|| "unknown".into());
    vec![(model, total)]
}

/// The current attempt's cost: reported, else estimated.
pub fn attempt_cost(m: &Metrics) -> Option<f64> {
    m.cost_usd.or_else(|| estimate(m))
}

/// What one task cost, as a budget counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spend {
    /// Finished attempts.
    pub spent: f64,
    /// The running attempt so far.
    pub committed: f64,
    /// The task ran (or runs) and its current attempt reported no cost and
    /// no priced tokens: a budget cannot count it.
    pub unknown: bool,
}

impl Spend {
    pub fn of(s: &AgentStatus) -> Spend {
        let previous = s.metrics.previous_cost_usd.unwrap_or(0.0).max(0.0);
        let attempt = attempt_cost(&s.metrics).map(|c| c.max(0.0));
        let ran = s.status == State::InProgress || s.start_time.is_some();
        let mut spend = Spend {
            spent: previous,
            committed: 0.0,
            unknown: attempt.is_none() && ran && s.status != State::Pending,
        };
        match s.status {
            State::Pending => {}
            State::InProgress => spend.committed = attempt.unwrap_or(0.0),
            _ => spend.spent += attempt.unwrap_or(0.0),
        }
        spend
    }
}

/// The spend of many tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Total {
    pub spent: f64,
    pub committed: f64,
    /// Tasks whose cost is known (reported or priced).
    pub known: usize,
    /// Tasks that ran and reported nothing a budget can count.
    pub unknown: usize,
}

impl Total {
    pub fn of<'a>(tasks: impl IntoIterator<Item = &'a AgentStatus>) -> Total {
        tasks
            .into_iter()
            .map(Spend::of)
            .fold(Total::default(), |mut t, s| {
                t.add(&s);
                t
            })
    }

    pub fn add(&mut self, s: &Spend) {
        self.spent += s.spent;
        self.committed += s.committed;
        if s.unknown {
            self.unknown += 1;
        } else if s.spent > 0.0 || s.committed > 0.0 {
            self.known += 1;
        }
    }

    /// Spent and committed.
    pub fn sum(&self) -> f64 {
        self.spent + self.committed
    }

    /// `spent $0.03 + $0.01 running of $0.04 budget`, with ` — reached` once
    /// spent and committed reach it.
    pub fn against(&self, budget: f64) -> String {
        let mut line = format!("spent {}", usd(self.spent));
        if self.committed > 0.0 {
            line.push_str(&format!(" + {} running", usd(self.committed)));
        }
        line.push_str(&format!(" of {} budget", usd(budget)));
        if self.sum() >= budget {
            line.push_str(" — reached");
        }
        if self.unknown > 0 {
            line.push_str(&format!(
                " ({} task{} reported no cost)",
                self.unknown,
                if self.unknown == 1 { "" } else { "s" }
            ));
        }
        line
    }
}

/// What a task cost over its attempts, as reported (`None`: nothing reported).
pub fn reported(m: &Metrics) -> Option<f64> {
    match (m.previous_cost_usd, m.cost_usd) {
        (None, None) => None,
        (p, c) => Some(p.unwrap_or(0.0) + c.unwrap_or(0.0)),
    }
}

/// A task's cost as a cell: `$0.42`; `— 7,000 tok` when it reports tokens
/// but no cost; `None` when it reports neither.
pub fn cell(m: &Metrics) -> Option<String> {
    match (reported(m), Tokens::of(m)) {
        (Some(c), _) => Some(usd(c)),
        (None, Some(t)) => Some(format!("— {} tok", compact(t.total()))),
        (None, None) => None,
    }
}

/// `$0.42`, `$12.00`; amounts under ten cents keep four decimals (`$0.0168`).
pub fn usd(x: f64) -> String {
    if x == 0.0 || x.abs() >= 0.1 {
        format!("${x:.2}")
    } else {
        format!("${x:.4}")
    }
}

/// `950`, `7.0k`, `1.2M`.
pub fn compact(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// The budget of an orchestration's last po-spawn run (`--budget-usd`), as
/// recorded in `orchestration.json` (`options.last_run.budget_usd`).
pub fn budget_of(o: &Orchestration) -> Option<f64> {
    o.options
        .get("last_run")?
        .get("budget_usd")?
        .as_f64()
        .filter(|b| *b > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(input: u64, write: u64, read: u64, output: u64) -> Tokens {
        Tokens {
            input,
            cache_write: write,
            cache_read: read,
            output,
        }
    }

    /// The scripted model server's usage per call: 3,500 input tokens (1,200
    /// plain, 300 cache writes, 2,000 cache reads) and 85 output tokens. Two
    /// calls cost what Claude Code 2.1.330 reports for them.
    #[test]
    fn prices_match_claude_codes_own_figures() {
        let two_calls = tokens(7000, 600, 4000, 170);
        for (model, cli) in [
            ("claude-opus-5-5", 0.0168),
            ("claude-sonnet-5-5", 0.0084),
            ("claude-sonnet-4-5", 0.0132),
            ("claude-sonnet-4-5-20250929", 0.0132),
            ("claude-opus-4-5", 0.022),
            ("claude-haiku-4-5", 0.0044),
            ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", 0.0132),
        ] {
            let c = Price::of(model).unwrap().cost(&two_calls);
            assert!((c - cli).abs() < 1e-9, "{model}: {c} != {cli}");
        }
        assert_eq!(Price::of("gpt-5"), None);
        assert_eq!(Price::of("claude-opus-4-1"), Price::of("claude-opus-4"));
        assert_ne!(Price::of("claude-opus-4-5"), Price::of("claude-opus-4"));
    }

    #[test]
    fn an_estimate_needs_tokens_and_a_known_model() {
        let mut m = Metrics {
            input_tokens: Some(3500),
            cache_creation_input_tokens: Some(300),
            cache_read_input_tokens: Some(2000),
            output_tokens: Some(85),
            ..Metrics::default()
        };
        assert_eq!(estimate(&m), None, "no model");
        m.model = Some("mystery-model".into());
        assert_eq!(estimate(&m), None, "unknown model");
        m.model = Some("claude-sonnet-4-5".into());
        assert!((estimate(&m).unwrap() - 0.0066).abs() < 1e-9);
        m.cost_usd = Some(0.5);
        assert_eq!(attempt_cost(&m), Some(0.5), "a reported cost wins");
    }

    #[test]
    fn spend_counts_finished_attempts_apart_from_running_ones() {
        let mut s = AgentStatus::new("agent-1", "7");
        s.metrics.previous_cost_usd = Some(0.25);
        assert_eq!(Spend::of(&s).spent, 0.25, "a retried task waits");
        s.status = State::InProgress;
        s.metrics.cost_usd = Some(0.1);
        assert_eq!(
            Spend::of(&s),
            Spend {
                spent: 0.25,
                committed: 0.1,
                unknown: false
            }
        );
        s.status = State::Failed;
        assert_eq!(Spend::of(&s).spent, 0.35);
        s.metrics.cost_usd = None;
        s.start_time = Some(crate::timefmt::now());
        let quiet = Spend::of(&s);
        assert!(quiet.unknown && quiet.spent == 0.25, "{quiet:?}");

        let mut never = AgentStatus::new("agent-2", "7");
        never.status = State::Cancelled;
        assert!(!Spend::of(&never).unknown, "it never ran");
        let t = Total::of([&s, &never]);
        assert_eq!((t.unknown, t.known), (1, 0));
    }

    #[test]
    fn money_is_never_shown_as_zero_when_only_tokens_are_known() {
        let mut m = Metrics::default();
        assert_eq!(cell(&m), None);
        m.input_tokens = Some(6900);
        m.output_tokens = Some(100);
        assert_eq!(cell(&m).unwrap(), "— 7.0k tok");
        m.cost_usd = Some(0.0168);
        assert_eq!(cell(&m).unwrap(), "$0.0168");
        m.previous_cost_usd = Some(1.0);
        assert_eq!(cell(&m).unwrap(), "$1.02");
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(compact(999), "999");
        assert_eq!(compact(1_250_000), "1.2M");
        let t = Total {
            spent: 0.0336,
            committed: 0.01,
            ..Total::default()
        };
        assert_eq!(
            t.against(0.042),
            "spent $0.0336 + $0.0100 running of $0.0420 budget — reached"
        );
    }

    #[test]
    fn a_cost_splits_by_the_models_the_agent_reported() {
        use crate::protocol::schema::ModelMetrics;
        let mut m = Metrics {
            model: Some("opus".into()),
            ..Metrics::default()
        };
        assert_eq!(split_by_model(&m, 2.0), [("opus".to_string(), 2.0)]);
        for (name, cost) in [("opus", Some(0.75)), ("haiku", Some(0.25)), ("other", None)] {
            m.models.insert(
                name.into(),
                ModelMetrics {
                    cost_usd: cost,
                    ..ModelMetrics::default()
                },
            );
        }
        // Two attempts cost 2.0 together: three quarters of it on opus.
        assert_eq!(
            split_by_model(&m, 2.0),
            [("haiku".to_string(), 0.5), ("opus".to_string(), 1.5)]
        );
    }
}
