//! `po-serve`: a read-only live web dashboard over the runtime directory.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use super::Common;
use crate::error::{Error, Result};
use crate::serve::{self, hub::Watching};

/// Serve a read-only live dashboard of the orchestrations in a web page
///
/// A tile per task (state, phase and progress, duration, cost, turns, tokens,
/// branch, PR, and the inferred stalled/orphaned), each task's log followed as
/// it grows, and the run's timeline. The page updates itself over
/// Server-Sent Events fed by po-watch's change source. Everything is in the
/// binary: no network, no CDN. It never writes anything.
///
/// It binds loopback by default. Listening on any other address requires a
/// token (--token or PO_SERVE_TOKEN, at least 16 characters), checked on every
/// request: `Authorization: Bearer TOKEN`, or `?token=TOKEN` in the URL for a
/// browser. Without a token only requests addressed to localhost are answered.
///
/// The address served is printed on stdout. Exit status: 9 the address
/// cannot be listened on, 64 a usage error (e.g. a non-loopback address
/// without a token).
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,

    /// Address and port to listen on (port 0: any free port)
    #[arg(
        long,
        env = "PO_SERVE_LISTEN",
        value_name = "ADDR:PORT",
        default_value = "127.0.0.1:8731"
    )]
    pub listen: String,

    /// Require this token on every request (needed for a non-loopback --listen);
    /// prefer PO_SERVE_TOKEN, which other users cannot see in `ps`
    #[arg(
        long,
        env = "PO_SERVE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// An in_progress task with no log output and no status update for this long is stalled
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub stall_after: u64,

    /// Poll instead of using inotify
    #[arg(long, env = "PO_WATCH_POLL", value_parser = clap::builder::FalseyValueParser::new())]
    pub poll: bool,

    /// Polling interval in milliseconds (with --poll, or when inotify is unavailable)
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub poll_interval: u64,
}

pub fn run(args: Args) -> Result<i32> {
    super::init_tracing(args.common.verbose);
    let listen: SocketAddr = args.listen.trim().parse().map_err(|_| {
        Error::usage(format!(
            "read --listen {:?}: give an IP address and a port, e.g. 127.0.0.1:8731 or \
             [::1]:8731",
            args.listen
        ))
    })?;
    if args.poll_interval == 0 {
        return Err(Error::usage(
            "use --poll-interval 0: give at least 1 (milliseconds)",
        ));
    }
    serve::run(serve::Config {
        listen,
        token: args.token,
        runtime: args.common.runtime()?,
        watching: Watching {
            stall_after: Duration::from_secs(args.stall_after),
            poll: args.poll,
            poll_interval: Duration::from_millis(args.poll_interval),
        },
    })
}
