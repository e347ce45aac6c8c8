//! What each fuzz target feeds to po, and what it checks besides "no panic,
//! no hang". Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and by
//! the normal test suite, which replays every case fuzzing found
//! (`tests/fixtures/fuzz/<target>/`) and runs a short mutation round
//! (`tests/it/fuzz_replay.rs`).
//!
//! Each target is one function from bytes; to point a target at moved code,
//! change only its function here.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// One target: what it does with the bytes fuzzing made.
pub type Target = fn(&[u8]);

/// The targets, by name (the name of the cargo-fuzz binary and of the
/// fixture directory).
pub const TARGETS: [(&str, Target); 5] = [
    ("markdown", markdown),
    ("manifest", manifest),
    ("status", status),
    ("stream", stream),
    ("http", http),
];

/// An issue's or a markdown file's text, through po-parse's whole plan:
/// decoding, task extraction, dependencies, file overlaps, the report.
pub fn markdown(data: &[u8]) {
    let Ok(text) = po::sources::decode(data.to_vec(), "fuzz.md") else {
        return;
    };
    let extracted = po::sources::markdown::extract(&text);
    for t in &extracted.tasks {
        let _ = po::sources::markdown::strip_prefix(&t.title);
        let _ = po::sources::refs::Reference::at_start(&t.title);
    }
    if let Ok(plan) = po::plan::Plan::from_extracted(extracted) {
        let _ = plan.report_json();
    }
}

/// A cpo `manifest.json`, checked against a parallel directory that does
/// not exist (prompt files are never found; nothing is read).
pub fn manifest(data: &[u8]) {
    let dir = PathBuf::from("/nonexistent/po-fuzz/TS-0001");
    let _ = po::sources::manifest::parse(data.to_vec(), dir.join("manifest.json"), dir);
}

/// A status file's bytes (and `orchestration.json`'s). What parses is
/// written back as po writes it, and that reads back: the fields it had are
/// kept (known or not), and a second rewrite changes nothing. (po writes
/// times in UTC to the millisecond, so a time written otherwise by another
/// tool is normalised once; fuzzing found that, see
/// `tests/fixtures/fuzz/status/`.)
pub fn status(data: &[u8]) {
    use po::protocol::{AgentStatus, Orchestration};
    rewrite_is_stable::<AgentStatus>("agent-1.status.json", data);
    rewrite_is_stable::<Orchestration>("orchestration.json", data);
}

fn rewrite_is_stable<T>(name: &str, data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    use po::protocol::store;
    use serde_json::Value;
    let path = Path::new(name);
    let Ok(first) = store::parse_json::<T>(path, data) else {
        return;
    };
    let written = serde_json::to_vec_pretty(&first).expect("it serialises");
    let read: T = store::parse_json(path, &written)
        .unwrap_or_else(|e| panic!("{name} as po wrote it does not read back: {e}"));
    let again = serde_json::to_vec_pretty(&read).expect("it serialises");
    assert_eq!(
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&again),
        "{name} changes each time it is rewritten"
    );
    // Every field the file had (and did not leave null) is still there.
    if let (Ok(Value::Object(given)), Ok(Value::Object(kept))) = (
        serde_json::from_slice::<Value>(data),
        serde_json::from_slice::<Value>(&written),
    ) {
        for (k, v) in &given {
            if !v.is_null() {
                assert!(kept.contains_key(k), "{name}: field {k:?} lost on rewrite");
            }
        }
    }
}

/// An agent's stdout, a line at a time, as the supervisor feeds it.
pub fn stream(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parser = po::run::agent::claude::StreamParser::new();
    for line in text.split('\n') {
        let _ = parser.feed_line(line);
    }
}

/// Bytes from a client: finding the end of the request head (scanning all at
/// once and as it arrives must agree), parsing it, and the router's reading
/// of its path and query.
pub fn http(data: &[u8]) {
    use po::serve::{auth, http, page, router};
    let skip = http::leading_blank_lines(data);
    let buf = &data[skip..];
    let whole = http::head_len(buf, 0);
    if let Some(n) = whole {
        assert!(n <= buf.len(), "a head longer than the bytes");
    }
    // As it arrives in pieces of 7 bytes, each scan starting where the last
    // one ended.
    let mut seen = None;
    let mut end = 0;
    while end < buf.len() {
        let next = (end + 7).min(buf.len());
        if let Some(n) = http::head_len(&buf[..next], end) {
            seen = Some(n);
            break;
        }
        end = next;
    }
    assert_eq!(seen, whole, "the head ends elsewhere when read in pieces");
    let Some(n) = whole else { return };
    let Ok(req) = http::parse_head(&buf[..n]) else {
        return;
    };
    assert!(req.target.starts_with('/'));
    let _ = (req.keep_alive(), req.has_body(), req.header("host"));
    if let Some(host) = req.header("host") {
        let _ = auth::loopback_host(host);
    }
    if let Some(a) = req.header("authorization") {
        let _ = auth::access(Some("0123456789abcdef"), Some(a), None);
    }
    if let Some((segs, query)) = router::parse_target(&req.target) {
        for s in &segs {
            assert!(
                s.is_empty() || page::segment_ok(s),
                "segment {s:?} let through"
            );
        }
        for name in ["token", "from"] {
            if let Some(v) = auth::query_param(query, name) {
                // What is decoded encodes and decodes back to itself.
                let round = auth::percent_decode(&auth::percent_encode(&v));
                assert_eq!(round.as_deref(), Some(v.as_str()));
            }
        }
    }
}
