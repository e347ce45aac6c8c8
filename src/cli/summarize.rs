//! `po-summarize`: aggregate an orchestration's results into `summary.json`
//! and `summary.md`, print the report, and exit by the success threshold.
//!
//! With `--follow-up-issues` it first files one diagnostic issue per failed
//! agent (once), with `--post-comment` it posts the seed's comment on the
//! master issue. A `gh` failure does not stop the summary from being written;
//! it is reported at the end with exit code 5.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use super::Common;
use crate::error::{Error, Result};
use crate::forge::Gh;
use crate::forge::comment::{self, Posted};
use crate::integration::conflicts::{Branch, Conflict, PerOrchestration};
use crate::out;
use crate::protocol::Runtime;
use crate::protocol::view::OrchestrationView;
use crate::report::{follow_up, html, junit, markdown, summary};

/// Aggregate an orchestration's results into summary.json and summary.md
///
/// Exit status: 0 every task completed, 1 at or above the success threshold,
/// 2 below it, 5 a GitHub (gh) error, 64 a usage error.
///
/// In summary.json, `failed` counts failed and timed-out tasks; `duration_seconds`
/// is the wall clock from the earliest start to the latest completion;
/// `lines_of_code` is the lines added by the completed tasks.
/// `conflicts` names the completed branches that do not merge cleanly
/// (`git merge-tree`, cached by commit in the orchestration's .conflicts.json).
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,

    /// Orchestration id or directory [default: the newest orchestration]
    #[arg(value_name = "ID|DIR")]
    pub target: Option<String>,

    /// What to print on stdout
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    pub format: Format,

    /// Success threshold in percent (also AMPLIHACK_SUCCESS_THRESHOLD) [default: 80]
    #[arg(long, env = "PO_SUCCESS_THRESHOLD", value_name = "PERCENT",
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub threshold: Option<u32>,

    /// Post the summary comment on the master issue; a later run edits that
    /// same comment (found by a hidden marker) instead of adding another
    #[arg(long)]
    pub post_comment: bool,

    /// File one diagnostic issue per failed agent that has none yet; a task
    /// that fails again after a retry gets a comment on its issue instead
    #[arg(long)]
    pub follow_up_issues: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The markdown report (summary.md)
    Markdown,
    /// summary.json
    Json,
    /// JUnit XML, one testcase per agent
    Junit,
    /// One self-contained HTML report with the run's timeline (no script, nothing fetched)
    Html,
}

pub(crate) fn target_dir(runtime: &Runtime, target: Option<&str>) -> Result<PathBuf> {
    match target {
        Some(t) => runtime.resolve(t),
        None => runtime.orchestrations()?.into_iter().next().ok_or_else(|| {
            Error::usage(format!(
                "find an orchestration: none under {}; run `po-parse` first, or pass ID|DIR or \
                 --runtime-dir",
                runtime.parallel_root().display()
            ))
        }),
    }
}

/// Conflicts between the completed branches, when the repository is at hand
/// (the cache file is updated); none otherwise.
fn conflicts(view: &OrchestrationView, repo: Option<&std::path::Path>) -> Vec<Conflict> {
    let branches = Branch::of_completed(view);
    PerOrchestration::default().predict(&view.dir, repo, &branches, true)
}

pub fn run(args: Args) -> Result<i32> {
    super::init_tracing(args.common.verbose);
    let threshold = summary::resolve_threshold(args.threshold)?;
    let runtime = args.common.runtime()?;
    let dir = target_dir(&runtime, args.target.as_deref())?;
    let paths = markdown::Paths {
        repo: runtime
            .repo
            .clone()
            .filter(|r| runtime.root.starts_with(r) || dir.starts_with(r)),
    };

    let mut loaded = summary::load(&dir)?;
    for b in loaded.bad() {
        eprintln!(
            "po-summarize: failed to read status file {}: {}; the task counts as not successful",
            b.file.display(),
            b.problem
        );
    }
    let master = loaded.orchestration.as_ref().and_then(|o| o.master_issue);
    if args.post_comment && master.is_none() {
        return Err(Error::usage(format!(
            "post a comment for orchestration {}: it has no master issue (see {}); \
             --post-comment needs an orchestration parsed from a GitHub issue (`po-parse N`)",
            loaded.id,
            dir.join(crate::protocol::layout::ORCHESTRATION_FILE)
                .display()
        )));
    }

    let mut gh = Gh::new(Some(&runtime.root));
    if let Some(repo) = &paths.repo {
        gh = gh.in_dir(repo);
    }
    let mut gh_error = None;
    if args.follow_up_issues {
        let tell = |m: &str| eprintln!("po-summarize: {m}");
        match follow_up::file_all(&loaded, &gh, &paths, tell) {
            Ok(filed) => {
                for f in &filed {
                    let agent = summary::display_agent(&f.agent_id);
                    match f.kind {
                        follow_up::Kind::Filed => eprintln!(
                            "📋 Created follow-up issue #{} for {agent} failure",
                            f.issue
                        ),
                        follow_up::Kind::Commented { attempt } => eprintln!(
                            "📋 Commented on follow-up issue #{}: {agent} failed again \
                             (attempt {attempt})",
                            f.issue
                        ),
                    }
                }
                if !filed.is_empty() {
                    loaded = summary::load(&dir)?;
                }
            }
            Err(e) => {
                loaded = summary::load(&dir)?;
                gh_error = Some(e);
            }
        }
    }

    let mut report = summary::summarize(&loaded, threshold, crate::timefmt::now());
    report.conflicts = conflicts(&loaded, runtime.repo.as_deref());
    let md = markdown::render_summary(&report, &paths);
    summary::write(&report, &md)?;

    match args.format {
        Format::Markdown => out::print(&md)?,
        Format::Json => out::println(
            &serde_json::to_string_pretty(&report)
                .map_err(|e| Error::system(format!("serialise the summary: {e}")))?,
        )?,
        Format::Junit => out::print(&junit::render(&report))?,
        Format::Html => out::print(&html::render(&report, &paths))?,
    }

    if args.post_comment
        && gh_error.is_none()
        && let Some(n) = master
    {
        let body = markdown::render_comment(&report, &paths);
        match comment::upsert(&gh, n, &loaded.id, &body) {
            Ok(Posted::Created(_)) => eprintln!("💬 Posted the summary on master issue #{n}"),
            Ok(Posted::Updated(_)) => {
                eprintln!("💬 Updated the summary comment on master issue #{n}")
            }
            Err(e) => gh_error = Some(e),
        }
    }
    match gh_error {
        Some(e) => Err(e),
        None => Ok(report.exit_code),
    }
}
