//! `cpo init`, `cpo validate`, `cpo status` before a run, and usage errors:
//! the real binary in real temp git repositories.

use crate::cpo_support;

use cpo_support::*;

fn valid_manifest(dir: &std::path::Path) {
    write(
        &dir.join("manifest.json"),
        r#"{
  "tech_spec_id": "TS-0007",
  "name": "sample",
  "waves": [
    {"number": 1, "tasks": [
      {"id": "task-001-a", "agent": "general-purpose", "prompt_file": "prompts/task-001.txt"},
      {"id": "task-002-b", "agent": "general-purpose", "prompt_file": "prompts/task-002.txt"}
    ]},
    {"number": 2, "tasks": [
      {"id": "task-003-c", "agent": "general-purpose", "prompt_file": "prompts/task-003.txt"}
    ], "validation": "true"}
  ]
}"#,
    );
    for n in 1..=3 {
        write(
            &dir.join(format!("prompts/task-00{n}.txt")),
            &format!("Do task {n}.\n"),
        );
    }
}

#[test]
fn init_writes_a_skeleton_that_validates_and_is_never_overwritten() {
    let repo = repo();
    let out = cmd("cpo", repo.path())
        .args([
            "init",
            "parallel/TS-0042-feature",
            "-t",
            "TS-0042",
            "-n",
            "feature-name",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = repo.path().join("parallel/TS-0042-feature");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["tech_spec_id"], "TS-0042");
    assert_eq!(manifest["name"], "feature-name");
    assert_eq!(manifest["waves"][0]["number"], 1);
    let prompt = manifest["waves"][0]["tasks"][0]["prompt_file"]
        .as_str()
        .unwrap();
    assert!(
        !std::fs::read_to_string(dir.join(prompt))
            .unwrap()
            .trim()
            .is_empty()
    );
    assert!(dir.join("README.md").is_file());
    assert!(dir.join("prompts").is_dir());

    // Valid as written, with a warning that the prompt is still the template.
    let out = cmd("cpo", repo.path())
        .args(["validate", "parallel/TS-0042-feature"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("manifest.json is valid"), "{text}");
    assert!(text.contains("still the template"), "{text}");

    // A second init keeps the existing manifest.
    std::fs::write(dir.join("manifest.json"), "{\"mine\": true}").unwrap();
    let out = cmd("cpo", repo.path())
        .args(["init", "parallel/TS-0042-feature", "-t", "TS-1", "-n", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.join("manifest.json")).unwrap(),
        "{\"mine\": true}"
    );
}

#[test]
fn validate_names_missing_required_fields_as_the_document_does() {
    let repo = repo();
    let dir = repo.path().join("parallel/bad");
    write(
        &dir.join("manifest.json"),
        "{\"name\": \"no id, no waves\"}",
    );
    let out = cmd("cpo", repo.path())
        .args(["validate", "parallel/bad"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "ERROR: manifest.json validation failed\n\nMissing required fields:\n  - \
             tech_spec_id\n  - waves\n"
        ),
        "{text}"
    );

    // Only the absent one is listed.
    write(&dir.join("manifest.json"), "{\"waves\": []}");
    let out = cmd("cpo", repo.path())
        .args(["validate", "parallel/bad/manifest.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    assert!(has_line(&text, "  - tech_spec_id"), "{text}");
    assert!(!has_line(&text, "  - waves"), "{text}");
}

#[test]
fn validate_reports_missing_empty_and_escaping_prompt_files() {
    let repo = repo();
    let dir = repo.path().join("p");
    write(
        &dir.join("manifest.json"),
        r#"{"tech_spec_id": "TS-1", "waves": [{"number": 1, "tasks": [
            {"id": "task-001-gone", "prompt_file": "prompts/task-001.txt"},
            {"id": "task-002-empty", "prompt_file": "prompts/task-002.txt"},
            {"id": "task-003-out", "prompt_file": "../secret.txt"},
            {"id": "task-004-ok", "prompt_file": "prompts/task-004.txt"}
        ]}]}"#,
    );
    write(&dir.join("prompts/task-002.txt"), "  \n\n");
    write(&repo.path().join("secret.txt"), "outside\n");
    write(&dir.join("prompts/task-004.txt"), "Do it.\n");
    let out = cmd("cpo", repo.path())
        .args(["validate", "p"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    assert!(
        has_line(&text, "ERROR: manifest.json validation failed"),
        "{text}"
    );
    let problem = |needle: &str| {
        text.lines()
            .any(|l| l.starts_with("  - ") && l.contains(needle))
    };
    assert!(problem("prompts/task-001.txt"), "{text}");
    assert!(problem("task-002-empty") && problem("is empty"), "{text}");
    assert!(problem("../secret.txt"), "{text}");
    assert!(!problem("task-004"), "{text}");
}

#[test]
fn validate_warns_on_a_dirty_tree_but_passes() {
    let repo = repo();
    let dir = repo.path().join("parallel/TS-0007");
    valid_manifest(&dir);
    // Uncommitted changes inside the parallel directory itself are expected.
    let out = cmd("cpo", repo.path())
        .args(["validate", "parallel/TS-0007"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(!text.contains("not clean"), "{text}");
    assert!(
        has_line(&text, "  Wave 1: task-001-a, task-002-b"),
        "{text}"
    );
    assert!(has_line(&text, "  Wave 2: task-003-c"), "{text}");

    std::fs::write(repo.path().join("README.md"), "changed\n").unwrap();
    let out = cmd("cpo", repo.path())
        .args(["validate", "parallel/TS-0007"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("Warnings:"), "{text}");
    assert!(
        text.contains("git working tree is not clean") && text.contains("README.md"),
        "{text}"
    );
}

#[test]
fn validate_outside_a_repository_fails_its_prerequisites() {
    let tmp = tempfile::tempdir().unwrap();
    valid_manifest(&tmp.path().join("p"));
    let out = cmd("cpo", tmp.path())
        .env("GIT_CEILING_DIRECTORIES", tmp.path().parent().unwrap())
        .args(["validate", "p"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(has_line(&text, "ERROR: prerequisites not met"), "{text}");
    assert!(text.contains("not inside a git repository"), "{text}");
}

#[test]
fn run_refuses_an_invalid_manifest_before_starting_anything() {
    let repo = repo();
    write(&repo.path().join("p/manifest.json"), "{}");
    let out = cmd("cpo", repo.path()).args(["run", "p"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        has_line(&err, "ERROR: manifest.json validation failed"),
        "{err}"
    );
    assert!(has_line(&err, "  - waves"), "{err}");
    assert!(!stdout(&out).contains("=== Parallel Execution Started ==="));
    assert!(!repo.path().join(".claude/runtime/parallel").exists());
    assert!(!repo.path().join("p/report.json").exists());
}

#[test]
fn status_before_a_run_lists_every_task_as_not_started() {
    let repo = repo();
    valid_manifest(&repo.path().join("p"));
    let out = cmd("cpo", repo.path())
        .args(["status", "p"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Not started: run 'cpo run p'"), "{text}");
    assert!(has_line(&text, "Wave 1:"), "{text}");
    assert!(has_line(&text, "  task-002-b: NOT STARTED"), "{text}");
    assert!(has_line(&text, "Wave 2:"), "{text}");
    assert!(has_line(&text, "Completed: 0/3 tasks"), "{text}");
}

#[test]
fn usage_errors_exit_64() {
    let repo = repo();
    for args in [
        vec![],
        vec!["run"],
        vec!["frobnicate", "p"],
        vec!["init", "p"],
        vec!["run", "p", "--max-workers", "many"],
    ] {
        let out = cmd("cpo", repo.path()).args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(64),
            "cpo {args:?}: {}",
            stderr(&out)
        );
    }
    let out = cmd("cpo", repo.path())
        .args(["status", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("cpo init"), "{}", stderr(&out));

    let out = cmd("cpo", repo.path()).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    for sub in ["init", "validate", "run", "status"] {
        assert!(stdout(&out).contains(sub), "{}", stdout(&out));
    }
}

#[test]
fn init_help_describes_dir_once() {
    let repo = repo();
    let out = cmd("cpo", repo.path())
        .args(["init", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let dir: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("<DIR>"))
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        dir.join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        "<DIR> The directory to create (e.g. parallel/TS-0042-inventory)",
        "{help}"
    );
}

/// With `--agent-cmd`, validate checks that agent's program, not claude's:
/// no warning about claude, and one naming a program that is not there.
#[test]
fn validate_checks_the_agent_it_is_given_instead_of_claude() {
    let repo = repo();
    let dir = repo.path().join("parallel/TS-0007");
    valid_manifest(&dir);
    write(&repo.path().join("agent.sh"), "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(
        repo.path().join("agent.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    git(repo.path(), &["add", "agent.sh"]);
    git(repo.path(), &["commit", "-q", "-m", "agent"]);
    // A PATH where claude cannot be: po's binaries and git.
    let tools = repo.scratch().join("bin");
    std::fs::create_dir_all(&tools).unwrap();
    let git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::os::unix::fs::symlink(git.trim(), tools.join("git")).unwrap();
    let bare = std::env::join_paths([bin_dir(), tools]).unwrap();
    let validate = |agent: Option<&str>| {
        let mut c = cmd("cpo", repo.path());
        c.env("PATH", &bare).args(["validate", "parallel/TS-0007"]);
        if let Some(a) = agent {
            c.args(["--agent-cmd", a]);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        stdout(&out)
    };
    assert!(validate(None).contains("claude (Claude Code CLI) is not on PATH"));
    let text = validate(Some("./agent.sh {prompt_file}"));
    assert!(!text.contains("claude"), "{text}");
    assert!(!text.contains("Warnings:"), "{text}");
    let text = validate(Some("./missing.sh {prompt_file}"));
    assert!(!text.contains("claude"), "{text}");
    assert!(
        text.contains("the agent command's program ./missing.sh is not an executable file"),
        "{text}"
    );
}
