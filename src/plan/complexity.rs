//! A rough complexity estimate (low / medium / high) for each task.
//!
//! Points are added up:
//! * text length (title and body): under 300 characters 0, under 1,500
//!   characters 1, longer 2;
//! * files mentioned: up to 1 → 0, 2–4 → 1, 5 or more → 2;
//! * wording: +1 if the text names heavy work (implement, refactor, migrate,
//!   redesign, architecture, integration, authentication, security, database,
//!   schema, performance, concurrency, api), −1 if it names only light work
//!   (typo, docs, documentation, readme, rename, comment, bump, wording) and
//!   nothing heavy.
//!
//! 0 or less is low, 1–2 medium, 3 or more high. It is an estimate from the
//! text alone, meant for ordering and for the dry-run report; po measures real
//! durations when tasks run.
//!
//! Each level stands for a range of an agent's minutes ([`Complexity::minutes`]):
//! low 5–10, medium 10–15, high 15–20, the seed's own figures (a 5-task
//! orchestration of medium work takes 15–20 minutes in parallel).

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Complexity {
    Low,
    Medium,
    High,
}

impl Complexity {
    pub fn as_str(self) -> &'static str {
        match self {
            Complexity::Low => "low",
            Complexity::Medium => "medium",
            Complexity::High => "high",
        }
    }

    /// The range of minutes an agent is expected to take on such a task.
    pub fn minutes(self) -> (u32, u32) {
        match self {
            Complexity::Low => (5, 10),
            Complexity::Medium => (10, 15),
            Complexity::High => (15, 20),
        }
    }
}

const HEAVY: &[&str] = &[
    "implement",
    "refactor",
    "migrate",
    "migration",
    "redesign",
    "architecture",
    "integration",
    "authentication",
    "security",
    "database",
    "schema",
    "performance",
    "concurrency",
    "api",
];
const LIGHT: &[&str] = &[
    "typo",
    "docs",
    "documentation",
    "readme",
    "rename",
    "comment",
    "bump",
    "wording",
];

pub fn estimate(title: &str, body: &str, files: usize) -> Complexity {
    let len = title.chars().count() + body.chars().count();
    let mut score: i32 = match len {
        0..300 => 0,
        300..1500 => 1,
        _ => 2,
    };
    score += match files {
        0..=1 => 0,
        2..=4 => 1,
        _ => 2,
    };
    let text = format!("{title} {body}").to_lowercase();
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let heavy = words.iter().any(|w| HEAVY.contains(w));
    let light = words.iter().any(|w| LIGHT.contains(w));
    if heavy {
        score += 1;
    } else if light {
        score -= 1;
    }
    match score {
        ..=0 => Complexity::Low,
        1..=2 => Complexity::Medium,
        _ => Complexity::High,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_add_up() {
        assert_eq!(estimate("Fix typo in README", "", 0), Complexity::Low);
        assert_eq!(estimate("Add logout button", "", 1), Complexity::Low);
        assert_eq!(estimate("Implement JWT tokens", "", 0), Complexity::Medium);
        assert_eq!(
            estimate("Add user management API", &"x".repeat(400), 3),
            Complexity::High
        );
        assert_eq!(estimate("Docs", &"y".repeat(2000), 0), Complexity::Medium);
    }
}
