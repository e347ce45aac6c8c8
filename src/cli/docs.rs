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

/// What each exit status means for the page of `page` (`cpo-run`, `po-parse`).
fn exit_codes(page: &str) -> Vec<(i32, &'static str)> {
    const USAGE: (i32, &str) = (exit::USAGE, "A usage error: a bad option or value.");
    const SYSTEM: (i32, &str) = (
        exit::SYSTEM,
        "A system error: a file that cannot be read or written, git or a process that \
         cannot be run. The message names the file and the fix.",
    );
    const INTERRUPTED: (i32, &str) = (
        exit::INTERRUPTED,
        "Interrupted (Ctrl-C or SIGTERM); running again continues where it stopped.",
    );
    const GH: (i32, &str) = (
        exit::GITHUB,
        "gh failed: not installed, not logged in, rate limited, or GitHub refused the call.",
    );
    let run: Vec<(i32, &str)> = vec![
        (exit::SUCCESS, "Every task completed."),
        (
            exit::PARTIAL,
            "Partial success: at or above the success threshold (default 80 %).",
        ),
        (
            exit::MAJORITY_FAILURE,
            "Majority failure: below the success threshold.",
        ),
    ];
    let mut codes = match page {
        "po-parse" => vec![
            (
                exit::SUCCESS,
                "The orchestration was written (with --dry-run: shown).",
            ),
            (
                exit::PARSE,
                "No tasks found, or an invalid manifest, prompt file or input.",
            ),
            (
                exit::VALIDATION,
                "The tasks depend on each other in a cycle.",
            ),
            GH,
            SYSTEM,
            USAGE,
        ],
        "po-spawn" | "cpo" | "cpo-run" => {
            let mut c = run;
            if page != "po-spawn" {
                c.push((
                    exit::PARSE,
                    "An invalid manifest.json or prompt file (the validation report says which).",
                ));
            }
            c.push((
                exit::VALIDATION,
                "A dependency cycle, a merge conflict between completed branches, or a failed \
                 wave validation; later waves did not run.",
            ));
            c.extend([SYSTEM, USAGE, INTERRUPTED]);
            c
        }
        "po-watch" => vec![
            (
                exit::SUCCESS,
                "The snapshot was shown (even when a status file is unreadable: it is named). \
                 With --until-done: every task completed.",
            ),
            (
                exit::PARTIAL,
                "With --until-done: at or above the success threshold.",
            ),
            (
                exit::MAJORITY_FAILURE,
                "With --until-done: below the success threshold.",
            ),
            SYSTEM,
            USAGE,
            INTERRUPTED,
        ],
        "po-summarize" => {
            let mut c = run;
            c.extend([
                (
                    exit::GITHUB,
                    "gh failed (--post-comment, --follow-up-issues); the summary is still \
                     written.",
                ),
                SYSTEM,
                USAGE,
            ]);
            c
        }
        "po-status" | "po-status-set" | "po-status-get" | "po-status-ls" => vec![
            (exit::SUCCESS, "Done."),
            (
                exit::SYSTEM,
                "The status file cannot be read, parsed or written.",
            ),
            (
                exit::USAGE,
                "A usage error: a progress outside 0-100, a field the file does not have, or \
                 a report on a task that has finished.",
            ),
        ],
        "cpo-init" => vec![
            (exit::SUCCESS, "The directory was created."),
            SYSTEM,
            (
                exit::USAGE,
                "A usage error, or the directory already holds a manifest.json.",
            ),
        ],
        "cpo-validate" => vec![
            (
                exit::SUCCESS,
                "Valid (warnings, such as uncommitted changes, may be listed).",
            ),
            (exit::PARSE, "The manifest or a prompt file is invalid."),
            (
                exit::VALIDATION,
                "A run is impossible: not a git repository, or no commit yet.",
            ),
            SYSTEM,
            USAGE,
        ],
        "cpo-status" => vec![
            (exit::SUCCESS, "The status was shown."),
            (exit::PARSE, "The manifest is invalid."),
            SYSTEM,
            USAGE,
        ],
        other => panic!("no exit statuses written for the page {other}"),
    };
    codes.sort_by_key(|c| c.0);
    codes
}

/// The variables `tool` reads, then those of the page's own arguments.
fn environment(cmd: &Command, tool: &str) -> Vec<(String, String)> {
    let s = |a: &str| a.to_string();
    let mut vars: Vec<(String, String)> = vec![
        (
            s("PO_RUNTIME_DIR"),
            s("The runtime root, as --runtime-dir (default: <git top-level>/.claude/runtime)."),
        ),
        (
            s("PO_LOG"),
            s("A tracing filter for the diagnostics on stderr (e.g. debug); -v raises it."),
        ),
    ];
    let threshold = [
        (
            s("PO_SUCCESS_THRESHOLD"),
            s("The success threshold in percent (default 80); a flag beats it."),
        ),
        (
            s("AMPLIHACK_SUCCESS_THRESHOLD"),
            s("The same, under the seed's name; PO_SUCCESS_THRESHOLD beats it."),
        ),
    ];
    let gh = [
        (
            s("PO_GH"),
            s("The gh program to run (default: gh from PATH)."),
        ),
        (
            s("PO_GH_BACKOFF_MS"),
            s("The first wait before retrying a rate-limited gh call (default 2000)."),
        ),
    ];
    match tool {
        "po-parse" => vars.extend(gh),
        "po-spawn" => {
            vars.extend([
                (
                    s("PO_MAX_WORKERS, AMPLIHACK_MAX_PARALLEL_AGENTS"),
                    s("Agents at once, as --max-workers (default 5)."),
                ),
                (
                    s("PO_TIMEOUT, AMPLIHACK_AGENT_TIMEOUT"),
                    s("The per-agent timeout in seconds, as --timeout (default 1800)."),
                ),
                (
                    s("AMPLIHACK_PARALLEL_VERBOSE"),
                    s("Any value but 0, false or no: more detail, as -v."),
                ),
                (
                    s("PO_STATUS_INTERVAL, AMPLIHACK_STATUS_INTERVAL"),
                    s("Seconds between progress lines on stderr (default 30)."),
                ),
                (
                    s("PO_AGENT_CMD"),
                    s("The agent command template, as --agent-cmd."),
                ),
                (
                    s("PO_CLAUDE"),
                    s("The Claude Code program for --agent claude (default: claude)."),
                ),
            ]);
            vars.extend(threshold);
            vars.extend(gh);
            vars.push((
                s(
                    "PO_STATUS_FILE, PO_AGENT_ID, PO_ORCHESTRATION_ID, PO_WORKTREE, PO_BRANCH, \
                     PO_PORT, PO_PORT_COUNT",
                ),
                s(
                    "Set for each agent: its status file (for po-status set), its id, the \
                     orchestration, its worktree and branch, and a private range of ports.",
                ),
            ));
        }
        "po-watch" => {
            vars.extend(threshold);
            vars.extend([
                (
                    s("PO_WATCH_POLL"),
                    s("1: poll instead of inotify, as --poll."),
                ),
                (
                    s("COLUMNS"),
                    s("The width the table fits (default: the terminal's, else 80)."),
                ),
                (s("NO_COLOR"), s("Set and not empty: no colours.")),
            ]);
        }
        "po-summarize" => {
            vars.extend(threshold);
            vars.extend(gh);
        }
        "po-status" => vars.push((
            s("PO_STATUS_FILE"),
            s("The status file of po-status set, as an agent gets it from po-spawn."),
        )),
        "cpo" => vars.extend([
            (
                s("PO_AGENT_CMD"),
                s("The agent command template, as cpo run --agent-cmd."),
            ),
            (
                s("PO_BIN_DIR"),
                s("Where po-parse and po-spawn are (default: beside cpo, then PATH)."),
            ),
        ]),
        other => panic!("no environment written for {other}"),
    }
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
