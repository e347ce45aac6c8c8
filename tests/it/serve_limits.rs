//! po-serve held to its limits: clients that never read their responses,
//! that send half a request and wait, that open event streams and drop them.
//! Throughout, another client must be answered. The time it takes is
//! measured and printed (`--nocapture` shows it); it is asserted only
//! loosely (a few seconds, where a held-up server never answers), as the
//! machine may be loaded.

use crate::serve_support::Server;
use crate::watch_support::Fixture;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use po::protocol::{AgentStatus, State};

/// How long another client may wait for its answer during an attack: far
/// more than it takes (milliseconds), far less than forever.
const ANSWERED_WITHIN: Duration = Duration::from_secs(5);
/// Only a guard against hangs.
const HANG_GUARD: Duration = Duration::from_secs(60);
/// po-serve's caps (`serve::server::Limits::default()`, `router::MAX_STREAMS`).
const MAX_CONNECTIONS: usize = 256;
const MAX_STREAMS: usize = 64;

const TOKEN: &str = "0123456789abcdef-token";

/// Orchestration `id` with `n` tasks, written straight to disk (a fixture:
/// no locks, no fsync).
fn many_tasks(root: &Path, id: &str, n: u32) {
    let dir = root.join("parallel").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    for i in 1..=n {
        let agent = format!("agent-{i}");
        let mut s = AgentStatus::new(&agent, id);
        s.title = format!("Task {i}: a title long enough to look like one people write");
        s.body = "Do the thing, then the other thing.".into();
        s.status = if i % 3 == 0 {
            State::Completed
        } else {
            State::Pending
        };
        s.branch = Some(format!("feat/{id}-agent-{i}"));
        let bytes = serde_json::to_vec_pretty(&s).unwrap();
        std::fs::write(dir.join(format!("{agent}.status.json")), bytes).unwrap();
    }
}

/// One request on a connection of its own, read to its end; the status and
/// how long it took.
fn ask(addr: SocketAddr, path: &str, headers: &[&str]) -> (u16, Duration) {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, HANG_GUARD).expect("connect");
    s.set_read_timeout(Some(HANG_GUARD)).unwrap();
    s.set_write_timeout(Some(HANG_GUARD)).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send the request");
    let mut resp = Vec::new();
    if let Err(e) = s.read_to_end(&mut resp) {
        panic!(
            "{path} was not answered within {HANG_GUARD:?} ({e}); got {} bytes",
            resp.len()
        );
    }
    let head = String::from_utf8_lossy(&resp[..resp.len().min(64)]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{path}: not an HTTP response: {head:?}"));
    (status, start.elapsed())
}

/// Ask `rounds` times for `path` (each a fresh client); every answer must be
/// 200 and come within [`ANSWERED_WITHIN`]. Returns the slowest.
fn answered_throughout(
    addr: SocketAddr,
    path: &str,
    headers: &[&str],
    rounds: usize,
    what: &str,
) -> Duration {
    let mut worst = Duration::ZERO;
    let mut all = Vec::new();
    for _ in 0..rounds {
        let (status, took) = ask(addr, path, headers);
        assert_eq!(status, 200, "{what}: {path} answered {status}");
        worst = worst.max(took);
        all.push(took.as_millis());
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{what}: another client answered in {all:?} ms (slowest {worst:?})");
    assert!(
        worst < ANSWERED_WITHIN,
        "{what}: another client waited {worst:?} for {path}"
    );
    worst
}

/// A client that sends `raw` and never reads: it keeps the socket, the
/// sending runs on a thread (it blocks once the server stops reading).
fn never_reads(addr: SocketAddr, raw: String) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    let mut w = s.try_clone().unwrap();
    w.set_write_timeout(Some(HANG_GUARD)).unwrap();
    std::thread::spawn(move || {
        let _ = w.write_all(raw.as_bytes());
    });
    s
}

/// The start of what the server sent on `s`.
fn first_bytes(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn a_client_pipelining_requests_it_never_reads_holds_up_no_one() {
    let fx = Fixture::new();
    many_tasks(&fx.root, "big", 500);
    let srv = Server::start(&fx.root, &[], &[]);
    let page = ask(srv.addr, "/o/big", &[]);
    assert_eq!(page.0, 200);
    // 5,000 requests for a 500-task board, none of the answers read.
    let raw = "GET /o/big HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(5000);
    let mut attacker = never_reads(srv.addr, raw);
    std::thread::sleep(Duration::from_secs(1));
    answered_throughout(
        srv.addr,
        "/",
        &[],
        10,
        "5,000 pipelined board requests unread",
    );
    answered_throughout(srv.addr, "/o/big", &[], 3, "the same, asking for the board");
    // The attacker's connection is still open, its first answer waiting.
    assert!(
        first_bytes(&mut attacker).starts_with("HTTP/1.1 200"),
        "the pipelining client was not being answered"
    );
}

#[test]
fn a_huge_board_never_read_holds_up_no_one() {
    let fx = Fixture::new();
    many_tasks(&fx.root, "huge", 10_000);
    let srv = Server::start(&fx.root, &[], &[]);
    // Three requests for a 10,000-task board (megabytes each: more than the
    // socket buffers hold), never read.
    let raw = "GET /o/huge HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(3);
    let mut attacker = never_reads(srv.addr, raw);
    std::thread::sleep(Duration::from_secs(2));
    answered_throughout(srv.addr, "/", &[], 10, "a 10,000-task board unread");
    assert!(first_bytes(&mut attacker).starts_with("HTTP/1.1 200"));
}

#[test]
fn an_unauthenticated_client_that_never_reads_holds_up_no_one_on_a_token_listener() {
    let fx = Fixture::new();
    many_tasks(&fx.root, "t", 3);
    let srv = Server::start(&fx.root, &[], &[("PO_SERVE_TOKEN", TOKEN)]);
    // 20,000 requests without the token: 20,000 refusals nobody reads.
    let raw = "GET / HTTP/1.1\r\nHost: anything\r\n\r\n".repeat(20_000);
    let mut attacker = never_reads(srv.addr, raw);
    std::thread::sleep(Duration::from_secs(1));
    let bearer = format!("Authorization: Bearer {TOKEN}");
    answered_throughout(
        srv.addr,
        "/o/t",
        &[&bearer],
        10,
        "20,000 unauthenticated requests unread",
    );
    assert!(first_bytes(&mut attacker).starts_with("HTTP/1.1 401"));
}

#[test]
fn half_sent_requests_beyond_the_connection_cap_hold_up_no_one() {
    let fx = Fixture::new();
    many_tasks(&fx.root, "s", 3);
    let srv = Server::start(&fx.root, &[], &[]);
    // More connections than the cap: half a request head each, or nothing.
    let held = MAX_CONNECTIONS + 150;
    let mut conns = Vec::new();
    for i in 0..held {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        if i % 3 != 0 {
            s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                .unwrap();
        }
        conns.push(s);
    }
    eprintln!("holding {held} half-sent connections (the cap is {MAX_CONNECTIONS})");
    answered_throughout(srv.addr, "/o/s", &[], 10, "slowloris beyond the cap");
    // A head that never ends is refused once it is too large.
    let mut endless = TcpStream::connect(srv.addr).unwrap();
    let _ = endless
        .write_all(&b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(400));
    let mut reply = String::new();
    endless.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let _ = endless.read_to_string(&mut reply);
    assert!(
        reply.starts_with("HTTP/1.1 400") || reply.starts_with("HTTP/1.1 431"),
        "{reply:?}"
    );
    // The newest half-sent head is not waited for forever either: 408.
    let start = Instant::now();
    let last = &mut conns[held - 2];
    assert_ne!((held - 2) % 3, 0, "one that sent half a head");
    assert!(
        first_bytes(last).starts_with("HTTP/1.1 408"),
        "a half-sent request was not timed out"
    );
    eprintln!(
        "a half-sent request was answered 408 after {:?}",
        start.elapsed()
    );
    // A byte at a time does not stretch the time limit.
    let mut dripping = TcpStream::connect(srv.addr).unwrap();
    let start = Instant::now();
    let ended = loop {
        if dripping.write_all(b"X").is_err() || start.elapsed() > HANG_GUARD {
            break start.elapsed();
        }
        let mut probe = [0u8; 64];
        dripping
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        match dripping.read(&mut probe) {
            Ok(_) => break start.elapsed(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break start.elapsed(),
        }
    };
    eprintln!("a head sent a byte every 0.5 s was ended after {ended:?}");
    assert!(ended < Duration::from_secs(40), "{ended:?}");
    answered_throughout(srv.addr, "/", &[], 3, "after the slowloris");
}

/// Open an event stream and read its response head; the status.
fn open_stream(addr: SocketAddr, path: &str) -> (u16, TcpStream) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(HANG_GUARD)).unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    let status = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, s)
}

#[test]
fn event_streams_opened_and_dropped_free_their_slots_at_once() {
    let fx = Fixture::new();
    many_tasks(&fx.root, "e", 3);
    let srv = Server::start(&fx.root, &[], &[]);
    let mut worst_reopen = Duration::ZERO;
    for round in 1..=3 {
        let start = Instant::now();
        let mut streams = Vec::new();
        while streams.len() < MAX_STREAMS {
            let (status, s) = open_stream(srv.addr, "/events/o/e");
            match status {
                200 => streams.push(s),
                // The slots of the round before are not free yet.
                503 => {
                    assert!(
                        start.elapsed() < Duration::from_secs(10),
                        "round {round}: {} of {MAX_STREAMS} streams opened in {:?}; the \
                         dropped ones still hold their slots",
                        streams.len(),
                        start.elapsed()
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => panic!("an event stream answered {other}"),
            }
        }
        let took = start.elapsed();
        worst_reopen = worst_reopen.max(took);
        eprintln!("round {round}: {MAX_STREAMS} event streams open after {took:?}");
        // All slots taken: one more is refused, pages are still answered.
        assert_eq!(open_stream(srv.addr, "/events").0, 503);
        answered_throughout(srv.addr, "/", &[], 3, "every stream slot taken");
        drop(streams);
    }
    eprintln!("slowest reopening of {MAX_STREAMS} dropped streams: {worst_reopen:?}");
}
