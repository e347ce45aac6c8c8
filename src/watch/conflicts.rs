//! Conflicts between an orchestration's completed branches, for a reader
//! that looks again and again (po-watch): computed with `git merge-tree`
//! through [`crate::integration::conflicts`], remembered by commit ids in memory
//! and in the orchestration's `.conflicts.json` cache (a dot file, written
//! atomically, best effort; never a status file). Nothing is computed while
//! fewer than two completed tasks have a branch.

use std::path::PathBuf;

use crate::integration::conflicts::{Branch, Conflict, PerOrchestration};
use crate::protocol::view::OrchestrationView;

#[derive(Debug, Default)]
pub struct Conflicts {
    per: PerOrchestration,
    /// The repository of the current directory, for orchestrations whose
    /// directory is outside any repository (`--runtime-dir`).
    repo: Option<PathBuf>,
}

impl Conflicts {
    pub fn new(repo: Option<PathBuf>) -> Conflicts {
        Conflicts {
            per: PerOrchestration::default(),
            repo,
        }
    }

    /// For each view, the conflicts between its completed branches.
    pub fn find(&mut self, views: &[OrchestrationView]) -> Vec<Vec<Conflict>> {
        self.per.new_round();
        views
            .iter()
            .map(|v| {
                let branches = Branch::of_completed(v);
                self.per
                    .predict(&v.dir, self.repo.as_deref(), &branches, true)
            })
            .collect()
    }
}
