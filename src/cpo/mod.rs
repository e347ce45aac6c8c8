//! The `cpo` front end: a parallel directory (`manifest.json`, `prompts/`,
//! and after a run `logs/` and `report.json`) driven through the po tools.
//!
//! `cpo` never schedules anything itself: `run` calls `po-parse` and
//! `po-spawn` (argv, never a shell) and reads the status files they write.

pub mod board;
pub mod init;
pub mod integrate;
pub mod plan;
pub mod progress;
pub mod report;
pub mod run;
pub mod tools;
pub mod validate;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::protocol::Runtime;

pub const MANIFEST: &str = "manifest.json";
pub const REPORT: &str = "report.json";
pub const LOGS: &str = "logs";

/// What cpo passes on to every po tool it runs, and where the runtime is.
#[derive(Clone, Debug, Default)]
pub struct Tools {
    /// `--runtime-dir`, when given.
    pub runtime_dir: Option<PathBuf>,
    /// How many `-v`.
    pub verbose: u8,
}

impl Tools {
    pub fn runtime(&self) -> Result<Runtime> {
        Runtime::discover(self.runtime_dir.as_deref())
    }
}

/// Options of `cpo run` that go on to `po-spawn`.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub max_workers: Option<u32>,
    pub timeout: Option<u64>,
    pub agent_cmd: Option<String>,
    pub retry: bool,
    pub dry_run: bool,
    pub base: Option<String>,
    pub id: Option<String>,
    pub spawn_args: Vec<String>,
}

/// A parallel directory, given as `DIR` or `DIR/manifest.json`.
#[derive(Clone, Debug)]
pub struct ParallelDir {
    /// As the user wrote it, for messages and the seed's "Next step" line.
    pub shown: PathBuf,
    /// Absolute.
    pub path: PathBuf,
}

impl ParallelDir {
    pub fn open(given: &Path) -> Result<ParallelDir> {
        let dir = if given.file_name().is_some_and(|n| n == MANIFEST) && given.is_file() {
            given.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            given.to_path_buf()
        };
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        if !dir.is_dir() {
            return Err(Error::usage(format!(
                "open parallel directory {}: no such directory; create one with `cpo init {} -t \
                 TS-ID -n NAME`",
                dir.display(),
                dir.display()
            )));
        }
        let path = std::fs::canonicalize(&dir).map_err(Error::io("resolve", &dir))?;
        Ok(ParallelDir { shown: dir, path })
    }

    pub fn manifest(&self) -> PathBuf {
        self.path.join(MANIFEST)
    }

    pub fn logs(&self) -> PathBuf {
        self.path.join(LOGS)
    }

    pub fn report(&self) -> PathBuf {
        self.path.join(REPORT)
    }

    /// `DIR/sub` as the user would write it (`parallel/TS-1/logs/`).
    pub fn shown_join(&self, sub: &str) -> String {
        let base = self.shown.to_string_lossy();
        let base = base.trim_end_matches('/');
        if base.is_empty() || base == "." {
            sub.to_string()
        } else {
            format!("{base}/{sub}")
        }
    }
}
