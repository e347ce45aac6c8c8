//! What a text holds, counted while it is read, for the message that says
//! why no task was found ("4 checklist items, all checked; 1 table").

use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Found {
    /// Checklist items in the part read, by what became of them.
    pub open: usize,
    pub checked: usize,
    pub struck: usize,
    pub placeholders: usize,
    pub deferred: usize,
    pub empty: usize,
    /// Plain bullets and numbered items in the part read (outside checklists).
    pub bullets: usize,
    pub numbered: usize,
    /// Plain items under headings that name the work, by heading: all of them
    /// template placeholders when `placeholder_bullets` says so.
    pub headed: Vec<(String, usize)>,
    pub placeholder_bullets: usize,
    pub tables: usize,
    pub code_blocks: usize,
    pub quotes: usize,
    pub paragraphs: usize,
    /// Headings the part read is limited to (a `## Tasks` section or
    /// `--section`), as `### Tasks`.
    pub region: Vec<String>,
    /// Open checklist items outside that part, by heading (`None`: before any).
    pub outside: Vec<(Option<String>, usize)>,
}

fn n(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

impl Found {
    pub fn count_outside(&mut self, heading: Option<&str>) {
        let h = heading.map(str::to_string);
        match self.outside.iter_mut().find(|(k, _)| *k == h) {
            Some((_, c)) => *c += 1,
            None => self.outside.push((h, 1)),
        }
    }

    pub fn count_headed(&mut self, heading: &str) {
        match self.headed.iter_mut().find(|(k, _)| k == heading) {
            Some((_, c)) => *c += 1,
            None => self.headed.push((heading.to_string(), 1)),
        }
    }

    /// "4 checklist items, all checked; 1 table; …", or what the text is
    /// when it holds none of these.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        parts.extend(self.checklist());
        if self.bullets > 0 {
            parts.push(self.bullet_part());
        }
        if self.numbered > 0 {
            parts.push(n(self.numbered, "numbered item", "numbered items"));
        }
        if self.tables > 0 {
            parts.push(n(self.tables, "table", "tables"));
        }
        if self.code_blocks > 0 {
            parts.push(format!(
                "{} (never read)",
                n(self.code_blocks, "fenced code block", "fenced code blocks")
            ));
        }
        if self.quotes > 0 {
            parts.push(format!(
                "{} (never read)",
                n(self.quotes, "quote", "quotes")
            ));
        }
        if parts.is_empty() {
            parts.push(if self.paragraphs > 0 {
                format!(
                    "only text ({})",
                    n(self.paragraphs, "paragraph", "paragraphs")
                )
            } else {
                "the text is empty".into()
            });
        }
        let mut s = parts.join("; ");
        if !self.region.is_empty() {
            s.push_str(&format!(
                " in {} (the only part read)",
                self.region
                    .iter()
                    .map(|h| format!("`{h}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !self.outside.is_empty() {
            s.push_str(&self.outside_part());
        }
        s
    }

    /// "4 checklist items, all checked", when there are any.
    fn checklist(&self) -> Option<String> {
        let items =
            self.open + self.checked + self.struck + self.placeholders + self.deferred + self.empty;
        if items == 0 {
            return None;
        }
        let mut why = Vec::new();
        for (count, what) in [
            (self.checked, "checked"),
            (self.struck, "struck through"),
            (self.placeholders, "template placeholders"),
            (self.deferred, "under a heading that defers them"),
            (self.empty, "empty"),
        ] {
            if count == items {
                why.push(format!("all {what}"));
            } else if count > 0 {
                why.push(format!("{count} {what}"));
            }
        }
        Some(format!(
            "{}{}",
            n(items, "checklist item", "checklist items"),
            if why.is_empty() {
                String::new()
            } else {
                format!(", {}", why.join(", "))
            }
        ))
    }

    /// "2 plain bullets (…)": where they are, and why none is a task.
    fn bullet_part(&self) -> String {
        let mut s = n(self.bullets, "plain bullet", "plain bullets");
        if !self.headed.is_empty() {
            let under: Vec<String> = self
                .headed
                .iter()
                .map(|(h, c)| format!("{c} under `{h}`"))
                .collect();
            s.push_str(&format!(" ({}", under.join(", ")));
            let headed: usize = self.headed.iter().map(|(_, c)| c).sum();
            if self.placeholder_bullets == headed {
                s.push_str(", all template placeholders such as `[Task 1]`");
            }
            s.push(')');
        } else {
            s.push_str(" (under no heading that names the work, such as `## Tasks`)");
        }
        s
    }

    /// "; outside it, 2 open checklist items (…)", and how to read them.
    fn outside_part(&self) -> String {
        let mut s = String::new();
        let list: Vec<String> = self
            .outside
            .iter()
            .map(|(h, c)| match h {
                Some(h) => format!("{c} under `{h}`"),
                None => format!("{c} before the first heading"),
            })
            .collect();
        let total: usize = self.outside.iter().map(|(_, c)| c).sum();
        s.push_str(&format!(
            "; outside it, {} ({})",
            n(total, "open checklist item", "open checklist items"),
            list.join(", ")
        ));
        if let Some((Some(h), _)) = self.outside.first() {
            let name = h.trim_start_matches('#').trim();
            s.push_str(&format!(
                ": `--section {}` reads those",
                crate::text::shell_quote(name)
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_counts_what_is_there() {
        let f = Found {
            checked: 3,
            tables: 1,
            ..Default::default()
        };
        assert_eq!(f.describe(), "3 checklist items, all checked; 1 table");
        let f = Found {
            bullets: 18,
            headed: vec![("### Tasks".into(), 3)],
            placeholder_bullets: 3,
            ..Default::default()
        };
        assert_eq!(
            f.describe(),
            "18 plain bullets (3 under `### Tasks`, all template placeholders such as `[Task 1]`)"
        );
        let mut f = Found {
            checked: 1,
            region: vec!["### Tasks".into()],
            ..Default::default()
        };
        f.count_outside(Some("### Dependencies"));
        assert_eq!(
            f.describe(),
            "1 checklist item, all checked in `### Tasks` (the only part read); outside it, \
             1 open checklist item (1 under `### Dependencies`): `--section Dependencies` reads those"
        );
        assert_eq!(Found::default().describe(), "the text is empty");
    }
}
