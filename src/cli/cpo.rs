//! `cpo`: Claude Parallel Orchestrator, the front end of the `/parallel-run`
//! document: `init`, `validate`, `run`, `status` and `integrate` of a parallel directory
//! (`manifest.json` + `prompts/`), built on `po-parse`, `po-spawn` and the
//! status files. The work lives in [`crate::cpo`].

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::Common;
use crate::cpo::integrate::IntegrateOptions;
use crate::cpo::{self, RunOptions, Tools};
use crate::error::Result;

/// Claude Parallel Orchestrator: run waves of tasks from a manifest.json
#[derive(Parser, Debug)]
#[command(
    version,
    after_help = "A parallel directory holds manifest.json (tech_spec_id, waves of tasks) and \
                  prompts/. `cpo run` writes DIR/logs/ and DIR/report.json.\n\nExit codes: 0 \
                  all tasks completed, 1 partial success, 2 majority failure, 3 invalid \
                  manifest, 4 wave validation failed or merge conflict, 9 system error, 64 \
                  usage error, 130 interrupted."
)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,

    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a parallel directory: manifest.json skeleton, prompts/, README.md
    Init {
        /// The directory to create (e.g. parallel/TS-0042-inventory)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Tech Spec id, for traceability (becomes the orchestration id)
        #[arg(short = 't', long = "tech-spec", value_name = "TS-ID")]
        tech_spec_id: String,
        /// Short name of the feature
        #[arg(short = 'n', long, value_name = "NAME")]
        name: String,
    },
    /// Check manifest.json, the prompts and the git prerequisites; run nothing
    ///
    /// Exit 3 when the manifest or a prompt is invalid (missing tech_spec_id or
    /// waves, duplicate task ids, a prompt file that is missing, empty or outside
    /// DIR); exit 4 when a run is impossible (not a git repository, no commit).
    /// Uncommitted changes are a warning only: agents branch from HEAD, so such
    /// changes are not part of their work. Changes inside DIR are not counted.
    Validate {
        /// The parallel directory (manifest.json and prompts/), or its manifest.json
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// The agent `cpo run` will use instead of claude: its program is checked
        /// instead of claude's
        #[arg(
            long,
            value_name = "TEMPLATE",
            env = "PO_AGENT_CMD",
            hide_env_values = true
        )]
        agent_cmd: Option<String>,
    },
    /// Validate, then run every wave's agents in parallel git worktrees
    Run(RunArgs),
    /// Merge the completed tasks' branches into one integration branch and validate it
    ///
    /// Runs po-merge on the directory's orchestration: conflicts are predicted
    /// first (git merge-tree), then the branches are merged in wave order into
    /// po/<id>/integration in a temporary worktree (your checkout is not
    /// touched), and each wave's `validation` runs on the merged result. Exit 0
    /// merged and validated, 4 a conflict or a failed validation.
    Integrate(IntegrateArgs),
    /// Show each wave's tasks and their states
    Status {
        /// The parallel directory (manifest.json and prompts/), or its manifest.json
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Print the tasks as JSON instead
        #[arg(long)]
        json: bool,
        /// Orchestration id, if `cpo run` was given one [default: the manifest's tech_spec_id]
        #[arg(long, value_name = "ID")]
        id: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The parallel directory (manifest.json and prompts/), or its manifest.json
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Maximum agents at once (po-spawn --max-workers)
    #[arg(long, value_name = "N")]
    pub max_workers: Option<u32>,
    /// Per-agent timeout in seconds (po-spawn --timeout)
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Run this program instead of claude, e.g. './agent.sh {prompt_file}' [env: PO_AGENT_CMD]
    #[arg(long, value_name = "TEMPLATE")]
    pub agent_cmd: Option<String>,
    /// Re-run failed, timed-out and cancelled tasks of an earlier run
    #[arg(long)]
    pub retry: bool,
    /// Print the plan (waves, worktrees, branches, agent command) and start nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Branch wave 1 from this commit-ish (po-spawn --base)
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// Orchestration id [default: the manifest's tech_spec_id]
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// More options for po-spawn, after `--` (e.g. -- --stall-timeout 600)
    #[arg(last = true, value_name = "PO-SPAWN ARGS")]
    pub spawn_args: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct IntegrateArgs {
    /// The parallel directory (manifest.json and prompts/), or its manifest.json
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The branch to merge into (po-merge --into) [default: po/<id>/integration]
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,
    /// Also run this command on the merged result (po-merge --validate)
    #[arg(long, value_name = "CMD")]
    pub validate: Option<String>,
    /// Time limit of each validation in seconds (po-merge --timeout)
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Predict conflicts and show the plan; merge nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print po-merge's report as JSON
    #[arg(long)]
    pub json: bool,
    /// Orchestration id, if `cpo run` was given one [default: the manifest's tech_spec_id]
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
}

pub fn run(args: Args) -> Result<i32> {
    super::init_tracing(args.common.verbose);
    let tools = Tools {
        runtime_dir: args.common.runtime_dir,
        verbose: args.common.verbose,
    };
    match args.command {
        Cmd::Init {
            dir,
            tech_spec_id,
            name,
        } => cpo::init::init(&dir, &tech_spec_id, &name),
        Cmd::Validate { dir, agent_cmd } => cpo::validate::command(&dir, agent_cmd.as_deref()),
        Cmd::Run(r) => cpo::run::run(
            &tools,
            &r.dir,
            &RunOptions {
                max_workers: r.max_workers,
                timeout: r.timeout,
                agent_cmd: r.agent_cmd,
                retry: r.retry,
                dry_run: r.dry_run,
                base: r.base,
                id: r.id,
                spawn_args: r.spawn_args,
            },
        ),
        Cmd::Integrate(i) => cpo::integrate::command(
            &tools,
            &i.dir,
            &IntegrateOptions {
                id: i.id,
                into: i.into,
                validate: i.validate,
                timeout: i.timeout,
                dry_run: i.dry_run,
                json: i.json,
            },
        ),
        Cmd::Status { dir, json, id } => cpo::board::command(&tools, &dir, json, id.as_deref()),
    }
}
