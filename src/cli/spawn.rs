//! `po-spawn`: run one agent per task in parallel git worktrees.
//!
//! Reads status paths (arguments or stdin, one a line), a directory, or
//! `--id ID`; applies the environment (`AMPLIHACK_*` and `PO_*`, flags first)
//! and hands the run to [`crate::run::scheduler`].

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use super::Common;
use super::sandbox::{SandboxArgs, env_flag};
use crate::error::{Error, Result};
use crate::run::agent::{self, AgentSpec};
use crate::run::launcher::Choice;
use crate::run::launcher::slurm::Options as SlurmOptions;
use crate::run::scheduler::budget::{DEFAULT_MAX_TOTAL_RETRIES, Limits};
use crate::run::scheduler::{self, Config, Console, Target};
use crate::run::supervisor;
use crate::run::template;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LauncherKind {
    /// A pool of supervisors on this machine
    Local,
    /// One Slurm job per task (sbatch), on the cluster's nodes
    Slurm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Isolation {
    /// One git worktree and branch per task
    Worktree,
    /// Run agents in the repository itself (read-only work, benchmarks)
    None,
}

/// Run one agent per task in parallel git worktrees
///
/// Tasks come from status files (arguments, or stdin one a line as printed by
/// po-parse), an orchestration directory, or --id. Progress goes to stderr;
/// the path of each status file is printed to stdout as its task finishes.
///
/// Pending tasks run; tasks still running under a live supervisor (left by an
/// earlier po-spawn that died) are adopted; completed tasks are skipped.
/// Failed, timed-out and cancelled tasks run again with --retry, or when their
/// status files are named one by one (`po-status ls ID --state failed |
/// po-spawn`). A task left in_progress by a supervisor that died is recorded
/// failed (what is left of its processes is ended first) and runs again with
/// --retry. No task ever has two live agents; a second po-spawn on the same
/// orchestration exits 64.
///
/// Each task runs under its own supervisor, which outlives po-spawn and records
/// the result. Ctrl-C or SIGTERM cancels the running agents (their whole
/// process trees) and the waiting tasks; a second Ctrl-C kills the trees at
/// once. SIGHUP leaves the agents running for the next po-spawn to adopt.
///
/// Spend guardrails: --budget-usd caps what the whole orchestration spends
/// (finished attempts, retries included, plus what running agents have spent
/// so far); once that is reached nothing more starts, the tasks that never
/// started are cancelled (`--retry` after raising the budget runs them), and
/// with --budget-hard running agents are ended too. --max-turns caps each
/// Claude Code agent's turns; --max-total-retries caps the retries of a run.
/// Claude Code reports its spend; Codex and Gemini CLI report tokens, which
/// po prices by model (built-in prices, --prices FILE or PO_PRICES before
/// them); other agents report theirs with `po-status set --cost-usd` (the
/// budget counts only what is reported or priced).
///
/// With --launcher slurm each supervisor is one Slurm job (sbatch), on
/// whichever node Slurm picks: the repository, the runtime directory and
/// po-spawn must be at the same paths on every node, on a shared filesystem
/// whose locks work across nodes (NFSv4, Lustre with -o flock, BeeGFS).
/// --max-workers caps the jobs submitted and not yet finished; a task waits
/// in Slurm's queue as `queued` with Slurm's reason. Ctrl-C cancels through
/// scancel; a job ended from outside (scancel, a node failure, Slurm's time
/// limit, which is --timeout plus --grace plus 5 minutes) makes its task
/// failed with Slurm's reason. A new po-spawn adopts the jobs by id.
///
/// With --sandbox (or PO_SANDBOX=1) each agent, its setup command and their
/// children run under bubblewrap (bwrap): only the task's worktree, what git
/// needs to commit on its branch, its log and the agent's own state are
/// writable, secrets under ~ are hidden, and po-status set reports through
/// the task's supervisor; --dry-run prints each task's policy and its bwrap
/// argv. Without a working bwrap nothing starts (exit 9).
///
/// Exit status: 0 all succeeded, 1 at or above the success threshold, 2 below
/// it, 4 a wave's validation failed or its branches conflict, 9 system error,
/// 64 usage error, 130 interrupted.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,

    /// Status files or an orchestration directory [default: paths on stdin]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Run every task of orchestration ID
    #[arg(long, value_name = "ID", conflicts_with = "paths")]
    pub id: Option<String>,

    /// Agents at once [env: PO_MAX_WORKERS, AMPLIHACK_MAX_PARALLEL_AGENTS] [default: 5]
    #[arg(short = 'j', long, visible_alias = "agents", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_workers: Option<u32>,

    /// Run tasks in batches of N, each batch finishing before the next starts
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,

    /// Seconds an agent may run [env: PO_TIMEOUT, AMPLIHACK_AGENT_TIMEOUT] [default: 1800]
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,

    /// End an agent with no output and no status update for SECS
    #[arg(long, value_name = "SECS")]
    pub stall_timeout: Option<f64>,

    /// Seconds between SIGTERM and SIGKILL when ending an agent's process tree
    #[arg(long, value_name = "SECS", default_value_t = Config::default().grace_secs)]
    pub grace: f64,

    /// The agent to run
    #[arg(long, env = "PO_AGENT", value_name = "NAME", default_value = agent::REGISTERED[0].name,
          value_parser = agent_names())]
    pub agent: String,

    /// Run any program instead: 'prog --flag {prompt_file}'. Split into words
    /// (quotes and backslashes as in sh, no expansion), {prompt_file}
    /// {worktree} {agent_id} {branch} {id} filled in; never run by a shell.
    /// The prompt is also on its stdin. A relative program path
    /// (./myagent.sh) is from the directory po-spawn runs in.
    #[arg(long, env = "PO_AGENT_CMD", value_name = "TEMPLATE")]
    pub agent_cmd: Option<String>,

    /// Model for the agent (its --model)
    #[arg(long)]
    pub model: Option<String>,

    /// Prices of models whose agents report only tokens (Codex, Gemini), a
    /// JSON file: {"MODEL": {"input": USD, "output": USD, "cache_read": USD}}
    /// per million tokens, before the built-in ones [env: PO_PRICES]
    #[arg(long, value_name = "FILE")]
    pub prices: Option<std::path::PathBuf>,

    /// Spending cap per agent for Claude Code (--max-budget-usd)
    #[arg(long, value_name = "USD")]
    pub max_budget_usd: Option<f64>,

    /// Budget for the whole orchestration: launch nothing more once spent
    /// plus running reaches it [env: PO_BUDGET_USD]
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,

    /// Also end running agents once the budget is reached (worktrees kept)
    #[arg(long)]
    pub budget_hard: bool,

    /// Model turns each Claude Code agent may take (its --max-turns)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_turns: Option<u32>,

    /// Retries of retryable failures (--retries) in the whole run, all tasks together
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TOTAL_RETRIES)]
    pub max_total_retries: u32,

    /// Command run by `sh -c` in each new worktree before its agent
    #[arg(long, value_name = "CMD")]
    pub setup: Option<String>,

    /// Where agents run
    #[arg(long, value_enum, default_value_t = Isolation::Worktree)]
    pub isolation: Isolation,

    /// Commit the first wave branches from [default: HEAD]
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,

    /// Run failed, timed-out and cancelled tasks again (same worktree and branch)
    #[arg(long)]
    pub retry: bool,

    /// Retry retryable failures (rate limits) up to N times, with backoff
    #[arg(long, value_name = "N", default_value_t = Config::default().retries)]
    pub retries: u32,

    /// First backoff before such a retry, doubled each time
    #[arg(long, value_name = "SECS", default_value_t = Config::default().retry_backoff_secs)]
    pub retry_backoff: f64,

    /// Print the plan (waves, order, worktrees, branches, commands); start nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Push each completed branch and open a pull request [default: on for GitHub issues]
    #[arg(long, overrides_with = "no_pr")]
    pub create_pr: bool,

    /// Do not open pull requests
    #[arg(long, overrides_with = "create_pr")]
    pub no_pr: bool,

    /// Remote to push branches to
    #[arg(long, value_name = "NAME", default_value_t = Config::default().remote)]
    pub remote: String,

    /// Percent of tasks that must succeed for exit 1 rather than 2
    /// (also AMPLIHACK_SUCCESS_THRESHOLD) [default: 80]
    #[arg(long, env = "PO_SUCCESS_THRESHOLD", value_name = "PCT",
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub success_threshold: Option<u32>,

    /// Seconds a wave's validation command may run before its whole process
    /// tree is ended and the wave fails
    #[arg(long, value_name = "SECS", default_value_t = Config::default().validation_timeout_secs)]
    pub validation_timeout: f64,

    /// Only warnings and errors on stderr (progress still goes to the session log)
    #[arg(short, long)]
    pub quiet: bool,

    /// Directory for the session log and agent logs [default: <runtime>/logs/<session>]
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,

    /// Where each task's supervisor runs
    #[arg(long, value_enum, env = "PO_LAUNCHER", default_value_t = LauncherKind::Local,
          help_heading = "Launcher")]
    pub launcher: LauncherKind,

    /// Slurm partition for the jobs (sbatch --partition)
    #[arg(long, value_name = "NAME", help_heading = "Launcher")]
    pub partition: Option<String>,

    /// Slurm account the jobs are charged to (sbatch --account)
    #[arg(long, value_name = "NAME", help_heading = "Launcher")]
    pub account: Option<String>,

    /// CPUs for each job (sbatch --cpus-per-task)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..),
          help_heading = "Launcher")]
    pub cpus_per_task: Option<u32>,

    /// Memory for each job, e.g. 4G (sbatch --mem)
    #[arg(long, value_name = "SIZE", help_heading = "Launcher")]
    pub mem: Option<String>,

    /// Another sbatch option for every job, as one word: --slurm-arg=--qos=high
    /// (repeatable; given after po's own options, so it wins)
    #[arg(long = "slurm-arg", value_name = "OPTION", allow_hyphen_values = true,
          action = clap::ArgAction::Append, help_heading = "Launcher")]
    pub slurm_args: Vec<String>,

    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// `--agent`'s choices: the registered agents, each with its line of help.
fn agent_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        agent::REGISTERED
            .iter()
            .map(|r| clap::builder::PossibleValue::new(r.name).help(r.about)),
    )
}

/// The launcher the command line asks for.
fn launcher(args: &Args) -> Result<Choice> {
    let slurm_only = [
        ("--partition", args.partition.is_some()),
        ("--account", args.account.is_some()),
        ("--cpus-per-task", args.cpus_per_task.is_some()),
        ("--mem", args.mem.is_some()),
        ("--slurm-arg", !args.slurm_args.is_empty()),
    ];
    if args.launcher == LauncherKind::Local {
        if let Some((flag, _)) = slurm_only.iter().find(|(_, given)| *given) {
            return Err(Error::usage(format!(
                "use {flag}: it is for Slurm jobs; add --launcher slurm (or PO_LAUNCHER=slurm)"
            )));
        }
        return Ok(Choice::Local);
    }
    if let Some(bad) = args.slurm_args.iter().find(|a| !a.starts_with('-')) {
        return Err(Error::usage(format!(
            "use --slurm-arg {bad:?}: give one sbatch option per --slurm-arg, starting with -, \
             e.g. --slurm-arg=--qos=high"
        )));
    }
    let name = |v: &Option<String>, flag: &str| -> Result<Option<String>> {
        match v.as_deref().map(str::trim) {
            Some("") => Err(Error::usage(format!("use {flag}: give a name"))),
            Some(n) if n.starts_with('-') => Err(Error::usage(format!(
                "use {flag} {n:?}: a name does not start with -"
            ))),
            other => Ok(other.map(str::to_string)),
        }
    };
    Ok(Choice::Slurm(SlurmOptions {
        partition: name(&args.partition, "--partition")?,
        account: name(&args.account, "--account")?,
        cpus_per_task: args.cpus_per_task,
        mem: name(&args.mem, "--mem")?,
        extra: args.slurm_args.clone(),
    }))
}

/// The first of several environment variables that is set, parsed.
fn env_value<T: std::str::FromStr>(names: &[&str], what: &str) -> Result<Option<T>> {
    for name in names {
        if let Ok(raw) = std::env::var(name) {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            return raw.parse().map(Some).map_err(|_| {
                Error::usage(format!(
                    "read ${name}={raw:?}: expected {what}; fix or unset it"
                ))
            });
        }
    }
    Ok(None)
}

pub fn run(args: Args) -> Result<i32> {
    if let Some(code) = supervisor::from_env() {
        return Ok(code);
    }
    super::init_tracing(args.common.verbose);
    let cfg = config(&args)?;
    let verbose = args.common.verbose > 0 || env_flag("AMPLIHACK_PARALLEL_VERBOSE");
    let runtime = args.common.runtime()?;
    let target = target(&args, &runtime)?;
    scheduler::run(runtime, target, cfg, Console::new(verbose, args.quiet))
}

/// The run's configuration: the flags, then the environment, checked.
fn config(args: &Args) -> Result<Config> {
    let defaults = Config::default();
    let max_workers = match args.max_workers {
        Some(n) => n as usize,
        None => env_value::<usize>(
            &["PO_MAX_WORKERS", "AMPLIHACK_MAX_PARALLEL_AGENTS"],
            "a positive number of agents",
        )?
        .unwrap_or(defaults.max_workers),
    };
    if max_workers == 0 {
        return Err(Error::usage(
            "use 0 workers: set PO_MAX_WORKERS / AMPLIHACK_MAX_PARALLEL_AGENTS to 1 or more",
        ));
    }
    let timeout = match args.timeout {
        Some(t) => t,
        None => env_value::<f64>(&["PO_TIMEOUT", "AMPLIHACK_AGENT_TIMEOUT"], "seconds")?
            .unwrap_or(defaults.timeout_secs),
    };
    if timeout.is_nan() || timeout <= 0.0 {
        return Err(Error::usage(
            "use --timeout: it must be more than 0 seconds",
        ));
    }
    if args.validation_timeout.is_nan() || args.validation_timeout <= 0.0 {
        return Err(Error::usage(
            "use --validation-timeout: it must be more than 0 seconds",
        ));
    }
    let threshold = crate::report::summary::resolve_threshold(args.success_threshold)?;
    let status_interval = env_value::<u64>(
        &["PO_STATUS_INTERVAL", "AMPLIHACK_STATUS_INTERVAL"],
        "seconds",
    )?
    .unwrap_or(defaults.status_interval_secs);

    let agent = agent_spec(args)?;
    let budget_usd = match args.budget_usd {
        Some(b) => Some(b),
        None => env_value::<f64>(&["PO_BUDGET_USD"], "a budget in US dollars, e.g. 25")?,
    };
    if budget_usd.is_some_and(|b| !b.is_finite() || b <= 0.0) {
        return Err(Error::usage(
            "use --budget-usd / PO_BUDGET_USD: the budget must be more than 0 (US dollars)",
        ));
    }
    if args.budget_hard && budget_usd.is_none() {
        return Err(Error::usage(
            "use --budget-hard alone: it ends agents once the budget is reached; set one with \
             --budget-usd USD (or PO_BUDGET_USD)",
        ));
    }

    Ok(Config {
        max_workers,
        batch_size: args.batch_size.map(|b| b as usize),
        timeout_secs: timeout,
        stall_secs: args.stall_timeout.filter(|s| *s > 0.0),
        grace_secs: args.grace.max(0.0),
        agent,
        setup: args.setup.clone().filter(|s| !s.trim().is_empty()),
        isolated: args.isolation == Isolation::Worktree,
        base: args.base.clone(),
        retry: args.retry,
        retries: args.retries,
        retry_backoff_secs: args.retry_backoff.max(0.0),
        dry_run: args.dry_run,
        create_pr: if args.no_pr {
            Some(false)
        } else if args.create_pr {
            Some(true)
        } else {
            None
        },
        remote: args.remote.clone(),
        threshold,
        status_interval_secs: status_interval,
        validation_timeout_secs: args.validation_timeout,
        log_dir: args.log_dir.clone(),
        limits: Limits {
            budget_usd,
            hard: args.budget_hard,
            max_total_retries: args.max_total_retries,
            max_turns: args.max_turns,
        },
        launcher: launcher(args)?,
        sandbox: args.sandbox.options()?,
    })
}

/// The agent: an `--agent-cmd` template, else `--agent NAME`; a relative
/// program path is made absolute here, from the directory po-spawn runs in
/// (each agent runs in its own worktree).
fn agent_spec(args: &Args) -> Result<AgentSpec> {
    let cwd = std::env::current_dir().map_err(Error::io("read", "the current directory"))?;
    if let Some(tpl) = args.agent_cmd.as_deref().filter(|c| !c.trim().is_empty()) {
        let mut words = template::split(tpl)?;
        if let Some(program) = words.first_mut() {
            *program = agent::absolute_program(program, &cwd);
        }
        return Ok(AgentSpec::command(words));
    }
    let program = agent::program_from_env(&args.agent, &cwd);
    // A bad price file is a usage error now, not a warning in every run.
    let named = args.prices.clone().or_else(|| {
        std::env::var_os(crate::prices::PRICES_ENV)
            .filter(|v| !v.is_empty())
            .map(Into::into)
    });
    let prices = named
        .as_deref()
        .map(crate::prices::checked_path)
        .transpose()?;
    if args.agent != "claude"
        && let Some(model) = &args.model
        && crate::prices::Prices::from_file_or_env(prices.as_deref())?
            .of(model)
            .is_none()
    {
        tracing::warn!(
            "po has no price for model {model:?}: its cost is unknown and only its tokens are \
             recorded; give prices with --prices FILE or PO_PRICES"
        );
    }
    Ok(AgentSpec {
        program,
        prices,
        model: args.model.clone(),
        max_budget_usd: args.max_budget_usd,
        max_turns: args.max_turns,
        ..AgentSpec::named(&args.agent)
    })
}

/// Which tasks: `--id`, a directory, status files as arguments or on stdin.
fn target(args: &Args, runtime: &crate::protocol::Runtime) -> Result<Target> {
    Ok(if let Some(id) = &args.id {
        Target::Dir(runtime.resolve(id)?)
    } else if args.paths.len() == 1 && args.paths[0].is_dir() {
        Target::Dir(args.paths[0].clone())
    } else if !args.paths.is_empty() {
        if let Some(d) = args.paths.iter().find(|p| p.is_dir()) {
            return Err(Error::usage(format!(
                "mix a directory ({}) with other paths: pass one directory, or status files",
                d.display()
            )));
        }
        Target::Files(args.paths.clone())
    } else if std::io::stdin().is_terminal() {
        return Err(Error::usage(
            "choose tasks: pass status files or a directory, pipe paths from po-parse \
             (`po-parse 1234 | po-spawn`), or use --id ID",
        ));
    } else {
        let mut files = Vec::new();
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(Error::io("read", "stdin"))?;
            let line = line.trim();
            if !line.is_empty() {
                files.push(PathBuf::from(line));
            }
        }
        if files.is_empty() {
            return Err(Error::usage(
                "choose tasks: stdin had no status paths; did po-parse fail?",
            ));
        }
        Target::Files(files)
    })
}
