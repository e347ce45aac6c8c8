//! The sandbox (`po-spawn --sandbox`): each agent, its setup command and
//! everything they start run under bubblewrap (`bwrap`), where the agent can
//! change its own worktree and nothing else.
//!
//! The prompt is text from an issue, which on a public repository anyone
//! can write, and agents run with their permission checks off. Inside the
//! sandbox the filesystem is read-only except what the task's [`Policy`]
//! grants (the worktree, what git needs to commit on the task's branch, the
//! log, the agent's own state, a private `/tmp`); secrets under the home
//! directory are hidden; the network is on unless `--sandbox-network none`.
//! The task's status is reported through the supervisor ([`relay`]), and
//! the branch's new tip is taken back by po ([`gitdir`]). Pushing and pull
//! requests stay outside, with po.
//!
//! A supervisor makes one [`Sandbox`] per task: [`Sandbox::open`] before the
//! setup command, [`Sandbox::command`] for each process it starts,
//! [`Sandbox::finish`] when the agent is done.

mod gitdir;
pub mod policy;
pub mod relay;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

pub use policy::Policy;

/// The program.
pub const PROGRAM: &str = "bwrap";
/// How to get it.
pub const INSTALL_HINT: &str = "install bubblewrap (apt-get install bubblewrap, dnf install \
                                bubblewrap), or run without --sandbox (and without PO_SANDBOX=1)";

/// Whether a sandboxed agent has the network.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The host's network (agents need their model's API)
    #[default]
    On,
    /// Loopback only
    None,
}

/// What the command line asks of the sandbox.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Options {
    #[serde(default)]
    pub network: Network,
    /// More paths the agent may not read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hide: Vec<PathBuf>,
    /// More paths the agent may write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write: Vec<PathBuf>,
}

/// `bwrap` on `path` (a `PATH` value), the way `execvp` finds it.
pub fn find(path: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(PROGRAM))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Why no sandbox can be made here, if it cannot: `bwrap` is missing, or it
/// cannot make the namespaces (a kernel without unprivileged user
/// namespaces). Runs `bwrap` once, the way a task's sandbox does.
pub fn probe(path: &OsStr) -> Option<String> {
    let Some(bwrap) = find(path) else {
        return Some(format!("{PROGRAM} is not on PATH; {INSTALL_HINT}"));
    };
    let out = Command::new(&bwrap)
        .args([
            "--die-with-parent",
            "--unshare-all",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
            "true",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => {
            let said = String::from_utf8_lossy(&o.stderr);
            let said = said
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Some(format!(
                "{} cannot make a sandbox here ({}{}); the kernel must allow unprivileged user \
                 namespaces (sysctl user.max_user_namespaces above 0, and \
                 kernel.unprivileged_userns_clone=1 or kernel.apparmor_restrict_unprivileged_userns=0 \
                 where the kernel has them)",
                bwrap.display(),
                crate::run::supervisor::describe_exit(o.status.code(), {
                    use std::os::unix::process::ExitStatusExt;
                    o.status.signal()
                }),
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {}", crate::text::one_line(said))
                }
            ))
        }
        Err(e) => Some(format!("start {}: {e}; {INSTALL_HINT}", bwrap.display())),
    }
}

/// Where a task runs, for its sandbox.
pub struct Place<'a> {
    pub options: &'a Options,
    pub workdir: &'a Path,
    /// The task's worktree (`None` with `--isolation none`).
    pub worktree: Option<&'a Path>,
    pub repo: &'a Path,
    pub branch: &'a str,
    pub status_file: &'a Path,
    pub log_file: &'a Path,
    pub home: Option<&'a Path>,
    pub agent_state: &'a [PathBuf],
    /// The agent's program, when it is a path (it must stay readable).
    pub program: Option<&'a Path>,
}

impl Place<'_> {
    fn readable(&self) -> Vec<PathBuf> {
        let mut r = vec![self.repo.to_path_buf()];
        r.extend(self.status_file.parent().map(Path::to_path_buf));
        r.extend(self.program.and_then(Path::parent).map(Path::to_path_buf));
        // po's own tools (`po-status`), beside the program supervising.
        r.extend(
            std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf)),
        );
        r
    }
}

/// The policy a task would get, for `--dry-run` (nothing is made; git's
/// paths are where a new worktree's would be).
pub fn planned(place: &Place) -> Policy {
    let git = place.worktree.map(|wt| {
        let common = place.repo.join(".git");
        let name = wt.file_name().map(PathBuf::from).unwrap_or_default();
        let parent = place.branch.rsplit_once('/').map(|(p, _)| p);
        let under = |base: &str| match parent {
            Some(p) => common.join(base).join(p),
            None => common.join(base),
        };
        let private = std::env::temp_dir().join("po-sandbox-…");
        policy::GitPaths {
            admin: common.join("worktrees").join(name),
            ref_dir: under("refs/heads"),
            log_dir: under("logs/refs/heads"),
            private_refs: private.join("refs"),
            private_logs: private.join("logs"),
            common,
        }
    });
    let relay = std::env::temp_dir().join("po-sandbox-…/relay");
    let task = policy::Task {
        workdir: place.workdir,
        git: git.as_ref(),
        readable: place.readable(),
        log_file: place.log_file,
        relay_dir: Some(&relay),
        home: place.home,
        agent_state: place.agent_state,
        planned: true,
    };
    Policy::for_task(&task, place.options)
}

/// `--dry-run`'s lines for a task's sandbox: its policy and the argv that
/// would run `command` in it.
pub fn plan_lines(place: &Place, command: &[String]) -> String {
    let policy = planned(place);
    let words: Vec<OsString> = command.iter().map(OsString::from).collect();
    let mut argv = vec![OsString::from(PROGRAM)];
    argv.extend(policy.argv(&words));
    format!(
        "    sandbox:\n{}    sandboxed: {}\n",
        policy.describe("      "),
        shell_words(&argv)
    )
}

fn shell_words(words: &[OsString]) -> String {
    crate::text::shell_words(words.iter().map(|w| w.to_string_lossy()))
}

/// One task's sandbox, from before its setup command until its agent is done.
pub struct Sandbox {
    bwrap: PathBuf,
    pub policy: Policy,
    /// Private to this run (the branch's ref directory, the relay's socket);
    /// removed when dropped.
    private: PathBuf,
    branch: Option<gitdir::Branch>,
    relay: Option<relay::Server>,
}

impl Sandbox {
    /// Make the sandbox of the task at `place`; `path` is the `PATH` to find
    /// `bwrap` on. The error is the task's.
    pub fn open(place: &Place, path: &OsStr) -> Result<Sandbox, String> {
        let bwrap =
            find(path).ok_or_else(|| format!("{PROGRAM} is not on PATH; {INSTALL_HINT}"))?;
        let private =
            private_dir().map_err(|e| format!("make the sandbox's private directory: {e}"))?;
        // Made first, so an error below removes the private directory.
        let mut sandbox = Sandbox {
            bwrap,
            policy: Policy::default(),
            private,
            branch: None,
            relay: None,
        };
        if let Some(wt) = place.worktree {
            sandbox.branch = Some(gitdir::Branch::prepare(
                place.repo,
                wt,
                place.branch,
                &sandbox.private,
            )?);
        }
        let relay_dir = sandbox.private.join("relay");
        std::fs::create_dir(&relay_dir)
            .map_err(|e| format!("create {}: {e}", relay_dir.display()))?;
        sandbox.relay = Some(
            relay::Server::start(
                relay_dir.join("status.sock"),
                place.status_file.to_path_buf(),
            )
            .map_err(|e| format!("listen for po-status set in {}: {e}", relay_dir.display()))?,
        );
        // The agent's state directories, made if missing (a file that is
        // missing stays so: the agent cannot make it).
        for state in place.agent_state {
            if !state.exists() && state.extension().is_none() {
                let _ = std::fs::create_dir_all(state);
            }
        }
        let task = policy::Task {
            workdir: place.workdir,
            git: sandbox.branch.as_ref().map(|b| &b.paths),
            readable: place.readable(),
            log_file: place.log_file,
            relay_dir: Some(&relay_dir),
            home: place.home,
            agent_state: place.agent_state,
            planned: false,
        };
        sandbox.policy = Policy::for_task(&task, place.options);
        Ok(sandbox)
    }

    /// The environment entries the sandboxed processes get beyond po's own.
    pub fn env(&self) -> Vec<(String, String)> {
        self.relay
            .iter()
            .map(|r| {
                (
                    relay::SOCKET_ENV.to_string(),
                    r.socket().to_string_lossy().into_owned(),
                )
            })
            .collect()
    }

    /// `program args…` under the sandbox.
    pub fn command(&self, program: &OsStr, args: &[OsString]) -> Command {
        let mut words = vec![program.to_os_string()];
        words.extend(args.iter().cloned());
        let mut cmd = Command::new(&self.bwrap);
        cmd.args(self.policy.argv(&words));
        cmd
    }

    /// The whole argv of `program args…` under the sandbox, for the log.
    pub fn shown(&self, program: &OsStr, args: &[OsString]) -> String {
        let mut words = vec![self.bwrap.clone().into_os_string()];
        words.extend(
            self.command(program, args)
                .get_args()
                .map(OsStr::to_os_string),
        );
        shell_words(&words)
    }

    /// The agent is done: check its git links and take its branch's new
    /// tip. An error fails the attempt.
    pub fn finish(&mut self, note: &mut dyn FnMut(&str)) -> Result<(), String> {
        self.relay = None;
        match self.branch.take() {
            Some(b) => b.finish(note),
            None => Ok(()),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.relay = None;
        let _ = std::fs::remove_dir_all(&self.private);
    }
}

/// A fresh directory only this user can enter, under the temporary directory.
fn private_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let mut last = None;
    for _ in 0..16 {
        let name = crate::run::agent::new_uuid()?;
        let dir = base.join(format!("po-sandbox-{}", &name[..13]));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::ErrorKind::AlreadyExists.into()))
}
