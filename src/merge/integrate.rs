//! `po-merge`: merge every completed task's branch into one integration
//! branch, wave by wave and after the tasks each depends on, then validate.
//!
//! * Conflicts are predicted first, pairwise, with `git merge-tree`.
//! * The merges happen in a scratch worktree on a detached HEAD under
//!   `<runtime>/worktrees/<id>/`, removed afterwards: the user's checkout
//!   (HEAD, index, files) is never touched, and the integration branch moves
//!   once, at the end, with `git update-ref` guarded by its old value.
//! * A branch that conflicts is not merged (the merge is aborted) and the
//!   others still are, so the branch holds every clean merge.
//! * Each wave's `validation` (orchestration.json) runs after that wave's
//!   merges, `--validate` after all of them, each with a timeout that ends
//!   its whole process tree. A failing wave validation stops later waves.
//! * The branch ends at the last good state: after every clean merge when
//!   nothing validates; after the last wave whose validation passed; with
//!   `--validate`, only if it passed (else it stays where it was).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::order::merge_order;
use crate::error::{Error, Result, exit};
use crate::git::{self, git};
use crate::integration::conflicts::{Branch, Conflict, Predictor};
use crate::integration::{self, Limits, MergeOutcome, Scratch, Verdict};
use crate::protocol::view::OrchestrationView;
use crate::protocol::{AgentStatus, Orchestration, Runtime, State, sanitize};
use crate::report::summary;
use crate::worktree;

/// What `po-merge` was asked to do.
pub struct Options<'a> {
    /// The branch to merge into [default: `po/<id>/integration`].
    pub into: Option<String>,
    /// Where a new integration branch starts [default: the tasks' base].
    pub base: Option<String>,
    /// Run on the merged result, through `sh -c`.
    pub validate: Option<String>,
    /// For each validation.
    pub timeout: Duration,
    /// Predict and show the plan; merge nothing, write nothing.
    pub dry_run: bool,
    /// Set (by a signal) to stop after the current step.
    pub cancel: Option<&'a AtomicBool>,
    /// Progress for people, while it runs (validations can take long).
    pub progress: &'a dyn Fn(&str),
}

/// What happened to one task's branch.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Merged,
    /// Its commits were in the branch already.
    AlreadyMerged,
    /// It conflicts with what was merged before it; not merged.
    Conflict,
    /// git refused to merge it for another reason (see `reason`); not merged.
    Failed,
    /// `--dry-run`: it would be merged.
    WouldMerge,
    /// Not tried: an earlier validation failed, or the run was interrupted.
    NotReached,
    /// Not a candidate: the task did not complete, or has no branch.
    Skipped,
}

/// One task in merge order.
#[derive(Serialize, Clone, Debug)]
pub struct Step {
    pub agent_id: String,
    pub label: String,
    pub wave: u32,
    pub state: State,
    pub branch: Option<String>,
    pub outcome: Outcome,
    /// The merge commit, when merged.
    pub commit: Option<String>,
    /// The conflicting files, on a conflict.
    pub files: Vec<String>,
    /// Tasks merged before it that it conflicts with.
    pub conflicts_with: Vec<String>,
    /// Why it was skipped or not reached.
    pub reason: Option<String>,
    /// Whether the integration branch holds its commits at the end.
    pub in_branch: bool,
    #[serde(skip)]
    base_commit: Option<String>,
}

/// How a validation ended.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ValidationOutcome {
    Passed,
    Failed,
    TimedOut,
    Interrupted,
}

#[derive(Serialize, Clone, Debug)]
pub struct Validation {
    /// The wave whose `validation` this is; `None` for `--validate`.
    pub wave: Option<u32>,
    pub command: String,
    pub outcome: ValidationOutcome,
    pub exit_code: Option<i32>,
    pub seconds: f64,
    pub log: PathBuf,
}

/// The whole run, as `--json` prints it.
#[derive(Serialize, Debug)]
pub struct Report {
    pub orchestration_id: String,
    pub orchestration_dir: PathBuf,
    pub repository: PathBuf,
    pub into: String,
    pub base: String,
    /// The branch's commit before the run (the base when it was new).
    pub start: String,
    /// The branch's commit after the run; `None` when it was not written
    /// (a dry run, or nothing to merge).
    pub head: Option<String>,
    /// The branch did not exist before.
    pub created: bool,
    pub dry_run: bool,
    pub predicted_conflicts: Vec<Conflict>,
    pub steps: Vec<Step>,
    pub validations: Vec<Validation>,
    /// Status files that could not be read (their tasks are not merged).
    pub unreadable: Vec<summary::Unreadable>,
    pub merged: usize,
    pub already_merged: usize,
    pub conflicts: usize,
    /// Branches git refused to merge without a conflict.
    pub failed: usize,
    pub skipped: usize,
    /// 0 merged (and validated), 4 a conflict, a branch git would not merge,
    /// or a failed validation, 130 interrupted.
    pub exit_code: i32,
}

impl Report {
    fn count(&self, o: Outcome) -> usize {
        self.steps.iter().filter(|s| s.outcome == o).count()
    }
}

/// Run `po-merge` on the orchestration in `dir`.
pub fn run(runtime: &Runtime, dir: &Path, opts: &Options<'_>) -> Result<Report> {
    let loaded = summary::load(dir)?;
    let repo = runtime.repo_of(dir, "po-merge")?;
    git::require_merge_tree()?;
    let into = target_branch(&repo, &loaded.id, opts.into.as_deref())?;
    let tips = git::branch_tips(&repo)?;
    let base = base_commit(&repo, &loaded, opts.base.as_deref())?;
    let start = tips.get(&into).cloned();
    let mut report = Report::begin(&loaded, dir, &repo, &into, base, &tips, opts.dry_run);
    let candidates: Vec<usize> = (0..report.steps.len())
        .filter(|&i| report.steps[i].outcome != Outcome::Skipped)
        .collect();
    let mut predictor = Predictor::new(&repo).cached_in(dir);
    report.predicted_conflicts = predictor.predict(&branches_of(&report.steps, &candidates))?;

    if opts.dry_run {
        would_merge(&mut report, &candidates, &repo);
        return Ok(finish(report, false));
    }
    if let Err(e) = predictor.save() {
        tracing::debug!("conflict cache: failed to {e}");
    }
    if candidates.is_empty() {
        return Ok(finish(report, false));
    }
    let cancelled = merge_in_scratch(
        runtime,
        &repo,
        &loaded,
        opts,
        &mut report,
        &candidates,
        start.as_deref(),
    )?;
    Ok(finish(report, cancelled))
}

impl Report {
    /// The report before anything is merged: what each task's step is.
    fn begin(
        loaded: &OrchestrationView,
        dir: &Path,
        repo: &Path,
        into: &str,
        base: String,
        tips: &HashMap<String, String>,
        dry_run: bool,
    ) -> Report {
        let start = tips.get(into).cloned();
        Report {
            orchestration_id: loaded.id.clone(),
            orchestration_dir: dir.to_path_buf(),
            repository: repo.to_path_buf(),
            into: into.to_string(),
            start: start.clone().unwrap_or_else(|| base.clone()),
            base,
            head: None,
            created: start.is_none(),
            dry_run,
            predicted_conflicts: Vec::new(),
            steps: steps(loaded, tips),
            validations: Vec::new(),
            unreadable: loaded
                .bad()
                .map(|b| summary::Unreadable {
                    path: b.file.clone(),
                    error: b.problem.clone(),
                })
                .collect(),
            merged: 0,
            already_merged: 0,
            conflicts: 0,
            failed: 0,
            skipped: 0,
            exit_code: exit::SUCCESS,
        }
    }
}

/// A dry run's outcomes: each candidate is in the target already, or would
/// be merged.
fn would_merge(report: &mut Report, candidates: &[usize], repo: &Path) {
    for &i in candidates {
        let s = &mut report.steps[i];
        let branch = s.branch.as_deref().unwrap_or_default();
        s.in_branch = git::is_ancestor(repo, branch, &report.start);
        s.outcome = if s.in_branch {
            Outcome::AlreadyMerged
        } else {
            Outcome::WouldMerge
        };
    }
}

/// Merge the candidates wave by wave in a scratch worktree, validating each
/// wave, then move the target branch (from `start`) to the last good
/// commit; whether a signal cancelled it.
fn merge_in_scratch(
    runtime: &Runtime,
    repo: &Path,
    loaded: &OrchestrationView,
    opts: &Options<'_>,
    report: &mut Report,
    candidates: &[usize],
    start: Option<&str>,
) -> Result<bool> {
    let id = sanitize::id(&loaded.id)?;
    let included = worktree::included_files(repo, &runtime.root)?;
    let scratch = Scratch::create(repo, &runtime.worktrees_of(&id), &report.start)?;
    worktree::copy_included(repo, scratch.path(), &included)?;
    let logs = runtime.logs_dir(&format!(
        "merge-{id}-{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    ));
    let validations = loaded
        .orchestration
        .as_deref()
        .map(Orchestration::validations)
        .unwrap_or_default();
    let (into, base) = (report.into.clone(), report.base.clone());
    let (good, cancelled) = {
        let mut merger = Merger {
            wt: scratch.path(),
            into: &into,
            base: &base,
            opts,
            logs: &logs,
            validations: &validations,
            report,
            cancelled: false,
        };
        let good = merger.merge(candidates)?;
        (good, merger.cancelled)
    };
    move_branch(repo, &into, start, &good, &loaded.id)?;
    report.head = Some(good.clone());
    for &i in candidates {
        let s = &mut report.steps[i];
        let branch = s.branch.as_deref().unwrap_or_default();
        s.in_branch = git::is_ancestor(repo, branch, &good);
    }
    drop(scratch);
    Ok(cancelled)
}

/// The candidates' branches, for conflict prediction.
fn branches_of(steps: &[Step], candidates: &[usize]) -> Vec<Branch> {
    candidates
        .iter()
        .map(|&i| Branch {
            label: steps[i].label.clone(),
            branch: steps[i].branch.clone().unwrap_or_default(),
            base: steps[i].base_commit.clone(),
        })
        .collect()
}

/// Counts and the exit code.
fn finish(mut report: Report, cancelled: bool) -> Report {
    report.merged = report.count(Outcome::Merged);
    report.already_merged = report.count(Outcome::AlreadyMerged);
    report.conflicts = report.count(Outcome::Conflict);
    report.failed = report.count(Outcome::Failed);
    report.skipped = report.count(Outcome::Skipped);
    let failed_validation = report
        .validations
        .iter()
        .any(|v| v.outcome != ValidationOutcome::Passed);
    let predicted = report.dry_run && !report.predicted_conflicts.is_empty();
    report.exit_code = if cancelled {
        exit::INTERRUPTED
    } else if report.conflicts + report.failed > 0 || failed_validation || predicted {
        exit::VALIDATION
    } else {
        exit::SUCCESS
    };
    report
}

/// `--into`, checked, or `po/<id>/integration`. A branch checked out in a
/// worktree is refused: moving it would change that checkout under its user.
fn target_branch(repo: &Path, id: &str, into: Option<&str>) -> Result<String> {
    let branch = match into {
        Some(b) => {
            if b.starts_with('-') || !git::git_ok(repo, &["check-ref-format", "--branch", b]) {
                return Err(Error::usage(format!(
                    "use --into {b:?}: not a valid branch name (see git check-ref-format)"
                )));
            }
            b.to_string()
        }
        None => format!("po/{}/integration", sanitize::branch_component(id)),
    };
    if let Some(w) = git::worktrees(repo)?
        .into_iter()
        .find(|w| w.branch.as_deref() == Some(branch.as_str()))
    {
        return Err(Error::usage(format!(
            "merge into {branch}: it is checked out in {}; po-merge never changes a checkout — \
             switch that worktree to another branch, or pick another with --into",
            w.path.display()
        )));
    }
    Ok(branch)
}

/// `--base`, else the base commit the earliest wave's tasks recorded, else
/// the one po-spawn recorded for its last run, else HEAD.
fn base_commit(repo: &Path, loaded: &OrchestrationView, given: Option<&str>) -> Result<String> {
    if let Some(rev) = given {
        return git::resolve_commit(repo, rev);
    }
    let mut recorded: Vec<&AgentStatus> = loaded
        .tasks()
        .map(|t| &t.status)
        .filter(|s| s.base_commit.is_some())
        .collect();
    recorded.sort_by_key(|s| (s.wave, s.number()));
    let last_run = loaded
        .orchestration
        .as_ref()
        .and_then(|o| o.options.get("last_run")?.get("base")?.as_str());
    let found = recorded
        .iter()
        .filter_map(|s| s.base_commit.as_deref())
        .chain(last_run)
        .find_map(|c| git::resolve_commit(repo, c).ok());
    match found {
        Some(c) => Ok(c),
        None => git::resolve_commit(repo, "HEAD"),
    }
}

/// Every readable task, in merge order, with candidates marked `WouldMerge`
/// for now and the others `Skipped` with the reason.
fn steps(loaded: &OrchestrationView, tips: &HashMap<String, String>) -> Vec<Step> {
    let views: Vec<_> = loaded.tasks().collect();
    let tasks: Vec<&AgentStatus> = views.iter().map(|t| &t.status).collect();
    merge_order(&tasks)
        .into_iter()
        .map(|i| {
            let t = tasks[i];
            let reason = match (&t.status, &t.branch) {
                (State::Completed, Some(b)) if tips.contains_key(b) => None,
                (State::Completed, Some(b)) => Some(format!("its branch {b} does not exist")),
                (State::Completed, None) => {
                    Some("no branch recorded (it ran without a worktree)".to_string())
                }
                (State::InProgress | State::Pending, _) => {
                    Some(format!("{}: not finished yet", t.status))
                }
                (s, _) => Some(format!("{s}: only completed tasks are merged")),
            };
            Step {
                agent_id: t.agent_id.clone(),
                label: views[i].label.clone(),
                wave: t.wave,
                state: t.status,
                branch: t.branch.clone(),
                outcome: if reason.is_some() {
                    Outcome::Skipped
                } else {
                    Outcome::WouldMerge
                },
                commit: None,
                files: Vec::new(),
                conflicts_with: Vec::new(),
                reason,
                in_branch: false,
                base_commit: t.base_commit.clone(),
            }
        })
        .collect()
}

/// Point `into` at `good`, if it was `start` (or did not exist) all along.
fn move_branch(repo: &Path, into: &str, start: Option<&str>, good: &str, id: &str) -> Result<()> {
    if start == Some(good) {
        return Ok(());
    }
    let zero = "0".repeat(good.len());
    let old = start.unwrap_or(&zero);
    let msg = format!("po-merge {id}");
    let refname = format!("refs/heads/{into}");
    git(repo, &["update-ref", "-m", &msg, &refname, good, old]).map_err(|e| {
        Error::system(format!(
            "{e}; {into} moved while po-merge ran: run po-merge again"
        ))
    })?;
    Ok(())
}

/// Between SIGTERM and SIGKILL when a validation's tree is ended.
const GRACE: Duration = Duration::from_secs(2);

/// The merge loop's state.
struct Merger<'a> {
    wt: &'a Path,
    into: &'a str,
    base: &'a str,
    opts: &'a Options<'a>,
    logs: &'a Path,
    validations: &'a HashMap<u32, String>,
    report: &'a mut Report,
    cancelled: bool,
}

impl Merger<'_> {
    /// Merge `candidates` (indices of steps, in order); the last good commit.
    fn merge(&mut self, candidates: &[usize]) -> Result<String> {
        let final_check = self.opts.validate.clone();
        let mut good = self.head()?;
        let mut stop: Option<String> = None;
        let mut i = 0;
        while i < candidates.len() {
            let wave = self.report.steps[candidates[i]].wave;
            let end = i + candidates[i..]
                .iter()
                .take_while(|&&c| self.report.steps[c].wave == wave)
                .count();
            let check = self.validations.get(&wave).cloned();
            for &c in &candidates[i..end] {
                if stop.is_none() && self.interrupted() {
                    stop = Some("interrupted".into());
                }
                if let Some(why) = &stop {
                    let s = &mut self.report.steps[c];
                    s.outcome = Outcome::NotReached;
                    s.reason = Some(why.clone());
                    continue;
                }
                self.merge_step(c)?;
                if check.is_none() && final_check.is_none() {
                    good = self.head()?;
                }
            }
            if stop.is_none()
                && let Some(cmd) = check
            {
                if self.validate(Some(wave), &cmd)? {
                    if final_check.is_none() {
                        good = self.head()?;
                    }
                } else {
                    git(self.wt, &["reset", "--quiet", "--hard", &good])?;
                    stop = Some(format!("wave {wave}'s validation failed"));
                }
            }
            i = end;
        }
        if stop.is_none()
            && let Some(cmd) = final_check
            && self.validate(None, &cmd)?
        {
            good = self.head()?;
        }
        Ok(good)
    }

    fn head(&self) -> Result<String> {
        git(self.wt, &["rev-parse", "HEAD"])
    }

    fn interrupted(&mut self) -> bool {
        self.cancelled |= self.opts.cancel.is_some_and(|c| c.load(Ordering::SeqCst));
        self.cancelled
    }

    fn merge_step(&mut self, c: usize) -> Result<()> {
        let (label, branch) = {
            let s = &self.report.steps[c];
            (s.label.clone(), s.branch.clone().unwrap_or_default())
        };
        let msg = format!("Merge {branch} ({label}) into {}", self.into);
        let outcome = integration::merge_one(self.wt, &branch, &msg)?;
        let with = match &outcome {
            MergeOutcome::Conflict(files) => self.conflicts_with(c, files),
            _ => Vec::new(),
        };
        let s = &mut self.report.steps[c];
        match outcome {
            MergeOutcome::Merged(commit) => {
                s.outcome = Outcome::Merged;
                s.commit = Some(commit);
            }
            MergeOutcome::AlreadyMerged => s.outcome = Outcome::AlreadyMerged,
            MergeOutcome::Failed(why) => {
                (self.opts.progress)(&format!("{label} ({branch}) not merged: {why}"));
                s.outcome = Outcome::Failed;
                s.reason = Some(why);
            }
            MergeOutcome::Conflict(files) => {
                (self.opts.progress)(&format!(
                    "{label} ({branch}) conflicts in {}; not merged",
                    files.join(", ")
                ));
                s.outcome = Outcome::Conflict;
                s.files = files;
                s.conflicts_with = with;
            }
        }
        Ok(())
    }

    /// Tasks merged before step `c` that it conflicts with: the predicted
    /// pairs, else those whose branch changed one of `files`.
    fn conflicts_with(&self, c: usize, files: &[String]) -> Vec<String> {
        let me = &self.report.steps[c].label;
        let merged: Vec<&Step> = self.report.steps[..c]
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Merged | Outcome::AlreadyMerged))
            .collect();
        let predicted: Vec<String> = merged
            .iter()
            .filter(|s| {
                self.report
                    .predicted_conflicts
                    .iter()
                    .any(|p| p.involves(me) && p.involves(&s.label))
            })
            .map(|s| s.label.clone())
            .collect();
        if !predicted.is_empty() {
            return predicted;
        }
        merged
            .iter()
            .filter(|s| {
                let range = format!(
                    "{}...{}",
                    s.base_commit.as_deref().unwrap_or(self.base),
                    s.branch.as_deref().unwrap_or_default()
                );
                git(self.wt, &["diff", "--name-only", &range, "--"])
                    .unwrap_or_default()
                    .lines()
                    .any(|f| files.iter().any(|c| c == f))
            })
            .map(|s| s.label.clone())
            .collect()
    }

    /// Run one validation in the scratch worktree; whether it passed.
    fn validate(&mut self, wave: Option<u32>, command: &str) -> Result<bool> {
        let name = match wave {
            Some(w) => format!("validation-wave-{w}.log"),
            None => "validation.log".to_string(),
        };
        let log = self.logs.join(name);
        (self.opts.progress)(&format!(
            "{}: {command}",
            wave.map_or("validation".to_string(), |w| format!("wave {w} validation"))
        ));
        let started = Instant::now();
        let never = AtomicBool::new(false);
        let limits = Limits {
            timeout: self.opts.timeout,
            grace: GRACE,
            interrupt: self.opts.cancel.unwrap_or(&never),
        };
        let verdict = integration::run_check(self.wt, command, &log, &limits)?;
        let (outcome, exit_code) = match verdict {
            Verdict::Passed => (ValidationOutcome::Passed, Some(0)),
            Verdict::Failed { code, .. } => (ValidationOutcome::Failed, code),
            Verdict::TimedOut => (ValidationOutcome::TimedOut, None),
            Verdict::Interrupted => {
                self.cancelled = true;
                (ValidationOutcome::Interrupted, None)
            }
        };
        self.report.validations.push(Validation {
            wave,
            command: command.to_string(),
            outcome,
            exit_code,
            seconds: (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
            log,
        });
        Ok(outcome == ValidationOutcome::Passed)
    }
}
