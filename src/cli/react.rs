//! `po-react`: answer the tasks' pull requests (failed checks, reviews
//! asking for changes, conflicts) with the task's own agent, within limits,
//! and hand the rest to a person. The work lives in [`crate::react`].

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;

use super::Common;
use crate::error::{Error, Result, exit};
use crate::forge::Gh;
use crate::protocol::{Orchestration, layout, sanitize, store};
use crate::react::{self, Context, Note};
use crate::run::agent::{self, AgentSpec};
use crate::run::supervisor::again::Rerun;
use crate::run::template;

/// Answer the tasks' pull requests with their agents: failed checks, reviews, conflicts
///
/// For each completed task with an open pull request, one pass reads through
/// gh the checks on the pull request's head (with the end of each failed
/// run's log), the reviews asking for changes and the inline review comments
/// (only those of people with write access to the repository: anyone
/// else's text is never passed on, and is named as ignored), and whether it
/// still merges into its base (the conflicting files by a trial merge with
/// `git merge-tree`). When there is something new to answer, the task's
/// agent runs again in the task's worktree, on its branch, resuming its
/// session, with a prompt of what was found (GitHub's text fenced as data);
/// po pushes its new commits (never forced) and comments on the pull
/// request what was addressed. Each round is recorded in the task's status
/// file (`reactions`): a head is never answered twice for the same trigger,
/// a review comment never twice.
///
/// After --max-rounds rounds, when the orchestration's budget is spent
/// (--budget-usd counts every attempt and round of its tasks), or when the
/// agent fails, the pull request gets the po:needs-human label and a
/// comment naming what is still open, the status file an `escalation`, and
/// po-react leaves it alone.
///
/// One pass by default (for make, cron, watch); --follow passes every
/// --interval until every pull request is merged, closed or with a person.
/// A killed po-react leaves nothing a new pass cannot finish: a round it
/// left running is recorded interrupted (what is left of its agent is ended
/// first) and done again, commits it left
/// unpushed are pushed. A task's liveness lock keeps two agents out of one
/// worktree.
///
/// Exit status: 0 nothing left to do, 1 some pull requests are with a
/// person, 5 a gh error, 9 system error, 64 usage error, 130 interrupted.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,

    /// Orchestration id or directory [default: the newest orchestration]
    #[arg(value_name = "ID|DIR")]
    pub target: Option<String>,

    /// Pass again every --interval until every pull request is merged, closed or with a person
    #[arg(long)]
    pub follow: bool,

    /// Time between passes with --follow: 90s, 2m, 1h
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = interval)]
    pub interval: u64,

    /// Rounds per task before it goes to a person
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_rounds: u32,

    /// Budget of the whole orchestration (its tasks' attempts and rounds
    /// together): no round starts once it is spent [env: PO_BUDGET_USD]
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,

    /// Show what would be sent to which agent, and why; run, push, post and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// The agent the tasks ran with
    #[arg(long, env = "PO_AGENT", value_name = "NAME", default_value = agent::REGISTERED[0].name,
          value_parser = agent_names())]
    pub agent: String,

    /// The --agent-cmd template the tasks ran with (as po-spawn takes it)
    #[arg(long, env = "PO_AGENT_CMD", value_name = "TEMPLATE")]
    pub agent_cmd: Option<String>,

    /// Model for the agent (Claude Code's --model)
    #[arg(long)]
    pub model: Option<String>,

    /// Seconds one round's agent may run [env: PO_TIMEOUT] [default: 1800]
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,

    /// End an agent with no output and no status update for SECS
    #[arg(long, value_name = "SECS")]
    pub stall_timeout: Option<f64>,

    /// Seconds between SIGTERM and SIGKILL when ending an agent's process tree
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub grace: f64,

    /// Remote the task branches are pushed to
    #[arg(long, value_name = "NAME", default_value = "origin")]
    pub remote: String,

    /// Each round's agent runs under the sandbox, as po-spawn's do
    #[command(flatten)]
    pub sandbox: super::sandbox::SandboxArgs,
}

fn interval(s: &str) -> std::result::Result<u64, String> {
    match crate::timefmt::parse_duration(s)? {
        0 => Err("the interval must be at least 1s".into()),
        n => Ok(n),
    }
}

fn agent_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        agent::REGISTERED
            .iter()
            .map(|r| clap::builder::PossibleValue::new(r.name).help(r.about)),
    )
}

pub fn run(args: Args) -> Result<i32> {
    super::init_tracing(args.common.verbose);
    if args.max_rounds == 0 {
        return Err(Error::usage(
            "use --max-rounds 0: give 1 or more (rounds per task before a person is asked)",
        ));
    }
    let budget_usd = budget(&args)?;
    let timeout = timeout(&args)?;
    let runtime = args.common.runtime()?;
    let dir = super::summarize::target_dir(&runtime, args.target.as_deref())?;
    let orchestration: Option<Orchestration> =
        store::read_json(&dir.join(layout::ORCHESTRATION_FILE)).ok();
    let id = match &orchestration {
        Some(o) => sanitize::id(&o.id)?,
        None => sanitize::id(&dir.file_name().unwrap_or_default().to_string_lossy())?,
    };
    let repo = runtime.repo_of(&dir, "po-react")?;
    let _lock = if args.dry_run {
        None
    } else {
        Some(lock(&dir, &id)?)
    };
    let sandbox = sandbox(&args)?;
    let exe = std::env::current_exe().ok();
    let cx = Context {
        logs: runtime.logs_dir(&format!("react-{id}")),
        id,
        dir,
        gh: Gh::new(Some(&runtime.root)).in_dir(&repo),
        repo,
        rerun: (!args.dry_run).then(Rerun::install),
        agent: agent_spec(&args)?,
        timeout_secs: timeout,
        stall_secs: args.stall_timeout.filter(|s| *s > 0.0),
        grace_secs: args.grace.max(0.0),
        max_rounds: args.max_rounds,
        budget_usd,
        remote: args.remote.clone(),
        bin_dir: exe.as_deref().and_then(Path::parent).map(Path::to_path_buf),
        dry_run: args.dry_run,
        sandbox,
    };
    passes(&cx, &args)
}

/// `--budget-usd`, else `PO_BUDGET_USD`: more than 0 when given.
fn budget(args: &Args) -> Result<Option<f64>> {
    let budget_usd = match args.budget_usd {
        Some(b) => Some(b),
        None => match std::env::var("PO_BUDGET_USD") {
            Ok(v) if !v.trim().is_empty() => Some(v.trim().parse::<f64>().map_err(|_| {
                Error::usage(format!(
                    "read $PO_BUDGET_USD={v:?}: expected a budget in US dollars, e.g. 25"
                ))
            })?),
            _ => None,
        },
    };
    if budget_usd.is_some_and(|b| !b.is_finite() || b <= 0.0) {
        return Err(Error::usage(
            "use --budget-usd / PO_BUDGET_USD: the budget must be more than 0 (US dollars)",
        ));
    }
    Ok(budget_usd)
}

/// `--timeout`, else `PO_TIMEOUT`, else 30 minutes: more than 0.
fn timeout(args: &Args) -> Result<f64> {
    let timeout = match args.timeout {
        Some(t) => t,
        None => match std::env::var("PO_TIMEOUT") {
            Ok(v) if !v.trim().is_empty() => v
                .trim()
                .parse::<f64>()
                .map_err(|_| Error::usage(format!("read $PO_TIMEOUT={v:?}: expected seconds")))?,
            _ => crate::run::scheduler::Config::default().timeout_secs,
        },
    };
    if timeout.is_nan() || timeout <= 0.0 {
        return Err(Error::usage(
            "use --timeout: it must be more than 0 seconds",
        ));
    }
    Ok(timeout)
}

/// One po-react per orchestration: its lock, held for the run.
fn lock(dir: &Path, id: &str) -> Result<store::FileLock> {
    let lock_path = dir.join("react.lock");
    store::try_lock_exclusive(&lock_path)?.ok_or_else(|| {
        Error::usage(format!(
            "answer orchestration {id}: another po-react is running on it (it holds {}); wait \
             for it or stop it",
            lock_path.display()
        ))
    })
}

/// The sandbox options. Without a working bwrap every round would fail and
/// go to a person: it is refused before any (exit 9); a dry run only warns.
fn sandbox(args: &Args) -> Result<Option<crate::run::sandbox::Options>> {
    let sandbox = args.sandbox.options()?;
    if sandbox.is_some()
        && let Some(problem) =
            crate::run::sandbox::probe(&std::env::var_os("PATH").unwrap_or_default())
    {
        if !args.dry_run {
            return Err(Error::system(format!("start the sandbox: {problem}")));
        }
        eprintln!("po-react: ⚠️  {problem}");
    }
    Ok(sandbox)
}

/// Passes over the orchestration: one, or with --follow until every task
/// settles or a signal comes; the last pass's exit code.
fn passes(cx: &Context, args: &Args) -> Result<i32> {
    let mut note = |n: Note| match n {
        Note::Started {
            agent,
            pr,
            round,
            triggers,
        } => {
            let t: Vec<&str> = triggers.iter().map(|t| t.as_str()).collect();
            eprintln!(
                "po-react: {agent} PR #{pr}: round {round} ({}) started",
                t.join(", ")
            );
        }
        Note::Warning(w) => eprintln!("po-react: {w}"),
    };
    let mut writers = react::gather::Writers::default();
    loop {
        let pass = react::pass(cx, &mut writers, &mut note)?;
        let mut text = pass.lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        crate::out::print(&text)?;
        let done = pass.settled() || pass.interrupted || !args.follow;
        if done {
            return Ok(pass.exit_code());
        }
        // Wait for the next pass; a signal ends the wait.
        let until = Instant::now() + Duration::from_secs(args.interval);
        while Instant::now() < until {
            if cx.rerun.as_ref().is_some_and(|r| r.interrupted()) {
                return Ok(exit::INTERRUPTED);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The agent: an `--agent-cmd` template, else `--agent NAME` (relative
/// program paths from the directory po-react runs in, as po-spawn takes them).
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
    Ok(AgentSpec {
        program,
        model: args.model.clone(),
        ..AgentSpec::named(&args.agent)
    })
}
