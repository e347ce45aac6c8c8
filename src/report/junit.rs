//! JUnit XML: an orchestration as a test run, one testcase per agent, so CI
//! dashboards show which tasks passed.
//!
//! `failed` and `timed_out` are `<failure>`s, `cancelled`, `pending` and
//! `in_progress` are `<skipped>`, unreadable status files are `<error>`s.
//! Text is escaped for XML 1.0, and characters XML cannot carry at all (most
//! control characters) are dropped.

use std::fmt::Write as _;

use super::summary::{AgentSummary, Summary};
use crate::protocol::State;
use crate::text::{xml_escape as escape, xml_text as escape_text};

fn secs(x: Option<f64>) -> String {
    format!("{:.3}", x.unwrap_or(0.0))
}

fn testcase(o: &mut String, s: &Summary, a: &AgentSummary) {
    let name = if a.title.is_empty() {
        a.agent_id.clone()
    } else {
        format!("{}: {}", a.agent_id, a.title)
    };
    let _ = write!(
        o,
        "    <testcase name=\"{}\" classname=\"po.{}\" time=\"{}\"",
        escape(&name),
        escape(&s.orchestration_id),
        secs(a.duration_seconds)
    );
    let mut details = Vec::new();
    details.push(format!("state: {} (attempt {})", a.state, a.attempt));
    if let Some(p) = &a.phase {
        details.push(format!("phase: {p}"));
    }
    if let Some(b) = &a.branch {
        details.push(format!("branch: {b}"));
    }
    if let (Some(n), url) = (a.pr_number, a.pr_url.as_deref()) {
        details.push(
            format!("pr: #{n} {}", url.unwrap_or(""))
                .trim_end()
                .to_string(),
        );
    }
    if let Some(l) = &a.log_file {
        details.push(format!("log: {}", l.display()));
    }
    let body = details.join("\n");
    let _ = writeln!(o, ">");
    match a.state {
        State::Failed | State::TimedOut => {
            let _ = writeln!(
                o,
                "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                escape(&a.error_text()),
                a.state,
                escape_text(&body)
            );
        }
        State::Cancelled | State::Pending | State::InProgress => {
            let _ = writeln!(
                o,
                "      <skipped message=\"{}\"/>",
                escape(&format!("{}: {}", a.state, a.error_text()))
            );
        }
        State::Completed => {}
    }
    let _ = writeln!(
        o,
        "      <system-out>{}</system-out>\n    </testcase>",
        escape_text(&body)
    );
}

/// The whole report: `<testsuites>` holding one `<testsuite>`.
pub fn render(s: &Summary) -> String {
    let failures = s.failed;
    let skipped = s.cancelled + s.pending + s.in_progress;
    let errors = s.unreadable;
    let mut o = String::new();
    let _ = writeln!(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        o,
        "<testsuites name=\"po\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" \
         skipped=\"{skipped}\" time=\"{:.3}\">",
        s.total_sub_tasks, s.duration_seconds as f64
    );
    let _ = write!(
        o,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" \
         skipped=\"{skipped}\" time=\"{:.3}\"",
        escape(&format!("orchestration {}", s.orchestration_id)),
        s.total_sub_tasks,
        s.duration_seconds as f64
    );
    if let Some(t) = &s.started_at {
        let _ = write!(o, " timestamp=\"{}\"", escape(t));
    }
    let _ = writeln!(o, ">");
    for a in &s.agents {
        testcase(&mut o, s, a);
    }
    for u in &s.unreadable_files {
        let _ = writeln!(
            o,
            "    <testcase name=\"{}\" classname=\"po.{}\" time=\"0.000\">\n      \
             <error message=\"{}\" type=\"unreadable\"/>\n    </testcase>",
            escape(&u.path.display().to_string()),
            escape(&s.orchestration_id),
            escape(&u.error)
        );
    }
    let _ = writeln!(o, "  </testsuite>\n</testsuites>");
    o
}
