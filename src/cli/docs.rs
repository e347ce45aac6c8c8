//! Man pages and shell completions, generated from the clap definitions.
//!
//! One page per tool and one per subcommand (`cpo-run.1`, `po-status-set.1`),
//! so every page the SUBCOMMANDS and SEE ALSO sections name exists. Each page
//! has EXIT STATUS and ENVIRONMENT sections: the exit codes are the shared
//! table of [`crate::error::exit`] as each tool uses it; the environment is
//! what the tool reads, plus every `env` of its clap arguments.
//!
//! `man/*.1` and `completions/*` are checked in; `tests/docs_fresh.rs` fails
//! when one is stale (`PO_BLESS=1 cargo test --test docs_fresh` rewrites them).

use clap::Command;
use clap_complete::Shell;

use crate::error::exit;
use crate::run::agent;

/// `(path relative to the repository, contents)` of every generated file.
pub fn generated_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let commands = super::commands();
    let tools: Vec<String> = commands.iter().map(|c| c.get_name().to_string()).collect();
    for cmd in commands {
        let name = cmd.get_name().to_string();
        // The pages document what is typed: `cpo help` is clap's, not a page.
        let mut doc = cmd.clone().disable_help_subcommand(true);
        doc.build();
        pages(&doc, &name, &tools, None, &mut files);
        for (shell, file) in [
            (Shell::Bash, format!("completions/{name}.bash")),
            (Shell::Zsh, format!("completions/_{name}")),
            (Shell::Fish, format!("completions/{name}.fish")),
        ] {
            let mut cmd = cmd.clone();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, &name, &mut out);
            files.push((file, out));
        }
    }
    files
}

/// The page of `cmd` and of each of its subcommands.
fn pages(
    cmd: &Command,
    tool: &str,
    tools: &[String],
    parent: Option<&Command>,
    files: &mut Vec<(String, Vec<u8>)>,
) {
    let name = page_name(cmd);
    files.push((format!("man/{name}.1"), page(cmd, tool, tools, parent)));
    for sub in subcommands(cmd) {
        pages(sub, tool, tools, Some(cmd), files);
    }
}

fn subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands().filter(|s| !s.is_hide_set())
}

/// `cpo-run` for `cpo run` (clap's display name once built), `cpo` for `cpo`.
fn page_name(cmd: &Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string()
}

/// clap_mangen's page with EXIT STATUS, ENVIRONMENT and SEE ALSO before its
/// VERSION section.
fn page(cmd: &Command, tool: &str, tools: &[String], parent: Option<&Command>) -> Vec<u8> {
    let mut rendered = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut rendered)
        .expect("rendering to memory cannot fail");
    let rendered = String::from_utf8(rendered).expect("clap_mangen writes UTF-8");

    let mut extra = String::new();
    extra.push_str(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in exit_codes(&page_name(cmd)) {
        extra.push_str(&format!(".TP\n.B {code}\n{}\n", roff_text(meaning)));
    }
    extra.push_str(".SH ENVIRONMENT\n");
    for (var, meaning) in environment(cmd, tool) {
        extra.push_str(&format!(
            ".TP\n.B {}\n{}\n",
            roff_text(&var),
            roff_text(&meaning)
        ));
    }
    extra.push_str(".SH \"SEE ALSO\"\n");
    let refs = see_also(cmd, tool, tools, parent);
    let last = refs.len().saturating_sub(1);
    for (i, (page, section)) in refs.iter().enumerate() {
        let comma = if i < last { "," } else { "" };
        extra.push_str(&format!(".BR {} ({section}){comma}\n", roff_text(page)));
    }

    let out = match rendered.find("\n.SH VERSION\n") {
        Some(at) => format!("{}\n{extra}{}", &rendered[..at], &rendered[at + 1..]),
        None => format!("{rendered}{extra}"),
    };
    out.into_bytes()
}

/// Text safe on a roff line of its own: backslashes and leading dots escaped.
fn roff_text(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with(['.', '\'']) {
        format!("\\&{s}")
    } else {
        s
    }
}

/// The pages a page points to: the parent and the sibling subcommands, the
/// subcommands, the other tools, and the status file format.
fn see_also(
    cmd: &Command,
    tool: &str,
    tools: &[String],
    parent: Option<&Command>,
) -> Vec<(String, u8)> {
    let me = page_name(cmd);
    let mut refs: Vec<(String, u8)> = Vec::new();
    let mut add = |name: String, section: u8| {
        if name != me && !refs.iter().any(|(n, _)| *n == name) {
            refs.push((name, section));
        }
    };
    if let Some(p) = parent {
        add(page_name(p), 1);
        for sibling in subcommands(p) {
            add(page_name(sibling), 1);
        }
    }
    for sub in subcommands(cmd) {
        add(page_name(sub), 1);
    }
    for t in tools.iter().filter(|t| t.as_str() != tool) {
        add(t.clone(), 1);
    }
    add("po-status.json".into(), 5);
    refs
}

/// What each exit status means, by page: `(pages, code, meaning)`, where
/// `pages` lists the pages (space-separated) the line is on.
const EXIT_STATUS: &[(&str, i32, &str)] = &[
    (
        "po-parse",
        exit::SUCCESS,
        "The orchestration was written (with --dry-run: shown).",
    ),
    (
        "po-spawn cpo cpo-run po-summarize",
        exit::SUCCESS,
        "Every task completed.",
    ),
    (
        "po-watch",
        exit::SUCCESS,
        "The snapshot was shown (even when a status file is unreadable: it is named). With \
         --until-done: every task completed.",
    ),
    (
        "po-status po-status-set po-status-get po-status-ls",
        exit::SUCCESS,
        "Done.",
    ),
    ("cpo-init", exit::SUCCESS, "The directory was created."),
    (
        "cpo-validate",
        exit::SUCCESS,
        "Valid (warnings, such as uncommitted changes, may be listed).",
    ),
    ("cpo-status", exit::SUCCESS, "The status was shown."),
    (
        "po-merge cpo-integrate",
        exit::SUCCESS,
        "Every completed branch is merged and every validation passed (with --dry-run: no \
         conflict is predicted).",
    ),
    (
        "po-clean",
        exit::SUCCESS,
        "Done, also when worktrees or branches were kept (each is named with the reason).",
    ),
    (
        "po-spawn cpo cpo-run po-summarize",
        exit::PARTIAL,
        "Partial success: at or above the success threshold (default 80 %).",
    ),
    (
        "po-watch",
        exit::PARTIAL,
        "With --until-done: at or above the success threshold (default 80 %).",
    ),
    (
        "po-spawn cpo cpo-run po-summarize",
        exit::MAJORITY_FAILURE,
        "Majority failure: below the success threshold.",
    ),
    (
        "po-watch",
        exit::MAJORITY_FAILURE,
        "With --until-done: below the success threshold.",
    ),
    (
        "po-parse",
        exit::PARSE,
        "No tasks found, or an invalid manifest, prompt file or input.",
    ),
    (
        "cpo cpo-run",
        exit::PARSE,
        "An invalid manifest.json or prompt file (the validation report says which).",
    ),
    ("cpo-integrate", exit::PARSE, "The manifest is invalid."),
    (
        "cpo-validate",
        exit::PARSE,
        "The manifest or a prompt file is invalid.",
    ),
    ("cpo-status", exit::PARSE, "The manifest is invalid."),
    (
        "po-parse",
        exit::VALIDATION,
        "The tasks depend on each other in a cycle.",
    ),
    (
        "po-spawn cpo cpo-run",
        exit::VALIDATION,
        "A dependency cycle, a merge conflict between completed branches, or a failed wave \
         validation; later waves did not run.",
    ),
    (
        "po-merge cpo-integrate",
        exit::VALIDATION,
        "A conflict, a branch git would not merge, or a failed or timed-out validation; the \
         integration branch is left at the last good merge (with --dry-run: a conflict is \
         predicted).",
    ),
    (
        "cpo-validate",
        exit::VALIDATION,
        "A run is impossible: not a git repository, or no commit yet.",
    ),
    (
        "po-parse",
        exit::GITHUB,
        "gh failed: not installed, not logged in, rate limited, or GitHub refused the call.",
    ),
    (
        "po-clean",
        exit::GITHUB,
        "gh failed while asking whether a pull request is merged (--branches); those branches \
         were kept.",
    ),
    (
        "po-summarize",
        exit::GITHUB,
        "gh failed (--post-comment, --follow-up-issues); the summary is still written.",
    ),
    (
        "po-parse po-spawn po-watch po-summarize po-merge po-clean cpo cpo-init cpo-validate \
         cpo-run cpo-status cpo-integrate",
        exit::SYSTEM,
        "A system error: a file that cannot be read or written, git or a process that cannot \
         be run. The message names the file and the fix.",
    ),
    (
        "po-status po-status-set po-status-get po-status-ls",
        exit::SYSTEM,
        "The status file cannot be read, parsed or written.",
    ),
    (
        "po-parse po-spawn po-watch po-summarize po-merge po-clean cpo cpo-validate cpo-run \
         cpo-status cpo-integrate",
        exit::USAGE,
        "A usage error: a bad option or value.",
    ),
    (
        "po-status po-status-set po-status-get po-status-ls",
        exit::USAGE,
        "A usage error: a progress outside 0-100, a field the file does not have, or a report \
         on a task that has finished.",
    ),
    (
        "cpo-init",
        exit::USAGE,
        "A usage error, or the directory already holds a manifest.json.",
    ),
    (
        "po-serve",
        exit::SUCCESS,
        "It serves until it is stopped; 0 when its standard output was closed before it could \
         print the address.",
    ),
    (
        "po-serve",
        exit::SYSTEM,
        "The address cannot be listened on, or the runtime root cannot be found.",
    ),
    (
        "po-serve",
        exit::USAGE,
        "A usage error: a bad --listen address, or a network address without --token (or with \
         a token under 16 characters).",
    ),
    (
        "po-spawn",
        exit::BUSY,
        "As the supervisor of one task (PO_SPAWN_TASK, what a Slurm job runs): another process \
         holds the task's liveness lock and runs it; nothing was changed.",
    ),
    (
        "po-react",
        exit::SUCCESS,
        "Nothing left to do: every open pull request is answered, waits for its checks, or \
         passes (with --follow: every pull request is merged or closed).",
    ),
    (
        "po-react",
        exit::PARTIAL,
        "Some pull requests are with a person (labelled po:needs-human): rounds, budget or the \
         agent gave out.",
    ),
    (
        "po-react",
        exit::GITHUB,
        "gh failed for some pull request (not installed, not logged in, rate limited, or GitHub \
         refused the call); the others were answered.",
    ),
    (
        "po-react",
        exit::SYSTEM,
        "A system error: a status file, git or an agent that cannot be run.",
    ),
    (
        "po-react",
        exit::USAGE,
        "A usage error: a bad option or value, or another po-react runs on the orchestration.",
    ),
    (
        "po-react",
        exit::INTERRUPTED,
        "Interrupted (Ctrl-C or SIGTERM): a running round's agent is ended and the round \
         recorded interrupted; the next pass does it again.",
    ),
    (
        "po-spawn po-watch po-merge cpo cpo-run cpo-integrate",
        exit::INTERRUPTED,
        "Interrupted (Ctrl-C or SIGTERM); running again continues where it stopped.",
    ),
];

/// The exit statuses of the page `page` (`cpo-run`, `po-parse`), ascending.
fn exit_codes(page: &str) -> Vec<(i32, &'static str)> {
    let codes: Vec<(i32, &str)> = EXIT_STATUS
        .iter()
        .filter(|(pages, _, _)| pages.split(' ').any(|p| p == page))
        .map(|&(_, code, meaning)| (code, meaning))
        .collect();
    assert!(
        !codes.is_empty(),
        "no exit statuses written for the page {page}"
    );
    codes
}

/// Where [`ENVIRONMENT`] lists each registered agent's program variable.
const AGENT_PROGRAMS: &str = "<agent programs>";

/// What each tool reads from the environment: `(tools, variables, meaning)`;
/// `*` is every tool.
const ENVIRONMENT: &[(&str, &str, &str)] = &[
    (
        "*",
        "PO_RUNTIME_DIR",
        "The runtime root, as --runtime-dir (default: <git top-level>/.claude/runtime).",
    ),
    (
        "*",
        "PO_LOG",
        "A tracing filter for the diagnostics on stderr (e.g. debug); -v raises it.",
    ),
    (
        "po-spawn",
        "PO_MAX_WORKERS, AMPLIHACK_MAX_PARALLEL_AGENTS",
        "Agents at once, as --max-workers (default 5).",
    ),
    (
        "po-spawn",
        "PO_TIMEOUT, AMPLIHACK_AGENT_TIMEOUT",
        "The per-agent timeout in seconds, as --timeout (default 1800).",
    ),
    (
        "po-spawn",
        "AMPLIHACK_PARALLEL_VERBOSE",
        "Any value but 0, false or no: more detail, as -v.",
    ),
    (
        "po-spawn",
        "PO_STATUS_INTERVAL, AMPLIHACK_STATUS_INTERVAL",
        "Seconds between progress lines on stderr (default 30).",
    ),
    (
        "po-spawn",
        "PO_AGENT_CMD",
        "The agent command template, as --agent-cmd.",
    ),
    (
        "po-spawn",
        "PO_BUDGET_USD",
        "The whole orchestration's budget in US dollars, as --budget-usd.",
    ),
    (
        "po-spawn",
        "PO_LAUNCHER",
        "Where supervisors run, as --launcher: local (default) or slurm.",
    ),
    (
        "po-spawn",
        "PO_AGENT",
        "The agent for po-spawn --agent (default: claude); --agent-cmd beats it.",
    ),
    // One line per registered agent: the variable that names its program.
    ("po-spawn po-react", AGENT_PROGRAMS, ""),
    (
        "po-spawn po-watch po-summarize po-serve",
        "PO_PRICES",
        "A JSON file of model prices (USD per million tokens) before the built-in ones, as --prices.",
    ),
    (
        "po-spawn po-react",
        "PO_SANDBOX",
        "1: run every agent (and po-react's rounds) under the bubblewrap sandbox, as --sandbox.",
    ),
    (
        "po-spawn po-watch po-summarize",
        "PO_SUCCESS_THRESHOLD",
        "The success threshold in percent (default 80); a flag beats it.",
    ),
    (
        "po-spawn po-watch po-summarize",
        "AMPLIHACK_SUCCESS_THRESHOLD",
        "The same, under the seed's name; PO_SUCCESS_THRESHOLD beats it.",
    ),
    (
        "po-parse po-spawn po-summarize po-clean po-react",
        "PO_GH",
        "The gh program to run (default: gh from PATH).",
    ),
    (
        "po-parse po-spawn po-summarize po-clean po-react",
        "PO_GH_BACKOFF_MS",
        "The first wait before retrying a rate-limited gh call, in milliseconds (default \
         2000).",
    ),
    (
        "po-spawn",
        "PO_STATUS_FILE, PO_AGENT_ID, PO_ORCHESTRATION_ID, PO_WORKTREE, PO_BRANCH, PO_PORT, \
         PO_PORT_COUNT",
        "Set for each agent: its status file (for po-status set), its id, the orchestration, \
         its worktree and branch, and a private range of ports.",
    ),
    (
        "po-react",
        "PO_BUDGET_USD",
        "The orchestration's budget in US dollars, as --budget-usd.",
    ),
    (
        "po-react",
        "PO_TIMEOUT",
        "Seconds one round's agent may run, as --timeout (default 1800).",
    ),
    (
        "po-watch",
        "PO_WATCH_POLL",
        "1: poll instead of inotify, as --poll.",
    ),
    (
        "po-watch",
        "COLUMNS",
        "The width the table fits (default: the terminal's, else 80).",
    ),
    ("po-watch", "NO_COLOR", "Set and not empty: no colours."),
    (
        "po-status",
        "PO_STATUS_FILE",
        "The status file of po-status set, as an agent gets it from po-spawn.",
    ),
    (
        "po-status",
        "PO_STATUS_SOCKET",
        "Set inside po-spawn's sandbox: po-status set reports through the task's supervisor \
         there, which writes the status file.",
    ),
    (
        "cpo",
        "PO_AGENT_CMD",
        "The agent command template, as cpo run --agent-cmd.",
    ),
    (
        "cpo",
        "PO_BIN_DIR",
        "Where po-parse, po-spawn and po-merge are (default: beside cpo, then PATH).",
    ),
];

/// The variables `tool` reads, then any other `env` of the page's arguments.
fn environment(cmd: &Command, tool: &str) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = ENVIRONMENT
        .iter()
        .filter(|(tools, _, _)| *tools == "*" || tools.split(' ').any(|t| t == tool))
        .flat_map(|&(_, var, meaning)| match var {
            AGENT_PROGRAMS => agent::REGISTERED
                .iter()
                .map(|r| {
                    let what = r.about.split(" (").next().unwrap_or(r.name);
                    (
                        r.program_env.to_string(),
                        format!(
                            "The {what} program for --agent {} (default: {}).",
                            r.name, r.program
                        ),
                    )
                })
                .collect(),
            _ => vec![(var.to_string(), meaning.to_string())],
        })
        .collect();
    for arg in cmd.get_arguments() {
        if let Some(var) = arg.get_env() {
            let var = var.to_string_lossy().into_owned();
            if !vars.iter().any(|(v, _)| v.split(", ").any(|v| v == var)) {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                vars.push((var, help));
            }
        }
    }
    vars
}
