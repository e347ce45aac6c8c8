//! The slash commands in `.claude/commands/` tell Claude to run commands that
//! exist: every po tool, subcommand and `--flag` in their bash blocks is
//! accepted by the real binary's `--help`, the read-only ones run for real,
//! the options the command takes are po's, and the frontmatter has the seeds'
//! fields. `/amplihack:parallel-orchestrate` (the seed's name) is
//! `/parallel-orchestrate` under that name.

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
    assert!(check_commands(&doc) >= 8);
    assert!(doc.contains("po-summarize \"$ISSUE\" --post-comment --follow-up-issues"));
    // Every value reaches the tools quoted.
    for line in bash_lines(&doc) {
        assert!(!line.contains(" $ISSUE"), "unquoted $ISSUE in {line:?}");
    }
    check_argument_hint(&doc);
    check_orchestrate_steps(&doc);
    run_status_lines(&doc);
}

/// The seed's name, `/amplihack:parallel-orchestrate`, is the same command.
#[test]
fn the_seeds_name_is_the_same_command() {
    let plain = read("parallel-orchestrate.md");
    let seed = read("amplihack/parallel-orchestrate.md");
    frontmatter(&seed, "amplihack:parallel-orchestrate");
    let want = plain
        .replacen(
            "name: parallel-orchestrate",
            "name: amplihack:parallel-orchestrate",
            1,
        )
        .replacen(
            "# parallel-orchestrate\n",
            "# amplihack:parallel-orchestrate\n",
            1,
        )
        .replace("/parallel-orchestrate", "/amplihack:parallel-orchestrate");
    assert_eq!(
        seed, want,
        "the two files differ in more than the command's name"
    );
    assert!(seed.contains("/amplihack:parallel-orchestrate 1234 --agents 8"));
}

/// Every option of `argument-hint` is a flag of po-spawn or po-parse, or is
/// passed on as one (`Pass `--agents N` on as `--max-workers "$N"``).
fn check_argument_hint(doc: &str) {
    let hint = doc
        .lines()
        .find_map(|l| l.strip_prefix("argument-hint: "))
        .expect("argument-hint");
    let known = format!("{}{}", help("po-spawn", None), help("po-parse", None));
    let mut flags = 0;
    for flag in hint
        .split(|c: char| c.is_whitespace() || c == '[' || c == ']' || c == '|')
        .filter(|w| w.starts_with("--"))
    {
        flags += 1;
        if known.contains(&format!("{flag} ")) || known.contains(&format!("{flag}\n")) {
            continue;
        }
        let passed_on = doc
            .split(&format!("Pass `{flag} N` on as `"))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{flag} is neither a po flag nor passed on as one"));
        assert!(
            known.contains(passed_on),
            "{flag} is passed on as {passed_on}, unknown"
        );
    }
    assert!(flags >= 6, "{hint}");
}

/// Step by step: po-parse's exit status is its own, the retry covers what
/// `po-spawn --retry` runs, and a started orchestration is not parsed again.
fn check_orchestrate_steps(doc: &str) {
    let lines = bash_lines(doc);
    // Without pipefail a pipeline's status is its last command's.
    let parse: Vec<&String> = lines.iter().filter(|l| l.contains("po-parse")).collect();
    assert!(parse.len() >= 2, "{parse:?}");
    for l in &parse {
        assert!(!l.contains('|'), "po-parse's exit status is lost in {l:?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l == "po-parse \"$ISSUE\" --create-sub-issues")
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("po-spawn --id \"$ISSUE\" [--max-workers")),
        "{lines:#?}"
    );

    // What --retry runs again, by po-spawn's own help.
    let retry_help = help("po-spawn", None);
    assert!(
        retry_help.contains("Run failed, timed-out and cancelled tasks again"),
        "{retry_help}"
    );
    let states = |l: &str| -> Vec<String> {
        l.split("--state ")
            .skip(1)
            .map(|s| s.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    let retry = lines
        .iter()
        .find(|l| l.starts_with("po-status ls") && l.contains("--state failed"))
        .expect("the retry step's po-status ls");
    assert_eq!(states(retry), ["failed", "timed_out", "cancelled"]);

    // The started check names every state but pending.
    let started = lines
        .iter()
        .find(|l| l.starts_with("po-status ls") && l.contains("--state in_progress"))
        .expect("a check for an orchestration that already started");
    let mut all: Vec<String> = states(started);
    all.sort();
    assert_eq!(
        all,
        [
            "cancelled",
            "completed",
            "failed",
            "in_progress",
            "timed_out"
        ]
    );
    for tell in [
        "--retry` runs the failed, timed-out and",
        "po-spawn --id <issue>",
    ] {
        assert!(doc.contains(tell), "the user is not told {tell:?}");
    }
}

/// The read-only lines (`po-status ls`, `po-watch`) run for real against an
/// orchestration with a task in every state: their flags and values work.
fn run_status_lines(doc: &str) {
    use po::protocol::{AgentStatus, State, store};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("parallel/1234");
    std::fs::create_dir_all(&dir).unwrap();
    let states = [
        State::Pending,
        State::InProgress,
        State::Completed,
        State::Failed,
        State::TimedOut,
        State::Cancelled,
    ];
    for (i, st) in states.iter().enumerate() {
        let mut s = AgentStatus::new(format!("agent-{}", i + 1), "1234");
        s.status = *st;
        store::write_status(&dir.join(format!("agent-{}.status.json", i + 1)), &s).unwrap();
    }
    let mut ran = 0;
    for line in bash_lines(doc) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if !(line.starts_with("po-status ls") || line.starts_with("po-watch")) {
            continue;
        }
        let args: Vec<&str> = words[1..]
            .iter()
            .map(|w| if *w == "\"$ISSUE\"" { "1234" } else { *w })
            .collect();
        let out = Command::new(bin(words[0]))
            .args(&args)
            .env("PO_RUNTIME_DIR", tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if line.starts_with("po-status ls") {
            let printed = String::from_utf8_lossy(&out.stdout).lines().count();
            let asked = line.matches("--state ").count();
            assert_eq!(printed, asked, "{line}: one task per state asked for");
        }
        ran += 1;
    }
    assert!(ran >= 3, "ran {ran}");
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
