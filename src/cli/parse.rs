//! `po-parse`: extract sub-tasks from an issue, markdown file or manifest into
//! an orchestration.
//!
//! Writes `<runtime>/parallel/<id>/orchestration.json` and one
//! `agent-<n>.status.json` per task (state `pending`), then prints each status
//! file's absolute path, one a line, in task order — ready for `| po-spawn`.
//! `--dry-run` prints the report and writes nothing; `--json` prints the same
//! data as JSON (after writing, unless `--dry-run`; each task then carries its
//! `status_file`).

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Parser;

use super::Common;
use crate::error::{Error, Result, exit};
use crate::forge::Gh;
use crate::forge::labels::{self, IssueFiler};
use crate::out;
use crate::plan::{Plan, PlannedTask, report};
use crate::protocol::view::{Reader, Row};
use crate::protocol::{
    AgentStatus, Orchestration, Runtime, SCHEMA_VERSION, Source, State, Wave, layout, sanitize,
    store,
};
use crate::sources::{self, SourceArg, issue, manifest, markdown, refs};

/// Extract sub-tasks from an issue, markdown file or manifest into an orchestration
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER_HELP, after_long_help = AFTER_LONG_HELP)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,

    /// An issue number, a markdown file, `-` for stdin, or a cpo directory or its manifest.json
    #[arg(value_name = "SOURCE")]
    pub source: String,

    /// Name of the orchestration [default: the issue number, the manifest's tech_spec_id, or
    /// the file's stem; `stdin` for `-`]
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,

    /// Print what would be run (tasks, independence findings, waves) and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print the plan as JSON instead of the report or the status paths
    #[arg(long)]
    pub json: bool,

    /// File one GitHub sub-issue per task (issue sources only); a re-run reuses them
    #[arg(long)]
    pub create_sub_issues: bool,

    /// Read only the section(s) whose heading is NAME (case-insensitive; if no heading is exactly
    /// NAME, those that contain it); repeat for more
    #[arg(long, value_name = "NAME")]
    pub section: Vec<String>,
}

const AFTER_HELP: &str = "\
Reads Markdown as GitHub renders it: checklist items are the tasks (checked, struck-through and \
placeholder items are skipped, with the reason); without checklists, bullets under a heading \
such as `## Tasks` or `## TODO`, numbered lists, or a list of issue links. `--help` has the \
rules.

Examples:
  po-parse 1234 | po-spawn --max-workers 5
  po-parse plan.md --dry-run
  po-parse 97889 --section Steps --dry-run
  po-parse parallel/TS-0042-inventory/ --json";

const AFTER_LONG_HELP: &str = "\
How a Markdown text (an issue body, a file, stdin) becomes tasks. It is read as GitHub renders \
it (CommonMark with task lists, strikethrough and tables).

Which part is read:
  --section NAME reads only the sections whose heading is NAME (case-insensitive, words only: \
punctuation and emoji around it do not count), or, when no heading is exactly NAME, every \
section whose heading contains it. A section runs to the next heading of its level or higher, \
so its sub-sections are in it. A NAME no heading matches fails (exit 3) listing the headings. \
Without --section, a `## Sub-Tasks` (`Tasks`, `Subtasks`, `Sub Tasks`, any level) section is \
the only part read when there is one; its next-level headings are the tasks, their sections \
the bodies.

Checklists (`- [ ]`, `* [ ]`, `+ [ ]`) are the tasks when the part read has any, also inside \
other list markers (`1. - [ ] x`) and inside plain bullets. Skipped, and listed with the \
reason in the dry run and orchestration.json:
  checked items (`[x]`): done;
  struck-through items (`- [ ] ~~x~~`, all of the text struck): not applicable; struck words \
in a title are dropped from it;
  `[Task 1]`: a template's placeholder;
  items under a heading that defers them (Deferred, Out of scope, Non-goals, Not planned, \
Won't do, Postponed, Future work, Later), unless --section asks for that heading.

Nesting: an item's nested content is its body, as Markdown, nested checklist items included. \
The unchecked children of a checked item are open work: each is a task, its context naming \
the parent (`Part of: … (checked)`); its checked children are skipped as checked.

Wrapped items: a paragraph that goes on on the next line (lazy continuation lines included) \
is one title; a hard line break, or a line that starts a new sentence (a capital letter after \
a finished clause), ends the title and the rest is body.

Without checklists: plain bullets and numbered items under a heading that names the work \
(one that is, in any case and words only, Tasks, Task list, Sub-tasks, TODO, To do, Plan, \
Work plan, Steps, Next steps, Implementation, Implementation plan, Work items, Action items, \
Child issues, Sub-issues, Checklist, Deliverables or Remaining work; also the --section asked \
for) are tasks, their nested lists the bodies; else numbered lists \
anywhere; else lists whose every item is an issue or pull-request reference.

Never tasks: fenced or indented code, HTML and comments, quotes, tables. A fenced block with \
the info string `[tasklist]` is GitHub's tracked list: its items are read in place.

Titles read as rendered text: emphasis and link syntax go, code spans stay, link addresses go \
to the task's context (`Links:`). `Sub-task 3:` / `Task 3 -` prefixes are dropped (3 is the \
task's label for `after task 3`).

Sections: the dry run shows each task's section (the heading it is under; not the heading \
that opens the text, its title); the status file keeps it (`section`) and the task's context \
names it unless it only says Tasks, Steps and the like. When tasks come from several sections \
the dry run says so and how to pick one.

References: an item that opens with `#N`, `owner/repo#N` or an issue or pull-request URL names \
that issue. It is a sub-issue (`sub_issue`; its pull request says `Closes #N`) only when it is \
an issue of the repository po runs in: a bare `#N` always is; `owner/repo#N` and URLs are when \
owner/repo is that repository (from the master issue's URL, else `gh repo view`) and never when \
it is unknown. Any other reference, and every pull request, is kept as a link (`Refs \
owner/repo#N` in the context, the pull request and the summary; `reference` in the status \
file), its title read with `gh issue view N --repo owner/repo` where the item has no words of \
its own (a failure only leaves the reference as the title), and never closed.

Mentions: everything po posts to GitHub (sub-issues, pull requests, follow-up issues, the \
summary comment) quotes each @user and @org/team of the text it copies in a code span, so \
nobody is notified again; code, links, URLs and e-mail addresses are left as they are.

With no task, po-parse says what the text holds (e.g. `4 checklist items, all checked; \
1 table`) and exits 3.

Pull requests: po-spawn opens one per completed task by default for an issue source, and only \
with --create-pr for any other; the dry run says which.

Outside a git repository po-parse writes nothing unless --runtime-dir (or PO_RUNTIME_DIR) says \
where, since po-spawn runs agents in the repository that holds the runtime directory (exit \
64); --dry-run works anywhere.

Examples:
  po-parse 1234 | po-spawn --max-workers 5
  po-parse plan.md --dry-run
  po-parse 97889 --section Steps --dry-run
  po-parse parallel/TS-0042-inventory/ --json";

const SUB_ISSUE_LABELS: [labels::Label; 2] = [labels::ORCHESTRATION, labels::SUB_ISSUE];

/// What a source gave: the plan and the orchestration's description.
struct Loaded {
    plan: Plan,
    source: Source,
    default_id: String,
    master_issue: Option<u64>,
    title: Option<String>,
    url: Option<String>,
    body: Option<String>,
    /// Completes "Parsed N sub-tasks from …".
    from: String,
}

pub fn run(args: Args) -> Result<i32> {
    super::init_tracing(args.common.verbose);
    let runtime = args.common.runtime()?;
    let arg = SourceArg::detect(&args.source)?;
    if args.create_sub_issues && !matches!(arg, SourceArg::Issue(_)) {
        return Err(Error::usage(
            "create sub-issues: --create-sub-issues needs a GitHub issue as SOURCE (the master \
             issue the sub-issues link to)",
        ));
    }
    if !args.section.is_empty() && matches!(arg, SourceArg::Manifest(_)) {
        return Err(Error::usage(
            "read sections: --section picks the sections of a Markdown text or an issue; a \
             manifest's tasks are its waves (drop --section)",
        ));
    }
    outside_a_repository(&args, &runtime)?;
    let loaded = load(&arg, &args, &runtime)?;
    let id = sanitize::id(args.id.as_deref().unwrap_or(&loaded.default_id))?;

    if args.dry_run {
        if args.json {
            let v = report::json(&loaded.plan, &id, &loaded.source, true, None);
            out::println(&serde_json::to_string_pretty(&v).unwrap_or_default())?;
        } else {
            let mut text = report::dry_run_text(
                &loaded.plan,
                &loaded.from,
                &loaded.source.kind,
                &run_hint(&args),
            );
            if args.create_sub_issues {
                // Sub-issues an earlier parse filed are reused, not filed again.
                let mut known = carried_sub_issues(&runtime.orchestration_dir(&id));
                let missing = loaded
                    .plan
                    .tasks
                    .iter()
                    .filter(|t| {
                        t.sub_issue.is_none()
                            && known
                                .get_mut(&t.title)
                                .and_then(|q| q.pop_front())
                                .is_none()
                    })
                    .count();
                text.push_str(&format!(
                    "📝 Would create {missing} sub-issue{} (labels: {})\n",
                    if missing == 1 { "" } else { "s" },
                    SUB_ISSUE_LABELS.map(|l| l.name).join(", ")
                ));
            }
            out::print(&text)?;
        }
        return Ok(exit::SUCCESS);
    }

    // One po-parse at a time per orchestration, from the check to the last
    // sub-issue: the lock of orchestration.json (what po-spawn takes to
    // record its options).
    let dir = runtime.orchestration_dir(&id);
    std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
    let _guard = store::lock_exclusive(&store::lock_path(&dir.join(layout::ORCHESTRATION_FILE)))?;
    let paths = write(&runtime, &id, &loaded)?;
    eprintln!(
        "{}",
        report::parsed_line(loaded.plan.tasks.len(), &loaded.from)
    );
    for w in &loaded.plan.warnings {
        eprintln!("⚠️  {w}");
    }
    for n in &loaded.plan.notes {
        eprintln!("ℹ️  {n}");
    }
    if args.create_sub_issues {
        let master = loaded
            .master_issue
            .expect("checked: the source is an issue");
        create_sub_issues(&runtime, &id, master, &paths)?;
    }
    // The files were just written into one directory: resolve it once.
    let real_dir = layout::absolute(&dir)?;
    let absolute: Vec<PathBuf> = paths
        .iter()
        .map(|p| match p.file_name() {
            Some(name) => Ok(real_dir.join(name)),
            None => layout::absolute(p),
        })
        .collect::<Result<_>>()?;
    if args.json {
        let v = report::json(&loaded.plan, &id, &loaded.source, false, Some(&absolute));
        out::println(&serde_json::to_string_pretty(&v).unwrap_or_default())?;
    } else {
        let mut text = String::new();
        for p in &absolute {
            text.push_str(&p.to_string_lossy());
            text.push('\n');
        }
        out::print(&text)?;
    }
    Ok(exit::SUCCESS)
}

/// Outside a git repository the runtime directory would quietly land in the
/// current directory, where po-spawn then refuses to work: refuse here,
/// unless the runtime directory was given or nothing is written.
fn outside_a_repository(args: &Args, runtime: &Runtime) -> Result<()> {
    if runtime.repo.is_some() || args.common.runtime_dir.is_some() || args.dry_run {
        return Ok(());
    }
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| ".".into());
    Err(Error::usage(format!(
        "write the orchestration: {cwd} is not inside a git repository, and po keeps an \
         orchestration in the repository its agents work in (`<top level>/.claude/runtime`); run \
         po-parse there, or name the runtime directory with `--runtime-dir DIR` (or \
         PO_RUNTIME_DIR), or look first with `--dry-run`"
    )))
}

/// Tasks of a Markdown text that is not an issue (a file, stdin): only a
/// bare `#N` is surely this repository's; `gh repo view` says which one it
/// is when a reference names a repository.
fn markdown_tasks(text: &str, what: &str, args: &Args, runtime: &Runtime) -> Result<Plan> {
    let mut ex =
        markdown::extract_with(text, &args.section).map_err(|detail| Error::parse(what, detail))?;
    if ex.tasks.iter().any(|t| t.reference.is_some()) {
        let gh = Gh::new((!args.dry_run).then_some(runtime.root.as_path()));
        refs::resolve(&mut ex, &gh, refs::Local::Ask);
    }
    plan_or_explain(ex, what)
}

fn load(arg: &SourceArg, args: &Args, runtime: &Runtime) -> Result<Loaded> {
    let raw = args.source.as_str();
    match arg {
        SourceArg::Issue(n) => {
            // A dry run writes nothing, not even the gh lock under the runtime root.
            let gh = Gh::new((!args.dry_run).then_some(runtime.root.as_path()));
            let src = issue::load(&gh, *n, &args.section)?;
            let what = format!("issue #{n}");
            let plan = plan_or_explain(src.extracted, &what)?;
            Ok(Loaded {
                plan,
                source: Source {
                    kind: "issue".into(),
                    value: n.to_string(),
                },
                default_id: n.to_string(),
                master_issue: Some(*n),
                title: Some(src.issue.title),
                url: (!src.issue.url.is_empty()).then_some(src.issue.url),
                body: Some(src.issue.body),
                from: what,
            })
        }
        SourceArg::Stdin => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(Error::io("read", "stdin"))?;
            let text = sources::decode(bytes, "stdin")?;
            let plan = markdown_tasks(&text, "stdin", args, runtime)?;
            Ok(Loaded {
                plan,
                source: Source {
                    kind: "stdin".into(),
                    value: "-".into(),
                },
                default_id: "stdin".into(),
                master_issue: None,
                title: first_heading(&text),
                url: None,
                body: Some(text),
                from: "stdin".into(),
            })
        }
        SourceArg::File(path) => {
            let bytes =
                crate::fsx::read(path, crate::fsx::SOURCE_MAX).map_err(Error::io("read", path))?;
            let what = path.display().to_string();
            let text = sources::decode(bytes, &what)?;
            let plan = markdown_tasks(&text, &what, args, runtime)?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "tasks".into());
            Ok(Loaded {
                plan,
                source: Source {
                    kind: "markdown".into(),
                    value: raw.into(),
                },
                default_id: stem,
                master_issue: None,
                title: first_heading(&text),
                url: None,
                body: Some(text),
                from: what,
            })
        }
        SourceArg::Manifest(path) => {
            let m = manifest::load(path)?;
            let mut bodies = Vec::new();
            for (_, t) in m.tasks() {
                let bytes = crate::fsx::read(&t.prompt_file, crate::fsx::SOURCE_MAX)
                    .map_err(Error::io("read", &t.prompt_file))?;
                let what = format!(
                    "prompt_file of task {:?} ({})",
                    t.id,
                    t.prompt_file.display()
                );
                bodies.push(sources::decode(bytes, &what)?);
            }
            let plan = Plan::from_manifest(&m, bodies);
            Ok(Loaded {
                plan,
                source: Source {
                    kind: "manifest".into(),
                    value: raw.into(),
                },
                default_id: m.tech_spec_id.clone(),
                master_issue: None,
                title: Some(m.tech_spec_id.clone()),
                url: None,
                body: None,
                from: format!("manifest {} ({})", m.tech_spec_id, m.path.display()),
            })
        }
    }
}

/// Plan the tasks, or say that there are none and what the text holds.
fn plan_or_explain(ex: sources::Extracted, what: &str) -> Result<Plan> {
    if ex.tasks.is_empty() {
        return Err(Error::parse(
            what,
            format!(
                "no tasks found: {}; `po-parse --help` says what becomes a task",
                ex.found.describe()
            ),
        ));
    }
    Plan::from_extracted(ex)
}

/// The text's title: the heading it opens with (`# Title`).
fn first_heading(text: &str) -> Option<String> {
    markdown::title(text)
}

/// `po-parse SOURCE [--id ID] | po-spawn`, quoted for a POSIX shell.
fn run_hint(args: &Args) -> String {
    let mut s = format!("po-parse {}", shell_quote(&args.source));
    if let Some(id) = &args.id {
        s.push_str(&format!(" --id {}", shell_quote(id)));
    }
    s.push_str(" | po-spawn");
    s
}

/// Quoted for the shell; a leading `-` is quoted too, so it reads as an operand.
fn shell_quote(s: &str) -> String {
    if s.starts_with('-') && s != "-" {
        format!("'{}'", s.replace('\'', r"'\''"))
    } else {
        crate::text::shell_quote(s)
    }
}

/// Sub-issue numbers of the tasks already parsed, by title (in task order).
type Carried = HashMap<String, VecDeque<u64>>;

/// Sub-issues the readable tasks of an orchestration already have, by title.
fn carried_sub_issues(dir: &Path) -> Carried {
    let mut carried: Carried = HashMap::new();
    for t in Reader::plain().read(dir).tasks() {
        if let Some(sub) = t.status.sub_issue {
            carried
                .entry(t.status.title.clone())
                .or_default()
                .push_back(sub);
        }
    }
    carried
}

/// Refuse to touch an orchestration whose tasks started or finished; else
/// return the sub-issues its pending tasks already have.
fn check_replaceable(dir: &Path, id: &str) -> Result<Carried> {
    let mut carried: Carried = HashMap::new();
    if !dir.is_dir() {
        return Ok(carried);
    }
    let mut blocked = Vec::new();
    let view = Reader::plain().read(dir);
    if let Some(p) = view.problem {
        return Err(Error::system(p));
    }
    for row in &view.rows {
        let agent = row.label();
        match row {
            Row::Task(t) if t.state() != State::Pending => {
                blocked.push(format!("{agent} {}", t.state()))
            }
            Row::Task(t) if store::is_live(&t.file) => blocked.push(format!("{agent} starting")),
            Row::Task(t) => {
                if let Some(sub) = t.status.sub_issue {
                    carried
                        .entry(t.status.title.clone())
                        .or_default()
                        .push_back(sub);
                }
            }
            Row::Bad(b) => blocked.push(format!("{agent} unreadable ({})", b.problem)),
        }
    }
    if blocked.is_empty() {
        return Ok(carried);
    }
    Err(Error::usage(format!(
        "replace orchestration {id:?} in {}: its tasks have started or finished ({}), and \
         parsing again would discard that state; run the failed ones again with \
         `po-spawn --id {id} --retry`, or parse into a new orchestration with `--id NEW-ID`",
        dir.display(),
        blocked.join(", ")
    )))
}

fn status_of(id: &str, t: &PlannedTask, sub_issue: Option<u64>) -> AgentStatus {
    let mut s = AgentStatus::new(t.agent_id(), id);
    s.title = t.title.clone();
    s.body = t.full_body();
    if let Some(section) = &t.section {
        s.extra.insert("section".into(), section.clone().into());
    }
    if let Some(r) = t.reference.as_ref().filter(|_| t.sub_issue.is_none())
        && let Ok(v) = serde_json::to_value(r)
    {
        s.extra.insert(refs::STATUS_KEY.into(), v);
    }
    s.wave = t.wave;
    s.depends_on = t
        .depends_on
        .iter()
        .map(|&d| crate::plan::agent_id(d))
        .collect();
    s.files = t.files.clone();
    s.complexity = Some(t.complexity.as_str().into());
    s.sub_issue = sub_issue;
    s.branch = Some(sanitize::branch_name(id, sub_issue, t.n as u64));
    s.task_id = t.task_id.clone();
    s.agent = t.agent.clone();
    s.prompt_file = t.prompt_file.clone();
    s
}

/// Write the orchestration directory (the caller holds the lock of its
/// orchestration.json); returns the status paths in task order.
fn write(runtime: &Runtime, id: &str, loaded: &Loaded) -> Result<Vec<PathBuf>> {
    let dir = runtime.orchestration_dir(id);
    let mut carried = check_replaceable(&dir, id)?;
    let prompts = layout::prompts_dir(&dir);
    std::fs::create_dir_all(&prompts).map_err(Error::io("create", &prompts))?;
    runtime.exclude_from_git()?;

    let orch_path = dir.join(layout::ORCHESTRATION_FILE);
    let previous: Option<Orchestration> = store::read_json(&orch_path).ok();
    let orch = Orchestration {
        schema_version: SCHEMA_VERSION,
        id: id.to_string(),
        source: loaded.source.clone(),
        master_issue: loaded.master_issue,
        title: loaded.title.clone(),
        url: loaded.url.clone(),
        body: loaded.body.clone(),
        created_at: Some(crate::timefmt::now()),
        waves: loaded
            .plan
            .waves
            .iter()
            .map(|w| Wave {
                number: w.number,
                agents: w.tasks.iter().map(|&n| crate::plan::agent_id(n)).collect(),
                validation: w.validation.clone(),
                result: None,
            })
            .collect(),
        report: loaded.plan.report_json(),
        options: previous
            .as_ref()
            .map(|p| p.options.clone())
            .unwrap_or_default(),
        extra: previous.map(|p| p.extra).unwrap_or_default(),
    };
    store::write_json(&orch_path, &orch)?;

    let mut files = Vec::with_capacity(loaded.plan.tasks.len());
    for t in &loaded.plan.tasks {
        let sub = t
            .sub_issue
            .or_else(|| carried.get_mut(&t.title).and_then(|q| q.pop_front()));
        let status = status_of(id, t, sub);
        files.push((layout::status_path(&dir, &status.agent_id), status));
    }
    write_all(&dir, &files)?;
    let paths: Vec<PathBuf> = files.into_iter().map(|(p, _)| p).collect();
    // Tasks of an earlier parse beyond the new count go, still only if pending.
    let current: std::collections::HashSet<&PathBuf> = paths.iter().collect();
    for old in layout::status_files(&dir)? {
        if current.contains(&old) {
            continue;
        }
        let _lock = store::lock_exclusive(&store::lock_path(&old))?;
        match store::read_status(&old) {
            Ok(s) if s.status == State::Pending && !store::is_live(&old) => {
                std::fs::remove_file(&old).map_err(Error::io("remove", &old))?;
            }
            _ => {
                return Err(Error::usage(format!(
                    "remove {}: it started while being replaced; run po-parse again once it is \
                     finished, or use --id NEW-ID",
                    old.display()
                )));
            }
        }
    }
    Ok(paths)
}

/// Write the status files, each one only over a file that is still
/// `pending`, durably with one flush for all of them.
fn write_all(dir: &Path, files: &[(PathBuf, AgentStatus)]) -> Result<()> {
    store::write_statuses(dir, files, |path, old| {
        if old.status != State::Pending {
            return Err(Error::usage(format!(
                "replace {}: it is {} now; use `po-spawn --retry` or --id NEW-ID",
                path.display(),
                old.status
            )));
        }
        Ok(())
    })
}

/// The seed's sub-issue body.
pub fn sub_issue_body(master: u64, title: &str, body: &str) -> String {
    let context = if body.trim().is_empty() {
        format!("See master issue #{master}.")
    } else {
        body.trim().to_string()
    };
    format!(
        "**Master Issue**: #{master}\n**Task**: {title}\n\n## Context\n{context}\n\n\
         ## Acceptance Criteria\n- {title}: implemented\n- Tests passing\n- Documentation updated\n\n\
         ## Notes\nThis is part of parallel orchestration. See master issue for context.\n"
    )
}

/// File a sub-issue for each task that has none, recording each number as
/// soon as it exists (so an interrupted run never files one twice).
fn create_sub_issues(runtime: &Runtime, id: &str, master: u64, paths: &[PathBuf]) -> Result<()> {
    let gh = Gh::new(Some(&runtime.root));
    let mut filer = IssueFiler::new(&gh, &SUB_ISSUE_LABELS, |m| eprintln!("po-parse: {m}"));
    let mut created: Vec<u64> = Vec::new();
    for path in paths {
        let s = store::read_status(path)?;
        if s.sub_issue.is_some() {
            continue;
        }
        let title = format!("[Master #{master}] {}", s.title);
        let number = filer.create(&title, &sub_issue_body(master, &s.title, &s.body))?;
        let n = s.number();
        store::update_status(path, |s| {
            s.sub_issue = Some(number);
            s.branch = Some(sanitize::branch_name(id, Some(number), n));
            Ok(())
        })?;
        created.push(number);
    }
    if created.is_empty() {
        eprintln!("📝 Every task already has a sub-issue; none created");
    } else {
        eprintln!("📝 Created sub-issues: {}", report::issue_ranges(&created));
    }
    Ok(())
}
