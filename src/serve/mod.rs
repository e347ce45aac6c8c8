//! po-serve: a read-only live web dashboard over the runtime directory.
//!
//! * [`hub`]: one reader of the runtime, fed by po-watch's change source.
//! * [`server`]: the connections, a thread each, capped and timed, so that
//!   no client can hold up another; [`http`]: request heads and response
//!   heads.
//! * [`router`]: token and host checks, then the routes.
//! * [`page`]: the HTML (orchestrations, tiles, log view); [`sse`]: the
//!   event streams that keep it live; [`logtail`]: an agent log's tail.
//! * The timeline is [`crate::report::timeline`], shared with the report.
//!
//! The server is po's own, on `std::net`: synchronous, a thread per
//! connection, no async runtime, which fits po (a dashboard has a handful of
//! viewers). An event stream holds its connection's thread.

pub mod auth;
pub mod http;
pub mod hub;
pub mod logtail;
pub mod page;
pub mod router;
pub mod server;
pub mod sse;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use crate::error::{Error, Result, exit};
use crate::protocol::Runtime;
use hub::{Hub, Watching};

pub struct Config {
    pub listen: SocketAddr,
    pub token: Option<String>,
    pub runtime: Runtime,
    pub watching: Watching,
}

/// Serve until killed. Refuses (usage error) a non-loopback address without
/// a token.
pub fn run(cfg: Config) -> Result<i32> {
    let token = auth::check_config(&cfg.listen, cfg.token.as_deref())?;
    let listener = TcpListener::bind(cfg.listen).map_err(|e| {
        Error::system(format!(
            "listen on {}: {e}; pick another with --listen ADDR:PORT",
            cfg.listen
        ))
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::system(format!("find the address listened on: {e}")))?;
    let root = cfg.runtime.root.clone();
    let hub = Hub::start(cfg.runtime, cfg.watching.clone());
    let app = Arc::new(router::App {
        hub,
        root: root.clone(),
        token,
        watching: cfg.watching,
        streams: AtomicUsize::new(0),
    });
    // The address on stdout (the data), the rest on stderr.
    let mut out = std::io::stdout().lock();
    if writeln!(out, "http://{addr}/")
        .and_then(|()| out.flush())
        .is_err()
    {
        return Ok(exit::SUCCESS);
    }
    drop(out);
    eprintln!(
        "po-serve: showing {} read-only on http://{addr}/{}",
        root.display(),
        if app.token.is_some() {
            " (token required)"
        } else {
            ""
        }
    );
    server::serve(listener, app, server::Limits::default())
}
