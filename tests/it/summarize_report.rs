//! po-summarize on crafted orchestrations: summary.json numbers against their
//! inputs, the markdown report, JUnit XML, thresholds and exit codes.

use crate::support_gh;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use po::protocol::{AgentStatus, State, runner};
use serde_json::{Value, json};
use support_gh::{agent, craft, json_of, orchestration};

/// The seed's example run: five tasks, agent-4 fails with a test timeout.
fn seed_run(rt: &Path) -> PathBuf {
    let logs = rt.join("logs/orch-1234-20260101-1200");
    std::fs::create_dir_all(&logs).unwrap();
    let spec: [(u64, State, i64, i64, u64, &str); 5] = [
        (1, State::Completed, 0, 765, 823, "Add login"),
        (2, State::Completed, 0, 922, 1045, "Add roles"),
        (3, State::Completed, 60, 1083, 1387, "JWT tokens"),
        (4, State::Failed, 0, 1800, 50, "User API"),
        (5, State::Completed, 1200, 1011, 872, "Integration tests"),
    ];
    let agents: Vec<AgentStatus> = spec
        .iter()
        .map(|&(n, state, start, secs, added, title)| {
            let mut a = agent(n, state, start, secs);
            a.title = title.into();
            a.sub_issue = Some(1234 + n);
            a.metrics.lines_added = Some(added);
            a.metrics.lines_removed = Some(n);
            let log = logs.join(format!("agent-{n}.log"));
            std::fs::write(&log, format!("agent {n} output\n")).unwrap();
            a.log_file = Some(log);
            if state == State::Completed {
                let pr = [0, 1240, 1241, 1242, 0, 1244][n as usize];
                a.pr_number = Some(pr);
                a.pr_url = Some(format!("https://github.com/owner/repo/pull/{pr}"));
            } else {
                a.error = Some("Test timeout".into());
                a.phase = Some("Running tests".into());
                a.exit_code = Some(1);
            }
            if n <= 2 {
                a.metrics.cost_usd = Some(0.25 * n as f64);
                a.metrics.turns = Some(10 * n);
                a.metrics.input_tokens = Some(1000 * n);
                a.metrics.output_tokens = Some(100 * n);
            }
            a
        })
        .collect();
    craft(
        rt,
        &orchestration("1234", Some((1234, "Add authentication system"))),
        &agents,
    )
}

fn summarize(rt: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_po-summarize"));
    cmd.args(args)
        .arg("--runtime-dir")
        .arg(rt)
        .current_dir(rt.parent().unwrap())
        .env_remove("PO_SUCCESS_THRESHOLD")
        .env_remove("AMPLIHACK_SUCCESS_THRESHOLD")
        .env("PO_GH", "/nonexistent/gh")
        .env_remove("PO_RUNTIME_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn summary_json_aggregates_the_status_files() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("rt");
    let dir = seed_run(&rt);
    let out = summarize(&rt, &["1234", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(1), "4/5 is 80%: partial success");
    let printed = json_of(&out.stdout);
    let written = json_of(&std::fs::read(dir.join("summary.json")).unwrap());
    assert_eq!(printed, written, "stdout is summary.json");

    let s = &written;
    // The seed's fields.
    assert_eq!(s["master_issue"], 1234);
    assert_eq!(s["total_sub_tasks"], 5);
    assert_eq!(s["successful"], 4);
    assert_eq!(s["failed"], 1);
    assert_eq!(s["prs_created"], json!([1240, 1241, 1242, 1244]));
    assert_eq!(s["follow_up_issues"], json!([]));
    // 12:00:00 (agents 1, 2, 4) to 12:36:51 (agent 5: 1200 s + 1011 s).
    assert_eq!(s["duration_seconds"], 2211);
    // Lines added by the completed tasks: 823 + 1045 + 1387 + 872.
    assert_eq!(s["lines_of_code"], 4127);
    // po's additions.
    assert_eq!(s["lines_added"], 4127 + 50);
    assert_eq!(s["lines_removed"], 1 + 2 + 3 + 4 + 5);
    assert_eq!(s["success_rate"], 80.0);
    assert_eq!(s["threshold"], 80);
    assert_eq!(s["exit_code"], 1);
    assert_eq!(
        s["sequential_seconds"],
        765.0 + 922.0 + 1083.0 + 1800.0 + 1011.0
    );
    assert_eq!(s["speedup"], ((5581.0f64 / 2211.0) * 100.0).round() / 100.0);
    // Agents 1-4 overlap from 12:01:00 to 12:12:45; agent 5 starts at 12:20.
    assert_eq!(s["peak_concurrency"], 4);
    assert_eq!(s["average_agent_duration_seconds"], 5581.0 / 5.0);
    assert_eq!(s["total_cost_usd"], 0.75);
    assert_eq!(s["total_turns"], 30);
    assert_eq!(s["total_input_tokens"], 3000);
    assert_eq!(s["total_output_tokens"], 300);
    assert_eq!(s["total_tokens"], 3300);
    assert_eq!(s["started_at"], "2026-01-01T12:00:00.000Z");
    assert_eq!(s["finished_at"], "2026-01-01T12:36:51.000Z");

    let agents = s["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 5);
    let a4 = &agents[3];
    assert_eq!(a4["agent_id"], "agent-4");
    assert_eq!(a4["state"], "failed");
    assert_eq!(a4["error"], "Test timeout");
    assert_eq!(a4["phase"], "Running tests");
    assert_eq!(a4["duration_seconds"], 1800.0);
    assert_eq!(a4["sub_issue"], 1238);
    assert_eq!(agents[1]["cost_usd"], 0.5);
    assert_eq!(agents[1]["turns"], 20);
    assert_eq!(agents[1]["tokens"], 2200);
    assert_eq!(agents[0]["pr_number"], 1240);
    assert_eq!(
        agents[0]["pr_url"],
        "https://github.com/owner/repo/pull/1240"
    );
    assert_eq!(s["logs"], json!([rt.join("logs/orch-1234-20260101-1200")]));
}

#[test]
fn summary_md_is_the_seed_report() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("rt");
    let dir = seed_run(&rt);
    let out = summarize(&rt, &["1234"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let md = stdout(&out);
    assert_eq!(md, std::fs::read_to_string(dir.join("summary.md")).unwrap());
    for line in [
        "## Parallel Orchestration Results",
        "**Master Issue**: #1234 - Add authentication system",
        "**Orchestration ID**: 1234",
        "**Duration**: 36m 51s",
        "**Success Rate**: 4/5 (80%)",
        "### Successful Tasks",
        "| Agent-1 | Add login | #1235 | [PR #1240](https://github.com/owner/repo/pull/1240) | 12m 45s | 823 |",
        "| Agent-2 | Add roles | #1236 | [PR #1241](https://github.com/owner/repo/pull/1241) | 15m 22s | 1,045 |",
        "| Agent-5 | Integration tests | #1239 | [PR #1244](https://github.com/owner/repo/pull/1244) | 16m 51s | 872 |",
        "**Total LOC**: 4,127 lines across 4 PRs",
        "### Failed Tasks",
        "| Agent-4 | #1238 | Test timeout | 30m 00s | — |",
        "### Next Steps",
        "1. Review and merge successful PRs (#1240, #1241, #1242, #1244); `po-react 1234 --follow` \
         hands failed checks, requested changes and conflicts on them back to their agents",
        "3. Fix and re-run sub-issue #1238: `po-spawn --id 1234 --retry`",
        "### Performance Metrics",
        "- **Parallel vs Sequential**: 36m 51s vs ~1h 33m sequential (2.5x speedup)",
        "- **Peak Concurrency**: 4 agents",
        "- **Average Agent Duration**: 18m 36s",
        "- **Success Rate**: 80%",
        "- **Total Cost**: $0.75",
        "- **Tokens**: 3,300 (3,000 in, 300 out)",
    ] {
        assert!(
            md.lines().any(|l| l == line),
            "missing line {line:?} in:\n{md}"
        );
    }
    assert!(
        md.contains("2. Investigate Agent-4 (Test timeout): log `"),
        "{md}"
    );
    let footer = md
        .lines()
        .find(|l| l.starts_with("📊 Full logs: "))
        .unwrap();
    assert!(footer.contains("logs/orch-1234-20260101-1200/"), "{footer}");
    // Sections in the seed's order.
    let pos = |h: &str| md.find(h).unwrap();
    assert!(pos("### Successful Tasks") < pos("### Failed Tasks"));
    assert!(pos("### Failed Tasks") < pos("### Next Steps"));
    assert!(pos("### Next Steps") < pos("### Performance Metrics"));
}

#[test]
fn thresholds_decide_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("rt");
    seed_run(&rt);
    let code = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["1234"];
        all.extend_from_slice(args);
        summarize(&rt, &all, env).status.code()
    };
    assert_eq!(code(&[], &[]), Some(1), "80% meets the default 80");
    assert_eq!(code(&["--threshold", "81"], &[]), Some(2));
    assert_eq!(code(&["--threshold", "0"], &[]), Some(1));
    assert_eq!(code(&[], &[("AMPLIHACK_SUCCESS_THRESHOLD", "90")]), Some(2));
    assert_eq!(code(&[], &[("PO_SUCCESS_THRESHOLD", "90")]), Some(2));
    assert_eq!(
        code(
            &[],
            &[
                ("PO_SUCCESS_THRESHOLD", "50"),
                ("AMPLIHACK_SUCCESS_THRESHOLD", "90")
            ]
        ),
        Some(1),
        "the PO_ twin beats the seed's variable"
    );
    assert_eq!(
        code(
            &["--threshold", "80"],
            &[("AMPLIHACK_SUCCESS_THRESHOLD", "90")]
        ),
        Some(1),
        "the flag beats the environment"
    );
    let bad = summarize(&rt, &["1234"], &[("AMPLIHACK_SUCCESS_THRESHOLD", "most")]);
    assert_eq!(bad.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("AMPLIHACK_SUCCESS_THRESHOLD"));
    assert_eq!(code(&["--threshold", "101"], &[]), Some(64));
}

#[test]
fn all_completed_exits_zero_and_few_exits_two() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("rt");
    let ok: Vec<AgentStatus> = (1..=3).map(|n| agent(n, State::Completed, 0, 10)).collect();
    craft(&rt, &orchestration("all", None), &ok);
    let out = summarize(&rt, &["all"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("**Success Rate**: 3/3 (100%)"));
    assert!(stdout(&out).contains("1. Review and merge the successful branches"));

    let mixed = vec![
        agent(1, State::Completed, 0, 10),
        agent(2, State::Failed, 0, 10),
        agent(3, State::TimedOut, 0, 10),
    ];
    craft(&rt, &orchestration("few", None), &mixed);
    let out = summarize(&rt, &["few", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let s = json_of(&out.stdout);
    assert_eq!(
        (s["successful"].clone(), s["failed"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(s["timed_out"], 1);
    assert_eq!(s["success_rate"], 33.33);
}

#[test]
fn junit_has_one_testcase_per_agent_and_parses_as_xml() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("rt");
    let mut agents = vec![
        agent(1, State::Completed, 0, 61),
        agent(2, State::Failed, 0, 30),
        agent(3, State::TimedOut, 5, 1800),
        agent(4, State::Cancelled, 10, 1),
        agent(5, State::Pending, 0, 0),
    ];
    agents[4].start_time = None;
    agents[0].title = "Parse <config> & \"quote\" it".into();
    agents[1].error = Some("assert a < b && c > \"d\" \u{1b}[31mred\u{1b}[0m 'x'".into());
    craft(&rt, &orchestration("ci&<x>", None), &agents);
    let dir = rt.join("parallel/ci-x");
    std::fs::rename(rt.join("parallel/ci&<x>"), &dir).unwrap();
    let out = summarize(&rt, &[dir.to_str().unwrap(), "--format", "junit"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let xml = stdout(&out);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));

    // A real XML parser reads it back; print what it found as JSON.
    let script = r#"
import json, sys
import xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
suites = root.findall("testsuite")
out = {"root": root.tag, "suites": len(suites), "suite": dict(suites[0].attrib), "cases": []}
for c in suites[0].findall("testcase"):
    kids = [{"tag": k.tag, **k.attrib} for k in c if k.tag != "system-out"]
    out["cases"].append({"name": c.get("name"), "classname": c.get("classname"),
                         "time": c.get("time"), "kids": kids})
print(json.dumps(out))
"#;
    let mut py = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 for the XML check");
    use std::io::Write;
    py.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
    let parsed = py.wait_with_output().unwrap();
    assert!(
        parsed.status.success(),
        "not well-formed XML: {}\n{xml}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let p = json_of(&parsed.stdout);
    assert_eq!(p["root"], "testsuites");
    assert_eq!(p["suites"], 1);
    assert_eq!(p["suite"]["tests"], "5");
    assert_eq!(p["suite"]["failures"], "2");
    assert_eq!(p["suite"]["skipped"], "2");
    assert_eq!(p["suite"]["errors"], "0");
    assert_eq!(p["suite"]["name"], "orchestration ci&<x>");
    assert_eq!(p["suite"]["timestamp"], "2026-01-01T12:00:00.000Z");
    let cases = p["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    assert_eq!(cases[0]["name"], "agent-1: Parse <config> & \"quote\" it");
    assert_eq!(cases[0]["classname"], "po.ci&<x>");
    assert_eq!(cases[0]["time"], "61.000");
    assert_eq!(cases[0]["kids"], json!([]));
    assert_eq!(
        cases[1]["kids"],
        json!([{"tag": "failure", "type": "failed",
                "message": "assert a < b && c > \"d\" [31mred[0m 'x'"}])
    );
    assert_eq!(cases[2]["kids"][0]["tag"], "failure");
    assert_eq!(cases[2]["kids"][0]["type"], "timed_out");
    assert_eq!(cases[2]["time"], "1800.000");
    assert_eq!(cases[3]["kids"][0]["tag"], "skipped");
    assert_eq!(cases[4]["kids"][0]["tag"], "skipped");
    assert_eq!(cases[4]["time"], "0.000");
}

#[test]
fn no_argument_means_the_newest_orchestration() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("rt");
    let old = craft(
        &rt,
        &orchestration("old", None),
        &[agent(1, State::Failed, 0, 5)],
    );
    craft(
        &rt,
        &orchestration("new", None),
        &[agent(1, State::Completed, 0, 5)],
    );
    let touch = Command::new("touch")
        .args(["-d", "2020-01-01 00:00:00"])
        .arg(old.join("orchestration.json"))
        .status()
        .unwrap();
    assert!(touch.success());
    let out = summarize(&rt, &["--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out.stdout)["orchestration_id"], "new");

    let empty = tmp.path().join("empty-rt");
    let out = summarize(&empty, &[], &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `po-parse` first"));
}

#[test]
fn a_broken_status_file_is_named_and_counted_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("rt");
    let dir = craft(
        &rt,
        &orchestration("7", None),
        &[
            agent(1, State::Completed, 0, 5),
            agent(2, State::Completed, 0, 5),
        ],
    );
    let bad = dir.join("agent-3.status.json");
    std::fs::write(&bad, "{\"agent_id\": \"agent-3\", \"status\": ").unwrap();
    let out = summarize(&rt, &["7", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(2), "2/3 is below 80%");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent-3.status.json"), "{err}");
    let s = json_of(&out.stdout);
    assert_eq!(s["total_sub_tasks"], 3);
    assert_eq!(s["successful"], 2);
    assert_eq!(s["unreadable"], 1);
    assert_eq!(s["unreadable_files"][0]["path"], json!(bad));
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(md.contains("| unreadable |"), "{md}");
}

#[test]
fn running_tasks_count_as_not_yet_successful() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("rt");
    let mut running = agent(2, State::InProgress, 0, 0);
    running.phase = Some("Implementing".into());
    craft(
        &rt,
        &orchestration("9", None),
        &[agent(1, State::Completed, 0, 5), running],
    );
    let out = summarize(&rt, &["9", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let s = json_of(&out.stdout);
    assert_eq!(s["in_progress"], 1);
    assert_eq!(s["finished_at"], Value::Null);
    assert_eq!(s["peak_concurrency"], 2, "the running task is still alive");
    let md = std::fs::read_to_string(rt.join("parallel/9/summary.md")).unwrap();
    assert!(
        md.contains("| Agent-2 | — | in_progress | Implementing |"),
        "{md}"
    );
    assert!(md.contains("`po-watch 9 --follow`"), "{md}");
}

#[test]
fn tasks_run_as_slurm_jobs_show_their_nodes_and_a_queued_one_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("rt");
    let on = |n: u64, node: &str| {
        let mut a = agent(n, State::Completed, 0, 5);
        let id = (100 + n).to_string();
        runner::record(&mut a.extra, "slurm", &id, &format!("Slurm job {id}"));
        a.extra.insert("node".into(), node.into());
        a
    };
    let mut waiting = AgentStatus::new("agent-4", "1234");
    // An older file: a numeric job id, no runner shown.
    waiting.extra.insert("launcher".into(), "slurm".into());
    waiting.extra.insert("job_id".into(), 104.into());
    waiting
        .extra
        .insert("queued".into(), "QOSMaxJobsPerUserLimit".into());
    craft(
        &rt,
        &orchestration("9", None),
        &[on(1, "n02"), on(2, "n01"), on(3, "n02"), waiting],
    );
    let out = summarize(&rt, &["9", "--format", "json"], &[]);
    let s = json_of(&out.stdout);
    assert_eq!(s["agents"][0]["node"], "n02");
    assert_eq!(s["agents"][0]["runner_id"], "101");
    assert_eq!(s["agents"][0]["runner"], "Slurm job 101");
    assert_eq!(s["agents"][3]["runner_id"], "104");
    assert_eq!(s["agents"][3]["queued"], "QOSMaxJobsPerUserLimit");
    let md = std::fs::read_to_string(rt.join("parallel/9/summary.md")).unwrap();
    assert!(
        md.contains("- **Nodes**: n02 (2 agents), n01 (1 agent)"),
        "{md}"
    );
    assert!(
        md.contains("| Agent-4 | — | queued | job 104 waits: QOSMaxJobsPerUserLimit |"),
        "{md}"
    );
}

#[test]
fn summary_md_draws_the_run_as_a_mermaid_gantt() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("rt");
    seed_run(&rt);
    let md = stdout(&summarize(&rt, &["1234"], &[]));
    let start = md.find("### Timeline\n\n```mermaid\ngantt\n").expect(&md);
    let block = &md[start..];
    let block = &block[..block.find("\n```\n").expect(&md)];
    let tasks: Vec<&str> = block.lines().filter(|l| l.contains(", a")).collect();
    assert_eq!(
        tasks,
        [
            "    agent-1 Add login :done, a1, 2026-01-01 12:00:00, 2026-01-01 12:12:45",
            "    agent-2 Add roles :done, a2, 2026-01-01 12:00:00, 2026-01-01 12:15:22",
            "    agent-4 User API :crit, a3, 2026-01-01 12:00:00, 2026-01-01 12:30:00",
            "    agent-3 JWT tokens :done, a4, 2026-01-01 12:01:00, 2026-01-01 12:19:03",
            "    agent-5 Integration tests :done, a5, 2026-01-01 12:20:00, 2026-01-01 12:36:51",
        ],
        "{block}"
    );
    assert!(md.find("### Timeline").unwrap() < md.find("### Performance Metrics").unwrap());
}

#[test]
fn html_report_is_one_self_contained_page_with_the_timeline() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("rt");
    let dir = seed_run(&rt);
    // Untrusted task text and a PR URL that is not one.
    let a3 = dir.join("agent-3.status.json");
    po::protocol::store::update_status(&a3, |s| {
        s.title = "<script>alert(1)</script>".into();
        s.pr_url = Some("javascript:alert(2)".into());
        Ok(())
    })
    .unwrap();
    let out = summarize(&rt, &["1234", "--format", "html"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let html = stdout(&out);
    assert!(html.starts_with("<!DOCTYPE html>\n<html"), "{html}");
    assert!(html.trim_end().ends_with("</html>"));
    // One SVG, one bar per agent, no script and nothing fetched.
    assert_eq!(html.matches("<svg").count(), 1);
    assert_eq!(html.matches("<rect ").count(), 5);
    assert!(!html.to_lowercase().contains("<script"), "{html}");
    assert!(!html.contains("src="));
    assert!(!html.contains("<link"));
    assert!(!html.contains("javascript:"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Real PR links are links; the fake one is text.
    assert!(html.contains("<a href=\"https://github.com/owner/repo/pull/1240\""));
    assert!(html.contains("<td>#1242</td>"), "{html}");
    // The numbers of the summary.
    assert!(html.contains("4/5 (80%)"));
    assert!(html.contains("<span class=\"chip failed\">1 failed</span>"));
    // It does not replace summary.md.
    assert!(
        std::fs::read_to_string(dir.join("summary.md"))
            .unwrap()
            .starts_with("## Parallel")
    );
}

/// Costs over every attempt, by model and per completed task, against the
/// budget; an agent that reported tokens but no cost is `—`, never `$0.00`.
#[test]
fn the_summary_gives_cost_per_model_per_completed_task_and_against_the_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("rt");
    let mut a1 = agent(1, State::Completed, 0, 60);
    a1.metrics.model = Some("claude-opus-5-5".into());
    a1.metrics.cost_usd = Some(0.0168);
    // agent-2 completed on its second attempt; the first cost $0.01.
    let mut a2 = agent(2, State::Completed, 0, 60);
    a2.attempt = 2;
    a2.metrics.model = Some("claude-opus-5-5".into());
    a2.metrics.previous_cost_usd = Some(0.01);
    a2.metrics.cost_usd = Some(0.0168);
    let mut a3 = agent(3, State::Failed, 0, 60);
    a3.metrics.model = Some("claude-haiku-4-5".into());
    a3.metrics.cost_usd = Some(0.0044);
    // agent-4: a subscription agent, tokens only.
    let mut a4 = agent(4, State::Completed, 0, 60);
    a4.metrics.input_tokens = Some(6900);
    a4.metrics.output_tokens = Some(100);
    let mut orch = orchestration("77", None);
    orch.options
        .insert("last_run".into(), json!({"budget_usd": 0.05}));
    let dir = craft(&rt, &orch, &[a1, a2, a3, a4]);

    let out = summarize(&rt, &["77", "--format", "json"], &[]);
    let s = json_of(&out.stdout);
    assert_eq!(s["total_cost_usd"], 0.048);
    assert_eq!(
        s["cost_by_model"],
        json!({"claude-haiku-4-5": 0.0044, "claude-opus-5-5": 0.0436})
    );
    assert_eq!(s["cost_per_completed_task"], 0.016);
    assert_eq!(s["tokens_without_cost"], 1);
    assert_eq!(s["spent_usd"], 0.048);
    assert_eq!(s["budget_usd"], 0.05);
    let agents = s["agents"].as_array().unwrap();
    assert_eq!(agents[1]["cost_usd"], 0.0168);
    assert_eq!(agents[1]["total_cost_usd"], 0.0268);
    assert_eq!(agents[3]["total_cost_usd"], Value::Null);

    let md = stdout(&summarize(&rt, &["77"], &[]));
    for line in [
        "- **Total Cost**: $0.0480",
        "- **Without a Cost**: 1 agent reported tokens but no cost (—)",
        "- **Budget**: spent $0.0480 of $0.0500 budget (1 task reported no cost)",
        "- **Cost per Model**: `claude-haiku-4-5` $0.0044, `claude-opus-5-5` $0.0436",
        "- **Cost per Completed Task**: $0.0160",
    ] {
        assert!(md.lines().any(|l| l == line), "missing {line:?} in:\n{md}");
    }
    assert!(!md.contains("$0.00\n") && !md.contains("$0.00 "), "{md}");
    assert!(dir.join("summary.md").exists());

    let html = stdout(&summarize(&rt, &["77", "--format", "html"], &[]));
    assert!(html.contains("$0.0268"), "agent-2's two attempts together");
}

/// An agent whose subagents ran on other models (Claude Code's `modelUsage`,
/// recorded as `metrics.models`): the cost per model splits its cost in the
/// shares it reported, every attempt together.
#[test]
fn a_tasks_cost_splits_between_the_models_it_ran() {
    use po::protocol::schema::ModelMetrics;
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("rt");
    let mut a1 = agent(1, State::Completed, 0, 60);
    a1.metrics.model = Some("claude-opus-4-5".into());
    a1.metrics.previous_cost_usd = Some(0.1);
    a1.metrics.cost_usd = Some(0.3);
    for (model, cost) in [("claude-opus-4-5", 0.3), ("claude-haiku-4-5", 0.1)] {
        a1.metrics.models.insert(
            model.into(),
            ModelMetrics {
                output_tokens: 100,
                cost_usd: Some(cost),
                ..ModelMetrics::default()
            },
        );
    }
    let mut a2 = agent(2, State::Completed, 0, 60);
    a2.metrics.model = Some("claude-haiku-4-5".into());
    a2.metrics.cost_usd = Some(0.05);
    let dir = craft(&rt, &orchestration("78", None), &[a1, a2]);
    let status: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("agent-1.status.json")).unwrap())
            .unwrap();
    assert_eq!(
        status["metrics"]["models"]["claude-haiku-4-5"]["cost_usd"],
        0.1
    );

    let s = json_of(&summarize(&rt, &["78", "--format", "json"], &[]).stdout);
    assert_eq!(s["total_cost_usd"], 0.45);
    assert_eq!(
        s["cost_by_model"],
        json!({"claude-haiku-4-5": 0.15, "claude-opus-4-5": 0.3})
    );
    assert_eq!(
        s["agents"][0]["cost_by_model"],
        json!({"claude-haiku-4-5": 0.1, "claude-opus-4-5": 0.3})
    );
}
