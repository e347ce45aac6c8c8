//! `po-status`: read and report one task's status, under its lock.
//!
//! `set` is what an agent calls (`$PO_STATUS_FILE` is its file); `get` and `ls`
//! make status files scriptable from shells and makefiles.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::Value;

use super::Common;
use crate::error::{Error, Result, exit};
use crate::out;
use crate::protocol::view::{Reader, Row};
use crate::protocol::{State, layout, store};

/// Read and report one task's status, under its lock
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,

    #[command(subcommand)]
    pub command: Cmd,
}

/// What an agent spent so far in this attempt (each value replaces the last).
#[derive(clap::Args, Debug, Default)]
pub struct Spend {
    /// Its cost so far in US dollars (what po-spawn's --budget-usd counts)
    #[arg(long, value_name = "USD")]
    cost_usd: Option<f64>,
    /// Input tokens so far
    #[arg(long, value_name = "N")]
    input_tokens: Option<u64>,
    /// Output tokens so far
    #[arg(long, value_name = "N")]
    output_tokens: Option<u64>,
    /// The model it runs (priced from its tokens when it reports no cost)
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
}

impl Spend {
    fn is_empty(&self) -> bool {
        self.cost_usd.is_none()
            && self.input_tokens.is_none()
            && self.output_tokens.is_none()
            && self.model.is_none()
    }

    fn apply(&self, m: &mut crate::protocol::Metrics) {
        if self.cost_usd.is_some() {
            m.cost_usd = self.cost_usd;
        }
        if self.input_tokens.is_some() {
            m.input_tokens = self.input_tokens;
        }
        if self.output_tokens.is_some() {
            m.output_tokens = self.output_tokens;
        }
        if let Some(model) = &self.model {
            m.model = Some(crate::text::one_line(model));
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Report progress of a running task (what an agent calls)
    Set {
        /// Status file [default: $PO_STATUS_FILE]
        #[arg(env = "PO_STATUS_FILE", value_name = "FILE")]
        file: PathBuf,
        /// Percent done, 0–100
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
        progress: Option<u8>,
        /// What the agent is doing now ("Running tests")
        #[arg(long)]
        phase: Option<String>,
        /// A free-form note
        #[arg(long)]
        message: Option<String>,
        #[command(flatten)]
        spend: Spend,
    },
    /// Print a status file as JSON, or one field of it (dotted: metrics.cost_usd)
    Get {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[arg(value_name = "FIELD")]
        field: Option<String>,
    },
    /// Print the paths of matching status files, one a line
    Ls {
        /// Orchestration id or directory [default: every orchestration]
        #[arg(value_name = "ID|DIR")]
        target: Option<String>,
        /// Only tasks in this state (repeatable)
        #[arg(long = "state", value_name = "STATE")]
        states: Vec<State>,
        /// Only the tasks `po-spawn --retry` would run: pending, failed,
        /// timed_out and cancelled (a task cancelled because its dependency
        /// failed included), so `po-status ls ID --unfinished | po-spawn`
        /// finishes the orchestration
        #[arg(long, conflicts_with = "states")]
        unfinished: bool,
    },
}

pub fn run(args: Args) -> Result<i32> {
    super::init_tracing(args.common.verbose);
    match args.command {
        Cmd::Set {
            file,
            progress,
            phase,
            message,
            spend,
        } => set(file, progress, phase, message, spend),
        Cmd::Get { file, field } => get(file, field),
        Cmd::Ls {
            target,
            mut states,
            unfinished,
        } => {
            if unfinished {
                states = State::ALL
                    .into_iter()
                    .filter(|s| *s == State::Pending || s.is_retryable())
                    .collect();
            }
            ls(&args.common, target, &states)
        }
    }
}

fn set(
    file: PathBuf,
    progress: Option<u8>,
    phase: Option<String>,
    message: Option<String>,
    spend: Spend,
) -> Result<i32> {
    if progress.is_none() && phase.is_none() && message.is_none() && spend.is_empty() {
        return Err(Error::usage(
            "set status: nothing to set; pass --progress, --phase, --message, --cost-usd, \
             --input-tokens, --output-tokens or --model",
        ));
    }
    if spend.cost_usd.is_some_and(|c| !c.is_finite() || c < 0.0) {
        return Err(Error::usage(
            "set --cost-usd: it must be a number of US dollars, 0 or more (e.g. 0.42)",
        ));
    }
    store::update_status(&file, |s| {
        // A finished task's agent runs again in a po-react round: it reports
        // the round's spend and what it does; the task stays finished.
        let round = s.status.is_terminal() && crate::protocol::reaction::running(s);
        if s.status.is_terminal() && !round {
            return Err(Error::validation(
                file.display().to_string(),
                format!(
                    "{} is {}; a finished task does not change (po-spawn --retry starts it again)",
                    s.agent_id, s.status
                ),
            ));
        }
        if progress.is_some() && !round {
            s.progress_percentage = progress;
        }
        if let Some(p) = phase {
            s.phase = Some(p);
        }
        if let Some(m) = message {
            s.message = Some(m);
        }
        spend.apply(&mut s.metrics);
        Ok(())
    })?;
    Ok(exit::SUCCESS)
}

fn get(file: PathBuf, field: Option<String>) -> Result<i32> {
    let value: Value = store::read_json(&file)?;
    let Some(field) = field else {
        out::println(&serde_json::to_string_pretty(&value).unwrap_or_default())?;
        return Ok(exit::SUCCESS);
    };
    let found = field
        .split('.')
        .try_fold(&value, |v, key| v.get(key))
        .ok_or_else(|| {
            Error::usage(format!(
                "get {field:?} from {}: no such field; `po-status get FILE` shows them all",
                file.display()
            ))
        })?;
    match found {
        Value::Null => out::println("")?,
        Value::String(s) => out::println(s)?,
        other => out::println(&other.to_string())?,
    }
    Ok(exit::SUCCESS)
}

fn ls(common: &Common, target: Option<String>, states: &[State]) -> Result<i32> {
    let runtime = common.runtime()?;
    let dirs = match target {
        Some(t) => vec![runtime.resolve(&t)?],
        None => runtime.orchestrations()?,
    };
    let mut text = String::new();
    for dir in dirs {
        let view = Reader::plain().read(&dir);
        if let Some(p) = view.problem {
            return Err(Error::system(p));
        }
        for row in &view.rows {
            if !states.is_empty() {
                match row {
                    Row::Task(t) if states.contains(&t.state()) => {}
                    Row::Task(_) => continue,
                    Row::Bad(b) => {
                        eprintln!(
                            "po-status: failed to read status file {}: {}",
                            b.file.display(),
                            b.problem
                        );
                        continue;
                    }
                }
            }
            text.push_str(&layout::absolute(row.file())?.to_string_lossy());
            text.push('\n');
        }
    }
    out::print(&text)?;
    Ok(exit::SUCCESS)
}
