//! The dashboard's HTML: the orchestrations list, the board of one
//! orchestration (a tile per task, the timeline) and the log view.
//!
//! Every piece of task text goes through [`esc`]; the only markup is po's.
//! Regions that change carry an `id`: an event stream sends new HTML for the
//! regions that changed, and the page's script swaps them in.

use std::fmt::Write as _;

use super::hub::{Snapshot, dir_key};
use crate::protocol::State;
use crate::protocol::view::error_gist;
use crate::protocol::view::{OrchestrationView, Row, TaskView};
use crate::report::html::link;
use crate::report::markdown::thousands;
use crate::report::timeline::{self, Bar};
use crate::text::{ellipsize, one_line, xml_escape as esc};
use crate::timefmt::{Timestamp, human_duration};
use crate::watch::table;

/// How internal links are written: with the request's `?token=` when it
/// came that way (a browser), so that the next page and the event stream
/// carry it too.
#[derive(Clone, Debug, Default)]
pub struct Links {
    /// `token=…`, percent-encoded, or empty.
    pub token_query: String,
}

impl Links {
    pub fn url(&self, path: &str) -> String {
        self.url_with(path, "")
    }

    /// `path?query` with the token added.
    pub fn url_with(&self, path: &str, query: &str) -> String {
        let q: Vec<&str> = [query, self.token_query.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", q.join("&"))
        }
    }
}

/// Whether a name can be a URL path segment as it is (ids, directory names,
/// agent ids: `[A-Za-z0-9._-]`, no leading dot).
pub fn segment_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A whole page around `main`.
pub fn document(title: &str, links: &Links, body_attrs: &str, nav: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · po</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"{}\"><script src=\"{}\" defer></script></head>\
         <body{body_attrs}>\n<nav><a class=\"brand\" href=\"{}\">po</a>{nav}\
         <span id=\"live\" class=\"live off\" title=\"connecting…\"></span></nav>\n<main>\n{main}\n\
         </main></body></html>\n",
        esc(&ellipsize(&one_line(title), 80)),
        esc(&links.url("/assets/app.css")),
        esc(&links.url("/assets/app.js")),
        esc(&links.url("/")),
    )
}

fn state_word(s: State) -> String {
    s.as_str().replace('_', " ")
}

/// Coloured counts by state: `3 completed`, `1 failed`, …
fn chips(tasks: &[&TaskView], bad: usize) -> String {
    let mut o = String::from("<span class=\"chips\">");
    for st in State::ALL {
        let n = tasks.iter().filter(|t| t.state() == st).count();
        if n > 0 {
            let _ = write!(o, "<span class=\"chip {st}\">{n} {}</span>", state_word(st));
        }
    }
    for (name, n) in crate::protocol::view::flagged(tasks, bad) {
        if n > 0 {
            let _ = write!(o, "<span class=\"chip {name}\">{n} {name}</span>");
        }
    }
    o.push_str("</span>");
    o
}

/// What an orchestration's tasks reported they cost (`None`: none did).
fn cost(tasks: &[&TaskView]) -> Option<f64> {
    let c: Vec<f64> = tasks
        .iter()
        .filter_map(|t| crate::cost::reported(&t.status.metrics))
        .collect();
    (!c.is_empty()).then(|| c.iter().sum())
}

/// An orchestration's spend: `$0.05 / $0.10` against its budget, else what
/// its tasks reported, else `—`.
fn spend_cell(v: &OrchestrationView, tasks: &[&TaskView]) -> String {
    match v.orchestration.as_deref().and_then(crate::cost::budget_of) {
        Some(b) => {
            let total = crate::cost::Total::of(tasks.iter().map(|t| &t.status));
            format!(
                "{} / {}",
                crate::cost::usd(total.sum()),
                crate::cost::usd(b)
            )
        }
        None => cost(tasks).map_or("—".into(), crate::cost::usd),
    }
}

/// The orchestrations list (region `orchs`).
pub fn orchestrations(snap: &Snapshot, links: &Links) -> String {
    let mut o = String::from("<section id=\"orchs\" class=\"card\">");
    if snap.orchestrations.is_empty() {
        o.push_str(
            "<p class=\"empty\">No orchestration yet. Start one with \
             <code>po-parse SOURCE | po-spawn</code>; it appears here as it is written.</p>",
        );
    } else {
        o.push_str(
            "<table class=\"orchs\"><thead><tr><th>Orchestration</th><th>Tasks</th>\
             <th>Elapsed</th><th>Cost</th></tr></thead><tbody>",
        );
    }
    for v in &snap.orchestrations {
        let tasks: Vec<&TaskView> = v.tasks().collect();
        let key = dir_key(v);
        let name = esc(&v.id);
        let name = if segment_ok(&key) {
            format!(
                "<a href=\"{}\">{name}</a>",
                esc(&links.url(&format!("/o/{key}")))
            )
        } else {
            name
        };
        let title = v
            .title
            .as_deref()
            .map(|t| {
                format!(
                    "<div class=\"sub\">{}</div>",
                    esc(&ellipsize(&one_line(t), 100))
                )
            })
            .unwrap_or_default();
        let _ = write!(
            o,
            "<tr><td><b>{name}</b>{title}</td><td>{} {}</td><td>{}</td><td>{}</td></tr>",
            v.rows.len(),
            chips(&tasks, v.bad().count()),
            table::elapsed(&tasks).map_or("—".into(), human_duration),
            spend_cell(v, &tasks),
        );
    }
    if !snap.orchestrations.is_empty() {
        o.push_str("</tbody></table>");
    }
    o.push_str("</section>");
    o
}

pub fn index_page(snap: &Snapshot, links: &Links) -> String {
    let events = format!(" data-events=\"{}\"", esc(&links.url("/events")));
    document(
        "Orchestrations",
        links,
        &events,
        "<span class=\"crumb\">orchestrations</span>",
        &format!("<h1>Orchestrations</h1>\n{}", orchestrations(snap, links)),
    )
}

/// A board's regions, in page order: `head`, one tile per status file, `timeline`.
pub struct BoardParts {
    pub head: String,
    pub tiles: Vec<(String, String)>,
    pub timeline: String,
}

impl BoardParts {
    /// The tiles' container (region `grid`).
    pub fn grid(&self) -> String {
        let mut o = String::from("<section id=\"grid\" class=\"grid\">");
        for (_, html) in &self.tiles {
            o.push_str(html);
        }
        if self.tiles.is_empty() {
            o.push_str("<p class=\"empty\">No task in this orchestration yet.</p>");
        }
        o.push_str("</section>");
        o
    }
}

/// The DOM id of a status file's tile: `t-` and the file's agent id.
pub fn tile_id(row: &Row) -> String {
    format!("t-{}", crate::protocol::layout::agent_id_of(row.file()))
}

pub fn board_parts(v: &OrchestrationView, now: Timestamp, links: &Links) -> BoardParts {
    let key = dir_key(v);
    let tasks: Vec<&TaskView> = v.tasks().collect();
    let mut head = String::from("<header id=\"head\" class=\"head\">");
    let title = v.title.as_deref().map(one_line).unwrap_or_default();
    let _ = write!(
        head,
        "<h1>{}</h1><p class=\"sub\">orchestration <code>{}</code> · {} task{}",
        esc(if title.is_empty() { &v.id } else { &title }),
        esc(&v.id),
        v.rows.len(),
        if v.rows.len() == 1 { "" } else { "s" }
    );
    if let Some(e) = table::elapsed(&tasks) {
        let _ = write!(head, " · {}", human_duration(e));
    }
    match v.orchestration.as_deref().and_then(crate::cost::budget_of) {
        Some(b) => {
            let total = crate::cost::Total::of(tasks.iter().map(|t| &t.status));
            let _ = write!(head, " · {}", esc(&total.against(b)));
        }
        None => {
            if let Some(c) = cost(&tasks) {
                let _ = write!(head, " · {}", crate::cost::usd(c));
            }
        }
    }
    let tokens: u64 = tasks
        .iter()
        .map(|t| {
            t.status.metrics.input_tokens.unwrap_or(0) + t.status.metrics.output_tokens.unwrap_or(0)
        })
        .sum();
    if tokens > 0 {
        let _ = write!(head, " · {} tokens", thousands(tokens));
    }
    let _ = write!(head, "</p>{}", chips(&tasks, v.bad().count()));
    if let Some(p) = &v.problem {
        let _ = write!(head, "<p class=\"problem\">{}</p>", esc(p));
    }
    head.push_str("</header>");

    let tiles = v
        .rows
        .iter()
        .map(|r| {
            let html = match r {
                Row::Task(t) => tile(t, &tile_id(r), &key, links),
                Row::Bad(b) => format!(
                    "<article class=\"tile unreadable\" id=\"{}\"><header><b class=\"label\">{}\
                     </b><span class=\"state\">unreadable</span></header><p class=\"err\">{}</p>\
                     </article>",
                    esc(&tile_id(r)),
                    esc(&b.name()),
                    esc(&b.problem)
                ),
            };
            (tile_id(r), html)
        })
        .collect();
    let timeline = format!(
        "<section id=\"timeline\" class=\"card\"><h2>Timeline</h2>{}</section>",
        timeline_svg(v, now)
    );
    BoardParts {
        head,
        tiles,
        timeline,
    }
}

/// The orchestration's timeline, running bars ending at `now`.
pub fn timeline_svg(v: &OrchestrationView, now: Timestamp) -> String {
    let bars: Vec<Bar> = v.tasks().map(bar).collect();
    timeline::svg(&bars, now)
}

fn bar(t: &TaskView) -> Bar {
    Bar {
        label: t.label.clone(),
        title: t.status.title.clone(),
        wave: t.status.wave,
        state: t.state(),
        start: t.status.start_time,
        end: t
            .state()
            .is_terminal()
            .then_some(t.status.completion_time.or(t.status.last_update))
            .flatten(),
    }
}

fn tile(t: &TaskView, id: &str, key: &str, links: &Links) -> String {
    let inferred = t.inferred.name();
    let queued = t.queued();
    let shown = match (&queued, inferred) {
        (_, Some(i)) => i,
        (Some(_), None) => "queued",
        _ => t.state().as_str(),
    };
    let mut o = String::new();
    let _ = write!(
        o,
        "<article class=\"tile {} is-{shown}\" id=\"{}\"><header><span class=\"dot\"></span>\
         <b class=\"label\">{}</b><span class=\"state\">{}</span>",
        t.state(),
        esc(id),
        esc(&t.label),
        state_word(t.state())
            + &inferred.map(|i| format!(" · {i}")).unwrap_or_default()
            + if queued.is_some() { " · queued" } else { "" }
    );
    let _ = write!(
        o,
        "<span class=\"wave\">wave {}</span></header>",
        t.status.wave
    );
    let title = one_line(&t.status.title);
    if !title.is_empty() {
        let _ = write!(
            o,
            "<h3 title=\"{}\">{}</h3>",
            esc(&title),
            esc(&ellipsize(&title, 90))
        );
    }
    let phase = t.phase().map(one_line).unwrap_or_default();
    let pct = t
        .status
        .progress_percentage
        .unwrap_or(if t.state() == State::Completed {
            100
        } else {
            0
        });
    let _ = write!(
        o,
        "<div class=\"phase\"><span>{}</span><span class=\"pct\">{pct}%</span></div>\
         <progress max=\"100\" value=\"{pct}\"></progress>",
        esc(&ellipsize(&phase, 80))
    );
    if let Some(reason) = &queued {
        let _ = write!(
            o,
            "<p class=\"note\">queued: {}</p>",
            esc(&one_line(&table::waiting(t, reason)))
        );
    }
    if t.inferred.stalled || t.inferred.orphaned {
        let idle = t
            .inferred
            .idle_seconds
            .map(|s| format!(" for {}", human_duration(s as f64)))
            .unwrap_or_default();
        let why = if t.inferred.orphaned {
            "no process holds this task".to_string()
        } else {
            format!("no output{idle}")
        };
        let _ = write!(o, "<p class=\"note\">{}: {why}</p>", shown);
    }
    if let Some(e) = t.status.error.as_deref().filter(|e| !e.trim().is_empty()) {
        let _ = write!(
            o,
            "<p class=\"err\">{}</p>",
            esc(&ellipsize(&error_gist(e), 160))
        );
    }
    o.push_str(&meta(t));
    o.push_str(&footer(t, key, links));
    o.push_str("</article>");
    o
}

/// The branch, the pull request, po-react's rounds and the log link.
fn footer(t: &TaskView, key: &str, links: &Links) -> String {
    let mut o = String::new();
    o.push_str("<footer>");
    if let Some(b) = &t.status.branch {
        let _ = write!(o, "<code class=\"branch\">{}</code>", esc(b));
    }
    match (t.status.pr_number, t.status.pr_url.as_deref()) {
        (Some(n), Some(u)) => o.push_str(&link(u, &format!("PR #{n}"))),
        (Some(n), None) => {
            let _ = write!(o, "<span>PR #{n}</span>");
        }
        _ => {}
    }
    if let Some(r) = crate::protocol::reaction::shown(&t.status) {
        let _ = write!(o, "<span class=\"react\">{}</span>", esc(&r));
    }
    if t.status.log_file.is_some() && segment_ok(key) && segment_ok(&t.status.agent_id) {
        let _ = write!(
            o,
            "<a class=\"log\" href=\"{}\">log</a>",
            esc(&links.url(&format!("/o/{key}/log/{}", t.status.agent_id)))
        );
    }
    o.push_str("</footer>");
    o
}

/// Duration (ticking while it runs), cost, turns and tokens.
fn meta(t: &TaskView) -> String {
    let mut o = String::from("<dl>");
    let duration = t.duration_seconds.map_or("—".into(), human_duration);
    match (t.state(), t.status.start_time) {
        (State::InProgress, Some(start)) => {
            let _ = write!(
                o,
                "<div><dt>time</dt><dd data-start=\"{}\">{duration}</dd></div>",
                start.timestamp_millis()
            );
        }
        _ => {
            let _ = write!(o, "<div><dt>time</dt><dd>{duration}</dd></div>");
        }
    }
    let tokens = match (
        t.status.metrics.input_tokens,
        t.status.metrics.output_tokens,
    ) {
        (None, None) => None,
        (i, o) => Some(i.unwrap_or(0) + o.unwrap_or(0)),
    };
    for (k, v) in [
        // Tokens without a cost show `—` here, never `$0.00`.
        (
            "cost",
            crate::cost::reported(&t.status.metrics).map(crate::cost::usd),
        ),
        ("turns", t.status.metrics.turns.map(thousands)),
        ("tokens", tokens.map(thousands)),
    ] {
        let _ = write!(
            o,
            "<div><dt>{k}</dt><dd>{}</dd></div>",
            v.unwrap_or_else(|| "—".into())
        );
    }
    if t.status.attempt > 1 {
        let _ = write!(
            o,
            "<div><dt>attempt</dt><dd>{}</dd></div>",
            t.status.attempt
        );
    }
    if let Some(node) = t.node() {
        let _ = write!(o, "<div><dt>node</dt><dd>{}</dd></div>", esc(node));
    }
    o.push_str("</dl>");
    o
}

pub fn board_page(v: &OrchestrationView, now: Timestamp, links: &Links) -> String {
    let key = dir_key(v);
    let parts = board_parts(v, now, links);
    let events = format!(
        " data-events=\"{}\"",
        esc(&links.url(&format!("/events/o/{key}")))
    );
    let nav = format!("<span class=\"crumb\">{}</span>", esc(&v.id));
    let main = format!("{}\n{}\n{}", parts.head, parts.grid(), parts.timeline);
    let title = v.title.clone().unwrap_or_else(|| v.id.clone());
    document(&title, links, &events, &nav, &main)
}

/// What the log page shows in place of a log it cannot show.
pub fn log_note(refusal: &super::logtail::Refusal) -> String {
    use super::logtail::Refusal;
    match refusal {
        Refusal::Missing => "No output yet; this page follows the log once it appears.".into(),
        Refusal::Outside(p) => format!(
            "The log {} lies outside the runtime root; po-serve shows only files under it.",
            p.display()
        ),
        Refusal::Unreadable(e) => format!("The log cannot be read: {e}"),
    }
}

/// The log view: the tail, followed as it grows.
pub fn log_page(
    v: &OrchestrationView,
    t: &TaskView,
    tail: Result<(String, u64), String>,
    links: &Links,
) -> String {
    let key = dir_key(v);
    let board = links.url(&format!("/o/{key}"));
    let nav = format!(
        "<a class=\"crumb\" href=\"{}\">{}</a><span class=\"crumb\">{} log</span>",
        esc(&board),
        esc(&v.id),
        esc(&t.label)
    );
    let (text, offset, note) = match tail {
        Ok((text, offset)) => (text, offset, String::new()),
        Err(note) => (
            String::new(),
            0,
            format!("<p class=\"note\">{}</p>", esc(&note)),
        ),
    };
    let events = links.url_with(
        &format!("/events/log/{key}/{}", t.status.agent_id),
        &format!("from={offset}"),
    );
    let path = t
        .status
        .log_file
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let main = format!(
        "<header class=\"head\"><h1>{} <span class=\"state\">{}</span></h1>\
         <p class=\"sub\"><code>{}</code></p>{note}</header>\n\
         <pre id=\"log\" class=\"log\" data-events=\"{}\">{}</pre>",
        esc(&t.label),
        state_word(t.state()),
        esc(&path),
        esc(&events),
        esc(&text).replace("&#10;", "\n").replace("&#9;", "\t")
    );
    document(&format!("{} log", t.label), links, "", &nav, &main)
}

/// A short page for an error status.
pub fn error_page(title: &str, message: &str, links: &Links) -> String {
    document(
        title,
        links,
        "",
        "",
        &format!(
            "<h1>{}</h1><p>{}</p><p><a href=\"{}\">All orchestrations</a></p>",
            esc(title),
            esc(message),
            esc(&links.url("/"))
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_token_query() {
        let plain = Links::default();
        assert_eq!(plain.url("/o/1"), "/o/1");
        assert_eq!(plain.url_with("/e", "from=3"), "/e?from=3");
        let t = Links {
            token_query: "token=abc".into(),
        };
        assert_eq!(t.url("/o/1"), "/o/1?token=abc");
        assert_eq!(t.url_with("/e", "from=3"), "/e?from=3&token=abc");
    }

    #[test]
    fn only_plain_names_are_path_segments() {
        for ok in ["1234", "issue", "TS-0042.v2", "agent-3", "a_b"] {
            assert!(segment_ok(ok), "{ok}");
        }
        for bad in ["", "..", ".hidden", "a/b", "a%2fb", "a b", "é", "a\\b"] {
            assert!(!segment_ok(bad), "{bad}");
        }
    }
}
