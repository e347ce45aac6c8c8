//! Model prices: Claude's (to estimate a run's cost before Claude Code
//! reports its own), those of the agents that report tokens but no cost
//! (Codex, Gemini CLI), and a file that overrides or adds to them.
//!
//! A price is found by the model's name: the longest entry the name starts
//! with (`gpt-5.1-codex-mini` before `gpt-5.1-codex` before `gpt-5`), first
//! in the override file, then in the built-in table, then in Claude's
//! ([`Price::of`]). A model found nowhere has no price: its
//! tokens are shown with `—` for the cost, and the run says so once.
//!
//! The override file is JSON, USD per million tokens, named by
//! `po-spawn --prices FILE` or `PO_PRICES`:
//!
//! ```json
//! {"gpt-5.1-codex": {"input": 1.25, "cache_read": 0.125, "output": 10},
//!  "my-local-model": {"input": 0, "output": 0}}
//! ```
//!
//! `cache_read` (cached input) defaults to `input`; `cache_write` (input
//! written to a cache, where a provider charges it apart) defaults to
//! `input` too.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::protocol::Metrics;

/// List prices in USD per million tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    pub input: f64,
    /// Writing the prompt cache (5-minute entries).
    pub cache_write: f64,
    pub cache_read: f64,
    pub output: f64,
}

const fn price(input: f64, cache_write: f64, cache_read: f64, output: f64) -> Price {
    Price {
        input,
        cache_write,
        cache_read,
        output,
    }
}

/// Model name fragments and their prices, most specific first. The
/// generation-5 prices are the ones Claude Code 2.1.330 charges itself (its
/// `total_cost_usd` for known token counts); the others are Anthropic's list
/// prices.
const CLAUDE: &[(&str, Price)] = &[
    ("opus-5", price(4.0, 5.0, 0.2, 20.0)),
    ("sonnet-5", price(2.0, 2.5, 0.1, 10.0)),
    ("haiku-5", price(0.1, 0.125, 0.01, 0.5)),
    ("opus-4-6", price(5.0, 6.25, 0.5, 25.0)),
    ("opus-4-5", price(5.0, 6.25, 0.5, 25.0)),
    ("opus-4", price(15.0, 18.75, 1.5, 75.0)),
    ("sonnet-4", price(3.0, 3.75, 0.3, 15.0)),
    ("haiku-4", price(1.0, 1.25, 0.1, 5.0)),
    ("3-7-sonnet", price(3.0, 3.75, 0.3, 15.0)),
    ("3-5-sonnet", price(3.0, 3.75, 0.3, 15.0)),
    ("3-5-haiku", price(0.8, 1.0, 0.08, 4.0)),
    ("3-opus", price(15.0, 18.75, 1.5, 75.0)),
    ("3-haiku", price(0.25, 0.3, 0.03, 1.25)),
    // A name of a family only (an alias, a newer version): its latest price.
    ("opus", price(4.0, 5.0, 0.2, 20.0)),
    ("sonnet", price(2.0, 2.5, 0.1, 10.0)),
    ("haiku", price(0.1, 0.125, 0.01, 0.5)),
];

impl Price {
    /// The price of `model` (`claude-sonnet-4-5-20250929`, a provider's
    /// `us.anthropic.claude-…`, an alias such as `opus`); `None` when po does
    /// not know it.
    pub fn of(model: &str) -> Option<Price> {
        let m = model.to_ascii_lowercase();
        CLAUDE
            .iter()
            .find(|(fragment, _)| m.contains(fragment))
            .map(|(_, p)| *p)
    }

    /// The cost of `tokens` at this price.
    pub fn cost(&self, t: &Tokens) -> f64 {
        let uncached = t.input.saturating_sub(t.cache_write + t.cache_read);
        (uncached as f64 * self.input
            + t.cache_write as f64 * self.cache_write
            + t.cache_read as f64 * self.cache_read
            + t.output as f64 * self.output)
            / 1e6
    }
}

/// Token counts as a status file holds them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tokens {
    /// Every input token, cache writes and reads included.
    pub input: u64,
    pub cache_write: u64,
    pub cache_read: u64,
    pub output: u64,
}

impl Tokens {
    /// The attempt's tokens, if it reported any.
    pub fn of(m: &Metrics) -> Option<Tokens> {
        if m.input_tokens.is_none() && m.output_tokens.is_none() {
            return None;
        }
        Some(Tokens {
            input: m.input_tokens.unwrap_or(0),
            cache_write: m.cache_creation_input_tokens.unwrap_or(0),
            cache_read: m.cache_read_input_tokens.unwrap_or(0),
            output: m.output_tokens.unwrap_or(0),
        })
    }

    pub fn total(&self) -> u64 {
        self.input + self.output
    }
}

/// The variable that names an override file.
pub const PRICES_ENV: &str = "PO_PRICES";

const fn p(input: f64, cache_read: f64, output: f64) -> Price {
    Price {
        input,
        cache_write: input,
        cache_read,
        output,
    }
}

/// List prices (USD per million tokens: input, cached input, output) of the
/// models Codex and Gemini CLI run, by name prefix. Gemini's are the prices
/// of prompts up to 200k tokens.
const BUILT_IN: &[(&str, Price)] = &[
    // OpenAI.
    ("gpt-5.2", p(1.75, 0.175, 14.0)),
    ("gpt-5.1-codex-max", p(1.25, 0.125, 10.0)),
    ("gpt-5.1-codex-mini", p(0.25, 0.025, 2.0)),
    ("gpt-5.1", p(1.25, 0.125, 10.0)),
    ("gpt-5-codex-mini", p(0.25, 0.025, 2.0)),
    ("gpt-5-mini", p(0.25, 0.025, 2.0)),
    ("gpt-5-nano", p(0.05, 0.005, 0.4)),
    ("gpt-5", p(1.25, 0.125, 10.0)),
    ("gpt-4.1-mini", p(0.4, 0.1, 1.6)),
    ("gpt-4.1-nano", p(0.1, 0.025, 0.4)),
    ("gpt-4.1", p(2.0, 0.5, 8.0)),
    ("gpt-4o-mini", p(0.15, 0.075, 0.6)),
    ("gpt-4o", p(2.5, 1.25, 10.0)),
    ("o4-mini", p(1.1, 0.275, 4.4)),
    ("o3-mini", p(1.1, 0.55, 4.4)),
    ("o3", p(2.0, 0.5, 8.0)),
    ("codex-mini", p(1.5, 0.375, 6.0)),
    // Google.
    ("gemini-3.1-pro", p(2.0, 0.2, 12.0)),
    ("gemini-3-pro", p(2.0, 0.2, 12.0)),
    ("gemini-3-flash", p(0.5, 0.05, 3.0)),
    ("gemini-2.5-pro", p(1.25, 0.125, 10.0)),
    ("gemini-2.5-flash-lite", p(0.1, 0.01, 0.4)),
    ("gemini-2.5-flash", p(0.3, 0.03, 2.5)),
    ("gemini-2.0-flash-lite", p(0.075, 0.075, 0.3)),
    ("gemini-2.0-flash", p(0.1, 0.025, 0.4)),
];

/// A price table: the override file's entries before the built-in ones.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prices {
    overrides: Vec<(String, Price)>,
}

impl Prices {
    /// The built-in table alone.
    pub fn built_in() -> Prices {
        Prices::default()
    }

    /// The built-in table with the entries of `path` before it.
    pub fn load(path: &Path) -> Result<Prices> {
        let text = crate::fsx::read_to_string(path, crate::fsx::SMALL_MAX)
            .map_err(Error::io("read", path))?;
        Prices::parse(&text).map_err(|detail| {
            Error::usage(format!(
                "read prices {}: {detail}; write {{\"MODEL\": {{\"input\": USD, \"output\": \
                 USD}}}} per million tokens",
                path.display()
            ))
        })
    }

    /// The table of `PO_PRICES` when it names a file (`Err` when that file
    /// is unreadable or wrong), else the built-in one.
    pub fn from_env() -> Result<Prices> {
        match std::env::var_os(PRICES_ENV).filter(|v| !v.is_empty()) {
            Some(path) => Prices::load(Path::new(&path)),
            None => Ok(Prices::built_in()),
        }
    }

    /// `named` (`--prices`) when given, else `PO_PRICES`, else built in.
    pub fn from_file_or_env(named: Option<&Path>) -> Result<Prices> {
        match named {
            Some(path) => Prices::load(path),
            None => Prices::from_env(),
        }
    }

    fn parse(text: &str) -> std::result::Result<Prices, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(models) = v else {
            return Err("the file must be a JSON object of models".into());
        };
        let mut overrides = Vec::new();
        for (model, entry) in models {
            if model.trim().is_empty() {
                return Err("a model name is empty".into());
            }
            let Value::Object(fields) = entry else {
                return Err(format!("model {model:?}: not an object of prices"));
            };
            let get = |k: &str| -> std::result::Result<Option<f64>, String> {
                match fields.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(x) => x
                        .as_f64()
                        .filter(|f| f.is_finite() && *f >= 0.0)
                        .map(Some)
                        .ok_or_else(|| {
                            format!("model {model:?}, field {k:?}: not a number of USD >= 0")
                        }),
                }
            };
            let input = get("input")?.ok_or_else(|| format!("model {model:?}: no \"input\""))?;
            let output = get("output")?.ok_or_else(|| format!("model {model:?}: no \"output\""))?;
            let cache_read = get("cache_read")?.unwrap_or(input);
            let cache_write = get("cache_write")?.unwrap_or(input);
            if let Some(k) = fields
                .keys()
                .find(|k| !["input", "output", "cache_read", "cache_write"].contains(&k.as_str()))
            {
                return Err(format!(
                    "model {model:?}, field {k:?}: unknown (input, output, cache_read, cache_write)"
                ));
            }
            overrides.push((
                model.to_ascii_lowercase(),
                Price {
                    input,
                    cache_write,
                    cache_read,
                    output,
                },
            ));
        }
        Ok(Prices { overrides })
    }

    /// The price of `model`, if any table has it.
    pub fn of(&self, model: &str) -> Option<Price> {
        let m = model.to_ascii_lowercase();
        let m = m.rsplit('/').next().unwrap_or(&m); // `models/gemini-2.5-pro`, `openai/gpt-5`
        longest(self.overrides.iter().map(|(k, p)| (k.as_str(), *p)), m)
            .or_else(|| longest(BUILT_IN.iter().copied(), m))
            .or_else(|| Price::of(m))
    }
}

fn longest<'a>(table: impl Iterator<Item = (&'a str, Price)>, model: &str) -> Option<Price> {
    table
        .filter(|(prefix, _)| model.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, p)| p)
}

/// The price of `model` in this process's table (`PO_PRICES`, else built
/// in); a `PO_PRICES` that cannot be read is warned about once and left out.
pub fn of(model: &str) -> Option<Price> {
    static TABLE: OnceLock<Prices> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            Prices::from_env().unwrap_or_else(|e| {
                tracing::warn!("{e}; using the built-in prices");
                Prices::built_in()
            })
        })
        .of(model)
}

/// An absolute path for a `--prices` file, checked: it reads and parses.
pub fn checked_path(path: &Path) -> Result<PathBuf> {
    Prices::load(path)?;
    std::path::absolute(path).map_err(Error::io("resolve", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_prefix_wins_and_names_are_case_and_provider_blind() {
        let t = Prices::built_in();
        assert_eq!(t.of("gpt-5.1-codex-mini").unwrap().input, 0.25);
        assert_eq!(t.of("gpt-5.1-codex").unwrap().input, 1.25);
        assert_eq!(t.of("GPT-5-2025-08-07").unwrap().output, 10.0);
        assert_eq!(t.of("models/gemini-2.5-flash").unwrap().input, 0.3);
        assert_eq!(t.of("gemini-2.5-flash-lite").unwrap().input, 0.1);
        assert_eq!(t.of("claude-sonnet-4-5"), Price::of("claude-sonnet-4-5"));
        assert_eq!(t.of("mystery-model"), None);
    }

    #[test]
    fn cached_input_is_priced_apart() {
        // The scripted servers' two calls: 7,000 input (4,000 cached), 170 output.
        let two_calls = Tokens {
            input: 7000,
            cache_write: 0,
            cache_read: 4000,
            output: 170,
        };
        let c = Prices::built_in()
            .of("gemini-2.5-flash")
            .unwrap()
            .cost(&two_calls);
        // 3,000 × 0.30 + 4,000 × 0.03 + 170 × 2.50, per million.
        assert!((c - 0.001445).abs() < 1e-12, "{c}");
    }

    #[test]
    fn an_override_file_adds_and_replaces_entries() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("prices.json");
        std::fs::write(
            &f,
            r#"{"gpt-5": {"input": 2, "output": 20, "cache_read": 0.5}, "local-": {"input": 0, "output": 0}}"#,
        )
        .unwrap();
        let t = Prices::load(&f).unwrap();
        let gpt = t.of("gpt-5.1-codex").unwrap();
        assert_eq!((gpt.input, gpt.cache_read, gpt.output), (2.0, 0.5, 20.0));
        assert_eq!(t.of("local-llama").unwrap().output, 0.0);
        assert_eq!(t.of("gemini-2.5-pro").unwrap().input, 1.25, "built in");
    }

    #[test]
    fn a_bad_override_file_names_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("prices.json");
        for (text, says) in [
            ("[1]", "JSON object"),
            ("{", "not JSON"),
            (r#"{"m": {"input": 1}}"#, "no \"output\""),
            (r#"{"m": {"input": -1, "output": 1}}"#, "field \"input\""),
            (
                r#"{"m": {"input": 1, "output": 1, "cached": 1}}"#,
                "unknown",
            ),
            (r#"{"m": 3}"#, "not an object"),
        ] {
            std::fs::write(&f, text).unwrap();
            let e = Prices::load(&f).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE);
            let msg = e.to_string();
            assert!(
                msg.contains("prices.json") && msg.contains(says),
                "{text}: {msg}"
            );
        }
        let missing = Prices::load(&dir.path().join("nope.json")).unwrap_err();
        assert!(missing.to_string().contains("nope.json"), "{missing}");
    }
}
