//! The slash commands in `.claude/commands/` tell Claude to run commands that
//! exist: every po tool, subcommand and `--flag` in their bash blocks is
//! accepted by the real binary's `--help`, and the frontmatter has the seeds'
//! fields.

use std::path::Path;
use std::process::Command;

const TOOLS: [&str; 6] = [
    "cpo",
    "po-parse",
    "po-spawn",
    "po-watch",
    "po-summarize",
    "po-status",
];

fn bin(tool: &str) -> &'static str {
    match tool {
        "cpo" => env!("CARGO_BIN_EXE_cpo"),
        "po-parse" => env!("CARGO_BIN_EXE_po-parse"),
        "po-spawn" => env!("CARGO_BIN_EXE_po-spawn"),
        "po-watch" => env!("CARGO_BIN_EXE_po-watch"),
        "po-summarize" => env!("CARGO_BIN_EXE_po-summarize"),
        "po-status" => env!("CARGO_BIN_EXE_po-status"),
        other => panic!("unknown tool {other}"),
    }
}

fn read(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".claude/commands")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lines inside ```bash fences.
fn bash_lines(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            inside = !inside && t == "```bash";
            continue;
        }
        if inside {
            out.push(t.to_string());
        }
    }
    out
}

fn help(tool: &str, sub: Option<&str>) -> String {
    let mut c = Command::new(bin(tool));
    c.args(sub).arg("--help");
    let out = c.output().unwrap();
    assert!(out.status.success(), "{tool} {sub:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check_commands(doc: &str) -> usize {
    let mut checked = 0;
    for line in bash_lines(doc) {
        for segment in line.split(['|', '&']) {
            let words: Vec<&str> = segment.split_whitespace().collect();
            let Some(tool) = words.first().copied().filter(|w| TOOLS.contains(w)) else {
                continue;
            };
            let sub = match tool {
                "cpo" | "po-status" => words.get(1).copied().filter(|w| !w.starts_with('-')),
                _ => None,
            };
            let text = help(tool, sub);
            let flags = words
                .iter()
                .map(|w| w.trim_start_matches('['))
                .filter(|w| w.starts_with("--"));
            for flag in flags {
                let flag = flag.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
                assert!(
                    text.contains(flag),
                    "`{}` uses {flag}, which `{tool} {} --help` does not know",
                    segment.trim(),
                    sub.unwrap_or("")
                );
            }
            checked += 1;
        }
    }
    checked
}

fn frontmatter(doc: &str, name: &str) {
    let fm = doc
        .strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n"))
        .map(|(fm, _)| fm)
        .expect("frontmatter between --- lines");
    assert!(fm.lines().any(|l| l == format!("name: {name}")), "{fm}");
    assert!(fm.lines().any(|l| l.starts_with("description: ")), "{fm}");
    assert!(fm.lines().any(|l| l.starts_with("argument-hint: ")), "{fm}");
}

#[test]
fn parallel_run_runs_real_cpo_commands() {
    let doc = read("parallel-run.md");
    frontmatter(&doc, "parallel-run");
    assert!(check_commands(&doc) >= 4);
    for line in [
        "cpo validate \"$PARALLEL_DIR\"",
        "cpo status \"$PARALLEL_DIR\"",
        "cpo run \"$PARALLEL_DIR\"",
        "ERROR: cpo (Claude Parallel Orchestrator) not found",
        "  cargo install --path .",
    ] {
        assert!(doc.lines().any(|l| l == line), "missing {line:?}");
    }
}

#[test]
fn parallel_orchestrate_runs_real_po_commands() {
    let doc = read("parallel-orchestrate.md");
    frontmatter(&doc, "parallel-orchestrate");
    assert!(check_commands(&doc) >= 6);
    assert!(doc.contains("po-summarize \"$ISSUE\" --post-comment --follow-up-issues"));
    assert!(doc.contains("po-parse \"$ISSUE\" --create-sub-issues | po-spawn"));
    // Every value reaches the tools quoted.
    for line in bash_lines(&doc) {
        assert!(!line.contains(" $ISSUE"), "unquoted $ISSUE in {line:?}");
    }
}

#[test]
fn parallel_integrate_runs_real_cpo_commands() {
    let doc = read("parallel-integrate.md");
    frontmatter(&doc, "parallel-integrate");
    assert!(check_commands(&doc) >= 3);
    for line in [
        "cpo integrate \"$PARALLEL_DIR\" --dry-run",
        "cpo integrate \"$PARALLEL_DIR\" --json",
        "/parallel-integrate --parallel-dir <parallel-dir> [--dry-run]",
    ] {
        assert!(doc.lines().any(|l| l == line), "missing {line:?}");
    }
    // cpo's closing line points here, with the flag this command takes.
    let run = read("parallel-run.md");
    assert!(run.contains("Next step: /parallel-integrate --parallel-dir $PARALLEL_DIR"));
    assert!(doc.contains("argument-hint: --parallel-dir <parallel-dir>"));
}
