//! The checked-in man pages and completions match the clap definitions.
//! `PO_BLESS=1 cargo test --test docs_fresh` regenerates them.

use std::path::Path;

#[test]
fn man_pages_and_completions_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("PO_BLESS").is_some();
    let mut stale = Vec::new();
    for (rel, want) in po::cli::docs::generated_files() {
        let path = root.join(&rel);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &want).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&want[..]) {
            stale.push(rel);
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files: {stale:?}; run `PO_BLESS=1 cargo test --test docs_fresh` and commit"
    );
}

#[test]
fn every_tool_has_a_page_and_the_file_format_has_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for tool in [
        "po-parse",
        "po-spawn",
        "po-watch",
        "po-summarize",
        "po-status",
        "cpo",
        "po-merge",
        "po-clean",
    ] {
        assert!(root.join(format!("man/{tool}.1")).is_file(), "{tool}.1");
    }
    let fmt = std::fs::read_to_string(root.join("man/po-status.json.5")).unwrap();
    // Every field the schema writes is documented.
    let sample = serde_json::to_value(po::protocol::AgentStatus::new("agent-1", "7")).unwrap();
    let mut keys: Vec<String> = sample.as_object().unwrap().keys().cloned().collect();
    keys.extend(sample["metrics"].as_object().unwrap().keys().cloned());
    for key in keys {
        assert!(
            fmt.contains(&format!(".B {key}")),
            "man/po-status.json.5 does not document {key}"
        );
    }
}
