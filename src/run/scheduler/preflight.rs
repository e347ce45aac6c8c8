//! Pre-flight (the seed's "resource availability"): before deploying, free
//! memory against the agents that will run at once, free disk against the
//! worktrees to check out, and GitHub's rate limit against the calls the run
//! will make. A shortfall is a clear warning; a run that cannot succeed (no
//! room for a single worktree) is refused with exit 9.

use std::path::{Path, PathBuf};

use super::Config;
use super::setup::Setup;
use crate::error::{Error, Result};
use crate::protocol::{State, sanitize};

/// GitHub calls one pull request takes (`gh pr create`, and a look-up when
/// GitHub says one exists already).
pub const GH_CALLS_PER_PR: u64 = 2;

/// What the run will need.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Needs {
    /// Agents at once.
    pub agents: usize,
    /// What one agent typically uses, when known.
    pub agent_memory: Option<u64>,
    /// Worktrees to check out.
    pub worktrees: usize,
    /// GitHub API calls.
    pub gh_calls: u64,
}

/// What the machine has, as far as it could be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Have {
    pub memory: Option<u64>,
    /// Free space where worktrees go.
    pub disk: Option<u64>,
    /// The size of one checkout of the base commit.
    pub checkout: Option<u64>,
    /// GitHub API calls left this hour.
    pub gh_remaining: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    Warn(String),
    /// The run cannot succeed.
    Refuse(String),
}

/// Judge `have` against `needs`.
pub fn judge(needs: &Needs, have: &Have) -> Vec<Finding> {
    let mut out = Vec::new();
    if let (Some(per), Some(avail)) = (needs.agent_memory, have.memory) {
        let want = per * needs.agents as u64;
        if needs.agents > 0 && avail < want {
            let fit = (avail / per.max(1)).max(1);
            out.push(Finding::Warn(format!(
                "{} of memory available, and {} agents at once typically use about {}; lower \
                 --max-workers to {fit} or expect swapping and agents killed for memory",
                bytes(avail),
                needs.agents,
                bytes(want)
            )));
        }
    }
    if let (Some(size), Some(free)) = (have.checkout, have.disk)
        && needs.worktrees > 0
    {
        let want = size * needs.worktrees as u64;
        if free < size {
            out.push(Finding::Refuse(format!(
                "only {} of disk is free where worktrees go, and one checkout takes about {}; \
                 free some space (po-clean removes finished worktrees) or move the runtime with \
                 --runtime-dir",
                bytes(free),
                bytes(size)
            )));
        } else if free < want + want / 20 {
            out.push(Finding::Warn(format!(
                "{} of disk is free where worktrees go, and {} worktrees take about {}; some \
                 tasks may fail to check out (po-clean removes finished worktrees)",
                bytes(free),
                needs.worktrees,
                bytes(want)
            )));
        }
    }
    if let Some(left) = have.gh_remaining
        && needs.gh_calls > left
    {
        out.push(Finding::Warn(format!(
            "GitHub allows {left} more API calls this hour and this run makes about {}; pull \
             requests past the limit fail (`po-spawn --create-pr` opens them later; see `gh api \
             rate_limit`)",
            needs.gh_calls
        )));
    }
    out
}

/// What this run of `setup` with `cfg` needs.
pub fn needs(cfg: &Config, setup: &Setup) -> Needs {
    let to_run: Vec<&crate::protocol::AgentStatus> = setup
        .view
        .tasks()
        .map(|t| &t.status)
        .filter(|s| {
            s.status == State::Pending || (s.status.is_retryable() && (cfg.retry || setup.explicit))
        })
        .collect();
    let worktrees = if cfg.isolated {
        to_run
            .iter()
            .filter(|s| {
                let agent = sanitize::id(&s.agent_id).unwrap_or_default();
                !setup.runtime.worktree_dir(&setup.id, &agent).exists()
            })
            .count()
    } else {
        0
    };
    Needs {
        agents: to_run.len().min(cfg.max_workers),
        agent_memory: cfg.agent.agent().ok().and_then(|a| a.typical_memory()),
        worktrees,
        gh_calls: if setup.create_pr {
            to_run.len() as u64 * GH_CALLS_PER_PR
        } else {
            0
        },
    }
}

/// Read what the machine has, for `needs`.
pub fn have(setup: &Setup, needs: &Needs) -> Have {
    Have {
        memory: needs.agent_memory.and_then(|_| mem_available()),
        disk: (needs.worktrees > 0)
            .then(|| free_space(&setup.runtime.root))
            .flatten(),
        checkout: match (&setup.repo, &setup.base_commit) {
            (Some(repo), Some(base)) if needs.worktrees > 0 => checkout_size(repo, base),
            _ => None,
        },
        gh_remaining: (needs.gh_calls > 0).then(|| gh_remaining(setup)).flatten(),
    }
}

/// Check, say what falls short, and refuse what cannot succeed. An agent
/// program that cannot be started fails every task: it is refused (exit 9)
/// before any worktree is made, and a dry run warns of it.
pub fn check(cfg: &Config, setup: &Setup, warn: impl Fn(&str)) -> Result<()> {
    let needs = needs(cfg, setup);
    if needs.agents > 0
        && let Some(problem) = agent_problem(cfg)?
    {
        if !cfg.dry_run {
            return Err(Error::system(format!("start the agents: {problem}")));
        }
        warn(&format!("⚠️  Pre-flight: {problem}"));
    }
    if needs.agents > 0
        && cfg.sandbox.is_some()
        && let Some(problem) =
            crate::run::sandbox::probe(&std::env::var_os("PATH").unwrap_or_default())
    {
        if !cfg.dry_run {
            return Err(Error::system(format!("start the sandbox: {problem}")));
        }
        warn(&format!("⚠️  Pre-flight: {problem}"));
    }
    for finding in judge(&needs, &have(setup, &needs)) {
        match finding {
            Finding::Warn(w) => warn(&format!("⚠️  Pre-flight: {w}")),
            Finding::Refuse(r) => return Err(Error::system(format!("start the run: {r}"))),
        }
    }
    Ok(())
}

/// Why the agent's program cannot be started, and how to get it; looked up
/// on the `PATH` agents get (po's own directory first).
fn agent_problem(cfg: &Config) -> Result<Option<String>> {
    let agent = cfg.agent.agent()?;
    let mut dirs: Vec<PathBuf> = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
        .into_iter()
        .collect();
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(dirs).unwrap_or_default();
    Ok(
        crate::run::agent::unstartable(agent.program(), &path).map(|why| {
            format!(
                "the agent cannot be started: {why}; {}",
                agent.install_hint()
            )
        }),
    )
}

/// `MemAvailable` from `/proc/meminfo`.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Free space for an unprivileged user on the filesystem holding `path` (or
/// its nearest existing ancestor).
fn free_space(path: &Path) -> Option<u64> {
    let mut p: PathBuf = path.to_path_buf();
    while !p.exists() {
        p = p.parent()?.to_path_buf();
    }
    let st = nix::sys::statvfs::statvfs(&p).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// The bytes of every file at `base`: what one worktree checks out.
fn checkout_size(repo: &Path, base: &str) -> Option<u64> {
    let out = crate::git::git_raw(repo, &["ls-tree", "-r", "-l", "-z", base]).ok()?;
    Some(
        out.split('\0')
            .filter_map(|entry| entry.split_whitespace().nth(3)?.parse::<u64>().ok())
            .sum(),
    )
}

/// GitHub's core API calls left, through `gh api rate_limit`.
fn gh_remaining(setup: &Setup) -> Option<u64> {
    let mut gh = crate::forge::Gh::new(Some(&setup.runtime.root)).no_retries();
    if let Some(repo) = &setup.repo {
        gh = gh.in_dir(repo);
    }
    gh.rate_remaining().ok()
}

/// `1.5 GiB`, `300 MiB`.
fn bytes(n: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let n = n as f64;
    if n >= GIB {
        format!("{:.1} GiB", n / GIB)
    } else {
        format!("{:.0} MiB", n / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn memory_short_of_the_agents_at_once_is_a_warning_with_what_fits() {
        let needs = Needs {
            agents: 5,
            agent_memory: Some(crate::run::agent::claude::TYPICAL_MEMORY),
            ..Needs::default()
        };
        let have = Have {
            memory: Some(GIB),
            ..Have::default()
        };
        let found = judge(&needs, &have);
        assert_eq!(found.len(), 1);
        let Finding::Warn(w) = &found[0] else {
            panic!("{found:?}")
        };
        assert!(w.contains("1.0 GiB of memory available"), "{w}");
        assert!(w.contains("lower --max-workers to 2"), "{w}");
        let plenty = Have {
            memory: Some(8 * GIB),
            ..Have::default()
        };
        assert!(judge(&needs, &plenty).is_empty());
        // An agent of unknown size is not judged.
        let unknown = Needs {
            agent_memory: None,
            ..needs
        };
        assert!(judge(&unknown, &have).is_empty());
    }

    #[test]
    fn disk_for_no_worktree_at_all_refuses_and_for_some_warns() {
        let needs = Needs {
            worktrees: 10,
            ..Needs::default()
        };
        let have = |free: u64| Have {
            disk: Some(free),
            checkout: Some(100 << 20),
            ..Have::default()
        };
        assert!(matches!(
            judge(&needs, &have(50 << 20)).as_slice(),
            [Finding::Refuse(r)] if r.contains("one checkout takes about 100 MiB")
        ));
        assert!(matches!(
            judge(&needs, &have(500 << 20)).as_slice(),
            [Finding::Warn(w)] if w.contains("10 worktrees take about 1000 MiB")
        ));
        assert!(judge(&needs, &have(2 * GIB)).is_empty());
    }

    #[test]
    fn github_calls_past_the_rate_limit_are_a_warning() {
        let needs = Needs {
            gh_calls: 10,
            ..Needs::default()
        };
        let have = |left| Have {
            gh_remaining: Some(left),
            ..Have::default()
        };
        assert!(matches!(
            judge(&needs, &have(3)).as_slice(),
            [Finding::Warn(w)] if w.contains("allows 3 more API calls")
        ));
        assert!(judge(&needs, &have(5000)).is_empty());
    }
}
