//! The checked-in man pages and completions match the clap definitions, and
//! the pages hold together: one per tool and subcommand, each with EXIT
//! STATUS and ENVIRONMENT, every page a SUBCOMMANDS or SEE ALSO section names
//! exists, and groff renders them without a warning.
//! `PO_BLESS=1 cargo test --test docs_fresh` regenerates them.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::engines;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Files under `dir` (relative to the repository), by name.
fn listed(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| format!("{dir}/{}", e.unwrap().file_name().to_string_lossy()))
        .collect()
}

#[test]
fn man_pages_and_completions_are_fresh() {
    let bless = std::env::var_os("PO_BLESS").is_some();
    let generated = po::cli::docs::generated_files();
    let mut stale = Vec::new();
    for (rel, want) in &generated {
        let path = root().join(rel);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, want).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&want[..]) {
            stale.push(rel.clone());
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files: {stale:?}; run `PO_BLESS=1 cargo test --test docs_fresh` and commit"
    );
    // Nothing generated earlier lingers: every page but the file format's is
    // generated now.
    let names: BTreeSet<String> = generated.iter().map(|(rel, _)| rel.clone()).collect();
    let mut leftover: Vec<String> = listed("man")
        .union(&listed("completions"))
        .filter(|f| !names.contains(*f) && f.as_str() != "man/po-status.json.5")
        .cloned()
        .collect();
    if bless {
        for f in &leftover {
            std::fs::remove_file(root().join(f)).unwrap();
        }
        leftover.clear();
    }
    assert!(leftover.is_empty(), "not generated any more: {leftover:?}");
}

#[test]
fn every_tool_and_subcommand_has_a_page_with_exit_status_and_environment() {
    let mut pages = vec![
        "po-parse",
        "po-spawn",
        "po-watch",
        "po-summarize",
        "po-status",
        "cpo",
        "po-merge",
        "po-clean",
    ];
    pages.extend([
        "cpo-init",
        "cpo-validate",
        "cpo-run",
        "cpo-status",
        "cpo-integrate",
        "po-status-set",
        "po-status-get",
        "po-status-ls",
    ]);
    for page in pages {
        let path = root().join(format!("man/{page}.1"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{page}.1: {e}"));
        for section in [
            ".SH \"EXIT STATUS\"\n.TP\n.B 0\n",
            ".SH ENVIRONMENT\n",
            ".SH \"SEE ALSO\"\n",
        ] {
            assert!(text.contains(section), "{page}.1 lacks {section:?}");
        }
        assert!(text.contains(".B PO_RUNTIME_DIR\n"), "{page}.1");
    }
    // The environment a page's own options read is in its ENVIRONMENT.
    let set = std::fs::read_to_string(root().join("man/po-status-set.1")).unwrap();
    let env = &set[set.find(".SH ENVIRONMENT").unwrap()..];
    assert!(env.contains(".B PO_STATUS_FILE\n"), "{env}");
    let watch = std::fs::read_to_string(root().join("man/po-watch.1")).unwrap();
    let env = &watch[watch.find(".SH ENVIRONMENT").unwrap()..];
    for var in [
        "PO_SUCCESS_THRESHOLD",
        "AMPLIHACK_SUCCESS_THRESHOLD",
        "PO_WATCH_POLL",
        "NO_COLOR",
    ] {
        assert!(env.contains(&format!(".B {var}\n")), "{var} in {env}");
    }
}

#[test]
fn every_page_a_page_names_exists() {
    let mut checked = 0;
    for rel in listed("man") {
        let text = std::fs::read_to_string(root().join(&rel)).unwrap();
        let mut refs = Vec::new();
        // `.BR po\-spawn (1),` in SEE ALSO (and in the file format's page).
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(".BR ")
                && let Some((name, section)) = rest.split_once(" (")
                && let Some(n) = section.split(')').next()
                && n.chars().all(|c| c.is_ascii_digit())
            {
                refs.push((name.replace("\\-", "-"), n.to_string()));
            }
        }
        // `cpo\-run(1)` lines of SUBCOMMANDS.
        if let Some(start) = text.find(".SH SUBCOMMANDS\n") {
            let section = &text[start..];
            let end = section[4..].find("\n.SH ").map_or(section.len(), |e| e + 4);
            for line in section[..end].lines() {
                if let Some((name, rest)) = line.replace("\\-", "-").split_once('(')
                    && rest.ends_with(')')
                    && !name.contains(' ')
                {
                    refs.push((name.to_string(), rest.trim_end_matches(')').to_string()));
                }
            }
        }
        // Pages of the system (fsync(2), flock(1)) are not po's to ship.
        refs.retain(|(name, _)| name.starts_with("po-") || name.starts_with("cpo"));
        assert!(!refs.is_empty(), "{rel} names no other page");
        for (name, n) in refs {
            assert!(
                root().join(format!("man/{name}.{n}")).is_file(),
                "{rel} names {name}({n}), which has no page"
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} references");
}

#[test]
#[ignore = "needs groff (apt-get install groff-base)"]
fn groff_renders_every_page_without_a_warning() {
    engines::require("groff", &["--version"], engines::GROFF);
    for rel in listed("man") {
        let out = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .arg(root().join(&rel))
            .output()
            .unwrap();
        assert!(out.status.success(), "{rel}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{rel}");
    }
}

#[test]
fn the_file_format_page_documents_every_field() {
    let fmt = std::fs::read_to_string(root().join("man/po-status.json.5")).unwrap();
    // Every field the schema writes is documented.
    let sample = serde_json::to_value(po::protocol::AgentStatus::new("agent-1", "7")).unwrap();
    let mut keys: Vec<String> = sample.as_object().unwrap().keys().cloned().collect();
    keys.extend(sample["metrics"].as_object().unwrap().keys().cloned());
    // And the runner's fields, which launchers and supervisors add.
    keys.extend(po::protocol::runner::FIELDS.iter().map(|f| f.to_string()));
    for key in keys {
        assert!(
            fmt.contains(&format!(".B {key}")),
            "man/po-status.json.5 does not document {key}"
        );
    }
}

/// Each tool's `-h` opens with what that tool does, not the package's line.
#[test]
fn each_tools_short_help_opens_with_what_it_does() {
    let tools = [
        env!("CARGO_BIN_EXE_po-parse"),
        env!("CARGO_BIN_EXE_po-spawn"),
        env!("CARGO_BIN_EXE_po-watch"),
        env!("CARGO_BIN_EXE_po-summarize"),
        env!("CARGO_BIN_EXE_po-status"),
        env!("CARGO_BIN_EXE_po-merge"),
        env!("CARGO_BIN_EXE_po-clean"),
        env!("CARGO_BIN_EXE_po-serve"),
        env!("CARGO_BIN_EXE_po-react"),
        env!("CARGO_BIN_EXE_cpo"),
    ];
    let mut seen = BTreeSet::new();
    for tool in tools {
        let out = Command::new(tool).arg("-h").output().unwrap();
        assert!(out.status.success(), "{tool} -h");
        let text = String::from_utf8(out.stdout).unwrap();
        let first = text.lines().next().unwrap_or_default().to_string();
        assert!(
            !env!("CARGO_PKG_DESCRIPTION").starts_with(&first) && !first.is_empty(),
            "{tool} -h opens with the package's description: {first}"
        );
        assert!(
            seen.insert(first.clone()),
            "{tool} -h says what another says: {first}"
        );
    }
}
