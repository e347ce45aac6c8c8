//! `po-parse` on cpo parallel directories: both manifest shapes and every
//! kind of invalid manifest.

use crate::parse_support;

use std::path::Path;

use parse_support::*;
use predicates::prelude::*;
use serde_json::json;

/// Copy a fixture directory into the repository.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

#[test]
fn tasks_with_prompt_file_run_in_wave_number_order() {
    let repo = Repo::new();
    let dir = repo.path().join("parallel/TS-0042-inventory");
    copy_dir(&fixture("manifest-prompt-file"), &dir);
    let out = repo.cmd().arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_lines(&out).len(), 3);
    assert_eq!(
        titles(&repo, "TS-0042"),
        ["task-001-users", "task-002-products", "task-004-orders"]
    );
    let canon = std::fs::canonicalize(&dir).unwrap();
    let s = repo.status("TS-0042", 3);
    assert_eq!(s["task_id"], "task-004-orders");
    assert_eq!(s["agent"], "python-experts:django-expert");
    assert_eq!(s["wave"], 2);
    assert_eq!(s["prompt_file"], json!(canon.join("prompts/task-004.txt")));
    assert!(s["body"].as_str().unwrap().starts_with("Create orders"));
    let orch = repo.orchestration("TS-0042");
    assert_eq!(orch["source"]["kind"], "manifest");
    assert_eq!(
        orch["waves"],
        json!([
            {"number": 1, "agents": ["agent-1", "agent-2"],
             "validation": "python -c 'from apps.users.models import User'"},
            {"number": 2, "agents": ["agent-3"], "validation": "pytest apps/orders/tests/ -v"},
        ])
    );
    assert_eq!(
        orch["report"]["overlaps"],
        json!([{"path": "apps/users/models.py", "agents": ["agent-1", "agent-3"]}])
    );
}

#[test]
fn tasks_without_prompt_file_use_the_prompts_convention() {
    let repo = Repo::new();
    let dir = repo.path().join("p");
    copy_dir(&fixture("manifest-convention"), &dir);
    repo.cmd().arg(dir.join("manifest.json")).assert().success();
    // The id is the sanitised tech_spec_id.
    let id = "TS-0007-inventory";
    let canon = std::fs::canonicalize(&dir).unwrap();
    assert_eq!(
        repo.status(id, 3)["prompt_file"],
        json!(canon.join("prompts/task-003.txt"))
    );
    assert_eq!(repo.status(id, 3)["agent"], serde_json::Value::Null);
    assert_eq!(repo.status(id, 3)["wave"], 2);
    assert_eq!(repo.status(id, 1)["body"], "Prompt for task 1.\n");
    assert_eq!(
        repo.orchestration(id)["waves"][1]["validation"],
        "make check"
    );
}

/// Write a manifest (and prompts) into a fresh directory; run po-parse on it.
fn invalid(manifest: &str, prompts: &[&str]) -> (Repo, assert_cmd::assert::Assert) {
    let repo = Repo::new();
    let dir = repo.path().join("par");
    std::fs::create_dir_all(dir.join("prompts")).unwrap();
    for p in prompts {
        std::fs::write(dir.join(p), "x\n").unwrap();
    }
    std::fs::write(dir.join("manifest.json"), manifest).unwrap();
    let assert = repo.cmd().arg(&dir).assert();
    (repo, assert)
}

#[test]
fn missing_required_fields_are_named() {
    let (repo, a) = invalid(r#"{"name": "x"}"#, &[]);
    a.code(3).stderr(predicate::str::contains(
        "Missing required fields: tech_spec_id, waves",
    ));
    assert!(!repo.path().join(".claude").exists());
}

#[test]
fn duplicate_task_ids_are_refused() {
    let (_r, a) = invalid(
        r#"{"tech_spec_id":"T","waves":[{"number":1,"tasks":[
            {"id":"task-001","prompt_file":"prompts/a.txt"}]},
            {"number":2,"tasks":[{"id":"task-001","prompt_file":"prompts/a.txt"}]}]}"#,
        &["prompts/a.txt"],
    );
    a.code(3).stderr(
        predicate::str::contains("task \"task-001\"")
            .and(predicate::str::contains("`id`"))
            .and(predicate::str::contains("duplicate")),
    );
}

#[test]
fn a_missing_prompt_file_names_the_task_and_field() {
    let (_r, a) = invalid(
        r#"{"tech_spec_id":"T","waves":[{"number":1,"tasks":[
            {"id":"task-001-a","prompt_file":"prompts/nope.txt"},
            {"id":"task-002-b"}]}]}"#,
        &[],
    );
    a.code(3).stderr(
        predicate::str::contains("task \"task-001-a\": field `prompt_file` \"prompts/nope.txt\"")
            .and(predicate::str::contains(
                "task \"task-002-b\": field `prompt_file` is missing",
            ))
            .and(predicate::str::contains("prompts/task-002.txt")),
    );
}

#[test]
fn prompt_files_outside_the_directory_are_refused() {
    for (given, why) in [
        ("../outside.txt", "outside the parallel directory"),
        ("/etc/hostname", "is absolute"),
        (
            "prompts/../../outside.txt",
            "outside the parallel directory",
        ),
    ] {
        let repo = Repo::new();
        std::fs::write(repo.path().join("outside.txt"), "secret\n").unwrap();
        let dir = repo.path().join("par");
        std::fs::create_dir_all(dir.join("prompts")).unwrap();
        std::fs::write(
            dir.join("manifest.json"),
            format!(
                r#"{{"tech_spec_id":"T","waves":[{{"number":1,"tasks":[{{"id":"t1","prompt_file":"{given}"}}]}}]}}"#
            ),
        )
        .unwrap();
        repo.cmd().arg(&dir).assert().code(3).stderr(
            predicate::str::contains("task \"t1\": field `prompt_file`")
                .and(predicate::str::contains(why)),
        );
    }
}

#[test]
fn a_symlink_out_of_the_directory_is_refused() {
    let repo = Repo::new();
    std::fs::write(repo.path().join("outside.txt"), "secret\n").unwrap();
    let dir = repo.path().join("par");
    std::fs::create_dir_all(dir.join("prompts")).unwrap();
    std::os::unix::fs::symlink(
        repo.path().join("outside.txt"),
        dir.join("prompts/task-001.txt"),
    )
    .unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        r#"{"tech_spec_id":"T","waves":[{"number":1,"tasks":[{"id":"task-001"}]}]}"#,
    )
    .unwrap();
    repo.cmd().arg(&dir).assert().code(3).stderr(
        predicate::str::contains("task \"task-001\": field `prompt_file`")
            .and(predicate::str::contains("outside the parallel directory")),
    );
}

#[test]
fn broken_json_and_bad_shapes_exit_3() {
    let (_r, a) = invalid("{\"tech_spec_id\": ", &[]);
    a.code(3).stderr(
        predicate::str::contains("invalid JSON: EOF while parsing a value at line 1 column 17")
            .and(predicate::str::contains("column 17").count(1)),
    );
    let (_r, a) = invalid("{\"tech_spec_id\": \"T\", \"waves\": [],}", &[]);
    a.code(3).stderr(
        predicate::str::contains("trailing comma at line 1 column")
            .and(predicate::str::contains(" at line ").count(1)),
    );
    let (_r, a) = invalid(r#"{"tech_spec_id":"T","waves":{"number":1}}"#, &[]);
    a.code(3)
        .stderr(predicate::str::contains("field `waves` must be an array"));
    let (_r, a) = invalid(r#"{"tech_spec_id":"T","waves":[{"tasks":[]}]}"#, &[]);
    a.code(3)
        .stderr(predicate::str::contains("field `number` is missing"));
}

#[test]
fn a_directory_without_manifest_is_a_parse_error() {
    let repo = Repo::new();
    std::fs::create_dir(repo.path().join("empty")).unwrap();
    repo.cmd()
        .arg("empty")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("manifest.json"));
}
