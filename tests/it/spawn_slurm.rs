//! `po-spawn --launcher slurm` against a real Slurm cluster: each task's
//! supervisor is one job, jobs are capped by --max-workers, a timeout leaves
//! nothing behind, a killed po-spawn's jobs are adopted by id, and a job
//! ended from outside fails its task with Slurm's reason.
//!
//! They need a cluster, so they are ignored unless asked for (`cargo test --
//! --include-ignored`, as `.ci/run` does after starting a one-node cluster
//! with `.ci/slurm-up.sh`); asked for without one, they fail.

use crate::support_spawn;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::engines;
use po::protocol::{State, runner};
use support_spawn::*;

/// A hang guard only: Slurm starts a job within a few seconds.
const LIMIT: Duration = Duration::from_secs(240);

/// Fail unless a Slurm cluster answers `sinfo` with a node that takes jobs
/// (the tests that call this are ignored unless asked for; see `engines`).
fn require_slurm() {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%a %T"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| {
            let out = String::from_utf8_lossy(&o.stdout);
            o.status.success()
                && out.lines().any(|l| {
                    l.starts_with("up ")
                        && ["idle", "mixed", "allocated", "completing"]
                            .iter()
                            .any(|s| l.contains(s))
                })
        });
    assert!(
        up,
        "no Slurm cluster answers `sinfo`: this test {}",
        engines::SLURM
    );
}

/// `squeue` of every job, ended ones included: `(id, name, state)`.
fn jobs_named(prefix: &str) -> Vec<(u64, String, String)> {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%i|%j|%T"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut p = l.split('|');
            let id = p.next()?.trim().parse().ok()?;
            let name = p.next()?.to_string();
            let state = p.next()?.to_string();
            name.starts_with(prefix).then_some((id, name, state))
        })
        .collect()
}

fn live(state: &str) -> bool {
    [
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
    ]
    .contains(&state)
}

fn marker(p: &Path) -> String {
    format!("PO_STATUS_FILE={}", p.display())
}

fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s[s.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        state != "Z" && state != "X"
    })
}

/// po-spawn on Slurm, in the background, its output collected.
fn start(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> Output {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(LIMIT)
        .expect("po-spawn finishes (hang guard)")
        .unwrap()
}

#[test]
#[ignore = "needs a Slurm cluster (sudo bash .ci/slurm-up.sh)"]
fn four_tasks_complete_through_slurm_each_as_one_job_on_its_node() {
    require_slurm();
    let repo = Repo::new();
    let tasks: Vec<TaskDef> = (1..=4).map(|i| task(&format!("T{i}"))).collect();
    let paths = orchestrate(&repo, "sl-four", &tasks, &[]);
    // The agent commits in its worktree and says which job it ran in; the
    // supervisor's own variable does not reach it.
    let agent = repo.script(
        "agent.sh",
        r#"[ -z "$PO_SPAWN_TASK" ] || exit 7
echo "$SLURM_JOB_ID" > "job-$PO_AGENT_ID.txt"
git add . && git commit --quiet -m "$PO_AGENT_ID in job $SLURM_JOB_ID"
"#,
    );
    let out = output_within(
        repo.spawn()
            .args([
                "--launcher",
                "slurm",
                "--max-workers",
                "4",
                "--id",
                "sl-four",
            ])
            .arg("--agent-cmd")
            .arg(&agent),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(text(&out.stdout).lines().count(), 4, "{stderr}");
    let jobs = jobs_named("po-sl-four-");
    let mut seen_jobs = HashSet::new();
    for p in &paths {
        let s = status(p);
        assert_eq!(s.status, State::Completed, "{s:?}");
        assert_eq!(s.metrics.commits, Some(1));
        assert_eq!(runner::launcher(&s), Some("slurm"));
        let job = po::run::launcher::slurm::job_of(&s).expect("job id recorded");
        // The job the agent ran in is the one recorded, named for its task.
        let wt = s.worktree.clone().unwrap();
        let told = std::fs::read_to_string(wt.join(format!("job-{}.txt", s.agent_id))).unwrap();
        assert_eq!(told.trim(), job.to_string());
        let (_, name, state) = jobs.iter().find(|(id, _, _)| *id == job).unwrap();
        assert_eq!(name, &format!("po-sl-four-{}", s.agent_id));
        assert_eq!(state, "COMPLETED");
        assert!(seen_jobs.insert(job), "one job per task");
        assert!(runner::node(&s).is_some_and(|n| !n.is_empty()), "{s:?}");
        assert_eq!(runner::queued(&s), None);
        // The spec the job ran from.
        let spec = p
            .parent()
            .unwrap()
            .join(format!("specs/{}.json", s.agent_id));
        assert!(spec.is_file(), "{}", spec.display());
    }
    // po-watch shows where each task ran.
    let watch = Command::new(env!("CARGO_BIN_EXE_po-watch"))
        .arg("sl-four")
        .env("COLUMNS", "200")
        .current_dir(&repo.path)
        .output()
        .unwrap();
    let table = text(&watch.stdout);
    let node = runner::node(&status(&paths[0])).unwrap().to_string();
    assert!(table.lines().nth(1).unwrap().ends_with("NODE"), "{table}");
    assert!(
        table
            .lines()
            .filter(|l| l.starts_with("agent-"))
            .all(|l| l.ends_with(&node)),
        "{table}"
    );
}

#[test]
#[ignore = "needs a Slurm cluster (sudo bash .ci/slurm-up.sh)"]
fn the_jobs_at_once_never_exceed_max_workers() {
    require_slurm();
    let repo = Repo::new();
    let tasks: Vec<TaskDef> = (1..=6).map(|i| task(&format!("T{i}"))).collect();
    let paths = orchestrate(&repo, "sl-peak", &tasks, &[]);
    // Each agent notes its start and end (ms), then works for a second.
    let agent = repo.script(
        "agent.sh",
        r#"echo "start $(date +%s%3N)" >> "$SCRATCH/$PO_AGENT_ID"
sleep 1
echo "end $(date +%s%3N)" >> "$SCRATCH/$PO_AGENT_ID"
"#,
    );
    let child = start(
        repo.spawn()
            .args(["--launcher", "slurm", "-j", "2", "--isolation", "none"])
            .args(["--id", "sl-peak", "--agent-cmd"])
            .arg(&agent),
    );
    // Slurm's own count of this run's live jobs, sampled while it runs.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(Mutex::new(0usize));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        let mine: HashSet<u64> = jobs_named("po-sl-peak-").iter().map(|j| j.0).collect();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let n = jobs_named("po-sl-peak-")
                    .iter()
                    .filter(|(id, _, state)| !mine.contains(id) && live(state))
                    .count();
                let mut p = peak.lock().unwrap();
                *p = (*p).max(n);
                drop(p);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let out = finish(child);
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(states(&paths).iter().all(|s| *s == State::Completed));
    let peak = *peak.lock().unwrap();
    assert!(peak <= 2, "{peak} jobs of the run were live at once");
    assert!(peak >= 1, "the sampler saw the jobs");
    // And the agents themselves: at most two at any instant, two at some.
    let mut edges: Vec<(u64, i32)> = Vec::new();
    for n in 1..=6 {
        let log = std::fs::read_to_string(repo.scratch().join(format!("agent-{n}"))).unwrap();
        for l in log.lines() {
            let (what, t) = l.split_once(' ').unwrap();
            edges.push((t.parse().unwrap(), if what == "start" { 1 } else { -1 }));
        }
    }
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    assert_eq!(most, 2, "agents at once");
}

#[test]
#[ignore = "needs a Slurm cluster (sudo bash .ci/slurm-up.sh)"]
fn a_timeout_on_the_node_leaves_no_survivor() {
    require_slurm();
    let repo = Repo::new();
    let paths = orchestrate(&repo, "sl-to", &[task("Hang")], &[]);
    let agent = repo.script(
        "hang.sh",
        r#"setsid sh -c 'trap "" TERM; echo $$ > "$SCRATCH/grandchild.pid"; while :; do sleep 1; done' &
trap '' TERM
while :; do sleep 1; done
"#,
    );
    let out = output_within(
        repo.spawn()
            .args(["--launcher", "slurm", "--timeout", "2", "--grace", "1"])
            .args(["--id", "sl-to", "--agent-cmd"])
            .arg(&agent),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let s = status(&paths[0]);
    assert_eq!(s.status, State::TimedOut, "{s:?}");
    assert!(s.error.unwrap().contains("--timeout 2 reached"));
    // Nothing of the tree is left on the node (this machine).
    assert!(processes_with_env(&marker(&paths[0])).is_empty());
    let gc: i32 = std::fs::read_to_string(repo.scratch().join("grandchild.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!pid_alive(gc), "grandchild {gc} survived");
    // The job itself ended as a job that did its work.
    let job = po::run::launcher::slurm::job_of(&status(&paths[0])).unwrap();
    let jobs = jobs_named("po-sl-to-");
    let (_, _, state) = jobs.iter().find(|(id, _, _)| *id == job).unwrap();
    assert_eq!(state, "COMPLETED");
}

#[test]
#[ignore = "needs a Slurm cluster (sudo bash .ci/slurm-up.sh)"]
fn a_killed_po_spawn_is_adopted_by_job_id_and_every_agent_runs_once() {
    require_slurm();
    let repo = Repo::new();
    let tasks: Vec<TaskDef> = (1..=4).map(|i| task(&format!("T{i}"))).collect();
    let paths = orchestrate(&repo, "sl-crash", &tasks, &[]);
    let agent = repo.script(
        "agent.sh",
        r#"flock "$SCRATCH/lock" sh -c 'echo "$PO_AGENT_ID $SLURM_JOB_ID" >> "$SCRATCH/ledger"'
i=0
while [ ! -e "$SCRATCH/go" ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done
echo "$PO_AGENT_ID" > "out-$PO_AGENT_ID.txt"
git add . && git commit --quiet -m "$PO_AGENT_ID"
"#,
    );
    let args = |c: &mut Command| {
        c.args([
            "--launcher",
            "slurm",
            "--max-workers",
            "2",
            "--id",
            "sl-crash",
        ])
        .arg("--agent-cmd")
        .arg(&agent);
    };
    let mut first = repo.spawn();
    args(&mut first);
    let mut first = first
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ledger = repo.scratch().join("ledger");
    wait_for_lines(&ledger, 2);
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let before: BTreeMap<String, u64> = paths
        .iter()
        .map(|p| status(p))
        .filter(|s| s.status == State::InProgress)
        .map(|s| {
            (
                s.agent_id.clone(),
                po::run::launcher::slurm::job_of(&s).unwrap(),
            )
        })
        .collect();
    assert_eq!(before.len(), 2, "{before:?}");

    let mut second = repo.spawn();
    args(&mut second);
    let mut second = second
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        let mut err = second.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    wait_until(LIMIT, "both running jobs adopted", || {
        seen.lock().unwrap().matches("RUNNING (adopted)").count() == 2
    });
    std::fs::write(repo.scratch().join("go"), "").unwrap();
    let out = finish(second);
    reader.join().unwrap();
    let stderr = seen.lock().unwrap().clone();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(states(&paths).iter().all(|s| *s == State::Completed));
    // Each agent ran once; the adopted ones in the job the first run
    // submitted, and no task ever had a second job.
    let mut ran: Vec<String> = std::fs::read_to_string(&ledger)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    ran.sort();
    assert_eq!(ran.len(), 4, "{ran:?}");
    for (agent, job) in &before {
        assert!(ran.contains(&format!("{agent} {job}")), "{ran:?}");
        let s = status(
            &repo
                .orch_dir("sl-crash")
                .join(format!("{agent}.status.json")),
        );
        assert_eq!(po::run::launcher::slurm::job_of(&s), Some(*job));
    }
    // Job ids only grow: this test's jobs are those from the first run's
    // first one on (earlier runs of the test left lower ones).
    let first = *before.values().min().unwrap();
    let jobs = jobs_named("po-sl-crash-");
    for n in 1..=4 {
        let name = format!("po-sl-crash-agent-{n}");
        let mine: Vec<&(u64, String, String)> = jobs
            .iter()
            .filter(|(id, j, _)| *j == name && *id >= first)
            .collect();
        assert_eq!(mine.len(), 1, "one job for agent-{n}: {jobs:?}");
        assert!(ran.contains(&format!("agent-{n} {}", mine[0].0)), "{ran:?}");
    }
}

#[test]
#[ignore = "needs a Slurm cluster (sudo bash .ci/slurm-up.sh)"]
fn a_queued_job_shows_as_queued_and_a_new_po_spawn_waits_for_it_instead_of_submitting() {
    require_slurm();
    let repo = Repo::new();
    let paths = orchestrate(&repo, "sl-held", &[task("A"), task("B")], &[]);
    let agent = repo.script(
        "agent.sh",
        r#"echo "$PO_AGENT_ID $SLURM_JOB_ID" >> "$SCRATCH/ledger""#,
    );
    // Held jobs wait in the queue until released.
    let mut first = repo.spawn();
    first
        .args([
            "--launcher",
            "slurm",
            "--isolation",
            "none",
            "--id",
            "sl-held",
        ])
        .arg("--slurm-arg=--hold")
        .arg("--agent-cmd")
        .arg(&agent);
    let mut first = first
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(LIMIT, "both tasks queued", || {
        paths.iter().all(|p| runner::queued(&status(p)).is_some())
    });
    let s = status(&paths[0]);
    assert_eq!(s.status, State::Pending);
    assert_eq!(runner::queued(&s).as_deref(), Some("JobHeldUser"));
    let held: Vec<u64> = paths
        .iter()
        .map(|p| po::run::launcher::slurm::job_of(&status(p)).unwrap())
        .collect();
    let watch = Command::new(env!("CARGO_BIN_EXE_po-watch"))
        .arg("sl-held")
        .env("COLUMNS", "200")
        .current_dir(&repo.path)
        .output()
        .unwrap();
    let table = text(&watch.stdout);
    let row = table.lines().find(|l| l.starts_with("agent-1")).unwrap();
    assert!(
        row.contains("queued") && row.contains(&format!("JobHeldUser (Slurm job {})", held[0])),
        "{table}"
    );
    first.kill().unwrap();
    first.wait().unwrap();

    // The next po-spawn follows the queued jobs; releasing them runs each
    // task once.
    let second = start(
        repo.spawn()
            .args([
                "--launcher",
                "slurm",
                "--isolation",
                "none",
                "--id",
                "sl-held",
            ])
            .arg("--agent-cmd")
            .arg(&agent),
    );
    std::thread::sleep(Duration::from_millis(500));
    let ids: Vec<String> = held.iter().map(u64::to_string).collect();
    let released = Command::new("scontrol")
        .arg("release")
        .arg(ids.join(","))
        .output()
        .unwrap();
    assert!(released.status.success(), "{released:?}");
    let out = finish(second);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut ran: Vec<String> = std::fs::read_to_string(repo.scratch().join("ledger"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    ran.sort();
    assert_eq!(
        ran,
        [
            format!("agent-1 {}", held[0]),
            format!("agent-2 {}", held[1])
        ]
    );
    for p in &paths {
        let s = status(p);
        assert_eq!(s.status, State::Completed);
        assert_eq!(runner::queued(&s), None, "{s:?}");
    }
    let named: Vec<_> = jobs_named("po-sl-held-")
        .into_iter()
        .filter(|(id, _, _)| *id >= held[0])
        .collect();
    assert_eq!(named.len(), 2, "no second job: {named:?}");
}

#[test]
#[ignore = "needs a Slurm cluster (sudo bash .ci/slurm-up.sh)"]
fn a_scancel_from_outside_fails_the_task_with_slurms_reason() {
    require_slurm();
    let repo = Repo::new();
    let paths = orchestrate(&repo, "sl-cancel", &[task("Long"), task("Short")], &[]);
    let agent = repo.script(
        "agent.sh",
        r#"if [ "$PO_AGENT_ID" = agent-1 ]; then echo up > "$SCRATCH/up"; sleep 120; fi
"#,
    );
    let child = start(
        repo.spawn()
            .args(["--launcher", "slurm", "--isolation", "none", "--grace", "1"])
            .args(["--id", "sl-cancel", "--agent-cmd"])
            .arg(&agent),
    );
    wait_until(LIMIT, "agent-1 running", || {
        repo.scratch().join("up").exists()
    });
    let job = po::run::launcher::slurm::job_of(&status(&paths[0])).unwrap();
    let cancel = Command::new("scancel")
        .arg(job.to_string())
        .output()
        .unwrap();
    assert!(cancel.status.success(), "{cancel:?}");
    let out = finish(child);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let s = status(&paths[0]);
    assert_eq!(s.status, State::Failed, "{s:?}");
    let err = s.error.unwrap();
    assert!(
        err.contains(&format!("Slurm job {job} on "))
            && err.contains("was cancelled")
            && err.contains("(CANCELLED)"),
        "{err}"
    );
    assert!(stderr.contains("❌ agent-1 failed"), "{stderr}");
    assert_eq!(status(&paths[1]).status, State::Completed);
    assert!(processes_with_env(&marker(&paths[0])).is_empty());
}

#[test]
#[ignore = "needs a Slurm cluster (sudo bash .ci/slurm-up.sh)"]
fn ctrl_c_cancels_running_and_queued_jobs_through_scancel() {
    require_slurm();
    let repo = Repo::new();
    let paths = orchestrate(&repo, "sl-int", &[task("A"), task("B")], &[]);
    let agent = repo.script(
        "agent.sh",
        r#"echo up > "$SCRATCH/up-$PO_AGENT_ID"; sleep 120"#,
    );
    let run = |extra: &[&str]| {
        start(
            repo.spawn()
                .args(["--launcher", "slurm", "--isolation", "none", "--grace", "1"])
                .args(["--id", "sl-int"])
                .args(extra)
                .arg("--agent-cmd")
                .arg(&agent),
        )
    };
    let ended = |jobs: &[u64]| {
        let all = jobs_named("po-sl-int-");
        for job in jobs {
            let (_, _, state) = all.iter().find(|(id, _, _)| id == job).unwrap();
            assert_eq!(state, "CANCELLED", "job {job}");
        }
    };
    let cancelled = |out: &Output| {
        assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
        for p in &paths {
            let s = status(p);
            assert_eq!(s.status, State::Cancelled, "{s:?}");
            assert!(s.error.unwrap().contains("interrupted"));
            assert!(processes_with_env(&marker(p)).is_empty());
        }
    };

    // Running jobs: their supervisors cancel the agents and record it.
    let child = run(&[]);
    wait_until(LIMIT, "both agents running", || {
        (1..=2).all(|n| repo.scratch().join(format!("up-agent-{n}")).exists())
    });
    let jobs: Vec<u64> = paths
        .iter()
        .map(|p| po::run::launcher::slurm::job_of(&status(p)).unwrap())
        .collect();
    signal(child.id(), "INT");
    cancelled(&finish(child));
    wait_until(LIMIT, "the jobs to end", || {
        jobs_named("po-sl-int-")
            .iter()
            .all(|(id, _, state)| !jobs.contains(id) || !live(state))
    });
    ended(&[]);

    // Jobs still waiting in the queue are cancelled whole.
    let child = run(&["--retry", "--slurm-arg=--hold"]);
    wait_until(LIMIT, "both tasks queued", || {
        paths
            .iter()
            .all(|p| runner::queued(&status(p)).as_deref() == Some("JobHeldUser"))
    });
    let held: Vec<u64> = paths
        .iter()
        .map(|p| po::run::launcher::slurm::job_of(&status(p)).unwrap())
        .collect();
    assert!(held.iter().all(|j| !jobs.contains(j)), "new jobs");
    signal(child.id(), "INT");
    cancelled(&finish(child));
    ended(&held);
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn slurm_options_need_the_slurm_launcher_and_what_sbatch_refuses_stops_the_run() {
    // No cluster needed: these fail before any job is submitted.
    let repo = Repo::new();
    let paths = orchestrate(&repo, "sl-flags", &[task("A")], &[]);
    for (args, launcher, needle) in [
        (vec!["--partition", "gpu"], None, "add --launcher slurm"),
        (vec!["--slurm-arg=--qos=high"], None, "add --launcher slurm"),
        (
            vec!["--slurm-arg", "qos=high"],
            Some("slurm"),
            "one sbatch option per --slurm-arg",
        ),
        (vec![], Some("pbs"), "invalid value 'pbs'"),
    ] {
        let mut cmd = repo.spawn();
        cmd.args(["--id", "sl-flags", "--agent-cmd", "true"])
            .args(&args);
        if let Some(l) = launcher {
            cmd.env("PO_LAUNCHER", l);
        }
        let out = output_within(&mut cmd, LIMIT);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // A dry run says what each job would be submitted with.
    let out = output_within(
        repo.spawn()
            .args(["--launcher", "slurm", "--partition", "gpu", "--mem", "8G"])
            .args(["--slurm-arg=--qos=high", "--timeout", "600", "--grace", "5"])
            .args(["--id", "sl-flags", "--dry-run", "--agent-cmd", "true"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(
            "Launcher: slurm, one job per task (sbatch --job-name po-<id>-agent-<n> --time 16 \
             --partition gpu --mem 8G --qos=high)"
        ),
        "{}",
        text(&out.stdout)
    );
    // sbatch refuses the options: nothing runs, the task stays pending.
    let bin = repo.scratch().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = repo.script(
        "sbatch",
        "echo 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n",
    );
    std::fs::rename(&fake, bin.join("sbatch")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = output_within(
        repo.spawn()
            .env("PATH", path)
            .args(["--launcher", "slurm", "--partition", "nope"])
            .args(["--id", "sl-flags", "--agent-cmd", "true"]),
        LIMIT,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("invalid partition specified: nope") && err.contains("--partition"),
        "{err}"
    );
    assert_eq!(status(&paths[0]).status, State::Pending);
}

#[test]
#[ignore = "needs a Slurm cluster (sudo bash .ci/slurm-up.sh)"]
fn a_job_that_ended_or_vanished_while_no_po_spawn_watched_fails_its_task_with_slurms_word() {
    require_slurm();
    let repo = Repo::new();
    let paths = orchestrate(&repo, "sl-gone", &[task("A"), task("B")], &[]);
    let agent = repo.script(
        "agent.sh",
        r#"echo up > "$SCRATCH/up-$PO_AGENT_ID"; sleep 120"#,
    );
    // agent-1 runs; its po-spawn is killed, then its job is cancelled.
    let mut first = repo.spawn();
    first
        .args(["--launcher", "slurm", "--isolation", "none", "--grace", "1"])
        .arg("--agent-cmd")
        .arg(&agent)
        .arg(&paths[0]);
    let mut first = first
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(LIMIT, "agent-1 running", || {
        repo.scratch().join("up-agent-1").exists()
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let job = po::run::launcher::slurm::job_of(&status(&paths[0])).unwrap();
    assert!(
        Command::new("scancel")
            .arg(job.to_string())
            .status()
            .unwrap()
            .success()
    );
    wait_until(LIMIT, "the job to end", || {
        jobs_named("po-sl-gone-")
            .iter()
            .any(|(id, _, state)| *id == job && state == "CANCELLED")
    });
    // agent-2 was left in progress by a job Slurm never had.
    po::protocol::store::update_status(&paths[1], |s| {
        s.status = State::InProgress;
        s.start_time = Some(po::timefmt::now());
        s.extra.insert("launcher".into(), "slurm".into());
        runner::record(&mut s.extra, "slurm", "999999999", "Slurm job 999999999");
        Ok(())
    })
    .unwrap();
    let out = output_within(
        repo.spawn()
            .args(["--launcher", "slurm", "--isolation", "none"])
            .args(["--id", "sl-gone", "--agent-cmd"])
            .arg(&agent),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let s = status(&paths[0]);
    assert_eq!(s.status, State::Failed);
    let err = s.error.unwrap();
    assert!(
        err.contains(&format!("Slurm job {job} on ")) && err.contains("(CANCELLED)"),
        "{err}"
    );
    let s = status(&paths[1]);
    assert_eq!(s.status, State::Failed);
    let err = s.error.unwrap();
    assert!(
        err.contains("Slurm job 999999999 is no longer known to Slurm"),
        "{err}"
    );
    // Neither ran again.
    assert_eq!(
        jobs_named("po-sl-gone-")
            .iter()
            .filter(|(id, _, _)| *id > job)
            .count(),
        0
    );
}

/// `--sandbox` travels in the job's spec: the job's supervisor runs its agent
/// under bubblewrap on the node, and the agent still commits.
#[test]
#[ignore = "needs a Slurm cluster (sudo bash .ci/slurm-up.sh) and bwrap (apt-get install bubblewrap)"]
fn a_slurm_jobs_agent_runs_in_the_sandbox_and_commits() {
    require_slurm();
    engines::require("bwrap", &["--ro-bind", "/", "/", "true"], engines::BWRAP);
    let repo = Repo::new();
    let paths = orchestrate(&repo, "sl-box", &[task("Boxed")], &[]);
    let agent = repo.script(
        "agent.sh",
        r#"if echo x > "$SL_REPO/outside.txt" 2>/dev/null; then exit 7; fi
echo "$SLURM_JOB_ID" > boxed.txt
git add boxed.txt && git commit --quiet -m "boxed in job $SLURM_JOB_ID"
"#,
    );
    let out = output_within(
        repo.spawn()
            .args([
                "--launcher",
                "slurm",
                "--sandbox",
                "--id",
                "sl-box",
                "--agent-cmd",
            ])
            .arg(&agent)
            .env("SL_REPO", &repo.path),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s = status(&paths[0]);
    assert_eq!(s.status, State::Completed, "{s:?}");
    assert!(!repo.path.join("outside.txt").exists());
    let log = std::fs::read_to_string(s.log_file.clone().unwrap()).unwrap();
    assert!(log.contains("po-spawn: sandbox: "), "{log}");
    let subject = git(
        &repo.path,
        &["log", "-1", "--format=%s", s.branch.as_deref().unwrap()],
    );
    assert!(subject.starts_with("boxed in job "), "{subject}");
}
