//! One error type for the library, one mapping from error to exit code.
//!
//! Every message reads after "failed to …": `po-parse: failed to read manifest …`.

use std::path::{Path, PathBuf};

/// Exit codes shared by every tool (the seed's table plus the usual Unix ones).
pub mod exit {
    pub const SUCCESS: i32 = 0;
    /// At or above the success threshold, but not everything succeeded.
    pub const PARTIAL: i32 = 1;
    /// Below the success threshold.
    pub const MAJORITY_FAILURE: i32 = 2;
    pub const PARSE: i32 = 3;
    /// A dependency cycle, a merge conflict, a failed wave validation.
    pub const VALIDATION: i32 = 4;
    pub const GITHUB: i32 = 5;
    pub const SYSTEM: i32 = 9;
    /// `EX_USAGE` from sysexits(3).
    pub const USAGE: i32 = 64;
    /// `EX_TEMPFAIL`: a task's supervisor found its liveness lock taken
    /// (another process runs the task); nothing was changed.
    pub const BUSY: i32 = 75;
    pub const INTERRUPTED: i32 = 130;

    /// The success threshold, in percent, when none is configured.
    pub const DEFAULT_THRESHOLD: u32 = 80;

    /// The code for `successful` of `total` tasks at `threshold` percent:
    /// 0 all succeeded, 1 at or above the threshold, 2 below it.
    pub fn by_threshold(successful: usize, total: usize, threshold: u32) -> i32 {
        if successful >= total {
            SUCCESS
        } else if (successful as u128) * 100 >= u128::from(threshold) * total as u128 {
            PARTIAL
        } else {
            MAJORITY_FAILURE
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn thresholds_split_all_partial_and_majority() {
            assert_eq!(super::by_threshold(5, 5, 80), 0);
            assert_eq!(super::by_threshold(4, 5, 80), 1);
            assert_eq!(super::by_threshold(3, 5, 80), 2);
            assert_eq!(super::by_threshold(3, 5, 60), 1);
            assert_eq!(super::by_threshold(0, 0, 80), 0);
            assert_eq!(super::by_threshold(0, 3, 0), 1);
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why git refused a command, where po does something about it (read from
/// git's message once, by [`crate::git`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GitRefusal {
    /// A worktree path git still lists though its directory is gone (`is a
    /// missing but already registered worktree`, `… but locked …`).
    MissingButRegistered,
    /// What the command would create (a branch, a path) exists already.
    AlreadyExists,
    /// Another worktree's records were half-written while git read them
    /// (`failed to read .git/worktrees/…/commondir`).
    WorktreeRace,
    /// Anything else.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that cannot be understood: a manifest, an issue, a markdown file.
    #[error("parse {what}: {detail}")]
    Parse { what: String, detail: String },

    /// Input that parses but cannot be run: a cycle, a conflict, a failed validation.
    #[error("validate {what}: {detail}")]
    Validation { what: String, detail: String },

    /// `gh` is missing, unauthenticated, rate limited or answered an error.
    #[error("run `gh {action}`: {detail}")]
    Gh { action: String, detail: String },

    /// An operating-system error on a named path. The OS error is part of the
    /// message, so it is not also the error's `source()`: a report that prints
    /// the causes after the message would show it twice.
    #[error("{action} {}: {cause}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },

    /// git refused a command; its message, and the reason po acts on.
    #[error("run `git {command}` in {}: {message}", dir.display())]
    Git {
        command: String,
        dir: PathBuf,
        message: String,
        refusal: GitRefusal,
    },

    /// A status or orchestration file that is not what it should be.
    #[error("read status file {}: {detail}", path.display())]
    BadStatus { path: PathBuf, detail: String },

    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),

    /// Anything else the system refused.
    #[error("{0}")]
    System(String),

    #[error("finish: interrupted")]
    Interrupted,
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Parse { .. } => exit::PARSE,
            Error::Validation { .. } => exit::VALIDATION,
            Error::Gh { .. } => exit::GITHUB,
            Error::Io { .. } | Error::BadStatus { .. } | Error::System(_) | Error::Git { .. } => {
                exit::SYSTEM
            }
            Error::Usage(_) => exit::USAGE,
            Error::Interrupted => exit::INTERRUPTED,
        }
    }

    pub fn parse(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Parse {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub fn validation(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Validation {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub fn gh(action: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Gh {
            action: action.into(),
            detail: detail.into(),
        }
    }

    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub fn system(msg: impl Into<String>) -> Self {
        Error::System(msg.into())
    }

    /// Why git refused, when this is git's refusal.
    pub fn git_refusal(&self) -> Option<GitRefusal> {
        match self {
            Error::Git { refusal, .. } => Some(*refusal),
            _ => None,
        }
    }

    /// The message with every cause after it, `: `-separated, as a tool
    /// prints it after "failed to".
    pub fn chain(&self) -> String {
        let mut msg = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            msg.push_str(&format!(": {s}"));
            source = s.source();
        }
        msg
    }

    /// `map_err(Error::io("read", &path))`
    pub fn io(
        action: &'static str,
        path: impl AsRef<Path>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.as_ref().to_path_buf();
        move |cause| Error::Io {
            action,
            path,
            cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_os_error_is_named_once() {
        let e = Error::io("write", "/data/summary.json")(std::io::Error::from_raw_os_error(
            libc::ENOSPC,
        ));
        assert_eq!(
            format!("po-summarize: failed to {}", e.chain()),
            "po-summarize: failed to write /data/summary.json: No space left on device (os error 28)"
        );
        assert_eq!(e.exit_code(), exit::SYSTEM);
    }
}
