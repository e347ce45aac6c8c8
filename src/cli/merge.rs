//! `po-merge`: merge every completed task's branch into one integration
//! branch, predicting conflicts first and validating the result. The work
//! lives in [`crate::merge`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;

use super::Common;
use crate::error::{Error, Result, exit};
use crate::merge::{self, Options};

/// Merge every completed task's branch into one integration branch
///
/// Conflicts are predicted first, pairwise, with `git merge-tree --write-tree`
/// (git 2.38 or newer) and each conflicting pair is named with its files.
/// Then the branches are merged in wave and dependency order, with --no-ff,
/// in a temporary worktree: your checkout (HEAD, index, files) is never
/// touched. A branch that conflicts is left out and the others are still
/// merged. Each wave's `validation` from the manifest runs after that wave's
/// merges, --validate after all of them, each through `sh -c` in the merged
/// tree with --timeout (its whole process tree is ended on the timeout). The
/// integration branch moves once, at the end, to the last good state: every
/// clean merge when nothing validates, otherwise the last state whose
/// validation passed (with --validate: only if it passed).
///
/// Exit status: 0 every completed branch merged (and validated), 4 a conflict
/// or a failed validation (the branch left at the last good merge), 9 a system
/// error (e.g. git older than 2.38), 64 a usage error, 130 interrupted.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,

    /// Orchestration id or directory [default: the newest orchestration]
    #[arg(value_name = "ID|DIR")]
    pub target: Option<String>,

    /// The branch to merge into [default: po/<id>/integration]
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,

    /// Where a new integration branch starts [default: the tasks' base commit]
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,

    /// Run this command (through sh -c) on the merged result; exit 4 if it fails
    #[arg(long, value_name = "CMD")]
    pub validate: Option<String>,

    /// Time limit of each validation, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// Predict conflicts and show what would be merged; merge and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<i32> {
    super::init_tracing(args.common.verbose);
    let runtime = args.common.runtime()?;
    let dir = super::summarize::target_dir(&runtime, args.target.as_deref())?;
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        crate::signals::forward(move |_| {
            if cancel.swap(true, Ordering::SeqCst) {
                // A second signal: stop now (the scratch worktree stays behind;
                // `git worktree prune` forgets it once it is deleted).
                std::process::exit(exit::INTERRUPTED);
            }
            eprintln!("po-merge: interrupted; stopping after the current step (again to force)");
        });
    }
    let json = args.json;
    let progress = |line: &str| {
        if !json {
            eprintln!("po-merge: {line}");
        }
    };
    let report = merge::run(
        &runtime,
        &dir,
        &Options {
            into: args.into,
            base: args.base,
            validate: args.validate,
            timeout: Duration::from_secs(args.timeout),
            dry_run: args.dry_run,
            cancel: Some(&cancel),
            progress: &progress,
        },
    )?;
    for u in &report.unreadable {
        eprintln!("po-merge: failed to {}; that task is not merged", u.error);
    }
    let text = if json {
        let mut t = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::system(format!("serialise the report: {e}")))?;
        t.push('\n');
        t
    } else {
        merge::render::render(&report)
    };
    crate::out::print(&text)?;
    Ok(report.exit_code)
}
