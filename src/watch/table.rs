//! The snapshot table: one row per task, sized to the terminal (80 columns by
//! default), then what needs a look and the totals.
//!
//! Text from status files is task text, so it is untrusted: control
//! characters (terminal escapes included) are shown as spaces.
//!
//! COST is what the task's attempts reported together; a task that reports
//! tokens but no cost shows `— 7.0k tok`, never `$0.00`. With a budget
//! (`po-spawn --budget-usd`) the totals say what is spent against it.

use std::fmt::Write as _;

use crate::cost::{self, Total};
use crate::integration::conflicts::Conflict;
use crate::protocol::State;
use crate::protocol::view::{OrchestrationView, Row, TaskView};
use crate::text::{ellipsize, printable};
use crate::timefmt::human_duration;

#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// Total width the table must fit in.
    pub width: usize,
    /// ANSI colours (only on a terminal and without `NO_COLOR`).
    pub color: bool,
}

const HEADERS: [&str; 9] = [
    "AGENT", "STATE", "PHASE", "PROG", "DUR", "BRANCH", "PR", "COST", "NODE",
];
const AGENT: usize = 0;
const STATE: usize = 1;
const PHASE: usize = 2;
const BRANCH: usize = 5;
/// Shown only when a launcher recorded where tasks run (a cluster's node).
const NODE: usize = 8;

/// Every orchestration in `views`, newest first as given, separated by a blank line.
/// `conflicts` holds, for each view, the conflicts between its completed
/// branches (shown among the notes).
pub fn render(views: &[OrchestrationView], conflicts: &[Vec<Conflict>], style: Style) -> String {
    if views.is_empty() {
        return "No orchestrations yet.\n".to_string();
    }
    let mut out = String::new();
    for (i, v) in views.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let none = Vec::new();
        render_one(&mut out, v, conflicts.get(i).unwrap_or(&none), style);
    }
    out
}

fn render_one(out: &mut String, v: &OrchestrationView, conflicts: &[Conflict], style: Style) {
    let title = match &v.title {
        Some(t) if !t.is_empty() => format!("Orchestration {}: {}", printable(&v.id), printable(t)),
        _ => format!("Orchestration {}", printable(&v.id)),
    };
    let _ = writeln!(
        out,
        "{}",
        paint(&ellipsize(&title, style.width), "1", style.color)
    );
    if let Some(p) = &v.problem {
        let _ = writeln!(out, "! {}", printable(p));
        return;
    }
    if v.rows.is_empty() {
        let _ = writeln!(out, "No tasks in {}", v.dir.display());
        return;
    }

    let shown = if v.tasks().any(|t| t.node().is_some()) {
        HEADERS.len()
    } else {
        NODE
    };
    let cells: Vec<Vec<String>> = v
        .rows
        .iter()
        .map(|r| {
            let mut c = cells_of(r);
            c.truncate(shown);
            c
        })
        .collect();
    let widths = column_widths(&cells, shown, style.width);
    let gap = widths.gap;
    let sep = " ".repeat(gap);

    let header: Vec<String> = HEADERS[..shown]
        .iter()
        .zip(&widths.cols)
        .map(|(h, &w)| pad(h, w, false))
        .collect();
    let _ = writeln!(
        out,
        "{}",
        paint(header.join(&sep).trim_end(), "1", style.color)
    );

    for (row, cell) in v.rows.iter().zip(&cells) {
        let mut line = String::new();
        match row {
            Row::Task(t) => {
                for (i, (c, &w)) in cell.iter().zip(&widths.cols).enumerate() {
                    if i > 0 {
                        line.push_str(&sep);
                    }
                    let right = matches!(i, 3 | 4 | 7);
                    let text = pad(&ellipsize(c, w), w, right);
                    if i == STATE {
                        line.push_str(&paint(&text, state_color(t), style.color));
                    } else {
                        line.push_str(&text);
                    }
                }
            }
            Row::Bad(_) => {
                line.push_str(&pad(
                    &ellipsize(&cell[AGENT], widths.cols[AGENT]),
                    widths.cols[AGENT],
                    false,
                ));
                line.push_str(&sep);
                let state = pad(&cell[STATE], widths.cols[STATE], false);
                line.push_str(&paint(&state, "31", style.color));
                line.push_str(&sep);
                let used = widths.cols[AGENT] + widths.cols[STATE] + 2 * gap;
                line.push_str(&ellipsize(&cell[PHASE], style.width.saturating_sub(used)));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }

    notes(out, v, style.width);
    for c in conflicts {
        let _ = writeln!(out, "! {}", printable(&c.line()));
    }
    totals(out, v, style.width);
}

/// What needs a look: unreadable files, stalled and orphaned tasks, with the
/// path to open on a line of its own (paths are never cut).
fn notes(out: &mut String, v: &OrchestrationView, width: usize) {
    for row in &v.rows {
        match row {
            Row::Bad(b) => {
                let _ = writeln!(
                    out,
                    "! {} unreadable: {}",
                    printable(&row.label()),
                    b.file.display()
                );
                wrap(out, &printable(&b.problem), width);
            }
            Row::Task(t) if t.inferred.orphaned => {
                let _ = writeln!(
                    out,
                    "! {} orphaned: in_progress, but no process holds its liveness lock",
                    printable(&t.label)
                );
                let _ = writeln!(out, "  see {}", t.look_at().display());
            }
            Row::Task(t) if t.inferred.stalled => {
                let idle = t.inferred.idle_seconds.unwrap_or(0) as f64;
                let _ = writeln!(
                    out,
                    "! {} stalled: no output or status update for {}",
                    printable(&t.label),
                    human_duration(idle)
                );
                let _ = writeln!(out, "  see {}", t.look_at().display());
            }
            Row::Task(_) => {}
        }
    }
}

/// `text` in lines of at most `width` columns, indented by two spaces.
fn wrap(out: &mut String, text: &str, width: usize) {
    let mut line = String::from(" ");
    for word in text.split_whitespace() {
        if line.chars().count() + 1 + word.chars().count() > width && line.len() > 1 {
            let _ = writeln!(out, "{line}");
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(word);
    }
    if line.len() > 1 {
        let _ = writeln!(out, "{line}");
    }
}

fn totals(out: &mut String, v: &OrchestrationView, width: usize) {
    let tasks: Vec<&TaskView> = v.tasks().collect();
    let mut counts: Vec<String> = State::ALL
        .iter()
        .filter_map(|s| {
            let n = tasks.iter().filter(|t| t.state() == *s).count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    if counts.is_empty() {
        counts.push("none readable".into());
    }
    counts[0] = format!("{} tasks: {}", v.rows.len(), counts[0]);
    join_wrapped(out, &counts, width);

    let mut more = Vec::new();
    for (name, n) in crate::protocol::view::flagged(&tasks, v.bad().count()) {
        if n > 0 {
            more.push(format!("{n} {name}"));
        }
    }
    match v.orchestration.as_deref().and_then(cost::budget_of) {
        Some(budget) => more.push(Total::of(tasks.iter().map(|t| &t.status)).against(budget)),
        None => {
            let reported: Vec<f64> = tasks
                .iter()
                .filter_map(|t| cost::reported(&t.status.metrics))
                .collect();
            if !reported.is_empty() {
                more.push(format!("cost {}", cost::usd(reported.iter().sum())));
            }
        }
    }
    if let Some(e) = elapsed(&tasks) {
        more.push(format!("elapsed {}", human_duration(e)));
    }
    join_wrapped(out, &more, width);
}

/// `parts` joined by ", ", broken into lines of at most `width` columns.
fn join_wrapped(out: &mut String, parts: &[String], width: usize) {
    let mut line = String::new();
    for p in parts {
        if !line.is_empty() && line.chars().count() + 2 + p.chars().count() > width {
            let _ = writeln!(out, "{line},");
            line.clear();
        } else if !line.is_empty() {
            line.push_str(", ");
        }
        line.push_str(p);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{line}");
    }
}

/// From the first start to the last finish (or now, while anything runs).
pub fn elapsed(tasks: &[&TaskView]) -> Option<f64> {
    let start = tasks.iter().filter_map(|t| t.status.start_time).min()?;
    let running = tasks.iter().any(|t| t.state() == State::InProgress);
    let end = if running {
        crate::timefmt::now()
    } else {
        tasks
            .iter()
            .filter_map(|t| t.status.completion_time.or(t.status.last_update))
            .max()?
    };
    Some(((end - start).num_milliseconds() as f64 / 1000.0).max(0.0))
}

fn cells_of(row: &Row) -> Vec<String> {
    match row {
        Row::Task(t) => vec![
            printable(&t.label),
            t.shown_state().to_string(),
            match t.queued() {
                Some(why) => printable(&waiting(t, &why)),
                None => t.phase().map(printable).unwrap_or_else(|| "-".into()),
            },
            t.status
                .progress_percentage
                .map(|p| format!("{p}%"))
                .unwrap_or_else(|| "-".into()),
            t.duration_seconds
                .map(human_duration)
                .unwrap_or_else(|| "-".into()),
            t.status
                .branch
                .as_deref()
                .map(printable)
                .unwrap_or_else(|| "-".into()),
            t.status
                .pr_number
                .map(|n| match crate::protocol::reaction::shown(&t.status) {
                    Some(r) => format!("#{n} {r}"),
                    None => format!("#{n}"),
                })
                .unwrap_or_else(|| "-".into()),
            cost::cell(&t.status.metrics).unwrap_or_else(|| "-".into()),
            t.node().map(printable).unwrap_or_else(|| "-".into()),
        ],
        Row::Bad(b) => vec![
            printable(&row.label()),
            "unreadable".into(),
            printable(&format!("{}: {}", b.name(), b.problem)),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ],
    }
}

struct Widths {
    cols: Vec<usize>,
    gap: usize,
}

/// Natural widths, then phase, branch, node and agent give way until the row
/// fits.
fn column_widths(cells: &[Vec<String>], shown: usize, width: usize) -> Widths {
    let mut cols: Vec<usize> = HEADERS[..shown].iter().map(|h| h.chars().count()).collect();
    for row in cells {
        for (i, c) in row.iter().enumerate() {
            if i == PHASE && row[STATE] == "unreadable" {
                continue;
            }
            cols[i] = cols[i].max(c.chars().count());
        }
    }
    cols[AGENT] = cols[AGENT].min(20);
    let limit = width.max(40);
    let mut gap = 2;
    loop {
        let total: usize = cols.iter().sum::<usize>() + gap * (cols.len() - 1);
        if total <= limit {
            break;
        }
        let shrinkable = [(PHASE, 8), (BRANCH, 8), (NODE, 6)]
            .into_iter()
            .filter(|&(i, min)| i < cols.len() && cols[i] > min)
            .max_by_key(|&(i, _)| cols[i])
            .or_else(|| (cols[AGENT] > 8).then_some((AGENT, 8)));
        match shrinkable {
            Some((i, _)) => cols[i] -= 1,
            None if gap > 1 => gap = 1,
            None => break,
        }
    }
    Widths { cols, gap }
}

/// Why a queued task waits, as its PHASE cell says it: the launcher's reason
/// and its runner, `Resources (Slurm job 56)`.
pub fn waiting(t: &TaskView, why: &str) -> String {
    let job = crate::protocol::runner::shown(&t.status);
    match (why.trim(), job) {
        ("", Some(job)) => job,
        ("", None) => "waiting".into(),
        (why, Some(job)) => format!("{why} ({job})"),
        (why, None) => why.to_string(),
    }
}

/// Control characters (escapes, newlines, tabs) become spaces.
fn pad(s: &str, w: usize, right: bool) -> String {
    let n = s.chars().count();
    let fill = " ".repeat(w.saturating_sub(n));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

fn paint(s: &str, code: &str, color: bool) -> String {
    if color && !code.is_empty() {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn state_color(t: &TaskView) -> &'static str {
    if t.inferred.name().is_some() {
        return "1;33";
    }
    match t.state() {
        State::Completed => "32",
        State::Failed | State::TimedOut => "31",
        State::Cancelled => "2",
        State::InProgress => "36",
        State::Pending => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(ellipsize("feat/issue-1235-agent-1", 10), "feat/issu…");
        assert_eq!(ellipsize("short", 10), "short");
    }

    #[test]
    fn escapes_in_task_text_do_not_reach_the_terminal() {
        assert_eq!(printable("a\x1b[2Jb\nc"), "a [2Jb c");
    }

    #[test]
    fn wide_cells_shrink_to_the_width() {
        let row = vec![
            "agent-1".to_string(),
            "in_progress".into(),
            "x".repeat(60),
            "45%".into(),
            "12m 45s".into(),
            "feat/issue-1235-agent-1-with-a-long-name".into(),
            "#1241".into(),
            "$0.42".into(),
        ];
        let w = column_widths(&[row], 8, 80);
        assert!(w.cols.iter().sum::<usize>() + w.gap * 7 <= 80);
    }
}
