//! Shared by the `parse_*` tests: a temporary git repository to run
//! `po-parse` in, and fixtures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    /// A fresh git repository.
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "git init");
        Repo { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `po-parse` run in the repository, with no runtime override and no real `gh`.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::cargo::cargo_bin_cmd!("po-parse");
        c.current_dir(self.path())
            .env_remove("PO_RUNTIME_DIR")
            .env_remove("PO_LOG")
            .env("PO_GH", self.path().join("no-gh-here"))
            .env("PO_GH_BACKOFF_MS", "1")
            .timeout(std::time::Duration::from_secs(120));
        c
    }

    pub fn orchestration_dir(&self, id: &str) -> PathBuf {
        self.path().join(".claude/runtime/parallel").join(id)
    }

    pub fn status(&self, id: &str, n: usize) -> Value {
        read_json(
            &self
                .orchestration_dir(id)
                .join(format!("agent-{n}.status.json")),
        )
    }

    pub fn orchestration(&self, id: &str) -> Value {
        read_json(&self.orchestration_dir(id).join("orchestration.json"))
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/parse")
        .join(name)
}

pub fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn stdout_lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Titles of the written status files, in order.
pub fn titles(repo: &Repo, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for n in 1.. {
        let p = repo
            .orchestration_dir(id)
            .join(format!("agent-{n}.status.json"));
        if !p.exists() {
            break;
        }
        out.push(read_json(&p)["title"].as_str().unwrap().to_string());
    }
    out
}
