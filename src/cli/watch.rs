//! `po-watch`: show the tasks of an orchestration: a table, a live view or an
//! event stream. It only reads; it never changes a task.
//!
//! Exit codes: a snapshot exits 0, even when some status files are
//! unreadable (they are shown by name); 9 when there were status files and
//! none could be read. `--until-done` exits with the summary's code once every
//! task is terminal: 0 all completed, 1 at or above the threshold, 2 below.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

use super::Common;
use crate::error::{Error, Result, exit};
use crate::integration::conflicts::Conflict;
use crate::protocol::view::{BadFile, OrchestrationView, Reader, Row, TaskView};
use crate::protocol::{State, sanitize};
use crate::report::summary;
use crate::timefmt;
use crate::watch;
use crate::watch::Scope;
use crate::watch::conflicts::Conflicts;
use crate::watch::events::{self, Tracker};
use crate::watch::source::Changes;
use crate::watch::table::{self, Style};

/// Show the tasks of an orchestration: a table, a live view or an event stream
///
/// It only reads status files; it never changes a task. Besides the stored
/// state it shows what it infers: `stalled` (in_progress, no log output and no
/// status update for --stall-after) and `orphaned` (in_progress, but no process
/// holds the task's liveness lock), with the log to look at. Completed
/// branches that do not merge cleanly are named with their files
/// (`agent-2 ↔ agent-4 conflict: src/user.py`), found with `git merge-tree`
/// and cached by commit in the orchestration's .conflicts.json.
///
/// Exit status: 0 for a snapshot, also when some status files are unreadable
/// (each is shown by name); 9 when there were status files and none could be
/// read; 64 a usage error (e.g. an unknown id without --follow or --events, which
/// wait for it to appear). With --until-done: 0 every task completed, 1 at or
/// above the success threshold, 2 below it.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,

    /// Orchestration id or directory [default: every orchestration, newest first]
    #[arg(value_name = "ID|DIR")]
    pub target: Option<String>,

    /// Live view, redrawn in place on a terminal (a new snapshot per change otherwise)
    #[arg(long, conflicts_with = "events")]
    pub follow: bool,

    /// One line per change: `[12:05] agent-1: Implementing feature (45%)`
    #[arg(long)]
    pub events: bool,

    /// With --follow or --events: exit once every task is terminal, with the summary's exit code
    #[arg(long)]
    pub until_done: bool,

    /// JSON: the snapshot as one document, or events as JSON lines
    #[arg(long)]
    pub json: bool,

    /// An in_progress task with no log output and no status update for this long is stalled
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub stall_after: u64,

    /// Success threshold in percent for --until-done (also AMPLIHACK_SUCCESS_THRESHOLD)
    /// [default: 80]
    #[arg(long, env = "PO_SUCCESS_THRESHOLD", value_name = "PERCENT",
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub threshold: Option<u32>,

    /// Poll instead of using inotify
    #[arg(long, env = "PO_WATCH_POLL", value_parser = clap::builder::FalseyValueParser::new())]
    pub poll: bool,

    /// Polling interval in milliseconds (with --poll, or when inotify is unavailable)
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub poll_interval: u64,

    /// Event times in UTC instead of local time
    #[arg(long)]
    pub utc: bool,

    /// Do not check completed branches for merge conflicts (git merge-tree)
    #[arg(long)]
    pub no_conflicts: bool,
}

pub fn run(args: Args) -> Result<i32> {
    super::init_tracing(args.common.verbose);
    let threshold = summary::resolve_threshold(args.threshold)?;
    if args.until_done && !(args.follow || args.events) {
        return Err(Error::usage(
            "use --until-done alone: it ends a --follow or --events run; add one of them",
        ));
    }
    if args.poll_interval == 0 {
        return Err(Error::usage(
            "use --poll-interval 0: give at least 1 (milliseconds)",
        ));
    }
    let live = args.follow || args.events;
    let runtime = args.common.runtime()?;
    let runtime_repo = runtime.repo.clone();
    let scope = match &args.target {
        None => Scope::All(runtime),
        Some(t) => match runtime.resolve(t) {
            Ok(dir) => Scope::One(dir),
            Err(e) if !live => return Err(e),
            Err(_) => {
                let dir = future_dir(&runtime, t)?;
                eprintln!("po-watch: waiting for {} to appear", dir.display());
                Scope::One(dir)
            }
        },
    };
    let mut reader = Reader::watching(Duration::from_secs(args.stall_after));
    if !live {
        reader = reader.once();
    }
    let out = Output::new();
    let mut look = Look {
        scope: &scope,
        reader: &mut reader,
        conflicts: (!args.no_conflicts).then(|| Conflicts::new(runtime_repo)),
    };
    let result = if args.events {
        watch_events(&args, &scope, look.reader, threshold, &out)
    } else if args.follow {
        follow(&args, &mut look, threshold, &out)
    } else {
        snapshot(&args, &mut look, &out)
    };
    match result {
        Err(Error::Io { cause, .. }) if cause.kind() == io::ErrorKind::BrokenPipe => {
            Ok(exit::SUCCESS)
        }
        other => other,
    }
}

/// Where an orchestration that does not exist yet will appear.
fn future_dir(runtime: &crate::protocol::Runtime, target: &str) -> Result<PathBuf> {
    if target.contains('/') {
        let p = Path::new(target);
        let cwd = std::env::current_dir().map_err(Error::io("find", "the current directory"))?;
        Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        })
    } else {
        Ok(runtime.orchestration_dir(&sanitize::id(target)?))
    }
}

struct Output {
    tty: bool,
    style: Style,
}

/// The width of the terminal on stdout, if it says.
fn terminal_width() -> Option<usize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

impl Output {
    fn new() -> Output {
        let tty = io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        // $COLUMNS (set by watch(1)), else the terminal's width, else 80.
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .or_else(|| tty.then(terminal_width).flatten())
            .filter(|&w| w >= 40)
            .unwrap_or(80);
        Output {
            tty,
            style: Style {
                width,
                color: tty && !no_color,
            },
        }
    }

    fn write(&self, text: &str) -> Result<()> {
        let mut stdout = io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(Error::io("write", "standard output"))
    }
}

/// One reading of the scope, with the conflicts between completed branches.
struct Look<'a> {
    scope: &'a Scope,
    reader: &'a mut Reader,
    conflicts: Option<Conflicts>,
}

impl Look<'_> {
    /// The views, and for each the conflicts between its completed branches.
    fn read(&mut self) -> (Vec<OrchestrationView>, Vec<Vec<Conflict>>) {
        let views = self.scope.read(self.reader);
        let conflicts = match &mut self.conflicts {
            Some(c) => c.find(&views),
            None => vec![Vec::new(); views.len()],
        };
        (views, conflicts)
    }
}

fn snapshot(args: &Args, look: &mut Look<'_>, out: &Output) -> Result<i32> {
    let scope = look.scope;
    let (views, conflicts) = look.read();
    if args.json {
        out.write(&format!("{}\n", snapshot_json(scope, &views, &conflicts)))?;
    } else {
        out.write(&table::render(&views, &conflicts, out.style))?;
    }
    let rows = views.iter().map(|v| v.rows.len()).sum::<usize>();
    let readable = views.iter().map(|v| v.tasks().count()).sum::<usize>();
    let broken_dirs = views.iter().any(|v| v.problem.is_some());
    if (rows > 0 && readable == 0) || (rows == 0 && broken_dirs) {
        return Err(Error::system(
            "read any status file; the output names each one and why",
        ));
    }
    Ok(exit::SUCCESS)
}

fn follow(args: &Args, look: &mut Look<'_>, threshold: u32, out: &Output) -> Result<i32> {
    let scope = look.scope;
    let mut changes = Changes::new(args.poll, Duration::from_millis(args.poll_interval));
    changes.watch(&scope.watch_dirs());
    let mut tracker = Tracker::default();
    let mut last = String::new();
    loop {
        let (views, conflicts) = look.read();
        let changed = !tracker.changes(&views, scope.is_all()).is_empty();
        let text = if args.json {
            format!("{}\n", snapshot_json(scope, &views, &conflicts))
        } else {
            table::render(&views, &conflicts, out.style)
        };
        if out.tty && !args.json {
            if text != last {
                out.write(&format!("\x1b[H\x1b[2J{text}"))?;
            }
        } else if changed || last.is_empty() {
            let sep = if last.is_empty() || args.json {
                ""
            } else {
                "\n"
            };
            out.write(&format!("{sep}{text}"))?;
        }
        last = text;
        if args.until_done && events::all_terminal(&views) {
            return Ok(events::outcome_code(&views, threshold));
        }
        let mut deadline = watch::next_deadline(&views, args.stall_after);
        if out.tty
            && views
                .iter()
                .flat_map(|v| v.tasks())
                .any(|t| t.state() == State::InProgress)
        {
            // Running durations tick on screen.
            let tick = Instant::now() + Duration::from_secs(1);
            deadline = Some(deadline.map_or(tick, |d| d.min(tick)));
        }
        changes.wait(deadline);
        changes.watch(&scope.watch_dirs());
    }
}

fn watch_events(
    args: &Args,
    scope: &Scope,
    reader: &mut Reader,
    threshold: u32,
    out: &Output,
) -> Result<i32> {
    // Watch first, then read: a change between the two is seen either way.
    let mut changes = Changes::new(args.poll, Duration::from_millis(args.poll_interval));
    changes.watch(&scope.watch_dirs());
    let mut tracker = Tracker::default();
    loop {
        let views = scope.read(reader);
        let mut text = String::new();
        for e in tracker.changes(&views, scope.is_all()) {
            if args.json {
                text.push_str(&e.json().to_string());
            } else {
                text.push_str(&e.line(args.utc));
            }
            text.push('\n');
        }
        if !text.is_empty() {
            out.write(&text)?;
        }
        if args.until_done && events::all_terminal(&views) {
            return Ok(events::outcome_code(&views, threshold));
        }
        changes.wait(watch::next_deadline(&views, args.stall_after));
        changes.watch(&scope.watch_dirs());
    }
}

/// The snapshot as one JSON document (stable field names), serialised
/// straight from the views (no intermediate JSON tree of every task).
fn snapshot_json(
    scope: &Scope,
    views: &[OrchestrationView],
    conflicts: &[Vec<Conflict>],
) -> String {
    #[derive(serde::Serialize)]
    struct Snapshot<'a> {
        time: String,
        root: Option<&'a Path>,
        orchestrations: Vec<One<'a>>,
    }
    #[derive(serde::Serialize)]
    struct One<'a> {
        id: &'a str,
        dir: &'a Path,
        title: Option<&'a str>,
        problem: Option<&'a str>,
        tasks: &'a [&'a TaskView],
        unreadable: Vec<&'a BadFile>,
        conflicts: &'a [Conflict],
        totals: Value,
    }
    let tasks: Vec<Vec<&TaskView>> = views.iter().map(|v| v.tasks().collect()).collect();
    let orchestrations: Vec<One<'_>> = views
        .iter()
        .zip(conflicts)
        .zip(&tasks)
        .map(|((v, conflicts), tasks)| {
            let mut by_state = [0usize; State::ALL.len()];
            for t in tasks {
                if let Some(i) = State::ALL.iter().position(|s| *s == t.state()) {
                    by_state[i] += 1;
                }
            }
            let by_state: serde_json::Map<String, Value> = State::ALL
                .iter()
                .zip(by_state)
                .map(|(s, n)| (s.as_str().to_string(), json!(n)))
                .collect();
            let costs: Vec<f64> = tasks
                .iter()
                .filter_map(|t| crate::cost::reported(&t.status.metrics))
                .collect();
            let spend = crate::cost::Total::of(tasks.iter().map(|t| &t.status));
            let budget = v.orchestration.as_deref().and_then(crate::cost::budget_of);
            One {
                id: &v.id,
                dir: &v.dir,
                title: v.title.as_deref(),
                problem: v.problem.as_deref(),
                tasks,
                unreadable: v.bad().collect(),
                conflicts,
                totals: json!({
                    "tasks": v.rows.len(),
                    "by_state": by_state,
                    "stalled": tasks.iter().filter(|t| t.inferred.stalled && !t.inferred.orphaned).count(),
                    "orphaned": tasks.iter().filter(|t| t.inferred.orphaned).count(),
                    "unreadable": v.rows.iter().filter(|r| matches!(r, Row::Bad(_))).count(),
                    "cost_usd": (!costs.is_empty()).then(|| costs.iter().sum::<f64>()),
                    "spent_usd": spend.spent,
                    "committed_usd": spend.committed,
                    "budget_usd": budget,
                    "budget_reached": budget.map(|b| spend.sum() >= b),
                    "elapsed_seconds": table::elapsed(tasks),
                }),
            }
        })
        .collect();
    let root = match scope {
        Scope::All(rt) => Some(rt.root.as_path()),
        Scope::One(_) => None,
    };
    let snapshot = Snapshot {
        time: timefmt::format(&timefmt::now()),
        root,
        orchestrations,
    };
    serde_json::to_string(&snapshot).expect("a snapshot serialises")
}
