//! Crash points of worktree creation: po-spawn, its supervisors and every
//! git they run are killed (SIGKILL, all at once) before, during and after
//! the checkout of a 5,000-file repository, for new worktrees and for
//! worktrees taken from the warm pool, sometimes again while the retry
//! repairs; then a plain `po-spawn --retry` with an agent that commits with
//! `git add -A`. Every branch must hold exactly its base plus the agent's
//! one new file: nothing deleted, nothing of another base or task.

use crate::support_spawn;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin_cmd;
use po::protocol::State;
use support_spawn::{Repo, git, git_env, orchestrate, output_within, processes_with_env, states};

const DIRS: usize = 50;
const PER_DIR: usize = 100;
const FILES: usize = DIRS * PER_DIR;
const TASKS: usize = 2;

/// Commits its own file with `git add -A`, once (a killed attempt may have).
const AGENT: &str = r#"echo "$PO_AGENT_ID" > "change-$PO_AGENT_ID.txt"
git add -A && { git diff --cached --quiet || git commit --quiet -m "$PO_AGENT_ID"; }
"#;

/// Files the two bases have different (one in five): what a worktree taken
/// from the pool rewrites.
const CHANGED: usize = FILES / 5;

fn content(version: u32, d: usize, f: usize) -> String {
    let version = if f.is_multiple_of(5) { version } else { 0 };
    format!("v{version} module {d} file {f}\n")
}

/// Two bases that differ in 1,000 of the 5,000 files.
fn bases(repo: &Repo) -> [String; 2] {
    let mut out = Vec::new();
    for version in [1, 2] {
        for d in 0..DIRS {
            let dir = repo.path.join(format!("src/d{d:02}"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..PER_DIR {
                std::fs::write(dir.join(format!("f{f:03}.txt")), content(version, d, f)).unwrap();
            }
        }
        git(&repo.path, &["add", "-A"]);
        git(&repo.path, &["commit", "-q", "-m", &format!("v{version}")]);
        out.push(git(&repo.path, &["rev-parse", "HEAD"]));
    }
    [out[0].clone(), out[1].clone()]
}

/// When to kill a run (after what).
#[derive(Clone, Copy, Debug)]
enum When {
    /// This long after po-spawn started.
    Start(u64),
    /// This long after the first task's worktree has its `.git`.
    GitFile(u64),
    /// As soon as the first task's worktree is complete (unlocked).
    Checkout,
}

/// What a kill left of one task's worktree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Left {
    /// No worktree yet.
    Before,
    /// Locked as half-made, with none or all of its files checked out.
    Locked,
    /// Locked as half-made, some of its files checked out and others not.
    MidCheckout,
    /// The same, taken from the pool.
    MidTake,
    /// Complete (unlocked).
    After,
}

#[derive(Default, Debug)]
struct Tally {
    kills: usize,
    before: usize,
    locked: usize,
    mid_checkout: usize,
    mid_take: usize,
    after: usize,
    /// Pool entries the killed runs had begun to take.
    taken: usize,
}

impl Tally {
    fn add(&mut self, left: Left) {
        match left {
            Left::Before => self.before += 1,
            Left::Locked => self.locked += 1,
            Left::MidCheckout => self.mid_checkout += 1,
            Left::MidTake => self.mid_take += 1,
            Left::After => self.after += 1,
        }
    }
}

/// SIGKILL every process of the run (po-spawn, supervisors, git, agents:
/// all carry `mark` in their environment) until none is left.
fn kill_all(mark: &str, po: &mut Child) {
    let start = Instant::now();
    loop {
        let pids = processes_with_env(mark);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // SAFETY: kill(2) with a pid just read from /proc.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "processes of the run outlive SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = po.wait();
}

fn wait_for(path: &Path, limit: Duration) {
    let start = Instant::now();
    while std::fs::symlink_metadata(path).is_err() && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// What the kill left of the worktree at `wt`, whose task is on `version`.
fn left(wt: &Path, version: u32) -> Left {
    let Some(private) = po::git::private_dir(wt) else {
        return Left::Before;
    };
    let Some(reason) =
        po::worktree::lock_reason(&private).filter(|r| r.starts_with(po::worktree::LOCK_PREFIX))
    else {
        return Left::After;
    };
    let mut done = 0;
    for d in 0..DIRS {
        for f in 0..PER_DIR {
            let p = wt.join(format!("src/d{d:02}/f{f:03}.txt"));
            done +=
                usize::from(std::fs::read_to_string(p).is_ok_and(|t| t == content(version, d, f)));
        }
    }
    if done > 0 && done < FILES {
        if reason.contains("pool") {
            Left::MidTake
        } else {
            Left::MidCheckout
        }
    } else {
        Left::Locked
    }
}

struct Crash<'a> {
    repo: &'a Repo,
    agent: PathBuf,
    bases: [String; 2],
    rounds: usize,
}

impl Crash<'_> {
    fn start(&self, id: &str, base: &str, mark: &str) -> Child {
        let (key, value) = mark.split_once('=').unwrap();
        self.repo
            .spawn()
            .args([
                "--id",
                id,
                "--retry",
                "-j",
                &TASKS.to_string(),
                "--base",
                base,
            ])
            .arg("--agent-cmd")
            .arg(&self.agent)
            .env(key, value)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// One round: tasks on base `version`, a run killed `when`, perhaps its
    /// retry killed too, then a retry left alone; every branch checked.
    fn round(&mut self, when: When, again: Option<u64>, tally: &mut Tally) -> String {
        self.rounds += 1;
        let id = format!("crash-{}", self.rounds);
        let version = 1 + (self.rounds % 2) as u32;
        let base = self.bases[version as usize - 1].clone();
        let tasks: Vec<_> = (1..=TASKS)
            .map(|n| support_spawn::task(&format!("Change {n}")))
            .collect();
        let paths = orchestrate(self.repo, &id, &tasks, &[]);
        let wts: Vec<PathBuf> = (1..=TASKS)
            .map(|n| {
                self.repo
                    .runtime()
                    .join(format!("worktrees/{id}/agent-{n}"))
            })
            .collect();

        let pool = self.repo.runtime().join("worktrees/.pool");
        let in_pool = || {
            std::fs::read_dir(&pool)
                .map_or(0, |d| d.flatten().filter(|e| e.path().is_dir()).count())
        };
        let pooled_before = in_pool();
        let mark = format!("PO_CRASH_TEST={id}");
        let mut po = self.start(&id, &base, &mark);
        match when {
            When::Start(ms) => std::thread::sleep(Duration::from_millis(ms)),
            When::GitFile(ms) => {
                wait_for(&wts[0].join(".git"), Duration::from_secs(20));
                std::thread::sleep(Duration::from_millis(ms));
            }
            When::Checkout => {
                let start = Instant::now();
                while left(&wts[0], version) != Left::After
                    && start.elapsed() < Duration::from_secs(20)
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        kill_all(&mark, &mut po);
        tally.kills += 1;
        tally.taken += pooled_before.saturating_sub(in_pool());
        for wt in &wts {
            tally.add(left(wt, version));
        }
        if let Some(ms) = again {
            // The retry killed while it repairs what the first kill left.
            let mark = format!("PO_CRASH_TEST={id}-again");
            let mut po = self.start(&id, &base, &mark);
            std::thread::sleep(Duration::from_millis(ms));
            kill_all(&mark, &mut po);
            tally.kills += 1;
            for wt in &wts {
                tally.add(left(wt, version));
            }
        }

        let out = output_within(
            self.repo
                .spawn()
                .args([
                    "--id",
                    &id,
                    "--retry",
                    "-j",
                    &TASKS.to_string(),
                    "--base",
                    &base,
                ])
                .arg("--agent-cmd")
                .arg(&self.agent),
            Duration::from_secs(120),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            states(&paths),
            vec![State::Completed; TASKS],
            "{id} after {when:?}/{again:?}: {stderr}"
        );
        for (n, p) in paths.iter().enumerate() {
            let s = support_spawn::status(p);
            let branch = s.branch.unwrap();
            let diff = git(&self.repo.path, &["diff", "--name-status", &base, &branch]);
            let lines: Vec<&str> = diff.lines().collect();
            assert!(
                lines == [format!("A\tchange-agent-{}.txt", n + 1)],
                "{id} after {when:?}/{again:?}: branch {branch} is not its base plus the \
                 agent's change: {} files differ ({} deleted), first {:?}",
                lines.len(),
                lines.iter().filter(|l| l.starts_with('D')).count(),
                &lines[..lines.len().min(5)]
            );
            let wt = &wts[n];
            assert_eq!(
                git(wt, &["status", "--porcelain"]),
                "",
                "{id}: {}",
                wt.display()
            );
        }
        id
    }
}

#[test]
fn a_kill_at_any_point_of_a_checkout_never_hands_an_agent_a_half_made_worktree() {
    let started = Instant::now();
    let repo = Repo::new();
    let bases = bases(&repo);
    let agent = repo.script("agent.sh", AGENT);
    let mut crash = Crash {
        repo: &repo,
        agent,
        bases,
        rounds: 0,
    };
    let plan = [
        (When::Start(0), None),
        (When::GitFile(0), None),
        (When::GitFile(5), Some(40)),
        (When::GitFile(30), Some(120)),
        (When::GitFile(80), None),
        (When::GitFile(250), Some(250)),
        (When::Checkout, None),
    ];
    // New worktrees: the pool is empty.
    let mut fresh = Tally::default();
    for (when, again) in plan {
        crash.round(when, again, &mut fresh);
    }
    // Extra rounds, early in the checkout, until some kill landed in it.
    for ms in [2, 10, 20, 40] {
        if fresh.mid_checkout > 0 {
            break;
        }
        crash.round(When::GitFile(ms), None, &mut fresh);
    }

    // From the pool: each round's worktrees (on the other base) are retired
    // into it for the next round, whose checkout rewrites all 5,000 files.
    let pool_up = |id: &str| {
        let out = cargo_bin_cmd!("po-clean")
            .current_dir(&repo.path)
            .envs(git_env())
            .args([id, "--pool"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let last = format!("crash-{}", crash.rounds);
    pool_up(&last);
    let mut pooled = Tally::default();
    let mut rounds: Vec<(When, Option<u64>)> = plan[1..].to_vec();
    rounds.extend([2, 10, 20, 40].map(|ms| (When::GitFile(ms), None)));
    for (i, (when, again)) in rounds.into_iter().enumerate() {
        if i >= plan.len() - 1 && pooled.mid_take > 0 {
            break;
        }
        let id = crash.round(when, again, &mut pooled);
        pool_up(&id);
    }
    let repaired = walkdir::WalkDir::new(repo.runtime().join("logs"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            std::fs::read_to_string(e.path())
                .is_ok_and(|t| t.contains("which a killed run left half-made"))
        })
        .count();
    let report = format!(
        "{FILES} files ({CHANGED} differ between the bases); new worktrees: {fresh:?}; from \
         the pool: {pooled:?}; {repaired} agent logs tell of a repair; {} rounds in {:.1?}",
        crash.rounds,
        started.elapsed()
    );
    eprintln!("{report}");
    // The kills did land before, inside and after checkouts, or this proves
    // nothing.
    assert!(
        fresh.mid_checkout > 0,
        "no kill landed mid-checkout: {report}"
    );
    assert!(pooled.mid_take > 0, "no kill landed mid-take: {report}");
    assert!(
        pooled.taken > 0,
        "no killed run took from the pool: {report}"
    );
    assert!(
        fresh.before + pooled.before > 0,
        "no kill landed before: {report}"
    );
    assert!(
        fresh.after + pooled.after > 0,
        "no kill landed after: {report}"
    );
    assert!(repaired > 0, "{report}");
}
