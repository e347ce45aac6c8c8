//! A running po-serve and a plain HTTP/1.1 client for it over a TCP socket,
//! with event streams read as they come.
#![allow(dead_code)]

pub mod cdp;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// Only a guard against hangs; nothing depends on speed.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// `po-serve --runtime-dir ROOT --listen 127.0.0.1:0 ARGS…`, once it
    /// printed the address it serves.
    pub fn start(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_po-serve"));
        cmd.arg("--runtime-dir")
            .arg(root)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("PO_SERVE_TOKEN")
            .env_remove("PO_WATCH_POLL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server::spawn(cmd)
    }

    /// Start po-serve; panics (killing it) if it prints no address within
    /// [`HANG_GUARD`].
    pub fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let Ok(line) = rx.recv_timeout(HANG_GUARD) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("po-serve printed no address within {HANG_GUARD:?}");
        };
        let addr = line
            .trim()
            .strip_prefix("http://")
            .and_then(|a| a.strip_suffix('/'))
            .unwrap_or_else(|| panic!("po-serve printed {line:?}, not its address"))
            .parse()
            .unwrap();
        Server { child, addr }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        ))
    }

    pub fn get_with(&self, path: &str, headers: &[&str]) -> Resp {
        let mut req = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("host:"))
        {
            req.push_str("Host: localhost\r\n");
        }
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        self.request(&req)
    }

    /// Send `raw` as it is and read the whole response.
    pub fn request(&self, raw: &str) -> Resp {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(HANG_GUARD)).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut reader = BufReader::new(s);
        let (status, headers) = read_head(&mut reader);
        let mut body = Vec::new();
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse::<usize>().unwrap());
        match len {
            Some(n) => {
                body.resize(n, 0);
                reader.read_exact(&mut body).unwrap();
            }
            None => {
                reader.read_to_end(&mut body).unwrap();
            }
        }
        Resp {
            status,
            headers,
            body: String::from_utf8(body).unwrap(),
        }
    }

    /// Open an event stream.
    pub fn events(&self, path: &str, headers: &[&str]) -> Events {
        let mut s = TcpStream::connect(self.addr).unwrap();
        let mut req =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n");
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut reader = BufReader::new(s);
        let (status, headers) = read_head(&mut reader);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut name, mut id, mut data) = (String::new(), None, Vec::<String>::new());
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if line.is_empty() {
                    if !data.is_empty() || !name.is_empty() {
                        let ev = Event {
                            name: std::mem::take(&mut name),
                            id: id.take(),
                            data: std::mem::take(&mut data).join("\n"),
                        };
                        if tx.send(ev).is_err() {
                            break;
                        }
                    }
                } else if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push(v.to_string());
                }
            }
        });
        Events {
            status,
            headers,
            rx,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    (status, headers)
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub struct Event {
    pub name: String,
    pub id: Option<String>,
    pub data: String,
}

pub struct Events {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    rx: Receiver<Event>,
}

impl Events {
    /// The next event; panics (naming what was awaited) if none comes.
    pub fn next(&self, what: &str) -> Event {
        self.rx
            .recv_timeout(HANG_GUARD)
            .unwrap_or_else(|_| panic!("no event came: waited for {what}"))
    }

    /// Events until one satisfies `f`; panics if the stream ends or stalls.
    pub fn until(&self, what: &str, mut f: impl FnMut(&Event) -> bool) -> Event {
        loop {
            let ev = self.next(what);
            if f(&ev) {
                return ev;
            }
        }
    }

    /// A `parts` event's regions.
    pub fn parts(ev: &Event) -> serde_json::Map<String, serde_json::Value> {
        assert_eq!(ev.name, "parts", "{ev:?}");
        match serde_json::from_str(&ev.data).unwrap() {
            serde_json::Value::Object(m) => m,
            other => panic!("parts is not an object: {other}"),
        }
    }
}
