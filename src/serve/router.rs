//! From a request to a response: the token and host checks every request
//! passes, then the routes. Paths name things (an orchestration by its
//! directory's name, a task by its agent id) that are looked up among what
//! the hub read; no path from a URL ever reaches the filesystem.
//!
//! ```text
//! /                                  the orchestrations list
//! /o/<id>                            one orchestration's board
//! /o/<id>/timeline.svg               its timeline
//! /o/<id>/log/<agent>                a task's log, followed
//! /events, /events/o/<id>, /events/log/<id>/<agent>   their event streams
//! /assets/app.css, /assets/app.js    the page's style and script
//! ```

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::auth::{self, Access};
use super::http::Request;
use super::hub::{Hub, Watching};
use super::logtail::Tail;
use super::page::{self, Links, segment_ok};
use super::sse::{self, Client};
use crate::report::timeline;

/// At most this many event streams at once; more are refused with 503.
pub const MAX_STREAMS: usize = 64;

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

/// Content security policy: nothing but po's own script, style and streams.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The headers of every page.
pub const PAGE_HEADERS: [(&str, &str); 5] = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", CSP),
];

/// What every request handler shares.
pub struct App {
    pub hub: Arc<Hub>,
    pub root: PathBuf,
    pub token: Option<String>,
    pub watching: Watching,
    pub streams: AtomicUsize,
}

/// An event stream to run on the connection: it writes the whole response.
pub type StreamJob = Box<dyn FnOnce(&mut dyn Client, &App) -> io::Result<()> + Send>;

/// The answer to a request.
pub enum Reply {
    Page(Page),
    /// An event stream, holding one of the [`MAX_STREAMS`] slots until it ends.
    Stream(StreamSlot, StreamJob),
}

/// A whole response with its body.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub extra: Vec<(&'static str, &'static str)>,
}

/// One of the [`MAX_STREAMS`] event-stream slots, freed when dropped.
pub struct StreamSlot(Arc<App>);

impl StreamSlot {
    fn take(app: &Arc<App>) -> Option<StreamSlot> {
        if app.streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
            app.streams.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(StreamSlot(app.clone()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::SeqCst);
    }
}

const HTML: &str = "text/html; charset=utf-8";

fn page(status: u16, content_type: &'static str, body: String) -> Reply {
    Reply::Page(Page {
        status,
        content_type,
        body,
        extra: Vec::new(),
    })
}

/// A short error page.
pub fn error(status: u16, title: &str, message: &str, links: &Links) -> Reply {
    page(status, HTML, page::error_page(title, message, links))
}

/// A request target split into its path segments and its query, or `None`
/// when a segment is not a plain name (`[A-Za-z0-9._-]`, no leading dot):
/// what a URL may name is looked up among what the hub read, never joined
/// to a path.
pub fn parse_target(target: &str) -> Option<(Vec<&str>, &str)> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segs.iter().any(|s| !s.is_empty() && !segment_ok(s)) {
        return None;
    }
    Some((segs, query))
}

/// Answer one request.
pub fn handle(app: &Arc<App>, req: &Request) -> Reply {
    let none = Links::default();
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        let msg = "po-serve only reads: use GET or HEAD";
        return error(405, "Method not allowed", msg, &none);
    }
    let query = req.target.split_once('?').map_or("", |(_, q)| q);
    let query_token = auth::query_param(query, "token");
    let access = auth::access(
        app.token.as_deref(),
        req.header("Authorization"),
        query_token.as_deref(),
    );
    if access == Access::Denied {
        let msg = "pass the token as `Authorization: Bearer TOKEN` or `?token=TOKEN`";
        return Reply::Page(Page {
            status: 401,
            content_type: HTML,
            body: page::error_page("Token required", msg, &none),
            extra: vec![("WWW-Authenticate", "Bearer")],
        });
    }
    if access == Access::Open && !req.header("Host").is_some_and(auth::loopback_host) {
        let msg = "without a token, po-serve answers only requests addressed to localhost";
        return error(421, "Misdirected request", msg, &none);
    }
    let links = match (access, query_token) {
        (Access::Query, Some(t)) => Links {
            token_query: format!("token={}", auth::percent_encode(&t)),
        },
        _ => Links::default(),
    };
    let Some((segs, query)) = parse_target(&req.target) else {
        let msg = "a path here is made of plain names ([A-Za-z0-9._-], no leading dot)";
        return error(400, "Bad path", msg, &links);
    };
    route(app, req, &segs, query, links)
}

fn route(app: &Arc<App>, req: &Request, segs: &[&str], query: &str, links: Links) -> Reply {
    let snap = app.hub.current();
    match segs {
        [""] => page(200, HTML, page::index_page(&snap, &links)),
        ["assets", "app.css"] => {
            let css = timeline::palette_css() + CSS;
            page(200, "text/css; charset=utf-8", css)
        }
        ["assets", "app.js"] => page(200, "text/javascript; charset=utf-8", JS.to_string()),
        ["o", key, rest @ ..] => {
            let Some(v) = snap.find(key) else {
                let msg = format!("no orchestration {key} under the runtime root");
                return error(404, "Not found", &msg, &links);
            };
            match rest {
                [] => page(
                    200,
                    HTML,
                    page::board_page(v, crate::timefmt::now(), &links),
                ),
                ["timeline.svg"] => page(200, "image/svg+xml", page::timeline_svg(v, snap.time)),
                ["log", agent] => log_page(app, v, agent, &links),
                _ => error(404, "Not found", "no such page", &links),
            }
        }
        ["events"] => stream(app, req, move |w, app| sse::index(w, &app.hub, &links)),
        ["events", "o", key] => {
            let key = key.to_string();
            stream(app, req, move |w, app| {
                sse::board(w, &app.hub, &key, &links)
            })
        }
        ["events", "log", key, agent] => {
            let Some(log) = snap
                .find(key)
                .and_then(|v| v.tasks().find(|t| t.status.agent_id == *agent))
                .and_then(|t| t.status.log_file.clone())
            else {
                return error(404, "Not found", "no such task, or it has no log", &links);
            };
            let from = req
                .header("Last-Event-ID")
                .map(str::to_string)
                .or_else(|| auth::query_param(query, "from"))
                .and_then(|f| f.trim().parse::<u64>().ok())
                .unwrap_or(0);
            stream(app, req, move |w, app| {
                sse::log(w, &log, &app.root, from, &app.watching)
            })
        }
        _ => error(404, "Not found", "no such page", &links),
    }
}

fn log_page(
    app: &Arc<App>,
    v: &crate::protocol::view::OrchestrationView,
    agent: &str,
    links: &Links,
) -> Reply {
    let Some(t) = v.tasks().find(|t| t.status.agent_id == agent) else {
        let msg = format!("no task {agent} in orchestration {}", v.id);
        return error(404, "Not found", &msg, links);
    };
    let tail = match &t.status.log_file {
        None => Err("This task has no log yet; it gets one when it starts.".to_string()),
        Some(p) => Tail::new(p, &app.root, 0)
            .tail()
            .map_err(|r| page::log_note(&r)),
    };
    page(200, HTML, page::log_page(v, t, tail, links))
}

/// An event stream, if one of the [`MAX_STREAMS`] slots is free.
fn stream(
    app: &Arc<App>,
    req: &Request,
    run: impl FnOnce(&mut dyn Client, &App) -> io::Result<()> + Send + 'static,
) -> Reply {
    if req.method == "HEAD" {
        return page(200, "text/event-stream", String::new());
    }
    let Some(slot) = StreamSlot::take(app) else {
        let msg = "too many open event streams; close some pages";
        return error(503, "Busy", msg, &Links::default());
    };
    Reply::Stream(slot, Box::new(run))
}
