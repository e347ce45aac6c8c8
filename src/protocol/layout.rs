//! The runtime directory: where every file of an orchestration lives.
//!
//! ```text
//! <root>/parallel/<id>/orchestration.json
//! <root>/parallel/<id>/agent-<n>.status.json
//! <root>/parallel/<id>/prompts/agent-<n>.md
//! <root>/parallel/<id>/specs/agent-<n>.json       (a cluster job's spec)
//! <root>/parallel/<id>/summary.json, summary.md
//! <root>/logs/<session>/session.log, agent-<n>.log
//! <root>/worktrees/<id>/agent-<n>/
//! <root>/worktrees/<id>/integration/             (po-spawn's waves)
//! <root>/worktrees/.pool/                        (retired worktrees)
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use super::sanitize;
use crate::error::{Error, Result};

pub const ORCHESTRATION_FILE: &str = "orchestration.json";
pub const STATUS_SUFFIX: &str = ".status.json";
pub const SUMMARY_FILE: &str = "summary.json";
pub const SUMMARY_MARKDOWN: &str = "summary.md";
const PARALLEL: &str = "parallel";
const LOGS: &str = "logs";
const WORKTREES: &str = "worktrees";
const INTEGRATION: &str = "integration";
const PROMPTS: &str = "prompts";
const SPECS: &str = "specs";
const EXCLUDE_LINE: &str = ".claude/runtime/";

#[derive(Clone, Debug)]
pub struct Runtime {
    /// The runtime root (`<repo>/.claude/runtime` by default).
    pub root: PathBuf,
    /// The main repository's top level, when there is one.
    pub repo: Option<PathBuf>,
}

impl Runtime {
    /// `--runtime-dir` / `PO_RUNTIME_DIR` if given, else `<git top-level>/.claude/runtime`
    /// of the main worktree, else `./.claude/runtime`.
    pub fn discover(explicit: Option<&Path>) -> Result<Runtime> {
        let cwd = std::env::current_dir().map_err(Error::io("find", "the current directory"))?;
        let repo = repo_top(&cwd);
        let root = match explicit {
            Some(p) if p.is_absolute() => p.to_path_buf(),
            Some(p) => cwd.join(p),
            None => repo
                .as_deref()
                .unwrap_or(&cwd)
                .join(".claude")
                .join("runtime"),
        };
        Ok(Runtime { root, repo })
    }

    /// A runtime rooted at `root`, for tests and tools that were given one.
    pub fn at(root: impl Into<PathBuf>, repo: Option<PathBuf>) -> Runtime {
        Runtime {
            root: root.into(),
            repo,
        }
    }

    /// The repository the tasks of the orchestration directory `dir` ran
    /// in: the one holding `dir`, else this runtime's. `tool` names who asks,
    /// for the error.
    pub fn repo_of(&self, dir: &Path, tool: &str) -> Result<PathBuf> {
        repo_top(dir).or_else(|| self.repo.clone()).ok_or_else(|| {
            Error::usage(format!(
                "find the repository of {}: it is not inside one; run {tool} inside the \
                 repository the tasks ran in",
                dir.display()
            ))
        })
    }

    pub fn parallel_root(&self) -> PathBuf {
        self.root.join(PARALLEL)
    }

    pub fn orchestration_dir(&self, id: &str) -> PathBuf {
        self.parallel_root().join(id)
    }

    pub fn logs_dir(&self, session: &str) -> PathBuf {
        self.root.join(LOGS).join(session)
    }

    /// `<root>/worktrees`: every orchestration's worktrees, and the pool.
    pub fn worktrees_root(&self) -> PathBuf {
        self.root.join(WORKTREES)
    }

    /// `<root>/worktrees/<id>`: the worktrees of one orchestration.
    pub fn worktrees_of(&self, id: &str) -> PathBuf {
        self.worktrees_root().join(id)
    }

    pub fn worktree_dir(&self, id: &str, agent_id: &str) -> PathBuf {
        self.worktrees_of(id).join(agent_id)
    }

    /// The worktree po-spawn merges each wave in.
    pub fn integration_dir(&self, id: &str) -> PathBuf {
        self.worktrees_of(id).join(INTEGRATION)
    }

    /// Resolve `[ID|DIR]`: an existing orchestration directory, or an id under the root.
    pub fn resolve(&self, target: &str) -> Result<PathBuf> {
        let as_path = Path::new(target);
        if as_path.is_dir()
            && (as_path.join(ORCHESTRATION_FILE).exists() || !status_files(as_path)?.is_empty())
        {
            return absolute(as_path);
        }
        let id = sanitize::id(target)?;
        let dir = self.orchestration_dir(&id);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(Error::usage(format!(
                "find orchestration {target:?}: no directory {}; run `po-parse` first or pass \
                 --runtime-dir",
                dir.display()
            )))
        }
    }

    /// Orchestration directories under the root, newest first.
    pub fn orchestrations(&self) -> Result<Vec<PathBuf>> {
        let root = self.parallel_root();
        let entries = match fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &root)(e)),
        };
        let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .map(|p| {
                let t = fs::metadata(p.join(ORCHESTRATION_FILE))
                    .or_else(|_| fs::metadata(&p))
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (t, p)
            })
            .collect();
        dirs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Ok(dirs.into_iter().map(|(_, p)| p).collect())
    }

    /// Keep the runtime directory out of `git status`.
    pub fn exclude_from_git(&self) -> Result<()> {
        let Some(repo) = &self.repo else {
            return Ok(());
        };
        if !self.root.starts_with(repo) {
            return Ok(());
        }
        let Some(common) = git_common_dir(repo) else {
            return Ok(());
        };
        let info = common.join("info");
        let exclude = info.join("exclude");
        // Not rewritten unless it is a file read whole (a FIFO would block).
        let current = match crate::fsx::read_to_string(&exclude, crate::fsx::SMALL_MAX) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("read", &exclude)(e)),
        };
        if current.lines().any(|l| l.trim() == EXCLUDE_LINE) {
            return Ok(());
        }
        fs::create_dir_all(&info).map_err(Error::io("create", &info))?;
        let mut next = current;
        if !next.is_empty() && !next.ends_with('\n') {
            next.push('\n');
        }
        next.push_str(EXCLUDE_LINE);
        next.push('\n');
        fs::write(&exclude, next).map_err(Error::io("write", &exclude))
    }
}

/// `agent-<n>.status.json` of an orchestration directory, by agent number.
pub fn status_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(Error::io("list", dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(STATUS_SUFFIX) && !n.starts_with('.'))
        })
        .collect();
    files.sort_by_key(|p| (agent_number_of(p), p.clone()));
    Ok(files)
}

/// The agent id a status path names: `…/agent-3.status.json` → `agent-3`.
pub fn agent_id_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_suffix(STATUS_SUFFIX)
        .unwrap_or(&name)
        .to_string()
}

fn agent_number_of(path: &Path) -> u64 {
    super::schema::agent_number(&agent_id_of(path))
}

pub fn status_path(dir: &Path, agent_id: &str) -> PathBuf {
    dir.join(format!("{agent_id}{STATUS_SUFFIX}"))
}

/// `prompts/` of an orchestration directory.
pub fn prompts_dir(dir: &Path) -> PathBuf {
    dir.join(PROMPTS)
}

pub fn prompt_path(dir: &Path, agent_id: &str) -> PathBuf {
    prompts_dir(dir).join(format!("{agent_id}.md"))
}

/// `specs/` of an orchestration directory: what cluster jobs run.
pub fn specs_dir(dir: &Path) -> PathBuf {
    dir.join(SPECS)
}

/// The supervisor spec a cluster job runs the task from:
/// `specs/agent-<n>.json`.
pub fn spec_path(dir: &Path, agent_id: &str) -> PathBuf {
    specs_dir(dir).join(format!("{agent_id}.json"))
}

pub fn absolute(p: &Path) -> Result<PathBuf> {
    fs::canonicalize(p).map_err(Error::io("resolve", p))
}

/// The main worktree's top level of the repository containing `dir`.
pub fn repo_top(dir: &Path) -> Option<PathBuf> {
    let common = git_common_dir(dir)?;
    // `<top>/.git` for a normal repository; a bare repository has no top level.
    if common.file_name().is_some_and(|n| n == ".git") {
        common.parent().map(Path::to_path_buf)
    } else {
        git_output(dir, &["rev-parse", "--show-toplevel"]).map(PathBuf::from)
    }
}

fn git_common_dir(dir: &Path) -> Option<PathBuf> {
    git_output(
        dir,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )
    .map(PathBuf::from)
}

fn git_output(dir: &Path, args: &[&str]) -> Option<String> {
    crate::git::git(dir, args).ok().filter(|s| !s.is_empty())
}
