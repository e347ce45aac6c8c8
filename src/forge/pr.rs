//! Pull requests for finished tasks: push the branch, `gh pr create`, record it.

use std::path::Path;

use super::Gh;
use crate::error::Result;

/// Push the task's branch to `remote` and open a PR against `base`; record
/// `pr_number` and `pr_url` in the status file under its lock.
pub fn open_pr(
    status_file: &Path,
    repo: &Path,
    remote: &str,
    base: &str,
    gh: &Gh,
) -> Result<(u64, String)> {
    let _ = (status_file, repo, remote, base, gh);
    unimplemented!()
}
