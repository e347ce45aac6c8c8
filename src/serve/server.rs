//! The connections: one thread each, at most [`Limits::max_connections`],
//! and none of them can hold up another.
//!
//! * The accept loop only accepts: every connection is read, answered and
//!   written on a thread of its own, so a client that does not read its
//!   responses blocks only its own thread.
//! * Requests of one connection are answered in order (pipelining needs
//!   nothing more), and the next head is read only once the last response
//!   was written: a client that sends thousands of requests and reads
//!   nothing fills its own socket buffers, then waits.
//! * Time limits: a request head must arrive whole within
//!   [`Limits::head_timeout`] (counted from when the connection starts
//!   waiting for it, so a head sent a byte at a time cannot stretch it); a
//!   response must be written within [`Limits::response_timeout`], and no
//!   single write may wait longer than [`Limits::write_timeout`].
//! * When every connection slot is taken, the connection that has waited
//!   longest on its client (for a request head, or for the client to take a
//!   response) is closed to make room; only when every connection is being
//!   worked on is a new one refused, with 503.
//! * An event stream holds its connection until the browser leaves; it
//!   notices within [`super::sse::CHECK`] (see [`Client::left`]).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http::{self, Malformed, Request};
use super::page::{Links, error_page};
use super::router::{self, App, PAGE_HEADERS, Reply};
use super::sse::Client;

/// What one client may take.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once (event streams included).
    pub max_connections: usize,
    /// The most time a request head may take to arrive, from the moment the
    /// connection waits for it (an idle keep-alive connection is closed
    /// then).
    pub head_timeout: Duration,
    /// The most time one write to the client may block.
    pub write_timeout: Duration,
    /// The most time a whole (non-stream) response may take to be written.
    pub response_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            head_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(30),
        }
    }
}

/// The open connections, for the cap and for making room.
struct Conns {
    epoch: Instant,
    max: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    open: HashMap<u64, Entry>,
}

struct Entry {
    socket: TcpStream,
    /// Since when (ns after `epoch`, plus one) the connection waits on its
    /// client; 0 while the server works on it.
    waiting: Arc<AtomicU64>,
}

/// One admitted connection; leaves the registry when dropped.
struct Conn {
    id: u64,
    waiting: Arc<AtomicU64>,
    conns: Arc<Conns>,
}

impl Conns {
    fn stamp(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64 + 1
    }

    /// Take a slot for `socket`, closing the connection that waited longest
    /// on its client when all are taken; `None` when every one is busy.
    fn admit(self: &Arc<Self>, socket: &TcpStream) -> Option<Conn> {
        let copy = socket.try_clone().ok()?;
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.open.len() >= self.max {
            let oldest = inner
                .open
                .iter()
                .map(|(id, e)| (*id, e.waiting.load(Ordering::SeqCst)))
                .filter(|(_, since)| *since > 0)
                .min_by_key(|(_, since)| *since)
                .map(|(id, _)| id)?;
            if let Some(e) = inner.open.remove(&oldest) {
                // Wakes its thread from a blocked read or write.
                let _ = e.socket.shutdown(Shutdown::Both);
                tracing::debug!("closed a connection that waited on its client, to make room");
            }
        }
        let id = inner.next;
        inner.next += 1;
        let waiting = Arc::new(AtomicU64::new(self.stamp()));
        inner.open.insert(
            id,
            Entry {
                socket: copy,
                waiting: waiting.clone(),
            },
        );
        Some(Conn {
            id,
            waiting,
            conns: self.clone(),
        })
    }
}

impl Conn {
    /// The connection now waits on its client.
    fn waits(&self) {
        self.waiting.store(self.conns.stamp(), Ordering::SeqCst);
    }

    /// The server works on the connection.
    fn works(&self) {
        self.waiting.store(0, Ordering::SeqCst);
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let mut inner = self.conns.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.open.remove(&self.id);
    }
}

/// Accept connections on `listener` and serve each on a thread of its own.
pub fn serve(listener: TcpListener, app: Arc<App>, limits: Limits) -> ! {
    let conns = Arc::new(Conns {
        epoch: Instant::now(),
        max: limits.max_connections.max(1),
        inner: Mutex::default(),
    });
    let limits = Arc::new(limits);
    loop {
        let socket = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors, most likely: let some close.
                tracing::warn!("failed to accept a connection: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let Some(conn) = conns.admit(&socket) else {
            refuse(socket);
            continue;
        };
        let (app, limits) = (app.clone(), limits.clone());
        let spawned = std::thread::Builder::new()
            .name("po-serve-conn".into())
            .spawn(move || connection(&app, socket, &conn, &limits));
        if let Err(e) = spawned {
            tracing::warn!("failed to start a connection thread: {e}");
        }
    }
}

/// Every slot is busy: say so without waiting on the client.
fn refuse(socket: TcpStream) {
    let body = error_page(
        "Busy",
        "po-serve is serving as many connections as it can; try again in a moment",
        &Links::default(),
    );
    let head = http::response_head(
        503,
        &html_headers(&[("Retry-After", "1")]),
        body.len(),
        false,
    );
    let _ = socket.set_nonblocking(true);
    // What the client sent, read so that closing does not reset the
    // connection before it read the answer.
    let mut sink = [0u8; 4096];
    let _ = (&socket).read(&mut sink);
    let _ = (&socket).write_all(format!("{head}{body}").as_bytes());
    let _ = socket.shutdown(Shutdown::Write);
}

fn html_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("Content-Type", "text/html; charset=utf-8")];
    h.extend(PAGE_HEADERS);
    h.extend(extra);
    h
}

/// Why no request came.
enum NoRequest {
    /// The client closed, went quiet before sending anything, or vanished.
    Gone,
    /// It sent something that is not a request head, or too slowly.
    Bad(u16, &'static str),
}

/// Serve one connection until it closes, fails or times out.
fn connection(app: &Arc<App>, mut socket: TcpStream, conn: &Conn, limits: &Limits) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        conn.waits();
        let req = match read_request(&mut socket, &mut buf, limits.head_timeout) {
            Ok(r) => r,
            Err(NoRequest::Gone) => return,
            Err(NoRequest::Bad(status, msg)) => {
                conn.works();
                let body = error_page(http::reason(status), msg, &Links::default());
                let head = http::response_head(status, &html_headers(&[]), body.len(), false);
                let deadline = Instant::now() + limits.response_timeout;
                let parts = [head.as_bytes(), body.as_bytes()];
                if write_by(&mut socket, conn, &parts, deadline, limits).is_ok() {
                    linger(&mut socket);
                }
                return;
            }
        };
        conn.works();
        let keep = req.keep_alive() && !req.has_body();
        match router::handle(app, &req) {
            Reply::Page(p) => {
                let mut headers = vec![("Content-Type", p.content_type)];
                headers.extend(PAGE_HEADERS);
                headers.extend(p.extra.iter().copied());
                let head = http::response_head(p.status, &headers, p.body.len(), keep);
                let body: &[u8] = if req.method == "HEAD" {
                    b""
                } else {
                    p.body.as_bytes()
                };
                let deadline = Instant::now() + limits.response_timeout;
                let parts = [head.as_bytes(), body];
                if write_by(&mut socket, conn, &parts, deadline, limits).is_err() {
                    return;
                }
                if !keep {
                    linger(&mut socket);
                    return;
                }
            }
            Reply::Stream(_slot, run) => {
                let _ = socket.set_write_timeout(Some(limits.write_timeout));
                let mut client = Peer {
                    socket: &socket,
                    conn,
                };
                let _ = run(&mut client, app);
                let _ = socket.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// Close after the last answer without resetting the connection: a close
/// with unread bytes sends a reset, which can destroy the answer before the
/// client read it. So stop writing, then read (and drop) what still comes,
/// for a moment.
fn linger(socket: &mut TcpStream) {
    let _ = socket.shutdown(Shutdown::Write);
    let until = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 4096];
    let mut left: usize = 256 * 1024;
    while left > 0 {
        let wait = until.saturating_duration_since(Instant::now());
        if wait.is_zero() || socket.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match socket.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// Read the next request head into `buf` (which keeps what follows it).
fn read_request(
    socket: &mut TcpStream,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<Request, NoRequest> {
    let deadline = Instant::now() + timeout;
    let mut scanned = 0;
    let mut chunk = [0u8; 4096];
    loop {
        let blank = http::leading_blank_lines(buf);
        if blank > 0 {
            buf.drain(..blank);
            scanned = 0;
        }
        if let Some(n) = http::head_len(buf, scanned) {
            let parsed = http::parse_head(&buf[..n]);
            buf.drain(..n);
            return parsed.map_err(|m: Malformed| NoRequest::Bad(m.status(), m.message()));
        }
        if buf.len() > http::MAX_HEAD {
            return Err(NoRequest::Bad(431, Malformed::TooLarge.message()));
        }
        scanned = buf.len();
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(if buf.is_empty() {
                NoRequest::Gone
            } else {
                NoRequest::Bad(408, "the request head did not arrive in time")
            });
        }
        if socket.set_read_timeout(Some(left)).is_err() {
            return Err(NoRequest::Gone);
        }
        match socket.read(&mut chunk) {
            Ok(0) => return Err(NoRequest::Gone),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return Err(NoRequest::Gone),
        }
    }
}

/// Write `parts` in order by `deadline`, no single write blocking longer
/// than the write timeout.
fn write_by(
    socket: &mut TcpStream,
    conn: &Conn,
    parts: &[&[u8]],
    deadline: Instant,
    limits: &Limits,
) -> io::Result<()> {
    conn.waits();
    for part in parts {
        let mut rest = *part;
        while !rest.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            socket.set_write_timeout(Some(left.min(limits.write_timeout)))?;
            match socket.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    conn.works();
    Ok(())
}

/// An event stream's end of the connection.
struct Peer<'a> {
    socket: &'a TcpStream,
    conn: &'a Conn,
}

impl Write for Peer<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.conn.waits();
        let n = self.socket.write(bytes);
        self.conn.works();
        n
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Client for Peer<'_> {
    /// The browser closed its end (or the connection broke). A browser sends
    /// nothing more on an event stream, so whatever is readable is either
    /// the end or bytes that will not be answered (dropped).
    fn left(&mut self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut scratch = [0u8; 1024];
        for _ in 0..64 {
            let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(_) => return true,
            }
            // Readable: this read does not block.
            match self.socket.read(&mut scratch) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        // A client that keeps sending on an event stream is not a browser.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(l: &TcpListener) -> (TcpStream, TcpStream) {
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    fn registry(max: usize) -> Arc<Conns> {
        Arc::new(Conns {
            epoch: Instant::now(),
            max,
            inner: Mutex::default(),
        })
    }

    #[test]
    fn a_full_house_closes_the_connection_that_waited_longest() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let conns = registry(2);
        let (mut c1, s1) = pair(&l);
        let (_c2, s2) = pair(&l);
        let (_c3, s3) = pair(&l);
        let a = conns.admit(&s1).unwrap();
        let b = conns.admit(&s2).unwrap();
        b.works();
        // Full: the first (waiting on its client) makes room.
        let c = conns.admit(&s3).unwrap();
        c1.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        assert_eq!(c1.read(&mut [0u8; 8]).unwrap(), 0, "the oldest was closed");
        // Now the two left both work: a fourth is refused.
        c.works();
        let (_c4, s4) = pair(&l);
        assert!(conns.admit(&s4).is_none());
        drop(a); // already gone from the registry: nothing happens
        drop(b);
        assert!(conns.admit(&s4).is_some(), "a slot freed when one ended");
    }

    #[test]
    fn a_peer_that_hangs_up_is_seen_without_reading() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let conns = registry(4);
        let (c, s) = pair(&l);
        let conn = conns.admit(&s).unwrap();
        let mut peer = Peer {
            socket: &s,
            conn: &conn,
        };
        assert!(!peer.left());
        drop(c);
        let t = Instant::now();
        while !peer.left() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the hang-up was never seen"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_head_sent_a_byte_at_a_time_is_read_then_the_next_one() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut c, mut s) = pair(&l);
        let writer = std::thread::spawn(move || {
            for b in b"\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n" {
                c.write_all(&[*b]).unwrap();
            }
            c
        });
        let mut buf = Vec::new();
        let Ok(a) = read_request(&mut s, &mut buf, Duration::from_secs(30)) else {
            panic!("no first request");
        };
        assert_eq!((a.target.as_str(), a.header("host")), ("/a", Some("x")));
        let Ok(b) = read_request(&mut s, &mut buf, Duration::from_secs(30)) else {
            panic!("no second request");
        };
        assert_eq!(b.target, "/b");
        let _c = writer.join().unwrap();
        // Half a head, then silence: 408 once the time is up.
        let (mut c, mut s) = pair(&l);
        c.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
        let mut buf = Vec::new();
        assert!(matches!(
            read_request(&mut s, &mut buf, Duration::from_millis(200)),
            Err(NoRequest::Bad(408, _))
        ));
        // Nothing at all: just gone.
        let (_c, mut s) = pair(&l);
        assert!(matches!(
            read_request(&mut s, &mut Vec::new(), Duration::from_millis(200)),
            Err(NoRequest::Gone)
        ));
    }
}
