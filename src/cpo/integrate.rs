//! `cpo integrate DIR`: merge the completed tasks of a parallel directory's
//! orchestration into one integration branch and validate it, through
//! `po-merge` (argv, never a shell). Each wave's `validation` from the
//! manifest runs on the merged result; the exit code is po-merge's.

use std::path::{Path, PathBuf};

use super::plan::Plan;
use super::{ParallelDir, Tools, board, run, tools};
use crate::error::{Error, Result};

/// Options of `cpo integrate` that go on to `po-merge`.
#[derive(Clone, Debug, Default)]
pub struct IntegrateOptions {
    pub id: Option<String>,
    pub into: Option<String>,
    pub validate: Option<String>,
    pub timeout: Option<u64>,
    pub dry_run: bool,
    pub json: bool,
}

pub fn command(common: &Tools, dir: &Path, opts: &IntegrateOptions) -> Result<i32> {
    let pd = ParallelDir::open(dir)?;
    let plan = Plan::load(&pd.path)?;
    let id = plan.orchestration_id(opts.id.as_deref())?;
    let orch = orchestration_dir(common, &pd, &id)?;
    let mut args: Vec<std::ffi::OsString> = vec![orch.into_os_string()];
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            args.push(name.into());
            args.push(v.into());
        }
    };
    flag("--into", opts.into.clone());
    flag("--validate", opts.validate.clone());
    flag("--timeout", opts.timeout.map(|t| t.to_string()));
    if opts.dry_run {
        args.push("--dry-run".into());
    }
    if opts.json {
        args.push("--json".into());
    }
    let mut cmd = tools::command("po-merge", common, args);
    tracing::debug!("running {}", tools::shown(&cmd));
    let status = cmd.status().map_err(|e| run::not_found_or("po-merge", e))?;
    Ok(run::code_of(status))
}

/// The orchestration `cpo run` made for this directory: under the runtime
/// root, else where `report.json` says it was.
fn orchestration_dir(common: &Tools, pd: &ParallelDir, id: &str) -> Result<PathBuf> {
    let runtime = common.runtime()?;
    let dir = runtime.orchestration_dir(id);
    if dir.is_dir() {
        return Ok(dir);
    }
    board::recorded_orchestration(pd).ok_or_else(|| {
        Error::usage(format!(
            "integrate {}: orchestration {id} has not run (no {}); run `cpo run {}` first",
            pd.shown.display(),
            dir.display(),
            pd.shown.display()
        ))
    })
}
