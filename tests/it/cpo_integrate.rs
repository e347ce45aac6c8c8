//! `cpo integrate DIR` (what `/parallel-integrate` runs): after `cpo run`,
//! the completed tasks' branches merged into one branch through po-merge,
//! with the manifest's wave validations run on the result.

use crate::cpo_support;

use cpo_support::*;
use serde_json::Value;

/// Writes `FILE: name` with `CONTENT: text` (default: the agent id), commits.
const AGENT: &str = r#"#!/bin/sh
set -eu
prompt=$1
file=$(sed -n 's/^FILE: //p' "$prompt" | head -n 1)
content=$(sed -n 's/^CONTENT: //p' "$prompt")
echo "${content:-$PO_AGENT_ID}" > "$file"
git add "$file"
git commit -q -m "add $file"
"#;

/// A parallel directory `parallel/ID` with `tasks` (id, wave, prompt text)
/// and wave validations, committed; returns its path as given to cpo.
fn parallel_dir(
    repo: &Repo,
    id: &str,
    tasks: &[(&str, u32, &str)],
    validation: &[(u32, &str)],
) -> String {
    let dir = format!("parallel/{id}");
    let mut waves = Vec::new();
    for wave in 1..=tasks.iter().map(|t| t.1).max().unwrap() {
        let list: Vec<Value> = tasks
            .iter()
            .filter(|t| t.1 == wave)
            .map(|(task, _, prompt)| {
                write(&repo.path().join(&dir).join(format!("prompts/{task}.txt")), prompt);
                serde_json::json!({"id": task, "agent": "general-purpose", "prompt_file": format!("prompts/{task}.txt")})
            })
            .collect();
        let mut w = serde_json::json!({"number": wave, "tasks": list});
        if let Some((_, v)) = validation.iter().find(|(n, _)| *n == wave) {
            w["validation"] = Value::from(*v);
        }
        waves.push(w);
    }
    let manifest = serde_json::json!({"tech_spec_id": id, "name": "demo", "waves": waves});
    write(
        &repo.path().join(&dir).join("manifest.json"),
        &manifest.to_string(),
    );
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "parallel dir"]);
    dir
}

fn run_all(repo: &Repo, dir: &str) {
    let agent = repo.scratch().join("agent.sh");
    write(&agent, AGENT);
    let out = cmd("cpo", repo.path())
        .env(
            "PO_AGENT_CMD",
            format!("sh {} {{prompt_file}}", agent.display()),
        )
        .args(["run", dir])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.contains(&format!(
            "Next step: /parallel-integrate --parallel-dir {dir}"
        )),
        "{text}"
    );
}

#[test]
fn integrate_merges_two_waves_and_validates_them() {
    let repo = repo();
    let dir = parallel_dir(
        &repo,
        "TS-0050",
        &[
            ("task-001-users", 1, "Users.\nFILE: users.txt\n"),
            ("task-002-products", 1, "Products.\nFILE: products.txt\n"),
            ("task-003-orders", 2, "Orders.\nFILE: orders.txt\n"),
        ],
        &[
            (1, "test -f users.txt && test -f products.txt"),
            (2, "test -f orders.txt"),
        ],
    );
    run_all(&repo, &dir);
    let head = git(repo.path(), &["rev-parse", "HEAD"]);
    let status = git(repo.path(), &["status", "--porcelain"]);

    let out = cmd("cpo", repo.path())
        .args(["integrate", &dir])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("Merging into po/TS-0050/integration"),
        "{text}"
    );
    assert!(
        text.contains("wave 1: test -f users.txt && test -f products.txt passed"),
        "{text}"
    );
    assert!(text.contains("wave 2: test -f orders.txt passed"), "{text}");
    let files = git(
        repo.path(),
        &["ls-tree", "--name-only", "po/TS-0050/integration"],
    );
    for f in ["users.txt", "products.txt", "orders.txt"] {
        assert!(files.lines().any(|l| l == f), "{f} missing: {files}");
    }
    assert_eq!(
        git(repo.path(), &["rev-parse", "HEAD"]),
        head,
        "cpo integrate moved HEAD"
    );
    assert_eq!(git(repo.path(), &["status", "--porcelain"]), status);
}

#[test]
fn integrate_names_the_conflict_and_exits_4() {
    let repo = repo();
    let dir = parallel_dir(
        &repo,
        "TS-0051",
        &[
            ("task-001-a", 1, "A.\nFILE: shared.txt\nCONTENT: from a\n"),
            ("task-002-b", 1, "B.\nFILE: shared.txt\nCONTENT: from b\n"),
            ("task-003-c", 1, "C.\nFILE: c.txt\n"),
        ],
        &[],
    );
    run_all(&repo, &dir);
    let out = cmd("cpo", repo.path())
        .args(["integrate", &dir, "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stdout(&out).contains("task-001-a ↔ task-002-b conflict: shared.txt"),
        "{}",
        stdout(&out)
    );
    assert!(git(repo.path(), &["branch", "--list", "po/TS-0051/integration"]).is_empty());

    let out = cmd("cpo", repo.path())
        .args(["integrate", &dir, "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcomes: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["merged", "conflict", "merged"]);
    assert_eq!(r["steps"][1]["files"], serde_json::json!(["shared.txt"]));
    assert_eq!(
        git(repo.path(), &["show", "po/TS-0051/integration:shared.txt"]).trim(),
        "from a"
    );

    cmd("cpo", repo.path())
        .args(["integrate", "parallel/nothing-here"])
        .assert()
        .code(64);
}
