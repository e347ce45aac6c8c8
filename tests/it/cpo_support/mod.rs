//! Shared by the cpo and examples tests: temp git repositories, the built
//! binaries, and small readers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A hang guard, not a speed requirement.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// The directory holding the built po binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_cpo"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A temp directory holding a fresh repository (`repo/`, one commit) and
/// room beside it for scripts that must stay out of the repository.
pub struct Repo {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Repo {
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Beside the repository, not in it.
    pub fn scratch(&self) -> &Path {
        self.tmp.path()
    }
}

pub fn repo() -> Repo {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    std::fs::create_dir(&root).unwrap();
    let dir = root.as_path();
    git(dir, &["init", "-q"]);
    git(dir, &["checkout", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "po test"]);
    git(dir, &["config", "user.email", "test@example.invalid"]);
    git(dir, &["config", "commit.gpgsign", "false"]);
    std::fs::write(dir.join("README.md"), "sample project\n").unwrap();
    git(dir, &["add", "README.md"]);
    git(dir, &["commit", "-q", "-m", "initial"]);
    Repo { tmp, root }
}

/// `cpo ARGS` (or another tool) in `dir`, with a clean po environment.
pub fn cmd(tool: &str, dir: &Path) -> assert_cmd::Command {
    let mut c = match tool {
        "cpo" => assert_cmd::cargo::cargo_bin_cmd!("cpo"),
        "po-status" => assert_cmd::cargo::cargo_bin_cmd!("po-status"),
        other => panic!("no binary {other}"),
    };
    c.current_dir(dir)
        .env_remove("PO_RUNTIME_DIR")
        .env_remove("PO_AGENT_CMD")
        .env_remove("PO_LOG")
        .env("NO_COLOR", "1")
        .env("PATH", path_with_bins())
        .timeout(TIMEOUT);
    c
}

/// `PATH` with the built binaries first.
pub fn path_with_bins() -> std::ffi::OsString {
    let mut paths = vec![bin_dir()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

pub fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

pub fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}
