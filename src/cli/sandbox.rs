//! The sandbox's options, the same for po-spawn and po-react.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::run::sandbox::{self, Network};

/// `--sandbox` and the options that shape it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SandboxArgs {
    /// Run each agent, its setup command and everything they start under
    /// bubblewrap (bwrap): the filesystem is read-only except the task's
    /// worktree, what git needs to commit on its branch, its log and the
    /// agent's own state; secrets under ~ are hidden. A missing bwrap is an
    /// error (exit 9), never a run without the sandbox [env: PO_SANDBOX=1]
    #[arg(long, help_heading = "Sandbox")]
    pub sandbox: bool,

    /// The network inside the sandbox
    #[arg(long, value_enum, value_name = "MODE", help_heading = "Sandbox")]
    pub sandbox_network: Option<Network>,

    /// Another path the agent may not read: an empty directory or file in
    /// its place (repeatable)
    #[arg(long, value_name = "PATH", action = clap::ArgAction::Append, help_heading = "Sandbox")]
    pub sandbox_hide: Vec<PathBuf>,

    /// Another path the agent may write (repeatable)
    #[arg(long, value_name = "PATH", action = clap::ArgAction::Append, help_heading = "Sandbox")]
    pub sandbox_write: Vec<PathBuf>,
}

impl SandboxArgs {
    /// The sandbox the command line (or `PO_SANDBOX`) asks for; its paths made
    /// absolute from the directory the tool runs in.
    pub fn options(&self) -> Result<Option<sandbox::Options>> {
        if !(self.sandbox || env_flag("PO_SANDBOX")) {
            let given = [
                ("--sandbox-network", self.sandbox_network.is_some()),
                ("--sandbox-hide", !self.sandbox_hide.is_empty()),
                ("--sandbox-write", !self.sandbox_write.is_empty()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
                return Err(Error::usage(format!(
                    "use {flag}: it is for the sandbox; add --sandbox (or PO_SANDBOX=1)"
                )));
            }
            return Ok(None);
        }
        let cwd = std::env::current_dir().map_err(Error::io("read", "the current directory"))?;
        let absolute = |p: &PathBuf| {
            let p = cwd.join(p);
            p.canonicalize().unwrap_or(p)
        };
        let mut write = Vec::new();
        for p in &self.sandbox_write {
            let abs = absolute(p);
            if !abs.exists() {
                return Err(Error::usage(format!(
                    "use --sandbox-write {}: no such file or directory; make it first",
                    p.display()
                )));
            }
            write.push(abs);
        }
        Ok(Some(sandbox::Options {
            network: self.sandbox_network.unwrap_or_default(),
            hide: self.sandbox_hide.iter().map(absolute).collect(),
            write,
        }))
    }
}

/// An environment variable that says yes (`1`, `true`, `yes`, …).
pub fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        !v.is_empty() && v != "0" && v != "false" && v != "no"
    })
}
