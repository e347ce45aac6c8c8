//! `po-parse` on each markdown format of the issue-driven seed.

use crate::parse_support;

use parse_support::*;
use predicates::prelude::*;

#[test]
fn checklist_items_are_tasks_and_checked_ones_are_skipped_and_reported() {
    let repo = Repo::new();
    let out = repo.cmd().arg(fixture("checklist.md")).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = stdout_lines(&out);
    let dir = std::fs::canonicalize(repo.orchestration_dir("checklist")).unwrap();
    let want: Vec<String> = (1..=4)
        .map(|n| {
            dir.join(format!("agent-{n}.status.json"))
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(lines, want);
    assert_eq!(
        titles(&repo, "checklist"),
        [
            "Add authentication",
            "Add authorization",
            "Add password reset",
            "Add 2FA"
        ]
    );
    let s = repo.status("checklist", 1);
    assert_eq!(s["status"], "pending");
    assert_eq!(s["orchestration_id"], "checklist");
    assert_eq!(s["branch"], "feat/checklist-agent-1");
    assert_eq!(s["wave"], 1);
    assert!(s["complexity"].is_string());
    let orch = repo.orchestration("checklist");
    let skipped: Vec<&str> = orch["report"]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["title"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["Add JWT support", "Remove legacy login"]);
    assert_eq!(orch["report"]["format"], "checklist");
    assert_eq!(orch["title"], "Add authentication system");
    assert_eq!(orch["source"]["kind"], "markdown");
    assert!(repo.orchestration_dir("checklist").join("prompts").is_dir());
}

#[test]
fn numbered_lists_with_dots_and_parentheses() {
    let repo = Repo::new();
    repo.cmd().arg(fixture("numbered.md")).assert().success();
    assert_eq!(
        titles(&repo, "numbered"),
        ["Implement user model", "Create user API", "Add user tests"]
    );
}

#[test]
fn only_the_sub_tasks_section_is_read_and_its_headers_are_tasks() {
    let repo = Repo::new();
    repo.cmd().arg(fixture("sections.md")).assert().success();
    assert_eq!(
        titles(&repo, "sections"),
        ["Authentication Module", "Authorization Middleware"]
    );
    let body = repo.status("sections", 1)["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        body.starts_with("Implement OAuth2 authentication..."),
        "{body}"
    );
    assert!(body.contains("- [ ] a checklist inside a section body stays in the body"));
    let body2 = repo.status("sections", 2)["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(body2.contains("### not a task: inside code"), "{body2}");
}

#[test]
fn the_seeds_supported_formats_block_reads_its_sub_tasks_section() {
    let repo = Repo::new();
    repo.cmd()
        .arg(fixture("seed_formats.md"))
        .assert()
        .success();
    assert_eq!(
        titles(&repo, "seed_formats"),
        ["Authentication Module", "Authorization Middleware"]
    );
}

#[test]
fn nested_list_lines_belong_to_their_parent() {
    let repo = Repo::new();
    repo.cmd().arg(fixture("nested.md")).assert().success();
    // A lazy continuation line is part of the item's paragraph: one title.
    assert_eq!(
        titles(&repo, "nested"),
        [
            "Parent task",
            "Second task continued lazily on the next line"
        ]
    );
    let s = repo.status("nested", 1);
    assert_eq!(
        s["body"],
        "- [ ] first step of the parent\n- details in `src/parent/`\n  1. numbered detail"
    );
    assert_eq!(s["files"], serde_json::json!(["src/parent/"]));
    assert_eq!(repo.status("nested", 2)["body"], "");
}

#[test]
fn fenced_code_comments_and_quotes_are_never_tasks() {
    let repo = Repo::new();
    repo.cmd().arg(fixture("never_tasks.md")).assert().success();
    assert_eq!(titles(&repo, "never_tasks"), ["The only real task"]);
}

#[test]
fn dependencies_become_waves_and_overlaps_are_reported() {
    let repo = Repo::new();
    repo.cmd().arg(fixture("deps.md")).assert().success();
    let dep = |n| repo.status("deps", n)["depends_on"].clone();
    let wave = |n| repo.status("deps", n)["wave"].as_u64().unwrap();
    assert_eq!(dep(2), serde_json::json!(["agent-1"]));
    assert_eq!(dep(3), serde_json::json!(["agent-2"]));
    assert_eq!(dep(4), serde_json::json!(["agent-1"]));
    assert_eq!(dep(5), serde_json::json!(["agent-3", "agent-4"]));
    assert_eq!((1..=5).map(wave).collect::<Vec<_>>(), [1, 2, 3, 2, 4]);
    let orch = repo.orchestration("deps");
    let waves: Vec<_> = orch["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["number"].as_u64().unwrap(), w["agents"].clone()))
        .collect();
    assert_eq!(
        waves,
        [
            (1, serde_json::json!(["agent-1"])),
            (2, serde_json::json!(["agent-2", "agent-4"])),
            (3, serde_json::json!(["agent-3"])),
            (4, serde_json::json!(["agent-5"])),
        ]
    );
    let overlaps = &orch["report"]["overlaps"];
    assert_eq!(
        overlaps,
        &serde_json::json!([{"path": "models/cart.py", "agents": ["agent-1", "agent-3"]}])
    );
    assert_eq!(orch["report"]["dependencies"].as_array().unwrap().len(), 5);
}

#[test]
fn dry_run_prints_the_seeds_report_and_writes_nothing() {
    let repo = Repo::new();
    let out = repo
        .cmd()
        .args(["--dry-run"])
        .arg(fixture("deps.md"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "🔍 DRY RUN MODE\n",
        "🚀 Parsed 5 sub-tasks from ",
        "\nSub-tasks identified:\n1. Cart data model (estimated complexity: ",
        "\n2. Cart API endpoints (estimated complexity: medium)\n",
        "\nIndependence validation:\n",
        "⚠️  Task 2 depends on task 1 (\"depends on task 1\")\n",
        "⚠️  Tasks 1, 3 may share models/cart.py\n",
        "\nWaves: 4\n  Wave 1: task 1\n  Wave 2: tasks 2, 4\n",
        "\nEstimated duration: ",
        " minutes (parallel, at most 5 agents at a time; ",
        " minutes one after another)\nPull requests: none by default; `po-spawn --create-pr` \
         opens one per completed task (up to 5)\n",
        "\nRecommendation: Proceed with caution",
        "To run: po-parse ",
        " | po-spawn\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(
        !repo.path().join(".claude").exists(),
        "a dry run wrote files"
    );

    let out = repo
        .cmd()
        .args(["--dry-run"])
        .arg(fixture("numbered.md"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("✅ No file conflicts detected\n✅ No sequential dependencies\n"),
        "{text}"
    );
    assert!(
        text.contains("\nRecommendation: Proceed with orchestration\n"),
        "{text}"
    );
    assert!(!repo.path().join(".claude").exists());
}

#[test]
fn json_with_and_without_dry_run() {
    let repo = Repo::new();
    let out = repo
        .cmd()
        .args(["--dry-run", "--json"])
        .arg(fixture("deps.md"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["id"], "deps");
    assert_eq!(v["tasks"].as_array().unwrap().len(), 5);
    assert_eq!(v["tasks"][1]["depends_on"], serde_json::json!(["agent-1"]));
    // A markdown file gets no pull requests unless po-spawn is asked for them.
    assert_eq!(v["estimated_prs"], 0);
    assert_eq!(v["prs_with_create_pr"], 5);
    // Waves run one after another; with 5 agents at a time a wave takes as
    // long as its longest task (low 5-10, medium 10-15, high 15-20 minutes).
    let minutes = |c: &serde_json::Value| match c.as_str().unwrap() {
        "low" => (5, 10),
        "medium" => (10, 15),
        "high" => (15, 20),
        other => panic!("complexity {other}"),
    };
    let mut want = (0, 0);
    let mut seq = (0, 0);
    for w in v["waves"].as_array().unwrap() {
        let longest = w["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let t = v["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|t| &t["agent_id"] == a);
                minutes(&t.unwrap()["complexity"])
            })
            .fold((0, 0), |m, t| (m.0.max(t.0), m.1.max(t.1)));
        want = (want.0 + longest.0, want.1 + longest.1);
    }
    for t in v["tasks"].as_array().unwrap() {
        let m = minutes(&t["complexity"]);
        seq = (seq.0 + m.0, seq.1 + m.1);
    }
    assert_eq!(
        v["estimated_minutes"],
        serde_json::json!({"parallel": [want.0, want.1], "sequential": [seq.0, seq.1], "max_workers": 5})
    );
    let text = String::from_utf8(
        repo.cmd()
            .args(["--dry-run"])
            .arg(fixture("deps.md"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        text.contains(&format!(
            "Estimated duration: {}-{} minutes (parallel, at most 5 agents at a time; {}-{} minutes one after another)\n",
            want.0, want.1, seq.0, seq.1
        )),
        "{text}"
    );
    assert!(v["tasks"][0].get("status_file").is_none());
    assert!(!repo.path().join(".claude").exists());

    let out = repo
        .cmd()
        .args(["--json"])
        .arg(fixture("deps.md"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], false);
    let file = v["tasks"][4]["status_file"].as_str().unwrap();
    assert!(
        file.ends_with("/parallel/deps/agent-5.status.json"),
        "{file}"
    );
    assert!(std::path::Path::new(file).is_file());
}

#[test]
fn a_dependency_cycle_exits_4_naming_the_tasks() {
    let repo = Repo::new();
    repo.cmd().arg(fixture("cycle.md")).assert().code(4).stderr(
        predicate::str::contains("cycle")
            .and(predicate::str::contains("task 1 (\"Build the parser\")"))
            .and(predicate::str::contains("task 3 (\"Build the lexer\")")),
    );
    assert!(!repo.path().join(".claude").exists());
}

#[test]
fn stdin_is_a_source() {
    let repo = Repo::new();
    repo.cmd()
        .arg("-")
        .write_stdin("- [ ] one\n- [ ] two\n")
        .assert()
        .success();
    assert_eq!(titles(&repo, "stdin"), ["one", "two"]);
    assert_eq!(repo.orchestration("stdin")["source"]["kind"], "stdin");
}

#[test]
fn a_file_named_issue_md_gets_branches_without_a_doubled_word() {
    let repo = Repo::new();
    std::fs::write(repo.path().join("issue.md"), "- [ ] One\n- [ ] Two\n").unwrap();
    repo.cmd().arg("issue.md").assert().success();
    assert_eq!(repo.status("issue", 1)["branch"], "feat/issue-agent-1");
    assert_eq!(repo.status("issue", 2)["branch"], "feat/issue-agent-2");
    // An orchestration named by an issue number keeps the seed's form.
    repo.cmd()
        .args(["issue.md", "--id", "1234"])
        .assert()
        .success();
    assert_eq!(repo.status("1234", 2)["branch"], "feat/issue-1234-agent-2");
}

#[test]
fn a_real_run_says_what_it_parsed_and_warns_of_overlaps_on_stderr() {
    let repo = Repo::new();
    let out = repo.cmd().arg(fixture("deps.md")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(err.starts_with("🚀 Parsed 5 sub-tasks from "), "{err}");
    assert!(
        err.contains("\n⚠️  Tasks 1, 3 may share models/cart.py\n"),
        "{err}"
    );
    // stdout stays data: the status paths only.
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 5);
    assert!(
        lines.iter().all(|l| l.ends_with(".status.json")),
        "{lines:?}"
    );
    assert_eq!(
        repo.orchestration("deps")["report"]["warnings"],
        serde_json::json!(["Tasks 1, 3 may share models/cart.py"])
    );
}

#[test]
fn section_picks_the_list_and_the_dry_run_and_status_files_say_where_tasks_come_from() {
    let repo = Repo::new();
    std::fs::write(
        repo.path().join("rfc.md"),
        "Tracking issue.\n\n### Steps\n\n- [ ] Implement it\n- [x] Write the RFC\n\n\
         ### Unresolved Questions\n\n- [ ] What is it called?\n",
    )
    .unwrap();
    let out = repo.cmd().args(["rfc.md", "--dry-run"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("1. Implement it (section: Steps; estimated complexity: "),
        "{text}"
    );
    assert!(
        text.contains("2. What is it called? (section: Unresolved Questions; "),
        "{text}"
    );
    assert!(
        text.contains(
            "ℹ️  The tasks come from 2 sections: Steps (1), Unresolved Questions (1); \
             `--section NAME` reads only the one whose heading is NAME\n"
        ),
        "{text}"
    );
    repo.cmd()
        .args(["rfc.md", "--section", "UNRESOLVED"])
        .assert()
        .success();
    assert_eq!(titles(&repo, "rfc"), ["What is it called?"]);
    let s = repo.status("rfc", 1);
    assert_eq!(s["section"], "Unresolved Questions");
    assert_eq!(s["body"], "**Section**: Unresolved Questions");
    // A manifest has no sections.
    repo.cmd()
        .args(["--section", "x"])
        .arg(fixture("manifest-convention"))
        .assert()
        .code(64)
        .stderr(predicate::str::contains("--section"));
}
