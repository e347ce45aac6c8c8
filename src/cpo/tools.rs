//! Finding and calling the other po tools: `$PO_BIN_DIR`, then the directory
//! of the running `cpo` (an install or `target/…` puts them side by side),
//! then `PATH`. Always argv, never a shell.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Tools;

/// The program to run for the po tool `name` (`po-parse`, `po-spawn`, …).
pub fn program(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("PO_BIN_DIR") {
        let p = Path::new(&dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    on_path(name).unwrap_or_else(|| PathBuf::from(name))
}

/// `name` as found on `PATH`, if it is there and executable.
pub fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// `name ARGS…` with the options every tool shares passed through.
pub fn command<I, S>(name: &str, tools: &Tools, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut cmd = Command::new(program(name));
    if let Some(dir) = &tools.runtime_dir {
        cmd.arg("--runtime-dir").arg(dir);
    }
    for _ in 0..tools.verbose {
        cmd.arg("-v");
    }
    cmd.args(args.into_iter().map(Into::into));
    cmd
}

/// For messages: how a command line reads (each word quoted when needed).
pub fn shown(cmd: &Command) -> String {
    crate::text::shell_words(
        std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy()),
    )
}
