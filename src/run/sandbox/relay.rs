//! `po-status set` from inside a sandbox: a report the supervisor applies.
//!
//! A status file is replaced by rename (invariant 1), which needs its
//! directory writable, and that directory holds every task's file. So a
//! sandboxed agent gets no write access to the runtime directory at all:
//! `po-status set` sends its [`Report`] over a Unix socket
//! (`$PO_STATUS_SOCKET`, bound into the sandbox) to the task's supervisor,
//! which applies it to this task's status file under its lock, the same way
//! an unsandboxed `po-status set` does, and answers `ok` or the error. The
//! agent can report progress, a phase, a note and its spend; nothing else
//! of its status file, and no other task's.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::protocol::store;

/// The variable naming the relay's socket inside a sandbox.
pub const SOCKET_ENV: &str = "PO_STATUS_SOCKET";
/// The most a report may hold.
const REPORT_MAX: u64 = 64 * 1024;
/// How long the supervisor waits for a report once connected, and the
/// agent for the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What an agent reports with `po-status set`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Report {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl Report {
    /// A usage error if there is nothing to set or a value is out of range.
    pub fn check(&self) -> Result<()> {
        if *self == Report::default() {
            return Err(Error::usage(
                "set status: nothing to set; pass --progress, --phase, --message, --cost-usd, \
                 --input-tokens, --output-tokens or --model",
            ));
        }
        if self.progress.is_some_and(|p| p > 100) {
            return Err(Error::usage("set --progress: it is a percentage, 0 to 100"));
        }
        if self.cost_usd.is_some_and(|c| !c.is_finite() || c < 0.0) {
            return Err(Error::usage(
                "set --cost-usd: it must be a number of US dollars, 0 or more (e.g. 0.42)",
            ));
        }
        Ok(())
    }

    /// Apply to the status file `file`, under its lock; a finished task does
    /// not change, unless its agent runs again in a po-react round: it then
    /// reports the round's spend and what it does, and the task stays
    /// finished.
    pub fn apply(&self, file: &Path) -> Result<()> {
        self.check()?;
        store::update_status(file, |s| {
            let round = s.status.is_terminal() && crate::protocol::reaction::running(s);
            if s.status.is_terminal() && !round {
                return Err(Error::validation(
                    file.display().to_string(),
                    format!(
                        "{} is {}; a finished task does not change (po-spawn --retry starts it again)",
                        s.agent_id, s.status
                    ),
                ));
            }
            if self.progress.is_some() && !round {
                s.progress_percentage = self.progress;
            }
            if let Some(p) = &self.phase {
                s.phase = Some(p.clone());
            }
            if let Some(m) = &self.message {
                s.message = Some(m.clone());
            }
            let m = &mut s.metrics;
            if self.cost_usd.is_some() {
                m.cost_usd = self.cost_usd;
            }
            if self.input_tokens.is_some() {
                m.input_tokens = self.input_tokens;
            }
            if self.output_tokens.is_some() {
                m.output_tokens = self.output_tokens;
            }
            if let Some(model) = &self.model {
                m.model = Some(crate::text::one_line(model));
            }
            Ok(())
        })?;
        Ok(())
    }
}

/// `po-status set FILE`: through the relay inside a sandbox, else straight
/// to the file.
pub fn report(file: &Path, report: &Report) -> Result<()> {
    report.check()?;
    let Some(socket) = std::env::var_os(SOCKET_ENV).filter(|s| !s.is_empty()) else {
        return report.apply(file);
    };
    let own = std::env::var_os("PO_STATUS_FILE").map(PathBuf::from);
    if own.as_deref() != Some(file) {
        return Err(Error::usage(format!(
            "set the status of {}: inside the sandbox po-status set reports only this task's \
             status ($PO_STATUS_FILE)",
            file.display()
        )));
    }
    send(Path::new(&socket), report)
}

fn send(socket: &Path, report: &Report) -> Result<()> {
    let fail = |e: std::io::Error| {
        Error::system(format!(
            "report the status through {} (the supervisor's relay): {e}",
            socket.display()
        ))
    };
    let mut s = UnixStream::connect(socket).map_err(fail)?;
    s.set_read_timeout(Some(IO_TIMEOUT)).map_err(fail)?;
    let mut line = serde_json::to_vec(report).unwrap_or_default();
    line.push(b'\n');
    s.write_all(&line).map_err(fail)?;
    let mut answer = String::new();
    BufReader::new(s.take(REPORT_MAX))
        .read_line(&mut answer)
        .map_err(fail)?;
    match answer.trim() {
        "ok" => Ok(()),
        "" => Err(fail(std::io::ErrorKind::UnexpectedEof.into())),
        err => Err(Error::system(
            err.strip_prefix("error: ").unwrap_or(err).to_string(),
        )),
    }
}

/// The supervisor's end: applies reports to one status file until dropped.
pub struct Server {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Listen on `socket` (made here) for reports on `status_file`.
    pub fn start(socket: PathBuf, status_file: PathBuf) -> std::io::Result<Server> {
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    serve(conn, &status_file);
                }
            }
        });
        Ok(Server {
            socket,
            stop,
            thread: Some(thread),
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept.
        let _ = UnixStream::connect(&self.socket);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// One report: read a line, apply it, answer.
fn serve(conn: UnixStream, status_file: &Path) {
    let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
    let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
    let mut line = String::new();
    let Ok(reader) = conn.try_clone() else {
        return;
    };
    if BufReader::new(reader.take(REPORT_MAX))
        .read_line(&mut line)
        .is_err()
        || line.is_empty()
    {
        return;
    }
    let answer = match serde_json::from_str::<Report>(line.trim_end()) {
        Ok(r) => match r.apply(status_file) {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        },
        Err(e) => format!("error: read the report: {e}"),
    };
    let mut conn = conn;
    let _ = writeln!(conn, "{}", crate::text::one_line(&answer));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AgentStatus, State};

    #[test]
    fn a_report_through_the_socket_changes_only_what_it_may() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("agent-1.status.json");
        let mut s = AgentStatus::new("agent-1", "t");
        s.status = State::InProgress;
        store::write_status(&file, &s).unwrap();
        let server = Server::start(tmp.path().join("s.sock"), file.clone()).unwrap();
        let r = Report {
            progress: Some(40),
            phase: Some("Running tests".into()),
            cost_usd: Some(0.5),
            ..Report::default()
        };
        send(server.socket(), &r).unwrap();
        let got = store::read_status(&file).unwrap();
        assert_eq!(got.progress_percentage, Some(40));
        assert_eq!(got.phase.as_deref(), Some("Running tests"));
        assert_eq!(got.metrics.cost_usd, Some(0.5));
        assert_eq!(got.status, State::InProgress);
        // A finished task refuses, and the agent hears why.
        store::update_status(&file, |s| {
            s.status = State::Completed;
            Ok(())
        })
        .unwrap();
        let e = send(server.socket(), &r).unwrap_err().to_string();
        assert!(e.contains("a finished task does not change"), "{e}");
        drop(server);
        assert!(!tmp.path().join("s.sock").exists());
    }

    #[test]
    fn an_empty_or_out_of_range_report_is_a_usage_error() {
        assert!(Report::default().check().is_err());
        let bad = Report {
            cost_usd: Some(-1.0),
            ..Report::default()
        };
        assert!(bad.check().is_err());
    }
}
