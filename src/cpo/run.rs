//! `cpo run DIR`: validate, `po-parse DIR --id ID`, `po-spawn --id ID
//! --log-dir DIR/logs --quiet …`, then `DIR/report.json`, framed the way the
//! `/parallel-run` document shows it.
//!
//! The progress on stdout (`Wave 1:`, `  task-001-users: RUNNING`, `✅ …`,
//! `❌ …`, the waves' validations) is read from the protocol while po-spawn
//! runs: the status files and `orchestration.json` ([`super::progress`]).
//! po-spawn runs quiet; what it still says (warnings, errors) is passed on to
//! stderr as it is. The closing block (`=== Execution Complete ===`,
//! `Results:`, …) is computed from the status files, so the counts always
//! match `report.json`. The whole console output is also kept in
//! `DIR/logs/cpo-run-<time>.log`.
//!
//! A second `cpo run` on a directory whose orchestration has already started
//! does not parse again (that would discard state): it resumes, so pending
//! tasks run and live ones are adopted; `--retry` re-runs the failed ones.
//! The exit code is po-spawn's.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use super::plan::Plan;
use super::progress::Progress;
use super::report::{self, RunFacts, TaskResult};
use super::{ParallelDir, RunOptions, Tools, tools, validate};
use crate::error::{Error, Result, exit};
use crate::protocol::view::{Reader, Row};
use crate::protocol::{State, store};
use crate::text::count;
use crate::timefmt;
use crate::watch::source::Changes;

pub const STARTED: &str = "=== Parallel Execution Started ===";
pub const COMPLETE: &str = "=== Execution Complete ===";

pub fn run(common: &Tools, dir: &Path, opts: &RunOptions) -> Result<i32> {
    let pd = ParallelDir::open(dir)?;
    let findings = validate::check(&pd, opts.agent_cmd.as_deref());
    if !findings.ok() {
        eprint!("{}", validate::render(&pd, &findings));
        return Ok(findings.exit_code());
    }
    for w in &findings.warnings {
        eprintln!("WARNING: {w}");
    }
    let plan = findings.plan;
    let id = plan.orchestration_id(opts.id.as_deref())?;
    let runtime = common.runtime()?;
    let mut orch = runtime.orchestration_dir(&id);

    let started = timefmt::now();
    let logs = pd.logs();
    let mut console = if opts.dry_run {
        // A dry run writes nothing into DIR.
        Console {
            file: None,
            blank: true,
        }
    } else {
        fs::create_dir_all(&logs).map_err(Error::io("create", &logs))?;
        Console::open(&logs, &started)?
    };

    if has_started(&orch)? {
        resuming(&mut console, &pd, &plan, &orch, &id, opts.retry)?;
    } else {
        orch = parse(common, &pd, &id, &mut console)?.unwrap_or(orch);
    }
    let id = orch
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(id);

    if opts.dry_run {
        let mut cmd = spawn_command(common, &pd, &id, opts);
        tracing::debug!("running {}", tools::shown(&cmd));
        let status = cmd.status().map_err(|e| not_found_or("po-spawn", e))?;
        return Ok(code_of(status));
    }

    announce(&mut console, &plan, &id);

    let code = spawn(common, &pd, &id, &orch, opts, &mut console)?;

    let tasks = report::collect(&plan, Some(&orch))?;
    let facts = RunFacts {
        plan: &plan,
        id: &id,
        orch: &orch,
        parallel_dir: &pd.path,
        logs_dir: &logs,
        started,
        exit_code: code,
    };
    let rep = report::build(&facts, tasks);
    report::write(&pd.report(), &rep)?;
    for line in closing(&pd, &rep.tasks, code, rep.duration_seconds).lines() {
        console.out(line);
    }
    Ok(code)
}

/// Say that the orchestration resumes, and which tasks of the manifest it
/// does not know (added after its first run).
fn resuming(
    console: &mut Console,
    pd: &ParallelDir,
    plan: &Plan,
    orch: &Path,
    id: &str,
    retry: bool,
) -> Result<()> {
    console.err(&format!(
        "Resuming orchestration {id} ({}); tasks already finished are kept{}",
        orch.display(),
        if retry {
            ", failed ones run again"
        } else {
            "; pass --retry to run failed ones again"
        }
    ));
    let known = report::collect(plan, Some(orch))?;
    let new: Vec<&str> = known
        .iter()
        .filter(|t| t.status == "not_started")
        .map(|t| t.id.as_str())
        .collect();
    if !new.is_empty() {
        console.err(&format!(
            "WARNING: tasks added to the manifest after the first run will not run here: \
             {}; start a new orchestration with `cpo run {} --id NEW-ID`",
            new.join(", "),
            pd.shown.display()
        ));
    }
    Ok(())
}

/// The run's banner: its name, waves and tasks.
fn announce(console: &mut Console, plan: &Plan, id: &str) {
    console.out(STARTED);
    console.out("");
    let total: usize = plan.waves.iter().map(|w| w.tasks.len()).sum();
    console.out(&format!(
        "{}{}: {} wave{}, {} task{} (orchestration {id})",
        plan.tech_spec_id.as_deref().unwrap_or(id),
        plan.name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
        plan.waves.len(),
        if plan.waves.len() == 1 { "" } else { "s" },
        total,
        if total == 1 { "" } else { "s" },
    ));
    console.out("");
}

/// Whether any task of `orch` has left `pending` (or is unreadable): parsing
/// again would then discard state, so the run resumes instead.
fn has_started(orch: &Path) -> Result<bool> {
    if !orch.is_dir() {
        return Ok(false);
    }
    let view = Reader::plain().read(orch);
    if let Some(p) = view.problem {
        return Err(Error::system(p));
    }
    Ok(view.rows.iter().any(|row| match row {
        Row::Task(t) => {
            t.state() != State::Pending || t.status.attempt > 1 || store::is_live(&t.file)
        }
        Row::Bad(_) => true,
    }))
}

/// `po-parse DIR --id ID`; the orchestration directory its output names.
fn parse(
    common: &Tools,
    pd: &ParallelDir,
    id: &str,
    console: &mut Console,
) -> Result<Option<PathBuf>> {
    let mut cmd = tools::command(
        "po-parse",
        common,
        [pd.path.clone().into_os_string(), "--id".into(), id.into()],
    );
    tracing::debug!("running {}", tools::shown(&cmd));
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| not_found_or("po-parse", e))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        console.err(line);
    }
    if !out.status.success() {
        let code = code_of(out.status);
        return Err(tool_failed("po-parse", code, &stderr));
    }
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(PathBuf::from);
    Ok(first.and_then(|p| p.parent().map(Path::to_path_buf)))
}

fn spawn_command(
    common: &Tools,
    pd: &ParallelDir,
    id: &str,
    opts: &RunOptions,
) -> std::process::Command {
    let mut args: Vec<std::ffi::OsString> = vec![
        "--id".into(),
        id.into(),
        "--log-dir".into(),
        pd.logs().into_os_string(),
    ];
    if let Some(n) = opts.max_workers {
        args.extend(["--max-workers".into(), n.to_string().into()]);
    }
    if let Some(t) = opts.timeout {
        args.extend(["--timeout".into(), t.to_string().into()]);
    }
    if let Some(a) = &opts.agent_cmd {
        args.extend(["--agent-cmd".into(), a.into()]);
    }
    if let Some(b) = &opts.base {
        args.extend(["--base".into(), b.into()]);
    }
    if opts.retry {
        args.push("--retry".into());
    }
    if opts.dry_run {
        args.push("--dry-run".into());
    } else {
        // Progress comes from the status files; po-spawn says only what is wrong.
        args.push("--quiet".into());
    }
    args.extend(opts.spawn_args.iter().map(Into::into));
    tools::command("po-spawn", common, args)
}

/// Run po-spawn, telling its progress from the orchestration directory
/// `orch` as it goes; its exit code.
fn spawn(
    common: &Tools,
    pd: &ParallelDir,
    id: &str,
    orch: &Path,
    opts: &RunOptions,
    console: &mut Console,
) -> Result<i32> {
    let mut cmd = spawn_command(common, pd, id, opts);
    tracing::debug!("running {}", tools::shown(&cmd));
    // The first reading is the baseline: what finished before is not told.
    let mut reader = Reader::watching(Duration::from_secs(3600));
    let mut progress = Progress::new();
    progress.lines(&reader.read(orch));
    // Installed first, so no signal in between kills cpo before po-spawn
    // (handlers, unlike ignored signals, are reset in the child at exec).
    let signals = Forward::install();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| not_found_or("po-spawn", e))?;
    signals.forward_to(&child);

    // Status paths on stdout are not for people; drain them so po-spawn never
    // blocks. What it says on stderr is passed on.
    let mut stdout = child.stdout.take().expect("piped");
    let drain = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink);
    });
    let stderr = child.stderr.take().expect("piped");
    let (tx, said) = std::sync::mpsc::channel();
    let relay = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });

    let mut changes = Changes::new(false, Duration::from_millis(250));
    changes.watch(&[orch.to_path_buf()]);
    let status = loop {
        for line in said.try_iter() {
            console.err(&line);
        }
        for line in progress.lines(&reader.read(orch)) {
            console.out(&line);
        }
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::io("wait for", "po-spawn")(e))?
        {
            break status;
        }
        changes.wait(Some(Instant::now() + Duration::from_millis(200)));
        changes.watch(&[orch.to_path_buf()]);
    };
    let _ = (drain.join(), relay.join());
    for line in said.try_iter() {
        console.err(&line);
    }
    for line in progress.lines(&reader.read(orch)) {
        console.out(&line);
    }
    drop(signals);
    Ok(code_of(status))
}

/// The document's closing block.
pub fn closing(pd: &ParallelDir, tasks: &[TaskResult], code: i32, secs: f64) -> String {
    let t = report::totals(tasks);
    let mut out = format!(
        "\n{COMPLETE}\n\nResults:\n  Completed: {}/{} tasks\n  Failed: {}\n",
        t.completed,
        t.tasks,
        count(t.failed_only(), "task")
    );
    for (n, what) in [
        (t.timed_out, "Timed out"),
        (t.cancelled, "Cancelled"),
        (t.not_finished, "Not finished"),
    ] {
        if n > 0 {
            out.push_str(&format!("  {what}: {}\n", count(n, "task")));
        }
    }
    for r in tasks {
        let st = r.state();
        if st.is_some_and(|s| s.is_terminal() && s != State::Completed) {
            out.push_str(&format!(
                "  ❌ {} {}: {}\n",
                r.id,
                super::board::label(r).to_lowercase(),
                r.error.as_deref().unwrap_or("no error recorded")
            ));
            if let Some(log) = &r.log_file {
                out.push_str(&format!("     log: {}\n", log.display()));
            }
        }
    }
    out.push_str(&format!(
        "\nDuration: {}\nLogs: {}/\nReport: {}\n",
        timefmt::human_duration(secs),
        pd.shown_join(super::LOGS),
        pd.shown_join(super::REPORT)
    ));
    let shown = pd.shown.display().to_string();
    if t.completed == t.tasks && t.tasks > 0 && code == exit::SUCCESS {
        out.push_str(&format!(
            "\nNext step: /parallel-integrate --parallel-dir {shown}\n           (in a shell: \
             cpo integrate {})\n",
            crate::text::shell_quote(&shown)
        ));
    } else if !matches!(
        code,
        exit::PARTIAL | exit::MAJORITY_FAILURE | exit::VALIDATION | exit::INTERRUPTED
    ) && t.completed + t.failed == 0
    {
        out.push_str(&format!(
            "\npo-spawn exited with {code} before running any task: see its message above.\n"
        ));
    } else if code == exit::VALIDATION {
        out.push_str(&format!(
            "\nA wave did not pass its validation, or its branches conflicted (see above); later \
             waves did not run.\nCheck {}/ for the validation log, fix the cause, then: cpo run \
             {shown} --retry\n",
            pd.shown_join(super::LOGS)
        ));
    } else if code == exit::INTERRUPTED {
        out.push_str(&format!("\nInterrupted. Continue with: cpo run {shown}\n"));
    } else {
        out.push_str(&format!(
            "\nCheck {}/ for detailed agent output.\nRun the failed tasks again: cpo run {shown} \
             --retry\n",
            pd.shown_join(super::LOGS)
        ));
    }
    out
}

pub(crate) fn code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(exit::SYSTEM)
}

pub(crate) fn not_found_or(tool: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::system(format!(
            "run {tool}: not found next to cpo or on PATH; install po with `cargo install --path \
             .` from its repository"
        ))
    } else {
        Error::io("run", tool)(e)
    }
}

fn tool_failed(tool: &str, code: i32, stderr: &str) -> Error {
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message");
    let detail = format!("exited with {code}: {last}");
    match code {
        exit::PARSE => Error::parse(tool, detail),
        exit::VALIDATION => Error::validation(tool, detail),
        exit::GITHUB => Error::gh(tool, detail),
        exit::USAGE => Error::usage(format!("run {tool}: {detail}")),
        exit::INTERRUPTED => Error::Interrupted,
        _ => Error::system(format!("run {tool}: {detail}")),
    }
}

/// What cpo prints, also kept in `DIR/logs/cpo-run-<time>.log`.
struct Console {
    file: Option<File>,
    /// The last line on stdout was blank: never print two in a row.
    blank: bool,
}

impl Console {
    fn open(logs: &Path, started: &timefmt::Timestamp) -> Result<Console> {
        let path = logs.join(format!("cpo-run-{}.log", started.format("%Y%m%d-%H%M%S")));
        let file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Error::io("create", &path))?;
        Ok(Console {
            file: Some(file),
            blank: true,
        })
    }

    fn transcript(&mut self, line: &str) {
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{line}");
        }
    }

    fn out(&mut self, line: &str) {
        let blank = line.trim().is_empty();
        if blank && self.blank {
            return;
        }
        self.blank = blank;
        // The run goes on without a reader; the transcript keeps every line.
        let _ = crate::out::println(line);
        self.transcript(line);
    }

    fn err(&mut self, line: &str) {
        eprintln!("{line}");
        self.transcript(line);
    }
}

static CHILD: AtomicI32 = AtomicI32::new(0);
/// A SIGTERM that came before po-spawn did, passed on once it has started.
static TERM_PENDING: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // Ctrl-C reaches po-spawn through the terminal's process group; a SIGTERM
    // sent to cpo alone is passed on. Either way cpo waits for po-spawn to
    // cancel cleanly, then writes the report.
    let pid = CHILD.load(Ordering::SeqCst);
    if sig == libc::SIGTERM && pid <= 0 {
        TERM_PENDING.store(true, Ordering::SeqCst);
    } else if sig == libc::SIGTERM {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

/// Signal handling for the lifetime of one po-spawn child.
struct Forward {
    old: Vec<(nix::sys::signal::Signal, nix::sys::signal::SigAction)>,
}

impl Forward {
    fn install() -> Forward {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let mut old = Vec::new();
        for sig in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: the handler only reads an atomic and calls kill(2).
            if let Ok(prev) = unsafe { sigaction(sig, &action) } {
                old.push((sig, prev));
            }
        }
        Forward { old }
    }

    fn forward_to(&self, child: &Child) {
        CHILD.store(child.id() as i32, Ordering::SeqCst);
        if TERM_PENDING.swap(false, Ordering::SeqCst) {
            // SAFETY: plain kill(2) on our own child.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
        }
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        CHILD.store(0, Ordering::SeqCst);
        for (sig, prev) in self.old.drain(..) {
            // SAFETY: restoring the disposition that was there before.
            unsafe {
                let _ = nix::sys::signal::sigaction(sig, &prev);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpo::plan::Plan;

    #[test]
    fn closing_block_matches_the_document() {
        let pd = ParallelDir {
            shown: "parallel/TS-0042-inventory/".into(),
            path: "/x".into(),
        };
        let plan = Plan::from_value(
            &serde_json::json!({"tech_spec_id": "T", "waves": [{"number": 1, "tasks": [{"id": "a"}]}]}),
            Path::new("/x"),
        );
        let mut tasks = report::collect(&plan, None).unwrap();
        tasks[0].status = "completed".into();
        let text = closing(&pd, &tasks, 0, 5.0);
        assert!(text.contains(
            "=== Execution Complete ===\n\nResults:\n  Completed: 1/1 tasks\n  Failed: 0 tasks\n"
        ));
        assert!(text.contains(
            "Next step: /parallel-integrate --parallel-dir parallel/TS-0042-inventory/\n           \
             (in a shell: cpo integrate parallel/TS-0042-inventory/)\n"
        ));
        assert!(text.contains("Logs: parallel/TS-0042-inventory/logs/\n"));
    }
}
