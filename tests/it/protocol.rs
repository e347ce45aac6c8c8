//! The five status-file invariants, each proven across real processes.
//!
//! Worker processes are this test binary re-executed with `--exact <the test>`
//! and `PO_TEST_WORKER` set: the test then does a worker's part, so workers use
//! the library exactly as the tools do.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use po::protocol::{AgentStatus, State, sanitize, store};

const WORKER_ENV: &str = "PO_TEST_WORKER";

fn worker(name: &str, file: &Path, extra: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    let name = format!("protocol::{name}");
    cmd.args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(WORKER_ENV, file)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start worker")
}

fn worker_file() -> Option<PathBuf> {
    std::env::var_os(WORKER_ENV).map(PathBuf::from)
}

fn new_status(dir: &Path) -> PathBuf {
    let p = dir.join("agent-1.status.json");
    store::write_status(&p, &AgentStatus::new("agent-1", "7")).unwrap();
    p
}

/// Invariant 2: 8 processes × 500 read-modify-writes lose nothing.
#[test]
fn no_lost_updates() {
    if let Some(file) = worker_file() {
        for _ in 0..500 {
            store::update_status(&file, |s| {
                let n = s.extra.get("counter").and_then(|v| v.as_u64()).unwrap_or(0);
                s.extra.insert("counter".into(), (n + 1).into());
                Ok(())
            })
            .unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = new_status(dir.path());
    let workers: Vec<Child> = (0..8)
        .map(|_| worker("no_lost_updates", &file, &[]))
        .collect();
    for mut w in workers {
        assert!(w.wait().unwrap().success());
    }
    let s = store::read_status(&file).unwrap();
    assert_eq!(s.extra.get("counter").and_then(|v| v.as_u64()), Some(4000));
}

/// Invariant 1: a reader in a tight loop never sees a half-written file.
#[test]
fn no_torn_reads() {
    if let Some(file) = worker_file() {
        let rounds: usize = std::env::var("ROUNDS").unwrap().parse().unwrap();
        for i in 0..rounds {
            store::update_status(&file, |s| {
                // Sizes vary a lot so a torn write would show as invalid JSON.
                s.body = "x".repeat((i * 7919) % 20_000);
                s.progress_percentage = Some((i % 101) as u8);
                Ok(())
            })
            .unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = new_status(dir.path());
    let mut writer = worker("no_torn_reads", &file, &[("ROUNDS", "2000".into())]);
    let mut reads = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let bytes = std::fs::read(&file).expect("the file is always there");
        serde_json::from_slice::<AgentStatus>(&bytes)
            .unwrap_or_else(|e| panic!("torn read after {reads} reads: {e}"));
        reads += 1;
        if writer.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "writer hung");
    }
    assert!(writer.wait().unwrap().success());
    assert!(
        reads > 100,
        "the reader raced the writer only {reads} times"
    );
    assert_eq!(
        store::read_status(&file).unwrap().progress_percentage,
        Some((1999 % 101) as u8)
    );
}

/// Invariant 3: fields this version does not know survive a rewrite.
#[test]
fn unknown_fields_survive_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent-1.status.json");
    let mut v: serde_json::Value = serde_json::to_value(AgentStatus::new("agent-1", "7")).unwrap();
    v["from_the_future"] = serde_json::json!({"nested": [1, 2, 3]});
    v["metrics"]["gpu_seconds"] = serde_json::json!(12.5);
    std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();

    store::update_status(&file, |s| {
        s.phase = Some("Running tests".into());
        Ok(())
    })
    .unwrap();

    let after: serde_json::Value = store::read_json(&file).unwrap();
    assert_eq!(after["from_the_future"]["nested"][2], 3);
    assert_eq!(after["metrics"]["gpu_seconds"], 12.5);
    assert_eq!(after["phase"], "Running tests");
}

/// The seed's `.agent_status.json` example is a valid status file.
#[test]
fn seed_example_parses() {
    let raw = include_str!("../fixtures/seed_agent_status.json");
    let s: AgentStatus = serde_json::from_str(raw).unwrap();
    assert_eq!(s.agent_id, "agent-1");
    assert_eq!(s.sub_issue, Some(1235));
    assert_eq!(s.status, State::InProgress);
    assert_eq!(s.branch.as_deref(), Some("feat/issue-1235"));
    assert_eq!(s.progress_percentage, Some(45));
    assert_eq!(s.pr_number, None);
    assert_eq!(
        po::timefmt::format(&s.start_time.unwrap()),
        "2025-12-01T12:00:00.000Z"
    );
    // And every seed field keeps its name when written back.
    let back = serde_json::to_value(&s).unwrap();
    let seed: serde_json::Value = serde_json::from_str(raw).unwrap();
    for key in seed.as_object().unwrap().keys() {
        assert!(back.get(key).is_some(), "seed field {key} lost");
    }
}

/// Invariant 4: liveness is a lock the kernel drops when its holder dies.
#[test]
fn liveness_follows_the_process() {
    if let Some(file) = worker_file() {
        let _held = store::hold_liveness(&file).unwrap().expect("free");
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = new_status(dir.path());
    assert!(!store::is_live(&file));
    let mut holder = worker("liveness_follows_the_process", &file, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !store::is_live(&file) {
        assert!(Instant::now() < deadline, "worker never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(store::hold_liveness(&file).unwrap().is_none());
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    assert!(!store::is_live(&file), "lock outlived its SIGKILLed holder");
    assert!(store::hold_liveness(&file).unwrap().is_some());
}

/// flock(1) in shell scripts and the library see the same lock.
#[test]
fn shell_flock_interoperates() {
    let dir = tempfile::tempdir().unwrap();
    let file = new_status(dir.path());
    let lock = store::liveness_path(&file);
    let mut sh = Command::new("flock")
        .arg("-x")
        .arg(&lock)
        .args(["sleep", "60"])
        .process_group(0)
        .spawn()
        .expect("flock(1) from util-linux");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !store::is_live(&file) {
        assert!(Instant::now() < deadline, "flock(1) never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    // `sleep` inherits the descriptor: end the whole group, as a shell would.
    let pgid = nix::unistd::Pid::from_raw(sh.id() as i32);
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
    sh.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while store::is_live(&file) {
        assert!(Instant::now() < deadline, "lock never released");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Invariant 5 at the library level: a bad file names itself.
#[test]
fn bad_status_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent-2.status.json");
    std::fs::write(&file, b"{\"agent_id\": \"agent-2\", \"status\": ").unwrap();
    let err = store::read_status(&file).unwrap_err().to_string();
    assert!(err.contains("agent-2.status.json"), "{err}");
    assert!(err.starts_with("read status file"), "{err}");
}

/// Names made from task text never reach git or the filesystem as given.
#[test]
fn hostile_names_are_safe_for_git_and_paths() {
    let hostile = [
        "../../etc",
        "/",
        "a\0b",
        "\x07\x1b[2J",
        "-rf",
        "--upload-pack=evil",
        "HEAD",
        "a..b",
        "x.lock",
        "@{u}",
        "trailing.",
        "sp ace~^:?*[\\",
        "ünïcødé",
        &"y".repeat(500),
    ];
    for raw in hostile {
        for name in [
            sanitize::branch_name(raw, None, 1),
            sanitize::branch_name("7", None, 2),
        ] {
            let ok = Command::new("git")
                .args(["check-ref-format", "--branch", &name])
                .output()
                .unwrap();
            assert!(ok.status.success(), "{raw:?} gave bad branch {name:?}");
        }
        if let Ok(id) = sanitize::id(raw) {
            assert!(!id.is_empty() && id.len() <= 64, "{raw:?} → {id:?}");
            assert!(
                !id.starts_with('-') && !id.starts_with('.'),
                "{raw:?} → {id:?}"
            );
            assert!(!id.contains("..") && !id.contains('/'), "{raw:?} → {id:?}");
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            );
            let p = Path::new("/r").join(&id);
            assert_eq!(p.parent(), Some(Path::new("/r")), "{raw:?} escapes");
        }
        let slug = sanitize::slug(raw, 40);
        assert!(slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}
