//! The `/parallel-run` document end to end: `cpo init` → `validate` → `run` →
//! `status` on a two-wave manifest, in a real temp git repository, with a
//! shell agent (through `PO_AGENT_CMD`) that really commits in its worktree.

use crate::cpo_support;

use std::path::Path;

use cpo_support::*;
use serde_json::Value;

/// Writes the file its prompt names (`FILE: name`), reports progress, commits.
/// A wave-2 task (`NEEDS: a b`) fails unless wave 1's files are on its branch;
/// a task whose `FAIL_IF` file exists fails.
const AGENT: &str = r#"#!/bin/sh
set -eu
prompt=$1
file=$(sed -n 's/^FILE: //p' "$prompt" | head -n 1)
po-status set --progress 20 --phase "Reading the task"
echo "hello from $PO_AGENT_ID in $PWD"
for need in $(sed -n 's/^NEEDS: //p' "$prompt"); do
  if [ ! -f "$need" ]; then echo "missing $need from wave 1" >&2; exit 3; fi
done
fail=$(sed -n 's/^FAIL_IF: //p' "$prompt")
if [ -n "$fail" ] && [ -e "$fail" ]; then echo "told to fail" >&2; exit 1; fi
po-status set --progress 60 --phase "Implementing"
echo "$PO_AGENT_ID" > "$file"
git add "$file"
git commit -q -m "add $file"
po-status set --progress 100 --phase "Done"
"#;

fn setup(repo: &Repo) -> String {
    let agent = repo.scratch().join("agent.sh");
    write(&agent, AGENT);
    format!("sh {} {{prompt_file}}", agent.display())
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn init_validate_run_status_on_two_waves() {
    let repo = repo();
    let root = repo.path();
    let agent_cmd = setup(&repo);
    let dir = "parallel/TS-0042-inventory";

    let out = cmd("cpo", root)
        .args(["init", dir, "-t", "TS-0042", "-n", "inventory"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pdir = root.join(dir);
    write(
        &pdir.join("manifest.json"),
        r#"{
  "tech_spec_id": "TS-0042",
  "name": "inventory",
  "waves": [
    {"number": 1, "tasks": [
      {"id": "task-001-users", "agent": "general-purpose", "prompt_file": "prompts/task-001.txt"},
      {"id": "task-002-products", "agent": "general-purpose", "prompt_file": "prompts/task-002.txt"}
    ], "validation": "test -f users.txt && test -f products.txt"},
    {"number": 2, "tasks": [
      {"id": "task-003-orders", "agent": "general-purpose", "prompt_file": "prompts/task-003.txt"}
    ]}
  ]
}"#,
    );
    write(
        &pdir.join("prompts/task-001.txt"),
        "Users.\nFILE: users.txt\n",
    );
    write(
        &pdir.join("prompts/task-002.txt"),
        "Products.\nFILE: products.txt\n",
    );
    write(
        &pdir.join("prompts/task-003.txt"),
        "Orders.\nFILE: orders.txt\nNEEDS: users.txt products.txt\n",
    );
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "parallel dir"]);

    let out = cmd("cpo", root).args(["validate", dir]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let out = cmd("cpo", root)
        .env("PO_AGENT_CMD", &agent_cmd)
        .args(["run", dir, "--max-workers", "2"])
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{text}\nstderr:\n{err}"
    );
    for line in [
        "=== Parallel Execution Started ===",
        "Wave 1:",
        "  task-001-users: RUNNING",
        "  task-002-products: RUNNING",
        "🔎 Wave 1 validation: test -f users.txt && test -f products.txt",
        "✅ Wave 1 validation passed",
        "Wave 2:",
        "  task-003-orders: RUNNING",
        "=== Execution Complete ===",
        "Results:",
        "  Completed: 3/3 tasks",
        "  Failed: 0 tasks",
        "Next step: /parallel-integrate --parallel-dir parallel/TS-0042-inventory",
        "           (in a shell: cpo integrate parallel/TS-0042-inventory)",
    ] {
        assert!(
            has_line(&text, line),
            "missing {line:?} in:\n{text}\nstderr:\n{err}"
        );
    }
    // Framing appears once, from cpo, even if po-spawn prints its own.
    assert_eq!(
        text.matches("=== Execution Complete ===").count(),
        1,
        "{text}"
    );
    let started = text.find("=== Parallel Execution Started ===").unwrap();
    let validated = text.find("✅ Wave 1 validation passed").unwrap();
    let wave2 = text.find("Wave 2:").unwrap();
    let complete = text.find("=== Execution Complete ===").unwrap();
    assert!(
        started < validated && validated < wave2 && wave2 < complete,
        "{text}"
    );
    // Progress comes from the status files, not from po-spawn's console:
    // po-spawn runs quiet, and nothing of its progress reaches stderr.
    assert!(
        !err.contains("RUNNING") && !err.contains("Execution"),
        "{err}"
    );

    // DIR/logs/ holds the agents' output.
    let logs = files_under(&pdir.join("logs"));
    for n in 1..=3 {
        let needle = format!("hello from agent-{n}");
        assert!(
            logs.iter().any(|f| std::fs::read_to_string(f)
                .unwrap_or_default()
                .contains(&needle)),
            "no log under {}/logs with {needle:?}: {logs:?}",
            pdir.display()
        );
    }

    // DIR/report.json: totals, per-task results, the exit code.
    let report = read_json(&pdir.join("report.json"));
    assert_eq!(report["tech_spec_id"], "TS-0042");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["totals"]["tasks"], 3);
    assert_eq!(report["totals"]["completed"], 3);
    assert_eq!(report["totals"]["failed"], 0);
    assert_eq!(report["waves"].as_array().unwrap().len(), 2);
    let tasks = report["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3);
    for (task, file, wave) in [
        ("task-001-users", "users.txt", 1),
        ("task-002-products", "products.txt", 1),
        ("task-003-orders", "orders.txt", 2),
    ] {
        let t = tasks.iter().find(|t| t["id"] == task).expect(task);
        assert_eq!(t["status"], "completed", "{t}");
        assert_eq!(t["wave"], wave, "{t}");
        // The task's commit is on its branch.
        let branch = t["branch"].as_str().expect("branch recorded");
        let content = git(root, &["show", &format!("{branch}:{file}")]);
        assert!(
            content.starts_with("agent-"),
            "{branch}:{file} = {content:?}"
        );
    }

    // cpo status: each wave's tasks with their states.
    let out = cmd("cpo", root).args(["status", dir]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "Wave 1:",
        "Wave 2:",
        "Completed: 3/3 tasks",
        "Failed: 0 tasks",
        "Logs: parallel/TS-0042-inventory/logs/",
    ] {
        assert!(has_line(&text, line), "missing {line:?} in:\n{text}");
    }
    for task in ["task-001-users", "task-002-products", "task-003-orders"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("  {task}: COMPLETED"))),
            "{task} not COMPLETED in:\n{text}"
        );
    }

    let out = cmd("cpo", root)
        .args(["status", dir, "--json"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["orchestration_id"], "TS-0042");
    assert_eq!(status["totals"]["completed"], 3);
    assert_eq!(status["tasks"].as_array().unwrap().len(), 3);

    // Nothing cpo or po wrote dirties the repository.
    let porcelain = git(root, &["status", "--porcelain", "--untracked-files=all"]);
    assert!(
        porcelain.trim().is_empty(),
        "repository dirty after the run:\n{porcelain}"
    );
}

#[test]
fn a_failed_task_sets_the_exit_code_and_report_and_retry_finishes_it() {
    let repo = repo();
    let root = repo.path();
    let agent_cmd = setup(&repo);
    let flag = repo.scratch().join("fail-flag");
    std::fs::write(&flag, "").unwrap();
    let pdir = root.join("p");
    write(
        &pdir.join("manifest.json"),
        r#"{"tech_spec_id": "TS-9", "waves": [{"number": 1, "tasks": [
            {"id": "task-001-ok", "prompt_file": "prompts/task-001.txt"},
            {"id": "task-002-flaky", "prompt_file": "prompts/task-002.txt"}
        ]}]}"#,
    );
    write(&pdir.join("prompts/task-001.txt"), "FILE: ok.txt\n");
    write(
        &pdir.join("prompts/task-002.txt"),
        &format!("FILE: flaky.txt\nFAIL_IF: {}\n", flag.display()),
    );

    let out = cmd("cpo", root)
        .args(["run", "p", "--agent-cmd", &agent_cmd])
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    // 1 of 2 completed: below the 80 % threshold.
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout:\n{text}\nstderr:\n{err}"
    );
    assert!(has_line(&text, "  Completed: 1/2 tasks"), "{text}");
    assert!(has_line(&text, "  Failed: 1 task"), "{text}");
    assert!(text.contains("❌ task-002-flaky failed"), "{text}");
    assert!(text.contains("cpo run p --retry"), "{text}");
    assert!(!text.contains("Next step:"), "{text}");
    let report = read_json(&pdir.join("report.json"));
    assert_eq!(report["exit_code"], 2);
    assert_eq!(report["totals"]["completed"], 1);
    assert_eq!(report["totals"]["failed"], 1);
    let flaky = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "task-002-flaky")
        .unwrap()
        .clone();
    assert_eq!(flaky["status"], "failed", "{flaky}");

    let out = cmd("cpo", root).args(["status", "p"]).output().unwrap();
    let status = stdout(&out);
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("  task-002-flaky: FAILED")),
        "{status}"
    );

    // The second run resumes (no re-parse) and re-runs only the failed task.
    std::fs::remove_file(&flag).unwrap();
    let out = cmd("cpo", root)
        .args(["run", "p", "--retry", "--agent-cmd", &agent_cmd])
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{text}\nstderr:\n{err}"
    );
    assert!(err.contains("Resuming orchestration TS-9"), "{err}");
    assert!(has_line(&text, "  Completed: 2/2 tasks"), "{text}");
    let report = read_json(&pdir.join("report.json"));
    let tasks = report["tasks"].as_array().unwrap();
    let ok = tasks.iter().find(|t| t["id"] == "task-001-ok").unwrap();
    let flaky = tasks.iter().find(|t| t["id"] == "task-002-flaky").unwrap();
    assert_eq!(
        (ok["attempt"].as_u64(), flaky["attempt"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(flaky["status"], "completed");
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let repo = repo();
    let root = repo.path();
    let agent_cmd = setup(&repo);
    let pdir = root.join("p");
    write(
        &pdir.join("manifest.json"),
        r#"{"tech_spec_id": "TS-5", "waves": [
            {"number": 1, "tasks": [{"id": "task-001-a", "prompt_file": "prompts/task-001.txt"}]},
            {"number": 2, "tasks": [{"id": "task-002-b", "prompt_file": "prompts/task-002.txt"}]}
        ]}"#,
    );
    write(&pdir.join("prompts/task-001.txt"), "FILE: a.txt\n");
    write(&pdir.join("prompts/task-002.txt"), "FILE: b.txt\n");
    let out = cmd("cpo", root)
        .args(["run", "p", "--dry-run", "--agent-cmd", &agent_cmd])
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{text}\nstderr:\n{err}"
    );
    let all = format!("{text}{err}");
    assert!(
        all.contains("task-001-a") && all.contains("task-002-b"),
        "{all}"
    );
    assert!(!text.contains("=== Execution Complete ==="), "{text}");
    assert!(!pdir.join("report.json").exists());
    assert!(!pdir.join("logs").exists());
    let branches = git(root, &["branch", "--list", "feat/*"]);
    assert!(branches.trim().is_empty(), "{branches}");

    // The plan was recorded, nothing started: cpo status shows it pending.
    let out = cmd("cpo", root).args(["status", "p"]).output().unwrap();
    let status = stdout(&out);
    assert!(has_line(&status, "  task-001-a: PENDING"), "{status}");
    assert!(has_line(&status, "  task-002-b: PENDING"), "{status}");
}

#[test]
fn sigterm_to_cpo_cancels_the_run_and_still_writes_the_report() {
    interrupt_run("TERM", false);
}

/// Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
#[test]
fn ctrl_c_to_the_process_group_cancels_the_run_and_still_writes_the_report() {
    interrupt_run("INT", true);
}

fn interrupt_run(sig: &str, group: bool) {
    use std::os::unix::process::CommandExt;
    let repo = repo();
    let root = repo.path();
    let marks = repo.scratch().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let agent = repo.scratch().join("slow.sh");
    write(
        &agent,
        &format!(
            "#!/bin/sh\ntouch {}/$PO_AGENT_ID\nexec sleep 600\n",
            marks.display()
        ),
    );
    let pdir = root.join("p");
    write(
        &pdir.join("manifest.json"),
        r#"{"tech_spec_id": "TS-8", "waves": [{"number": 1, "tasks": [
            {"id": "task-001-a", "prompt_file": "prompts/task-001.txt"},
            {"id": "task-002-b", "prompt_file": "prompts/task-002.txt"}
        ]}]}"#,
    );
    write(&pdir.join("prompts/task-001.txt"), "a\n");
    write(&pdir.join("prompts/task-002.txt"), "b\n");

    let out_file = repo.scratch().join("cpo.out");
    let err_file = repo.scratch().join("cpo.err");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_cpo"))
        .current_dir(root)
        .env_remove("PO_RUNTIME_DIR")
        .env("PATH", path_with_bins())
        .env("PO_AGENT_CMD", format!("sh {}", agent.display()))
        .args(["run", "p"])
        .process_group(0)
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let start = std::time::Instant::now();
    while std::fs::read_dir(&marks).unwrap().count() < 2 {
        let early = child.0.try_wait().unwrap();
        let shown = std::fs::read_to_string(&out_file).unwrap_or_default();
        assert!(
            early.is_none() && !shown.contains('❌') && start.elapsed() < TIMEOUT,
            "agents never started (cpo: {early:?})\nstdout:\n{}\nstderr:\n{}",
            shown,
            std::fs::read_to_string(&err_file).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // While they run, cpo status shows them running, with a live supervisor.
    let out = cmd("cpo", root).args(["status", "p"]).output().unwrap();
    let status = stdout(&out);
    for task in ["task-001-a", "task-002-b"] {
        assert!(
            status
                .lines()
                .any(|l| l.starts_with(&format!("  {task}: RUNNING")) && !l.contains("orphaned")),
            "{task} not RUNNING in:\n{status}"
        );
    }
    assert!(has_line(&status, "Running: 2 tasks"), "{status}");

    let target = if group {
        format!("-{}", child.0.id())
    } else {
        child.0.id().to_string()
    };
    nix_kill(&target, sig);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < TIMEOUT, "cpo did not exit after SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = std::process::Output {
        status,
        stdout: std::fs::read(&out_file).unwrap(),
        stderr: std::fs::read(&err_file).unwrap(),
    };
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(130),
        "stdout:\n{text}\nstderr:\n{err}"
    );
    assert!(
        text.contains("Interrupted. Continue with: cpo run p"),
        "{text}"
    );
    let report = read_json(&pdir.join("report.json"));
    assert_eq!(report["exit_code"], 130);
    assert_eq!(report["totals"]["completed"], 0);
    for t in report["tasks"].as_array().unwrap() {
        assert_eq!(t["status"], "cancelled", "{t}");
    }
}

fn nix_kill(target: &str, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), "--", target])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {target}");
}

#[test]
fn a_failing_wave_validation_stops_later_waves_with_exit_4() {
    let repo = repo();
    let root = repo.path();
    let agent_cmd = setup(&repo);
    let pdir = root.join("p");
    write(
        &pdir.join("manifest.json"),
        r#"{"tech_spec_id": "TS-4", "waves": [
            {"number": 1, "tasks": [{"id": "task-001-a", "prompt_file": "prompts/task-001.txt"}],
             "validation": "test -f never-written.txt"},
            {"number": 2, "tasks": [{"id": "task-002-b", "prompt_file": "prompts/task-002.txt"}]}
        ]}"#,
    );
    write(&pdir.join("prompts/task-001.txt"), "FILE: a.txt\n");
    write(&pdir.join("prompts/task-002.txt"), "FILE: b.txt\n");
    let out = cmd("cpo", root)
        .args(["run", "p", "--agent-cmd", &agent_cmd])
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(4),
        "stdout:\n{text}\nstderr:\n{err}"
    );
    assert!(text.contains("❌ Wave 1 failed"), "{text}");
    assert!(has_line(&text, "  Completed: 1/2 tasks"), "{text}");
    assert!(text.contains("did not pass its validation"), "{text}");
    let report = read_json(&pdir.join("report.json"));
    assert_eq!(report["exit_code"], 4);
    let b = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "task-002-b")
        .unwrap()
        .clone();
    assert_eq!(b["status"], "cancelled", "{b}");
    assert!(
        files_under(&pdir.join("logs"))
            .iter()
            .any(|f| f.to_string_lossy().contains("validation")),
        "no validation log under p/logs"
    );
}

/// The last wave's `validation` must run too (the document: "Validation
/// failure -> stops wave, reports error").
#[test]
fn the_last_waves_validation_runs_too() {
    let repo = repo();
    let root = repo.path();
    let agent_cmd = setup(&repo);
    let pdir = root.join("p");
    write(
        &pdir.join("manifest.json"),
        r#"{"tech_spec_id": "TS-L", "waves": [
            {"number": 1, "tasks": [{"id": "task-001-a", "prompt_file": "prompts/task-001.txt"}],
             "validation": "test -f never-written.txt"}
        ]}"#,
    );
    write(&pdir.join("prompts/task-001.txt"), "FILE: a.txt\n");
    let out = cmd("cpo", root)
        .args(["run", "p", "--agent-cmd", &agent_cmd])
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(4),
        "stdout:\n{text}\nstderr:\n{err}"
    );
    assert!(text.contains("❌ Wave 1 failed"), "{text}");
}

/// Never leave a cpo behind when a test fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SIGTERM first: cpo passes it on and po-spawn stops its agents.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
