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

use std::io::{Cursor, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tiny_http::{Header, Method, Request, Response};

use super::auth::{self, Access};
use super::hub::{Hub, Watching};
use super::logtail::Tail;
use super::page::{self, Links, segment_ok};
use super::sse;
use crate::report::timeline;

/// At most this many event streams at once; more are refused with 503.
pub const MAX_STREAMS: usize = 64;

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

/// Content security policy: nothing but po's own script, style and streams.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What every request handler shares.
pub struct App {
    pub hub: Arc<Hub>,
    pub root: PathBuf,
    pub token: Option<String>,
    pub watching: Watching,
    pub streams: AtomicUsize,
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("header names and values are ASCII")
}

fn request_header<'a>(req: &'a Request, name: &'static str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

fn respond(req: Request, status: u16, content_type: &str, body: String, extra: &[(&str, &str)]) {
    let len = body.len();
    let mut resp = Response::new(
        status.into(),
        Vec::new(),
        Cursor::new(body.into_bytes()),
        Some(len),
        None,
    );
    for (k, v) in [
        ("Content-Type", content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", CSP),
    ]
    .iter()
    .chain(extra)
    {
        resp.add_header(header(k, v));
    }
    let _ = req.respond(resp);
}

const HTML: &str = "text/html; charset=utf-8";

fn error(req: Request, status: u16, title: &str, message: &str, links: &Links) {
    let body = page::error_page(title, message, links);
    respond(req, status, HTML, body, &[]);
}

/// Answer one request.
pub fn handle(app: &Arc<App>, req: Request) {
    let url = req.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let none = Links::default();
    if !matches!(req.method(), Method::Get | Method::Head) {
        let msg = "po-serve only reads: use GET or HEAD";
        return error(req, 405, "Method not allowed", msg, &none);
    }
    let query_token = auth::query_param(query, "token");
    let access = auth::access(
        app.token.as_deref(),
        request_header(&req, "Authorization"),
        query_token.as_deref(),
    );
    if access == Access::Denied {
        let msg = "pass the token as `Authorization: Bearer TOKEN` or `?token=TOKEN`";
        let body = page::error_page("Token required", msg, &none);
        return respond(req, 401, HTML, body, &[("WWW-Authenticate", "Bearer")]);
    }
    if access == Access::Open && !request_header(&req, "Host").is_some_and(auth::loopback_host) {
        let msg = "without a token, po-serve answers only requests addressed to localhost";
        return error(req, 421, "Misdirected request", msg, &none);
    }
    let links = match (access, query_token) {
        (Access::Query, Some(t)) => Links {
            token_query: format!("token={}", auth::percent_encode(&t)),
        },
        _ => Links::default(),
    };
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segs.iter().any(|s| !s.is_empty() && !segment_ok(s)) {
        let msg = "a path here is made of plain names ([A-Za-z0-9._-], no leading dot)";
        return error(req, 400, "Bad path", msg, &links);
    }
    route(app, req, &segs, query, links);
}

fn route(app: &Arc<App>, req: Request, segs: &[&str], query: &str, links: Links) {
    let snap = app.hub.current();
    match segs {
        [""] => respond(req, 200, HTML, page::index_page(&snap, &links), &[]),
        ["assets", "app.css"] => {
            let css = timeline::palette_css() + CSS;
            respond(req, 200, "text/css; charset=utf-8", css, &[]);
        }
        ["assets", "app.js"] => respond(
            req,
            200,
            "text/javascript; charset=utf-8",
            JS.to_string(),
            &[],
        ),
        ["o", key, rest @ ..] => {
            let Some(v) = snap.find(key) else {
                let msg = format!("no orchestration {key} under the runtime root");
                return error(req, 404, "Not found", &msg, &links);
            };
            match rest {
                [] => {
                    let page = page::board_page(v, crate::timefmt::now(), &links);
                    respond(req, 200, HTML, page, &[]);
                }
                ["timeline.svg"] => {
                    let svg = page::timeline_svg(v, snap.time);
                    respond(req, 200, "image/svg+xml", svg, &[]);
                }
                ["log", agent] => log_page(app, req, v, agent, &links),
                _ => error(req, 404, "Not found", "no such page", &links),
            }
        }
        ["events"] => stream(app, req, move |w, app| sse::index(w, &app.hub, &links)),
        ["events", "o", key] => {
            let key = key.to_string();
            stream(app, req, move |w, app| {
                sse::board(w, &app.hub, &key, &links)
            });
        }
        ["events", "log", key, agent] => {
            let Some(log) = snap
                .find(key)
                .and_then(|v| v.tasks().find(|t| t.status.agent_id == *agent))
                .and_then(|t| t.status.log_file.clone())
            else {
                return error(
                    req,
                    404,
                    "Not found",
                    "no such task, or it has no log",
                    &links,
                );
            };
            let from = request_header(&req, "Last-Event-ID")
                .map(str::to_string)
                .or_else(|| auth::query_param(query, "from"))
                .and_then(|f| f.trim().parse::<u64>().ok())
                .unwrap_or(0);
            stream(app, req, move |w, app| {
                sse::log(w, &log, &app.root, from, &app.watching)
            });
        }
        _ => error(req, 404, "Not found", "no such page", &links),
    }
}

fn log_page(
    app: &Arc<App>,
    req: Request,
    v: &crate::protocol::view::OrchestrationView,
    agent: &str,
    links: &Links,
) {
    let Some(t) = v.tasks().find(|t| t.status.agent_id == agent) else {
        let msg = format!("no task {agent} in orchestration {}", v.id);
        return error(req, 404, "Not found", &msg, links);
    };
    let tail = match &t.status.log_file {
        None => Err("This task has no log yet; it gets one when it starts.".to_string()),
        Some(p) => Tail::new(p, &app.root, 0)
            .tail()
            .map_err(|r| page::log_note(&r)),
    };
    respond(req, 200, HTML, page::log_page(v, t, tail, links), &[]);
}

/// Run an event stream on a thread of its own, up to [`MAX_STREAMS`].
fn stream(
    app: &Arc<App>,
    req: Request,
    run: impl FnOnce(&mut dyn Write, &App) -> std::io::Result<()> + Send + 'static,
) {
    if *req.method() == Method::Head {
        return respond(req, 200, "text/event-stream", String::new(), &[]);
    }
    if app.streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        app.streams.fetch_sub(1, Ordering::SeqCst);
        let msg = "too many open event streams; close some pages";
        return error(req, 503, "Busy", msg, &Links::default());
    }
    let shared = app.clone();
    let mut w = req.into_writer();
    let spawned = std::thread::Builder::new()
        .name("po-serve-stream".into())
        .spawn(move || {
            let _ = run(&mut *w, &shared);
            shared.streams.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        app.streams.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!("failed to start a stream thread: {e}");
    }
}
