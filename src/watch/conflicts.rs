//! Conflicts between an orchestration's completed branches, for a reader
//! that looks again and again (po-watch): computed with `git merge-tree`
//! through [`crate::merge::conflicts`], remembered by commit ids in memory
//! and in the orchestration's `.conflicts.json` cache (a dot file, written
//! atomically, best effort; never a status file). Nothing is computed while
//! fewer than two completed tasks have a branch.

use std::path::PathBuf;

use super::view::OrchestrationView;
use crate::merge::conflicts::{Branch, PerOrchestration};
use crate::protocol::State;

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

    /// Fill in each view's `conflicts`.
    pub fn fill(&mut self, views: &mut [OrchestrationView]) {
        self.per.new_round();
        for v in views.iter_mut() {
            let branches: Vec<Branch> = v
                .tasks()
                .filter(|t| t.state == State::Completed)
                .filter_map(|t| {
                    Some(Branch {
                        label: t.label.clone(),
                        branch: t.branch.clone()?,
                        base: t.base_commit.clone(),
                    })
                })
                .collect();
            v.conflicts = self
                .per
                .predict(&v.dir, self.repo.as_deref(), &branches, true);
        }
    }
}
