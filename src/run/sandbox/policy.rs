//! What a sandboxed agent may do, in one place: the [`Policy`] of one task,
//! made from the task's paths ([`Task`]) and the run's [`Options`], shown by
//! `po-spawn --dry-run` ([`Policy::describe`]) and turned into `bwrap`'s
//! argv in [`Policy::argv`], nowhere else.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{Network, Options};

/// A path the agent may change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// What the agent sees (and writes) at this path…
    pub target: PathBuf,
    /// …which is this path outside (the same, except for the private copy
    /// of the branch's ref directory).
    pub source: PathBuf,
    pub why: String,
}

/// The sandbox of one task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// The agent's working directory.
    pub workdir: PathBuf,
    /// Visible read-only again under the private `/tmp` (a repository or a
    /// runtime directory that lives there).
    pub under_tmp: Vec<PathBuf>,
    /// The repository's `.git`, made a private directory with its entries
    /// bound back read-only ([`Policy::git_entries`]): what git creates
    /// there (`packed-refs.lock` when a commit deletes a pseudo-ref, gc's
    /// notes) is private to the sandbox and thrown away.
    pub git_dir: Option<PathBuf>,
    /// Everything else is read-only; these are writable.
    pub writable: Vec<Grant>,
    /// Left read-only inside a writable path (the repository's own git
    /// settings, for `--isolation none`).
    pub read_only: Vec<PathBuf>,
    /// Not readable: an empty directory or an empty file in their place.
    pub hidden: Vec<PathBuf>,
    /// Variables taken out of the agent's environment (credentials po keeps
    /// for itself: pushing and pull requests happen outside).
    pub unset_env: Vec<String>,
    pub network: Network,
}

/// Where a task's git state is, for an agent that commits on its branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitPaths {
    /// The worktree's own admin directory (`<common>/worktrees/<name>`).
    pub admin: PathBuf,
    /// The repository's `.git`.
    pub common: PathBuf,
    /// `refs/heads/…` of the branch, without its last component's name:
    /// the directory a commit's `<ref>.lock` is made in.
    pub ref_dir: PathBuf,
    /// `logs/refs/heads/…`, the same for the branch's reflog.
    pub log_dir: PathBuf,
    /// Private stand-ins for those two directories, holding only this
    /// task's branch (po copies the branch's new tip back when the agent
    /// is done).
    pub private_refs: PathBuf,
    pub private_logs: PathBuf,
}

/// What a policy is made from.
#[derive(Clone, Debug)]
pub struct Task<'a> {
    pub workdir: &'a Path,
    /// `None` with `--isolation none` (the agent works in the repository).
    pub git: Option<&'a GitPaths>,
    /// What the agent must be able to read even where the policy makes a
    /// private directory (`/tmp`): the repository, the orchestration's
    /// directory (its prompt), the agent's program.
    pub readable: Vec<PathBuf>,
    pub log_file: &'a Path,
    /// The directory of the status relay's socket.
    pub relay_dir: Option<&'a Path>,
    pub home: Option<&'a Path>,
    /// The agent's own state ([`crate::run::agent::Agent::state_paths`]).
    pub agent_state: &'a [PathBuf],
    /// A plan (`--dry-run`): the task's paths are taken as they will be,
    /// made or not.
    pub planned: bool,
}

/// Secrets under the home directory no agent reads.
pub const HOME_SECRETS: &[&str] = &[
    ".ssh",
    ".aws",
    ".config/gh",
    ".gnupg",
    ".netrc",
    ".git-credentials",
    ".config/gcloud",
    ".azure",
    ".kube",
    ".docker/config.json",
    ".npmrc",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".password-store",
    ".local/share/keyrings",
];

/// Credentials in the environment that only po itself uses (`gh`, `git
/// push`), and agents' ways to the user's key agents.
pub const UNSET_ENV: &[&str] = &[
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "GH_ENTERPRISE_TOKEN",
    "GITHUB_ENTERPRISE_TOKEN",
    "SSH_AUTH_SOCK",
    "GPG_AGENT_INFO",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// What the agent may write (granted where it is, or from a private copy),
/// and what it may only read (with --isolation none, the repository's git
/// config and hooks).
fn writable(task: &Task, opts: &Options) -> (Vec<Grant>, Vec<PathBuf>) {
    let mut writable = Vec::new();
    let mut grant = |path: &Path, why: &str| {
        if !writable.iter().any(|g: &Grant| g.target == path) {
            writable.push(Grant {
                target: path.to_path_buf(),
                source: path.to_path_buf(),
                why: why.to_string(),
            });
        }
    };
    let mut read_only = Vec::new();
    match task.git {
        Some(git) => {
            grant(task.workdir, "the task's worktree");
            grant(
                &git.admin,
                "the worktree's git admin directory: its index, HEAD, logs",
            );
            grant(&git.common.join("objects"), "git's object store");
        }
        None => {
            grant(
                task.workdir,
                "the repository the agent works in, with --isolation none",
            );
            let dotgit = task.workdir.join(".git");
            read_only.extend(
                ["config", "hooks"]
                    .iter()
                    .map(|p| dotgit.join(p))
                    .filter(|p| p.exists()),
            );
        }
    }
    grant(task.log_file, "the task's log");
    for state in task.agent_state {
        // A missing directory is made for it; a missing file is not.
        if state.exists() || (task.planned && state.extension().is_none()) {
            grant(state, "the agent's own state");
        }
    }
    for extra in &opts.write {
        grant(extra, "--sandbox-write");
    }
    if let Some(git) = task.git {
        writable.push(Grant {
            target: git.ref_dir.clone(),
            source: git.private_refs.clone(),
            why: "the task's branch ref, in a private copy of its directory".into(),
        });
        writable.push(Grant {
            target: git.log_dir.clone(),
            source: git.private_logs.clone(),
            why: "the task's branch reflog, in a private copy of its directory".into(),
        });
    }
    if let Some(relay) = task.relay_dir {
        writable.push(Grant {
            target: relay.to_path_buf(),
            source: relay.to_path_buf(),
            why: "po-status set's relay to the supervisor".into(),
        });
    }
    writable.retain(|g| task.planned || g.source.exists());
    (writable, read_only)
}

/// What is hidden from the agent: the home's secrets, the session's
/// runtime directory and agent socket, --sandbox-hide; as bwrap mounts
/// over them (what a symlink points to).
fn hidden(task: &Task, opts: &Options) -> Vec<PathBuf> {
    let mut hidden: Vec<PathBuf> = Vec::new();
    if let Some(home) = task.home {
        hidden.extend(HOME_SECRETS.iter().map(|s| home.join(s)));
    }
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|r| !r.is_empty()) {
        hidden.push(PathBuf::from(run));
    }
    if let Some(sock) = std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
        hidden.push(PathBuf::from(sock));
    }
    hidden.extend(opts.hide.iter().cloned());
    hidden.retain(|p| p.symlink_metadata().is_ok());
    // bwrap mounts over what a symlink points to.
    let mut hidden: Vec<PathBuf> = hidden
        .into_iter()
        .map(|p| p.canonicalize().unwrap_or(p))
        .collect();
    hidden.dedup();
    hidden
}

/// The readable paths under /tmp (outermost only), bound back over the
/// sandbox's own /tmp.
fn under_tmp(task: &Task) -> Vec<PathBuf> {
    let tmp = Path::new("/tmp");
    let mut under_tmp: Vec<PathBuf> = Vec::new();
    for p in &task.readable {
        if p.starts_with(tmp)
            && p.as_path() != tmp
            && p.exists()
            && !under_tmp.iter().any(|q| p.starts_with(q))
        {
            under_tmp.retain(|q| !q.starts_with(p));
            under_tmp.push(p.clone());
        }
    }
    under_tmp
}

impl Policy {
    /// The policy of `task` under `opts`. Paths that do not exist are left
    /// out (nothing to grant or to hide), except the agent's state
    /// directories, which the caller makes first.
    pub fn for_task(task: &Task, opts: &Options) -> Policy {
        let (writable, read_only) = writable(task, opts);
        Policy {
            workdir: task.workdir.to_path_buf(),
            git_dir: task.git.map(|g| g.common.clone()),
            under_tmp: under_tmp(task),
            writable,
            read_only,
            hidden: hidden(task, opts),
            unset_env: UNSET_ENV.iter().map(|s| s.to_string()).collect(),
            network: opts.network,
        }
    }

    /// The entries of the repository's `.git` bound back into its private
    /// stand-in, read when a command starts (so a `packed-refs` made since
    /// is there): all but the object store (bound writable) and the main
    /// checkout's passing state (locks, its index, `MERGE_HEAD` and the
    /// like, an operation in progress), which may vanish before `bwrap`
    /// binds it and which no agent needs.
    pub fn git_entries(&self) -> Vec<PathBuf> {
        const PASSING: &[&str] = &[
            "objects",
            "index",
            "AUTO_MERGE",
            "COMMIT_EDITMSG",
            "MERGE_MSG",
            "MERGE_MODE",
            "SQUASH_MSG",
            "sequencer",
            "rebase-merge",
            "rebase-apply",
            "gc.pid",
            "gc.log",
        ];
        let Some(dir) = &self.git_dir else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| {
                        let name = e.file_name();
                        let name = name.to_string_lossy();
                        !(PASSING.contains(&name.as_ref())
                            || name.ends_with(".lock")
                            || (name.ends_with("_HEAD") && name != "HEAD"))
                    })
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// `bwrap`'s argv (without the program) for running `command` under this
    /// policy. The order matters: the root read-only first, then the private
    /// `/dev`, `/proc` and `/tmp`, then what is writable, then what stays
    /// read-only within it, and what is hidden last, so a hidden path inside
    /// a writable one stays hidden.
    pub fn argv(&self, command: &[OsString]) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push =
            |words: &[&std::ffi::OsStr]| a.extend(words.iter().map(|w| w.to_os_string()));
        // A new session: no way to the terminal's input (TIOCSTI). Every
        // namespace of its own; the network shared unless asked not to.
        push(&["--die-with-parent".as_ref(), "--new-session".as_ref()]);
        push(&["--unshare-all".as_ref()]);
        if self.network == Network::On {
            push(&["--share-net".as_ref()]);
        }
        push(&["--ro-bind".as_ref(), "/".as_ref(), "/".as_ref()]);
        push(&["--dev".as_ref(), "/dev".as_ref()]);
        push(&["--proc".as_ref(), "/proc".as_ref()]);
        push(&["--tmpfs".as_ref(), "/tmp".as_ref()]);
        for p in &self.under_tmp {
            push(&["--ro-bind".as_ref(), p.as_os_str(), p.as_os_str()]);
        }
        if let Some(dir) = &self.git_dir {
            push(&["--tmpfs".as_ref(), dir.as_os_str()]);
            for p in &self.git_entries() {
                push(&["--ro-bind".as_ref(), p.as_os_str(), p.as_os_str()]);
            }
        }
        for g in &self.writable {
            push(&[
                "--bind".as_ref(),
                g.source.as_os_str(),
                g.target.as_os_str(),
            ]);
        }
        for p in &self.read_only {
            push(&["--ro-bind".as_ref(), p.as_os_str(), p.as_os_str()]);
        }
        for p in &self.hidden {
            if p.is_dir() {
                // An empty directory, read-only.
                push(&["--tmpfs".as_ref(), p.as_os_str()]);
                push(&["--remount-ro".as_ref(), p.as_os_str()]);
            } else {
                push(&["--ro-bind".as_ref(), "/dev/null".as_ref(), p.as_os_str()]);
            }
        }
        for v in &self.unset_env {
            push(&["--unsetenv".as_ref(), v.as_ref()]);
        }
        push(&["--chdir".as_ref(), self.workdir.as_os_str()]);
        push(&["--".as_ref()]);
        a.extend(command.iter().cloned());
        a
    }

    /// The policy for a person to read, one line each, indented by `indent`.
    pub fn describe(&self, indent: &str) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{indent}read-only: everything else (/ bound read-only); private /dev, /proc and /tmp\n"
        ));
        for p in &self.under_tmp {
            out.push_str(&format!(
                "{indent}readable:  {} (under /tmp)\n",
                p.display()
            ));
        }
        if let Some(dir) = &self.git_dir {
            let names: Vec<String> = self
                .git_entries()
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            out.push_str(&format!(
                "{indent}private:   {} (what git makes there is thrown away; {} read-only)\n",
                dir.display(),
                if names.is_empty() {
                    "its entries".to_string()
                } else {
                    names.join(", ")
                }
            ));
        }
        for g in &self.writable {
            if g.source == g.target {
                out.push_str(&format!(
                    "{indent}writable:  {} ({})\n",
                    g.target.display(),
                    g.why
                ));
            } else {
                out.push_str(&format!(
                    "{indent}writable:  {} ← {} ({})\n",
                    g.target.display(),
                    g.source.display(),
                    g.why
                ));
            }
        }
        for p in &self.read_only {
            out.push_str(&format!("{indent}read-only: {}\n", p.display()));
        }
        for p in &self.hidden {
            out.push_str(&format!("{indent}hidden:    {}\n", p.display()));
        }
        out.push_str(&format!(
            "{indent}env unset: {}\n",
            self.unset_env.join(" ")
        ));
        out.push_str(&format!(
            "{indent}network:   {}\n",
            match self.network {
                Network::On => "on (--sandbox-network none to cut it)",
                Network::None => "none (loopback only)",
            }
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(root: &Path) -> GitPaths {
        let common = root.join("repo/.git");
        GitPaths {
            admin: common.join("worktrees/agent-1"),
            ref_dir: common.join("refs/heads/feat"),
            log_dir: common.join("logs/refs/heads/feat"),
            private_refs: root.join("private/refs"),
            private_logs: root.join("private/logs"),
            common,
        }
    }

    #[test]
    fn the_argv_binds_what_is_writable_and_hides_secrets_last() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let git = paths(root);
        let wt = root.join("wt");
        let home = root.join("home");
        for d in [
            &wt,
            &git.admin,
            &git.common.join("objects"),
            &git.ref_dir,
            &git.private_refs,
            &git.private_logs,
            &home.join(".ssh"),
            &home.join(".claude"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(home.join(".netrc"), "machine x").unwrap();
        let log = root.join("agent-1.log");
        std::fs::write(&log, "").unwrap();
        let state = vec![home.join(".claude"), home.join(".claude.json")];
        let task = Task {
            workdir: &wt,
            git: Some(&git),
            readable: vec![root.join("repo")],
            log_file: &log,
            relay_dir: None,
            home: Some(&home),
            agent_state: &state,
            planned: false,
        };
        let opts = Options {
            network: Network::None,
            ..Options::default()
        };
        let policy = Policy::for_task(&task, &opts);
        let targets: Vec<&Path> = policy.writable.iter().map(|g| g.target.as_path()).collect();
        assert!(targets.contains(&wt.as_path()));
        assert!(targets.contains(&git.admin.as_path()));
        assert!(targets.contains(&git.ref_dir.as_path()));
        assert!(targets.contains(&home.join(".claude").as_path()));
        // Not there, so not granted; the config and hooks never are.
        assert!(!targets.contains(&home.join(".claude.json").as_path()));
        assert!(
            !targets
                .iter()
                .any(|t| t.ends_with("config") || t.ends_with("hooks"))
        );
        assert!(policy.hidden.contains(&home.join(".ssh")));
        assert!(policy.hidden.contains(&home.join(".netrc")));
        assert!(!policy.hidden.contains(&home.join(".aws")));

        let argv: Vec<String> = policy
            .argv(&["true".into()])
            .into_iter()
            .map(|w| w.into_string().unwrap())
            .collect();
        let joined = argv.join(" ");
        assert!(joined.starts_with("--die-with-parent --new-session --unshare-all --ro-bind / /"));
        assert!(!joined.contains("--share-net"), "{joined}");
        let at = |w: &str| joined.find(w).unwrap_or_else(|| panic!("{w} in {joined}"));
        assert!(
            at(&format!(
                "--bind {} {}",
                git.private_refs.display(),
                git.ref_dir.display()
            )) > 0
        );
        assert!(at(&format!("--tmpfs {}", home.join(".ssh").display())) > at("--bind"));
        assert!(
            at(&format!(
                "--ro-bind /dev/null {}",
                home.join(".netrc").display()
            )) > 0
        );
        assert!(joined.ends_with(&format!("--chdir {} -- true", wt.display())));
        assert!(policy.describe("  ").contains("network:   none"));
    }
}
