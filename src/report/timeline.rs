//! The run's timeline: one bar per agent from its start to its finish,
//! coloured by outcome, with the waves marked.
//!
//! Drawn two ways from the same [`Bar`]s: an SVG (po-serve's board and
//! `po-summarize --format html`) and a Mermaid `gantt` block (`summary.md` and
//! the master-issue comment, which GitHub renders). Task text is untrusted:
//! in the SVG it is escaped, in Mermaid it keeps only characters that cannot
//! be syntax.

use std::fmt::Write as _;

use super::summary::{AgentSummary, Summary};
use crate::protocol::State;
use crate::text::{ellipsize, one_line, xml_escape};
use crate::timefmt::{Timestamp, human_duration};

/// One agent on the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// What the row is called (`agent-3`, or a manifest task's id).
    pub label: String,
    pub title: String,
    pub wave: u32,
    pub state: State,
    pub start: Option<Timestamp>,
    /// When it finished; `None` while it runs (the bar reaches "now").
    pub end: Option<Timestamp>,
}

impl Bar {
    pub fn from_summary(a: &AgentSummary) -> Bar {
        let parse = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
        };
        Bar {
            label: a.agent_id.clone(),
            title: a.title.clone(),
            wave: a.wave,
            state: a.state,
            start: parse(&a.start_time),
            end: parse(&a.completion_time).filter(|_| a.state.is_terminal()),
        }
    }

    /// A summary's agents, and the moment it was made (where running bars end).
    pub fn of_summary(s: &Summary) -> (Vec<Bar>, Timestamp) {
        let now = chrono::DateTime::parse_from_rfc3339(&s.generated_at)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(|_| crate::timefmt::now());
        (s.agents.iter().map(Bar::from_summary).collect(), now)
    }

    /// Start and end on the drawing's clock: a running bar ends at `now`.
    fn span(&self, now: Timestamp) -> Option<(Timestamp, Timestamp)> {
        let start = self.start?;
        let end = match (self.end, self.state) {
            (Some(e), _) => e,
            (None, State::InProgress) => now,
            (None, _) => return None,
        };
        Some((start, end.max(start)))
    }
}

/// The colour of each state, shared by the SVG, the dashboard and the report.
pub fn colour(state: State) -> &'static str {
    match state {
        State::Pending => "#8c959f",
        State::InProgress => "#0969da",
        State::Completed => "#1a7f37",
        State::Failed => "#cf222e",
        State::TimedOut => "#bc4c00",
        State::Cancelled => "#6e7781",
    }
}

/// The inferred states' colours (`stalled`, `orphaned`, `queued`).
pub const STALLED: &str = "#9a6700";
pub const ORPHANED: &str = "#8250df";
pub const QUEUED: &str = "#57606a";

/// CSS custom properties of the palette: `--pending`, `--in_progress`, …
pub fn palette_css() -> String {
    let mut css = String::from(":root {");
    for s in State::ALL {
        let _ = write!(css, " --{}: {};", s.as_str(), colour(s));
    }
    let _ = writeln!(
        css,
        " --stalled: {STALLED}; --orphaned: {ORPHANED}; --queued: {QUEUED}; }}"
    );
    css
}

const WIDTH: f64 = 960.0;
const LABEL_W: f64 = 230.0;
const RIGHT: f64 = 70.0;
const ROW: f64 = 22.0;
const BAR: f64 = 14.0;
const AXIS: f64 = 26.0;

/// Bars by wave, then by start, then by label.
fn ordered(bars: &[Bar]) -> Vec<&Bar> {
    let mut v: Vec<&Bar> = bars.iter().collect();
    v.sort_by(|a, b| {
        (
            a.wave,
            a.start.is_none(),
            a.start,
            crate::protocol::schema::agent_number(&a.label),
        )
            .cmp(&(
                b.wave,
                b.start.is_none(),
                b.start,
                crate::protocol::schema::agent_number(&b.label),
            ))
            .then_with(|| a.label.cmp(&b.label))
    });
    v
}

/// A step between axis ticks that gives at most eight ticks.
fn tick_step(span_secs: f64) -> f64 {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        14400.0, 43200.0,
    ];
    STEPS
        .into_iter()
        .find(|s| span_secs / s <= 8.0)
        .unwrap_or(86400.0 * (span_secs / 86400.0 / 8.0).ceil().max(1.0))
}

/// `0`, `30s`, `2m`, `1m30s`, `1h`, `1h30m`.
fn tick_label(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0 => "0".into(),
        s if s < 60 => format!("{s}s"),
        s if s < 3600 && s % 60 == 0 => format!("{}m", s / 60),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
    }
}

/// The timeline as one SVG element (no script, no style sheet: presentation
/// attributes only, so it is the same inline, standalone and under a strict
/// content security policy). `now` ends the bars of running agents.
pub fn svg(bars: &[Bar], now: Timestamp) -> String {
    let rows = ordered(bars);
    let spans: Vec<(Timestamp, Timestamp)> = rows.iter().filter_map(|b| b.span(now)).collect();
    let waves: Vec<u32> = {
        let mut w: Vec<u32> = rows.iter().map(|b| b.wave).collect();
        w.dedup();
        w
    };
    let marked = waves.len() > 1;
    let extra_rows = if marked { waves.len() } else { 0 };
    let height = AXIS + ROW * (rows.len() + extra_rows).max(1) as f64 + 8.0;
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" viewBox=\"0 0 {WIDTH} \
         {height}\" width=\"100%\" role=\"img\" aria-label=\"Timeline: one bar per agent from \
         start to finish\" font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\" \
         font-size=\"12\">"
    );
    let Some(t0) = spans.iter().map(|s| s.0).min() else {
        let _ = write!(
            o,
            "<text x=\"8\" y=\"{}\" fill=\"#57606a\">No agent has started yet.</text></svg>",
            AXIS
        );
        return o;
    };
    let t1 = spans.iter().map(|s| s.1).max().unwrap_or(t0);
    let span = ((t1 - t0).num_milliseconds() as f64 / 1000.0).max(1.0);
    let plot = WIDTH - LABEL_W - RIGHT;
    let x_of = |t: Timestamp| LABEL_W + plot * ((t - t0).num_milliseconds() as f64 / 1000.0) / span;

    // Axis: ticks and light grid lines.
    let step = tick_step(span);
    let mut tick = 0.0;
    while tick <= span + 1e-9 {
        let x = LABEL_W + plot * tick / span;
        let _ = write!(
            o,
            "<line x1=\"{x:.1}\" y1=\"{a}\" x2=\"{x:.1}\" y2=\"{height}\" stroke=\"#d0d7de\" \
             stroke-width=\"1\"/><text x=\"{x:.1}\" y=\"{t}\" text-anchor=\"middle\" \
             fill=\"#57606a\">{}</text>",
            tick_label(tick),
            a = AXIS - 6.0,
            t = AXIS - 10.0,
        );
        tick += step;
    }
    let _ = write!(
        o,
        "<text x=\"4\" y=\"{}\" fill=\"#57606a\">{} UTC</text>",
        AXIS - 10.0,
        t0.format("%Y-%m-%d %H:%M:%S")
    );

    let mut y = AXIS;
    let mut current_wave = None;
    for bar in rows {
        if marked && current_wave != Some(bar.wave) {
            current_wave = Some(bar.wave);
            wave_marker(&mut o, bar.wave, y, bars, now, &x_of, height);
            y += ROW;
        }
        row(&mut o, bar, y, now, &x_of);
        y += ROW;
    }
    o.push_str("</svg>");
    o
}

/// A wave's header row and a dashed line where its first agent started.
fn wave_marker(
    o: &mut String,
    wave: u32,
    y: f64,
    bars: &[Bar],
    now: Timestamp,
    x_of: &dyn Fn(Timestamp) -> f64,
    height: f64,
) {
    let _ = write!(
        o,
        "<text x=\"4\" y=\"{:.1}\" font-weight=\"600\" fill=\"#24292f\">Wave {wave}</text>",
        y + ROW / 2.0 + 4.0
    );
    let first = bars
        .iter()
        .filter(|b| b.wave == wave)
        .filter_map(|b| b.span(now))
        .map(|s| s.0)
        .min();
    if let Some(t) = first {
        let x = x_of(t);
        let _ = write!(
            o,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{height}\" stroke=\"#24292f\" \
             stroke-width=\"1\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{:.1}\" \
             fill=\"#24292f\">wave {wave}</text>",
            y + 2.0,
            x + 3.0,
            y + ROW / 2.0 + 4.0
        );
    }
}

fn row(o: &mut String, bar: &Bar, y: f64, now: Timestamp, x_of: &dyn Fn(Timestamp) -> f64) {
    let name = ellipsize(&one_line(&format!("{} {}", bar.label, bar.title)), 30);
    let _ = write!(
        o,
        "<text x=\"14\" y=\"{:.1}\" fill=\"#24292f\">{}</text>",
        y + ROW / 2.0 + 4.0,
        xml_escape(&name)
    );
    let Some((start, end)) = bar.span(now) else {
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#8c959f\">{}</text>",
            LABEL_W + 6.0,
            y + ROW / 2.0 + 4.0,
            bar.state
        );
        return;
    };
    let (x0, x1) = (x_of(start), x_of(end));
    let w = (x1 - x0).max(2.0);
    let secs = (end - start).num_milliseconds() as f64 / 1000.0;
    let tip = format!(
        "{} · {} · {} · {}",
        bar.label,
        one_line(&bar.title),
        bar.state,
        human_duration(secs)
    );
    let _ = write!(
        o,
        "<g><title>{}</title><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{BAR}\" \
         rx=\"3\" fill=\"{}\"{}/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#57606a\">{}</text></g>",
        xml_escape(&tip),
        y + (ROW - BAR) / 2.0,
        colour(bar.state),
        if bar.state == State::InProgress {
            " fill-opacity=\"0.75\""
        } else {
            ""
        },
        x0 + w + 4.0,
        y + ROW / 2.0 + 4.0,
        human_duration(secs)
    );
}

/// Task text fit for a Mermaid task name: letters, digits and a few marks
/// that are not Mermaid syntax (`:`, `;`, `#` and markup are).
fn mermaid_text(s: &str, max: usize) -> String {
    let kept: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || " -_.,()/'".contains(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    ellipsize(&one_line(&kept), max)
}

/// The timeline as a fenced Mermaid `gantt` block, or `None` when no agent
/// has started. Times are UTC.
pub fn mermaid(bars: &[Bar], now: Timestamp) -> Option<String> {
    let rows: Vec<(&Bar, (Timestamp, Timestamp))> = ordered(bars)
        .into_iter()
        .filter_map(|b| b.span(now).map(|s| (b, s)))
        .collect();
    let t0 = rows.iter().map(|r| r.1.0).min()?;
    let t1 = rows.iter().map(|r| r.1.1).max().unwrap_or(t0);
    let axis = if (t1 - t0).num_minutes() >= 10 {
        "%H:%M"
    } else {
        "%H:%M:%S"
    };
    let fmt = |t: Timestamp| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let mut o = String::new();
    let _ = writeln!(o, "```mermaid\ngantt");
    let _ = writeln!(o, "    title Timeline (UTC)");
    let _ = writeln!(o, "    dateFormat YYYY-MM-DD HH:mm:ss");
    let _ = writeln!(o, "    axisFormat {axis}");
    let mut wave = None;
    for (i, (bar, (start, end))) in rows.iter().enumerate() {
        if wave != Some(bar.wave) {
            wave = Some(bar.wave);
            let _ = writeln!(o, "    section Wave {}", bar.wave);
        }
        let tag = match bar.state {
            State::Completed => "done, ",
            State::Failed | State::TimedOut => "crit, ",
            State::InProgress => "active, ",
            State::Pending | State::Cancelled => "",
        };
        // Whole seconds; a bar is at least one second long.
        let end = (*end).max(*start + chrono::Duration::seconds(1));
        let name = mermaid_text(&format!("{} {}", bar.label, bar.title), 60);
        let _ = writeln!(
            o,
            "    {name} :{tag}a{}, {}, {}",
            i + 1,
            fmt(*start),
            fmt(end)
        );
    }
    o.push_str("```\n");
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(sec: i64) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() + chrono::Duration::seconds(sec)
    }

    fn bar(label: &str, wave: u32, state: State, start: Option<i64>, end: Option<i64>) -> Bar {
        Bar {
            label: label.into(),
            title: format!("Task {label}"),
            wave,
            state,
            start: start.map(t),
            end: end.map(t),
        }
    }

    #[test]
    fn one_bar_per_started_agent_coloured_by_outcome_with_waves_marked() {
        let bars = [
            bar("agent-1", 1, State::Completed, Some(0), Some(60)),
            bar("agent-2", 1, State::Failed, Some(10), Some(30)),
            bar("agent-3", 2, State::InProgress, Some(70), None),
            bar("agent-4", 2, State::Pending, None, None),
        ];
        let svg = svg(&bars, t(120));
        assert_eq!(svg.matches("<rect ").count(), 3, "{svg}");
        assert!(svg.contains(&format!("fill=\"{}\"", colour(State::Completed))));
        assert!(svg.contains(&format!("fill=\"{}\"", colour(State::Failed))));
        assert!(svg.contains(&format!("fill=\"{}\"", colour(State::InProgress))));
        assert!(svg.contains(">Wave 1<") && svg.contains(">Wave 2<"));
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
        // agent-1 starts at the left edge; the running agent-3 reaches "now",
        // the right edge of the plot.
        assert!(svg.contains(&format!("<rect x=\"{LABEL_W:.1}\"")), "{svg}");
        let right = WIDTH - RIGHT;
        let x3 = LABEL_W + (WIDTH - LABEL_W - RIGHT) * 70.0 / 120.0;
        assert!(
            svg.contains(&format!(
                "x=\"{x3:.1}\" y=\"{:.1}\" width=\"{:.1}\"",
                AXIS + ROW * 4.0 + 4.0,
                right - x3
            )),
            "{svg}"
        );
        assert!(
            svg.contains(">pending<"),
            "a pending agent has a row but no bar"
        );
    }

    #[test]
    fn task_text_is_escaped_in_the_svg() {
        let mut b = bar("agent-1", 1, State::Completed, Some(0), Some(5));
        b.title = "<script>alert(1)</script> & \"q\"".into();
        let svg = svg(&[b], t(5));
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;"));
    }

    #[test]
    fn no_started_agent_draws_a_note_and_no_gantt() {
        let bars = [bar("agent-1", 1, State::Pending, None, None)];
        assert!(svg(&bars, t(0)).contains("No agent has started yet."));
        assert_eq!(mermaid(&bars, t(0)), None);
    }

    #[test]
    fn gantt_has_a_section_per_wave_and_a_task_per_started_agent() {
        let mut evil = bar("agent-2", 1, State::TimedOut, Some(5), Some(5));
        evil.title = "x: y; #z <b>\nnext".into();
        let bars = [
            bar("agent-1", 1, State::Completed, Some(0), Some(75)),
            evil,
            bar("agent-3", 2, State::InProgress, Some(80), None),
            bar("agent-4", 2, State::Pending, None, None),
        ];
        let g = mermaid(&bars, t(100)).unwrap();
        assert_eq!(
            g,
            "```mermaid\ngantt\n    title Timeline (UTC)\n    dateFormat YYYY-MM-DD HH:mm:ss\n    \
             axisFormat %H:%M:%S\n    section Wave 1\n    \
             agent-1 Task agent-1 :done, a1, 2026-01-01 12:00:00, 2026-01-01 12:01:15\n    \
             agent-2 x y z b next :crit, a2, 2026-01-01 12:00:05, 2026-01-01 12:00:06\n    \
             section Wave 2\n    \
             agent-3 Task agent-3 :active, a3, 2026-01-01 12:01:20, 2026-01-01 12:01:40\n```\n"
        );
    }

    #[test]
    fn ticks_are_round_and_few() {
        assert_eq!(tick_step(45.0), 10.0);
        assert_eq!(tick_step(600.0), 120.0);
        assert_eq!(tick_label(90.0), "1m30s");
        assert_eq!(tick_label(5400.0), "1h30m");
        assert!(tick_step(86400.0 * 30.0) >= 86400.0 * 30.0 / 8.0);
    }
}
