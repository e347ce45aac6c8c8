//! Server-Sent Events: the board and the orchestrations list as HTML for
//! the regions that changed (`event: parts`, a JSON object from region id to
//! HTML), and a log as the text appended to it (`event: append`, or `reset`
//! when it was replaced; the event id is the byte offset, so a reconnecting
//! browser resumes where it was).
//!
//! Each stream runs on its connection's thread and ends as soon as the
//! browser goes away: while it waits for news it looks every [`CHECK`]
//! whether the browser hung up, and a comment line is sent after
//! [`KEEPALIVE`] of silence (which finds out about a browser that vanished
//! without a word).

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::hub::{Hub, Snapshot, Watching};
use super::logtail::{Chunk, Refusal, Tail};
use super::page::{self, BoardParts, Links};
use crate::watch::source::{Changes, Wake};

/// How long a stream stays silent before it sends a comment line.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// How often a waiting stream looks whether its browser hung up.
pub const CHECK: Duration = Duration::from_millis(250);

/// Where a stream goes: a writer that can tell when its reader left.
pub trait Client: Write {
    /// Whether the other end hung up (a stream to it would be written for
    /// nobody).
    fn left(&mut self) -> bool;
}

/// A sink for tests: never leaves.
impl Client for Vec<u8> {
    fn left(&mut self) -> bool {
        false
    }
}

/// The response head of every stream, and how soon to reconnect.
pub const HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
Cache-Control: no-store\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n\
X-Accel-Buffering: no\r\n\r\nretry: 1000\n\n";

/// One event: `event:`, `id:` and one `data:` line per line of `data`.
pub fn event(name: &str, id: Option<u64>, data: &str) -> String {
    let mut o = format!("event: {name}\n");
    if let Some(id) = id {
        o.push_str(&format!("id: {id}\n"));
    }
    for line in data.split('\n') {
        o.push_str("data: ");
        o.push_str(line);
        o.push('\n');
    }
    o.push('\n');
    o
}

fn send(w: &mut dyn Client, text: &str) -> io::Result<()> {
    w.write_all(text.as_bytes())?;
    w.flush()
}

fn keepalive(w: &mut dyn Client) -> io::Result<()> {
    send(w, ": keepalive\n\n")
}

/// When nothing came before `deadline`: end if the browser left, send a
/// keepalive when [`KEEPALIVE`] passed since `last` was sent.
fn idle(w: &mut dyn Client, last: &mut Instant) -> io::Result<()> {
    if w.left() {
        return Err(io::ErrorKind::ConnectionAborted.into());
    }
    if last.elapsed() >= KEEPALIVE {
        keepalive(w)?;
        *last = Instant::now();
    }
    Ok(())
}

/// Follow the hub: render each new snapshot, send what changed.
fn follow_hub(
    w: &mut dyn Client,
    hub: &Hub,
    mut render: impl FnMut(&Snapshot) -> Map<String, Value>,
) -> io::Result<()> {
    send(w, HEAD)?;
    let mut last = Instant::now();
    let mut generation = 0;
    loop {
        let snap = if generation == 0 {
            hub.current()
        } else {
            hub.next_after(generation, CHECK)
        };
        if snap.generation == generation {
            idle(w, &mut last)?;
            continue;
        }
        generation = snap.generation;
        let parts = render(&snap);
        if !parts.is_empty() {
            send(w, &event("parts", None, &Value::Object(parts).to_string()))?;
            last = Instant::now();
        }
    }
}

/// The orchestrations list.
pub fn index(w: &mut dyn Client, hub: &Hub, links: &Links) -> io::Result<()> {
    let mut last = String::new();
    follow_hub(w, hub, |snap| {
        let html = page::orchestrations(snap, links);
        let mut m = Map::new();
        if html != last {
            m.insert("orchs".into(), Value::String(html.clone()));
            last = html;
        }
        m
    })
}

/// One orchestration's board.
pub fn board(w: &mut dyn Client, hub: &Hub, key: &str, links: &Links) -> io::Result<()> {
    let mut last: Option<BoardParts> = None;
    follow_hub(w, hub, |snap| match snap.find(key) {
        Some(v) => {
            let parts = page::board_parts(v, snap.time, links);
            let changed = changed(last.as_ref(), &parts);
            last = Some(parts);
            changed
        }
        None => {
            last = None;
            let mut m = Map::new();
            m.insert(
                "grid".into(),
                Value::String(
                    "<section id=\"grid\" class=\"grid\"><p class=\"empty\">This \
                     orchestration's directory is gone.</p></section>"
                        .into(),
                ),
            );
            m
        }
    })
}

/// The regions of `new` that differ from `last`: single tiles while the set
/// of tiles stays the same, the whole grid when it changed.
pub fn changed(last: Option<&BoardParts>, new: &BoardParts) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |id: &str, html: &str| {
        m.insert(id.to_string(), Value::String(html.to_string()));
    };
    if last.map(|l| &l.head) != Some(&new.head) {
        put("head", &new.head);
    }
    let same_tiles = last.is_some_and(|l| {
        l.tiles
            .iter()
            .map(|t| &t.0)
            .eq(new.tiles.iter().map(|t| &t.0))
    });
    match last {
        Some(l) if same_tiles => {
            for ((id, html), (_, old)) in new.tiles.iter().zip(&l.tiles) {
                if html != old {
                    put(id, html);
                }
            }
        }
        _ => put("grid", &new.grid()),
    }
    if last.map(|l| &l.timeline) != Some(&new.timeline) {
        put("timeline", &new.timeline);
    }
    m
}

/// A log, from byte `from`, as it grows.
pub fn log(
    w: &mut dyn Client,
    path: &Path,
    root: &Path,
    from: u64,
    how: &Watching,
) -> io::Result<()> {
    send(w, HEAD)?;
    let mut tail = Tail::new(path, root, from);
    let mut changes = Changes::new(how.poll, how.poll_interval);
    let watch_dir = || {
        vec![crate::watch::nearest_existing(
            path.parent().unwrap_or(Path::new("/")),
        )]
    };
    changes.watch(&watch_dir());
    let mut last = Instant::now();
    loop {
        let (name, text) = match tail.step() {
            Ok(Some(Chunk::Append(text))) => ("append", text),
            Ok(Some(Chunk::Reset(text))) => ("reset", text),
            Ok(None) | Err(Refusal::Missing) => ("", String::new()),
            Err(other) => {
                let note = Value::String(page::log_note(&other)).to_string();
                send(w, &event("note", None, &note))?;
                return Ok(());
            }
        };
        if !name.is_empty() {
            let data = Value::String(text).to_string();
            send(w, &event(name, Some(tail.offset()), &data))?;
            last = Instant::now();
        }
        while changes.wait(Some(Instant::now() + CHECK)) == Wake::Deadline {
            idle(w, &mut last)?;
        }
        changes.watch(&watch_dir());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(head: &str, tiles: &[(&str, &str)], timeline: &str) -> BoardParts {
        BoardParts {
            head: head.into(),
            tiles: tiles
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            timeline: timeline.into(),
        }
    }

    #[test]
    fn only_changed_regions_are_sent() {
        let a = parts("h", &[("t-agent-1", "x"), ("t-agent-2", "y")], "tl");
        let first = changed(None, &a);
        assert_eq!(
            first.keys().collect::<Vec<_>>(),
            ["head", "grid", "timeline"]
        );
        let b = parts("h", &[("t-agent-1", "x"), ("t-agent-2", "y2")], "tl");
        let second = changed(Some(&a), &b);
        assert_eq!(second.keys().collect::<Vec<_>>(), ["t-agent-2"]);
        assert_eq!(second["t-agent-2"], "y2");
        assert!(changed(Some(&b), &b).is_empty());
        let c = parts("h", &[("t-agent-1", "x")], "tl");
        assert_eq!(changed(Some(&b), &c).keys().collect::<Vec<_>>(), ["grid"]);
    }

    #[test]
    fn event_data_lines_are_prefixed() {
        assert_eq!(
            event("append", Some(7), "a\nb"),
            "event: append\nid: 7\ndata: a\ndata: b\n\n"
        );
    }
}
