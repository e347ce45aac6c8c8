//! `po-summarize --format html`: one self-contained HTML file (inline style
//! sheet and timeline SVG, no script, nothing fetched) for CI artifacts and
//! sharing.
//!
//! Every piece of task text is escaped; a link is made only of an `http(s)`
//! URL.

use std::fmt::Write as _;

use super::markdown::{Paths, next_steps, thousands};
use super::summary::{AgentSummary, Summary};
use super::timeline::{self, Bar};
use crate::protocol::State;
use crate::protocol::view::error_gist;
use crate::text::{ellipsize, one_line, xml_escape as esc};
use crate::timefmt::human_duration;

const CSS: &str = include_str!("report.css");

/// An `http(s)` URL as a link, anything else as text.
pub fn link(url: &str, text: &str) -> String {
    let u = url.trim();
    let lower = u.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        format!(
            "<a href=\"{}\" rel=\"noreferrer noopener\" target=\"_blank\">{}</a>",
            esc(u),
            esc(text)
        )
    } else {
        esc(text)
    }
}

/// Escaped text in which `` `code` `` spans become `<code>`.
pub fn with_code(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(part));
        } else {
            out.push_str(&esc(part));
        }
    }
    out
}

fn pr(a: &AgentSummary) -> String {
    match (a.pr_number, a.pr_url.as_deref()) {
        (Some(n), Some(url)) => link(url, &format!("#{n}")),
        (Some(n), None) => format!("#{n}"),
        (None, _) => "—".into(),
    }
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "—".into(), f)
}

/// The whole report.
pub fn render(s: &Summary, paths: &Paths) -> String {
    let mut o = String::new();
    let heading = match (&s.title, s.master_issue) {
        (Some(t), _) => one_line(t),
        (None, Some(n)) => format!("Master issue #{n}"),
        (None, None) => format!("Orchestration {}", s.orchestration_id),
    };
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · po</title><style>{}{CSS}</style></head><body>\n",
        esc(&ellipsize(&heading, 80)),
        timeline::palette_css()
    );
    let _ = write!(o, "<header><h1>{}</h1><p class=\"sub\">", esc(&heading));
    let _ = write!(o, "Orchestration <code>{}</code>", esc(&s.orchestration_id));
    if let Some(n) = s.master_issue {
        let _ = write!(o, " · master issue #{n}");
    }
    if let Some(src) = &s.source {
        let _ = write!(o, " · {} <code>{}</code>", esc(&src.kind), esc(&src.value));
    }
    let _ = writeln!(o, "</p></header>");

    stats(&mut o, s);

    let (bars, now) = Bar::of_summary(s);
    let _ = writeln!(
        o,
        "<section><h2>Timeline</h2>{}</section>",
        timeline::svg(&bars, now)
    );

    agents(&mut o, s, paths);

    let _ = writeln!(o, "<section><h2>Next steps</h2><ol>");
    for step in next_steps(s, paths) {
        let _ = writeln!(o, "<li>{}</li>", with_code(&step));
    }
    let _ = writeln!(o, "</ol></section>");
    let _ = writeln!(
        o,
        "<footer>Generated {} by po-summarize · status files <code>{}</code></footer>\n\
         </body></html>",
        esc(&s.generated_at),
        esc(&paths.show_dir(&s.orchestration_dir))
    );
    o
}

fn stats(o: &mut String, s: &Summary) {
    let mut cards: Vec<(String, String)> = vec![
        (
            "Success".into(),
            format!(
                "{}/{} ({:.0}%)",
                s.successful, s.total_sub_tasks, s.success_rate
            ),
        ),
        ("Duration".into(), human_duration(s.duration_seconds as f64)),
        ("Peak concurrency".into(), s.peak_concurrency.to_string()),
    ];
    if let Some(x) = s.speedup {
        cards.push(("Speedup".into(), format!("{x:.1}×")));
    }
    if let Some(c) = s.total_cost_usd {
        cards.push(("Cost".into(), crate::cost::usd(c)));
    }
    if let Some(b) = s.budget_usd {
        cards.push((
            "Budget".into(),
            format!(
                "{} / {}",
                crate::cost::usd(s.spent_usd + s.committed_usd),
                crate::cost::usd(b)
            ),
        ));
    }
    if let Some(c) = s.cost_per_completed_task {
        cards.push(("Per completed task".into(), crate::cost::usd(c)));
    }
    if s.total_tokens > 0 {
        cards.push(("Tokens".into(), thousands(s.total_tokens)));
    }
    if s.total_turns > 0 {
        cards.push(("Turns".into(), thousands(s.total_turns)));
    }
    if s.lines_added + s.lines_removed > 0 {
        cards.push((
            "Lines".into(),
            format!(
                "+{} −{}",
                thousands(s.lines_added),
                thousands(s.lines_removed)
            ),
        ));
    }
    let _ = write!(o, "<section class=\"stats\">");
    for (k, v) in cards {
        let _ = write!(
            o,
            "<div class=\"stat\"><span>{k}</span><b>{}</b></div>",
            esc(&v)
        );
    }
    let _ = writeln!(o, "</section>");
    let _ = write!(o, "<p class=\"chips\">");
    for st in State::ALL {
        let n = s.agents.iter().filter(|a| a.state == st).count();
        if n > 0 {
            let _ = write!(
                o,
                "<span class=\"chip {st}\">{n} {}</span>",
                st.as_str().replace('_', " ")
            );
        }
    }
    if s.unreadable > 0 {
        let _ = write!(
            o,
            "<span class=\"chip failed\">{} unreadable</span>",
            s.unreadable
        );
    }
    let _ = writeln!(o, "</p>");
}

fn agents(o: &mut String, s: &Summary, paths: &Paths) {
    let _ = writeln!(
        o,
        "<section><h2>Agents</h2><table><thead><tr><th>Agent</th><th>Task</th><th>State</th>\
         <th>Wave</th><th>Duration</th><th>Cost</th><th>Turns</th><th>Tokens</th><th>Branch</th>\
         <th>PR</th><th>Error</th></tr></thead><tbody>"
    );
    for a in &s.agents {
        let error = if a.is_failure() || a.state == State::Cancelled {
            esc(&error_gist(&a.error_text()))
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code></td><td>{}</td><td><span class=\"chip {}\">{}</span></td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"err\">{error}</td></tr>",
            esc(&a.agent_id),
            esc(&ellipsize(&one_line(&a.title), 90)),
            a.state,
            a.state.as_str().replace('_', " "),
            a.wave,
            opt(a.duration_seconds, human_duration),
            opt(a.total_cost_usd, crate::cost::usd),
            opt(a.turns, thousands),
            opt(a.tokens, thousands),
            opt(a.branch.as_deref(), |b| format!("<code>{}</code>", esc(b))),
            pr(a),
        );
    }
    for u in &s.unreadable_files {
        let _ = writeln!(
            o,
            "<tr><td colspan=\"2\"><code>{}</code></td><td><span class=\"chip failed\">\
             unreadable</span></td><td colspan=\"8\" class=\"err\">{}</td></tr>",
            esc(&paths.show(&u.path)),
            esc(&u.error)
        );
    }
    let _ = writeln!(o, "</tbody></table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_become_links() {
        assert_eq!(
            link("https://github.com/o/r/pull/1", "#1"),
            "<a href=\"https://github.com/o/r/pull/1\" rel=\"noreferrer noopener\" \
             target=\"_blank\">#1</a>"
        );
        assert_eq!(link("javascript:alert(1)", "#1"), "#1");
        assert_eq!(link("\" onmouseover=\"x", "<b>"), "&lt;b&gt;");
    }

    #[test]
    fn code_spans_are_escaped_too() {
        assert_eq!(
            with_code("run `a <b>` now <i>"),
            "run <code>a &lt;b&gt;</code> now &lt;i&gt;"
        );
    }
}
