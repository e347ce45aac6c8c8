//! Conflicts between completed branches, as soon as they exist: every pair
//! is merged in memory with `git merge-tree --write-tree` (nothing is checked
//! out, no ref moves), and each pair that conflicts is named with its files:
//! `agent-2 ↔ agent-4 conflict: src/user.py`.
//!
//! Two branches can only conflict where both touch the same path (or one
//! touches a directory the other touches a file inside), so each branch's
//! touched paths against its base are read first (`git diff --name-only`) and
//! only overlapping pairs are merged. A branch whose base is unknown is merged
//! with every other.
//!
//! Results depend on nothing but commit ids, so they are cached by them: in
//! memory, and in `<orchestration dir>/.conflicts.json` (written atomically,
//! a dot file that file watchers skip). A cache that cannot be read or
//! written only costs time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::git;
use crate::protocol::view::OrchestrationView;
use crate::protocol::{State, store};

/// The cache's file name inside an orchestration directory.
pub const CACHE_FILE: &str = ".conflicts.json";
const CACHE_VERSION: u32 = 1;
/// Files named on one line before `+N more`.
const FILES_SHOWN: usize = 5;

/// A branch to check, with the name people know its task by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branch {
    pub label: String,
    pub branch: String,
    /// The commit the task started from (its `base_commit`), if recorded.
    pub base: Option<String>,
}

impl Branch {
    /// The completed tasks of `view` that have a branch, by the label they
    /// are shown by.
    pub fn of_completed(view: &OrchestrationView) -> Vec<Branch> {
        view.tasks()
            .filter(|t| t.state() == State::Completed)
            .filter_map(|t| {
                Some(Branch {
                    label: t.label.clone(),
                    branch: t.status.branch.clone()?,
                    base: t.status.base_commit.clone(),
                })
            })
            .collect()
    }
}

/// Two branches that do not merge cleanly.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub a: String,
    pub b: String,
    pub branch_a: String,
    pub branch_b: String,
    /// The paths that conflict, as `git merge-tree` names them.
    pub files: Vec<String>,
}

impl Conflict {
    /// `agent-2 ↔ agent-4 conflict: src/user.py`
    pub fn line(&self) -> String {
        let mut files = self
            .files
            .iter()
            .take(FILES_SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if self.files.len() > FILES_SHOWN {
            files.push_str(&format!(" (+{} more)", self.files.len() - FILES_SHOWN));
        }
        format!("{} ↔ {} conflict: {files}", self.a, self.b)
    }

    /// Whether `label` is one side of this conflict.
    pub fn involves(&self, label: &str) -> bool {
        self.a == label || self.b == label
    }
}

#[derive(Serialize, Deserialize, Default, Debug)]
struct Cache {
    version: u32,
    /// `<base>...<tip>` → the paths the tip changed since the base.
    #[serde(default)]
    touched: BTreeMap<String, Vec<String>>,
    /// `<tip> <tip>` (sorted) → the conflicting paths, empty when clean.
    #[serde(default)]
    pairs: BTreeMap<String, Vec<String>>,
}

/// Predicts conflicts in one repository, remembering every answer.
#[derive(Debug)]
pub struct Predictor {
    repo: PathBuf,
    cache: Cache,
    file: Option<PathBuf>,
    /// Keys looked at by the last [`Predictor::predict`]; the rest is dropped on save.
    used: HashSet<String>,
    dirty: bool,
}

impl Predictor {
    pub fn new(repo: &Path) -> Predictor {
        Predictor {
            repo: repo.to_path_buf(),
            cache: Cache {
                version: CACHE_VERSION,
                ..Cache::default()
            },
            file: None,
            used: HashSet::new(),
            dirty: false,
        }
    }

    /// Use (and later [`save`](Predictor::save) to) the cache file of the
    /// orchestration directory `dir`. An unreadable cache is ignored.
    pub fn cached_in(mut self, dir: &Path) -> Predictor {
        let file = dir.join(CACHE_FILE);
        if let Ok(cache) = store::read_json::<Cache>(&file)
            && cache.version == CACHE_VERSION
        {
            self.cache = cache;
        }
        self.file = Some(file);
        self
    }

    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// Every pair of `branches` that conflicts, in the order given. Branches
    /// that do not exist are left out.
    pub fn predict(&mut self, branches: &[Branch]) -> Result<Vec<Conflict>> {
        let tips = git::branch_tips(&self.repo)?;
        self.predict_at(branches, &tips)
    }

    /// [`Predictor::predict`] with the branch tips already read.
    pub fn predict_at(
        &mut self,
        branches: &[Branch],
        tips: &HashMap<String, String>,
    ) -> Result<Vec<Conflict>> {
        self.used.clear();
        let mut known: Vec<(&Branch, String, Option<Vec<String>>)> = Vec::new();
        for b in branches {
            let Some(tip) = tips.get(&b.branch) else {
                continue;
            };
            // A base git cannot diff against (gone, not a commit): unknown.
            let touched = b
                .base
                .as_ref()
                .and_then(|base| self.touched(base, tip).ok());
            known.push((b, tip.clone(), touched));
        }
        let mut conflicts = Vec::new();
        for (i, (a, tip_a, touched_a)) in known.iter().enumerate() {
            for (b, tip_b, touched_b) in &known[i + 1..] {
                if tip_a == tip_b {
                    continue;
                }
                if let (Some(ta), Some(tb)) = (touched_a, touched_b)
                    && !overlap(ta, tb)
                {
                    continue;
                }
                let files = match self.pair(tip_a, tip_b) {
                    Ok(f) => f,
                    Err(e) => {
                        // Unrelated histories, a missing object: no prediction
                        // for this pair (a real merge will say).
                        tracing::warn!("predict {} and {}: failed to {e}", a.branch, b.branch);
                        continue;
                    }
                };
                if !files.is_empty() {
                    conflicts.push(Conflict {
                        a: a.label.clone(),
                        b: b.label.clone(),
                        branch_a: a.branch.clone(),
                        branch_b: b.branch.clone(),
                        files,
                    });
                }
            }
        }
        let before = self.cache.touched.len() + self.cache.pairs.len();
        let used = &self.used;
        self.cache.touched.retain(|k, _| used.contains(k));
        self.cache.pairs.retain(|k, _| used.contains(k));
        self.dirty |= self.cache.touched.len() + self.cache.pairs.len() != before;
        Ok(conflicts)
    }

    /// Write the cache file if anything changed since it was read.
    pub fn save(&mut self) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        store::write_json(file, &self.cache)?;
        self.dirty = false;
        Ok(())
    }

    fn touched(&mut self, base: &str, tip: &str) -> Result<Vec<String>> {
        let key = format!("{base}...{tip}");
        self.used.insert(key.clone());
        if let Some(paths) = self.cache.touched.get(&key) {
            return Ok(paths.clone());
        }
        let out = git::git_raw(
            &self.repo,
            &["diff", "--name-only", "--no-renames", "-z", &key, "--"],
        )?;
        let paths: Vec<String> = out
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        self.cache.touched.insert(key, paths.clone());
        self.dirty = true;
        Ok(paths)
    }

    fn pair(&mut self, a: &str, b: &str) -> Result<Vec<String>> {
        let key = if a < b {
            format!("{a} {b}")
        } else {
            format!("{b} {a}")
        };
        self.used.insert(key.clone());
        if let Some(files) = self.cache.pairs.get(&key) {
            return Ok(files.clone());
        }
        let files = git::merge_tree(&self.repo, a, b)?.conflicts;
        self.cache.pairs.insert(key, files.clone());
        self.dirty = true;
        Ok(files)
    }
}

/// Whether two sets of paths share a path, or one holds a directory of the other's.
fn overlap(a: &[String], b: &[String]) -> bool {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let exact: HashSet<&str> = large.iter().map(String::as_str).collect();
    let mut dirs: HashSet<&str> = HashSet::new();
    for p in large {
        dirs.extend(ancestors(p));
    }
    small.iter().any(|p| {
        exact.contains(p.as_str())
            || dirs.contains(p.as_str())
            || ancestors(p).any(|d| exact.contains(d))
    })
}

/// `a/b/c` → `a/b`, `a`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.char_indices()
        .filter(|&(_, c)| c == '/')
        .map(move |(i, _)| &path[..i])
}

/// Conflicts for the tasks of one orchestration, keeping one predictor per
/// orchestration directory (for a reader that looks again and again).
#[derive(Debug, Default)]
pub struct PerOrchestration {
    predictors: HashMap<PathBuf, Option<Predictor>>,
    /// Branch tips by repository, read once per round (see [`PerOrchestration::new_round`]).
    tips: HashMap<PathBuf, HashMap<String, String>>,
}

impl PerOrchestration {
    /// Branches may have moved: read their tips again on the next predictions.
    pub fn new_round(&mut self) {
        self.tips.clear();
    }

    /// Conflicts among `branches` of the orchestration in `dir` (its
    /// repository found from `dir`, else from `fallback_repo`). Problems
    /// (no repository, a git error) give no conflicts, logged at debug level.
    /// The cache file is written when `save` is set, best effort.
    pub fn predict(
        &mut self,
        dir: &Path,
        fallback_repo: Option<&Path>,
        branches: &[Branch],
        save: bool,
    ) -> Vec<Conflict> {
        if branches.len() < 2 {
            return Vec::new();
        }
        let predictor = self.predictors.entry(dir.to_path_buf()).or_insert_with(|| {
            let repo = crate::protocol::layout::repo_top(dir)
                .or_else(|| fallback_repo.map(Path::to_path_buf))?;
            Some(Predictor::new(&repo).cached_in(dir))
        });
        let Some(p) = predictor else {
            return Vec::new();
        };
        let tips = match self.tips.get(p.repo()) {
            Some(t) => t,
            None => match git::branch_tips(p.repo()) {
                Ok(t) => self.tips.entry(p.repo().to_path_buf()).or_insert(t),
                Err(e) => {
                    tracing::debug!("conflicts of {}: failed to {e}", dir.display());
                    return Vec::new();
                }
            },
        };
        let found = match p.predict_at(branches, tips) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("conflicts of {}: failed to {e}", dir.display());
                return Vec::new();
            }
        };
        if save && let Err(e) = p.save() {
            tracing::debug!("conflict cache of {}: failed to {e}", dir.display());
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_overlap_when_shared_or_nested() {
        let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert!(overlap(&s(&["src/a.py", "x"]), &s(&["src/a.py"])));
        assert!(overlap(&s(&["d"]), &s(&["d/y"])));
        assert!(overlap(&s(&["d/x/y"]), &s(&["d/x"])));
        assert!(!overlap(&s(&["src/a.py"]), &s(&["src/b.py"])));
        assert!(!overlap(&s(&["ab"]), &s(&["a/b"])));
        assert!(!overlap(&s(&[]), &s(&["a"])));
    }

    #[test]
    fn lines_name_both_sides_and_the_files() {
        let c = Conflict {
            a: "agent-2".into(),
            b: "agent-4".into(),
            branch_a: "x".into(),
            branch_b: "y".into(),
            files: (1..=7).map(|i| format!("f{i}")).collect(),
        };
        assert_eq!(
            c.line(),
            "agent-2 ↔ agent-4 conflict: f1, f2, f3, f4, f5 (+2 more)"
        );
        assert!(c.involves("agent-4") && !c.involves("agent-1"));
    }
}
