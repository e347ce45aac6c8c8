//! `po-clean`: remove (or pool) the worktrees finished runs leave behind,
//! never a live or dirty one. The work lives in [`crate::clean`].

use std::path::PathBuf;

use clap::Parser;

use super::Common;
use crate::clean::{self, Action, Options, Report};
use crate::error::{Error, Result, exit};
use crate::forge::Gh;
use crate::report::markdown::Paths;
use crate::text::{human_bytes, one_line};

/// Remove the worktrees of finished tasks, and nothing anyone still needs
///
/// A worktree goes only when its task is finished and no process holds the
/// task's liveness lock (po-clean holds it while it works). It is kept, and
/// named with the reason and what to do about it, when it has uncommitted
/// changes (untracked files included), edits hidden from git status by `git
/// update-index --assume-unchanged` or `--skip-worktree`, a merge or rebase
/// in progress, commits its branch does not hold, a stash made on its
/// branch, a `git worktree lock`, a nested git repository, or ignored files
/// po did not put there. git's records of worktrees whose directory is gone
/// are pruned. po-spawn's wave integration worktree goes too once no task of
/// the orchestration runs, and so does a scratch worktree an interrupted
/// po-merge left behind, or one a killed po-spawn left half-made (its
/// checkout unfinished, never handed to an agent). What a wave validation
/// built in the integration worktree is po's, and goes with it.
///
/// Ignored files: the files .worktreeinclude copied in, unchanged, are po's
/// and go with the worktree. Any other ignored file (build output such as
/// target/ or node_modules/, results, an edited .env) keeps the worktree,
/// named, unless --include-ignored is given: po cannot tell output a user
/// expects to lose from output a user needs. A nested git repository (a
/// directory with its own .git, ignored or not) is never deleted, not even
/// with --include-ignored, nor by --pool or --all.
///
/// --pool retires clean worktrees into a warm pool (<runtime>/worktrees/.pool,
/// detached, untracked and ignored files and index flags cleared) instead of
/// deleting them; po-spawn then takes a worktree from there and switches it
/// to the new task's branch, rewriting only the files that differ.
///
/// --branches also deletes the branch of a task whose worktree is gone when
/// the base holds it, or when its pull request is merged on GitHub with the
/// same head commit (`gh pr view`, for tasks with a PR or from a GitHub
/// issue). Each deleted branch is printed with its commit, to restore it.
///
/// Exit status: 0 done (also when some worktrees were kept), 5 a GitHub
/// (gh) error (those branches were kept), 9 a system error, 64 a usage error.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,

    /// Orchestration id or directory [default: the newest orchestration]
    #[arg(value_name = "ID|DIR", conflicts_with = "all")]
    pub target: Option<String>,

    /// Every orchestration under the runtime root (and, without --pool, the
    /// worktrees in the warm pool)
    #[arg(long)]
    pub all: bool,

    /// Only tasks that finished at least this long ago (e.g. 7d, 12h, 30m)
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub older_than: Option<u64>,

    /// Retire clean worktrees into the warm pool instead of deleting them
    #[arg(long)]
    pub pool: bool,

    /// Also delete task branches merged into the base or through a merged PR
    #[arg(long)]
    pub branches: bool,

    /// With --branches: the branch "merged" means merged into
    /// [default: origin's default branch, else the main checkout's branch]
    #[arg(long, value_name = "BRANCH", requires = "branches")]
    pub base: Option<String>,

    /// Also delete ignored files po did not put there (build output,
    /// results, .env edits…) with their worktree; a nested repository is
    /// kept all the same
    #[arg(long)]
    pub include_ignored: bool,

    /// Show what would go; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

fn parse_age(text: &str) -> std::result::Result<u64, String> {
    crate::timefmt::parse_duration(text)
}

pub fn run(args: Args) -> Result<i32> {
    super::init_tracing(args.common.verbose);
    let runtime = args.common.runtime()?;
    let dirs: Vec<PathBuf> = if args.all {
        runtime.orchestrations()?
    } else {
        vec![super::summarize::target_dir(
            &runtime,
            args.target.as_deref(),
        )?]
    };
    // A dry run takes no lock, not even gh's.
    let gh = Gh::new((!args.dry_run).then_some(runtime.root.as_path()));
    let report = clean::clean(
        &runtime,
        &dirs,
        &Options {
            branches: args.branches,
            older_than: args.older_than,
            pool: args.pool,
            dry_run: args.dry_run,
            base: args.base,
            drain_pool: args.all && !args.pool,
            include_ignored: args.include_ignored,
            gh: &gh,
        },
    )?;
    let text = if args.json {
        let mut t = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::system(format!("serialise the report: {e}")))?;
        t.push('\n');
        t
    } else {
        let paths = Paths {
            repo: runtime.repo.clone(),
        };
        render(&report, &paths)
    };
    crate::out::print(&text)?;
    for e in &report.gh_errors {
        eprintln!("po-clean: failed to {e}");
    }
    Ok(if report.gh_errors.is_empty() {
        exit::SUCCESS
    } else {
        exit::GITHUB
    })
}

/// One line per worktree and branch, then the space freed.
fn render(r: &Report, paths: &Paths) -> String {
    let mut o = String::new();
    for w in &r.worktrees {
        let word = match w.action {
            Action::Removed => "removed",
            Action::Pooled => "pooled",
            Action::WouldRemove => "would remove",
            Action::WouldPool => "would pool",
            _ => "kept",
        };
        let mut line = format!("{word:<12} {}", paths.show(&w.path));
        match w.action {
            Action::Kept => {}
            Action::Pooled | Action::WouldPool => {
                line.push_str(&format!(" (freed {})", human_bytes(w.bytes)))
            }
            _ => line.push_str(&format!(" ({})", human_bytes(w.bytes))),
        }
        if let Some(why) = &w.reason {
            line.push_str(&format!(": {}", one_line(why)));
        }
        o.push_str(&line);
        o.push('\n');
        if let Some(advice) = &w.advice {
            hint(&mut o, advice, &w.path, paths);
        }
    }
    for b in &r.branches {
        let short = &b.commit[..b.commit.len().min(7)];
        let line = match b.action {
            Action::Deleted => format!(
                "deleted      branch {} (was {short}; `git branch {} {short}` restores it): {}",
                one_line(&b.branch),
                one_line(&b.branch),
                one_line(&b.reason)
            ),
            Action::WouldDelete => format!(
                "would delete branch {} ({short}): {}",
                one_line(&b.branch),
                one_line(&b.reason)
            ),
            _ => format!(
                "kept         branch {}: {}",
                one_line(&b.branch),
                one_line(&b.reason)
            ),
        };
        o.push_str(&line);
        o.push('\n');
        if let (Action::Kept, Some(advice)) = (b.action, &b.advice) {
            o.push_str(&format!("             hint: {}\n", one_line(advice)));
        }
    }
    if !r.pruned.is_empty() {
        o.push_str(&format!(
            "{} {} stale worktree record{} (git worktree prune)\n",
            if r.dry_run { "would prune" } else { "pruned" },
            r.pruned.len(),
            if r.pruned.len() == 1 { "" } else { "s" }
        ));
    }
    if r.worktrees.is_empty() && r.branches.is_empty() && r.pruned.is_empty() {
        o.push_str("Nothing to clean.\n");
    }
    o.push_str(&if r.dry_run {
        format!(
            "Would free {} (dry run: nothing was changed).\n",
            human_bytes(r.freed_bytes)
        )
    } else {
        format!("Freed {}.\n", human_bytes(r.freed_bytes))
    });
    o
}

/// What to do about a kept worktree, on the line below it, its path as the
/// report shows it.
fn hint(o: &mut String, advice: &str, path: &std::path::Path, paths: &Paths) {
    let shown = paths.show(path);
    let advice = advice.replace(&*path.to_string_lossy(), &shown);
    o.push_str(&format!("             hint: {}\n", one_line(&advice)));
}
