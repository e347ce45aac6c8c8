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
use crate::run::sandbox::relay::{self, Report};

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
    // Inside a sandbox the report goes to the task's supervisor, which
    // writes the file; elsewhere straight to the file, under its lock.
    let report = Report {
        progress,
        phase,
        message,
        cost_usd: spend.cost_usd,
        input_tokens: spend.input_tokens,
        output_tokens: spend.output_tokens,
        model: spend.model,
    };
    relay::report(&file, &report)?;
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
