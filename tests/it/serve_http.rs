//! po-serve over real HTTP: the pages, the event streams after real
//! `po-status set` runs, escaping, the token, the host check and paths that
//! try to leave the runtime root.

use crate::serve_support;
use crate::watch_support as support;

use std::process::Command;

use po::protocol::{State, store};
use serve_support::{Events, Server};
use support::*;

const TOKEN: &str = "0123456789abcdef-token";

/// Orchestration 1234: a completed task with a PR and metrics, a running
/// one (its liveness lock held by `guard`), an orphaned one, and a pending
/// one a launcher queued.
fn board(fx: &Fixture) -> (std::path::PathBuf, po::protocol::store::FileLock) {
    let dir = fx.orch("1234");
    let logs = fx.logs();
    task(&dir, 1, |s| {
        s.status = State::Completed;
        s.start_time = Some(ago(300));
        s.completion_time = Some(ago(100));
        s.phase = Some("Done".into());
        s.progress_percentage = Some(100);
        s.branch = Some("feat/issue-1234-agent-1".into());
        s.pr_number = Some(41);
        s.pr_url = Some("https://github.com/o/r/pull/41".into());
        s.metrics.cost_usd = Some(0.1234);
        s.metrics.turns = Some(17);
        s.metrics.input_tokens = Some(1000);
        s.metrics.output_tokens = Some(234);
        s.log_file = Some(logs.join("agent-1.log"));
    });
    std::fs::write(logs.join("agent-1.log"), "first line\nsecond line\n").unwrap();
    let a2 = task(&dir, 2, |s| {
        s.status = State::InProgress;
        s.start_time = Some(ago(60));
        s.phase = Some("Implementing".into());
        s.progress_percentage = Some(20);
        s.log_file = Some(logs.join("agent-2.log"));
        s.extra.insert("node".into(), "n07".into());
    });
    std::fs::write(logs.join("agent-2.log"), "working\n").unwrap();
    let guard = store::hold_liveness(&a2).unwrap().unwrap();
    task(&dir, 3, |s| {
        s.status = State::InProgress;
        s.start_time = Some(ago(90));
    });
    task(&dir, 4, |s| {
        s.extra.insert("launcher".into(), "slurm".into());
        s.extra.insert("job_id".into(), 56.into());
        s.extra.insert("queued".into(), "Resources".into());
    });
    (dir, guard)
}

#[test]
fn the_pages_list_orchestrations_and_a_tile_per_task_and_write_nothing() {
    let fx = Fixture::new();
    let (_dir, _guard) = board(&fx);
    let before = fingerprint(fx.tmp.path());
    let srv = Server::start(&fx.root, &[], &[]);

    let index = srv.get("/");
    assert_eq!(index.status, 200);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        index.body.contains("<a href=\"/o/1234\">1234</a>"),
        "{}",
        index.body
    );
    assert!(index.body.contains("Orchestration 1234 title"));
    assert!(
        index
            .body
            .contains("<span class=\"chip completed\">1 completed</span>")
    );
    assert!(
        index
            .body
            .contains("<span class=\"chip in_progress\">2 in progress</span>")
    );
    assert!(
        index
            .body
            .contains("<span class=\"chip orphaned\">1 orphaned</span>")
    );

    let page = srv.get("/o/1234");
    assert_eq!(page.status, 200);
    let b = &page.body;
    assert_eq!(b.matches("<article class=\"tile ").count(), 4, "{b}");
    for n in 1..=4 {
        assert!(b.contains(&format!("id=\"t-agent-{n}\"")), "{b}");
    }
    // Metrics, branch, PR and log of the completed task.
    for needle in [
        "<dd>$0.12</dd>",
        "<dd>17</dd>",
        "<dd>1,234</dd>",
        "<code class=\"branch\">feat/issue-1234-agent-1</code>",
        "<a href=\"https://github.com/o/r/pull/41\" rel=\"noreferrer noopener\" target=\"_blank\">PR #41</a>",
        "<a class=\"log\" href=\"/o/1234/log/agent-1\">log</a>",
        // The running task: phase, progress, a duration that ticks.
        "<span>Implementing</span><span class=\"pct\">20%</span></div><progress max=\"100\" value=\"20\">",
        "data-start=",
        // What readers infer, and what a launcher says.
        "class=\"tile in_progress is-orphaned\" id=\"t-agent-3\"",
        "orphaned: no process holds this task",
        "class=\"tile pending is-queued\" id=\"t-agent-4\"",
        "queued: Resources (job 56)",
        // Where the running task runs.
        "<dt>node</dt><dd>n07</dd>",
        // The timeline: a bar per started task.
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\"",
    ] {
        assert!(b.contains(needle), "missing {needle:?} in:\n{b}");
    }
    assert!(
        b.contains("class=\"tile in_progress is-in_progress\" id=\"t-agent-2\""),
        "{b}"
    );
    assert_eq!(b.matches("<rect ").count(), 3, "{b}");
    assert_eq!(
        srv.get("/o/1234/timeline.svg").header("content-type"),
        Some("image/svg+xml")
    );
    for asset in ["/assets/app.css", "/assets/app.js"] {
        let r = srv.get(asset);
        assert_eq!(r.status, 200, "{asset}");
        assert!(r.body.len() > 500, "{asset}");
    }
    assert!(srv.get("/assets/app.css").body.contains("--completed: #"));
    // The strict policy: nothing but po's own script and style.
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));

    let log = srv.get("/o/1234/log/agent-1");
    assert_eq!(log.status, 200);
    assert!(
        log.body.contains(">first line\nsecond line\n</pre>"),
        "{}",
        log.body
    );
    assert!(
        log.body
            .contains("data-events=\"/events/log/1234/agent-1?from=23\"")
    );

    assert_eq!(srv.get("/o/4321").status, 404);
    assert_eq!(srv.get("/nothing").status, 404);
    let post = srv.request(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    drop(srv);
    assert_eq!(
        before,
        fingerprint(fx.tmp.path()),
        "po-serve wrote something"
    );
}

#[test]
fn the_event_stream_delivers_a_po_status_set() {
    let fx = Fixture::new();
    let (dir, _guard) = board(&fx);
    let srv = Server::start(&fx.root, &[], &[]);
    let ev = srv.events("/events/o/1234", &[]);
    assert_eq!(ev.status, 200);
    assert!(
        ev.headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream"))
    );
    let first = Events::parts(&ev.next("the initial board"));
    assert!(first["grid"].as_str().unwrap().contains("id=\"t-agent-2\""));

    po_status_set(
        &dir.join("agent-2.status.json"),
        &["--phase", "Running tests", "--progress", "45"],
    );
    let update = ev.until("agent-2's new phase", |e| {
        Events::parts(e)
            .get("t-agent-2")
            .is_some_and(|t| t.as_str().unwrap().contains("Running tests"))
    });
    let parts = Events::parts(&update);
    let tile = parts["t-agent-2"].as_str().unwrap();
    assert!(
        tile.contains("<progress max=\"100\" value=\"45\">"),
        "{tile}"
    );
    assert!(
        !parts.contains_key("t-agent-1"),
        "an unchanged tile is not sent again"
    );

    // A new task replaces the grid; the index stream sees it too.
    let idx = srv.events("/events", &[]);
    idx.next("the initial list");
    task(&dir, 5, |s| s.title = "Fifth".into());
    let grid = ev.until("the grid with agent-5", |e| {
        Events::parts(e)
            .get("grid")
            .is_some_and(|g| g.as_str().unwrap().contains("t-agent-5"))
    });
    assert!(
        Events::parts(&grid)["grid"]
            .as_str()
            .unwrap()
            .contains("Fifth")
    );
    idx.until("the list with 5 tasks", |e| {
        Events::parts(e)["orchs"]
            .as_str()
            .unwrap()
            .contains("<td>5 <span")
    });
}

#[test]
fn the_log_view_follows_the_log_as_it_grows() {
    let fx = Fixture::new();
    let (_dir, _guard) = board(&fx);
    let srv = Server::start(&fx.root, &[], &[]);
    let log = fx.root.join("logs/session/agent-2.log");
    let ev = srv.events("/events/log/1234/agent-2?from=8", &[]);
    assert_eq!(ev.status, 200);
    let line = b"\x1b[32mgreen\x1b[0m <b>bold</b>\n";
    let end = (8 + line.len()).to_string();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, line).unwrap();
    let e = ev.next("the appended line");
    assert_eq!(
        (e.name.as_str(), e.id.as_deref()),
        ("append", Some(end.as_str()))
    );
    assert_eq!(
        serde_json::from_str::<String>(&e.data).unwrap(),
        "green <b>bold</b>\n",
        "text, escape sequences dropped (the page adds it as text)"
    );
    // A reconnecting browser resumes from the last event id.
    let again = srv.events("/events/log/1234/agent-2?from=0", &["Last-Event-ID: 8"]);
    let e = again.next("the line after byte 8");
    assert_eq!(e.id.as_deref(), Some(end.as_str()));
}

#[test]
fn task_text_is_escaped_everywhere() {
    let fx = Fixture::new();
    let dir = fx.orch("xss");
    store::update_status(&task(&dir, 1, |_| {}), |s| {
        s.title = "<script>alert(1)</script>".into();
        s.status = State::Failed;
        s.start_time = Some(ago(20));
        s.completion_time = Some(ago(10));
        s.phase = Some("<img src=x onerror=alert(2)>".into());
        s.error = Some("boom </p><script>alert(3)</script>".into());
        s.branch = Some("b\"><script>alert(4)</script>".into());
        s.pr_number = Some(7);
        s.pr_url = Some("javascript:alert(5)".into());
        s.task_id = Some("<i>label</i>".into());
        Ok(())
    })
    .unwrap();
    let mut o: po::protocol::Orchestration =
        store::read_json(&dir.join("orchestration.json")).unwrap();
    o.title = Some("<script>alert(6)</script>".into());
    store::write_json(&dir.join("orchestration.json"), &o).unwrap();
    let srv = Server::start(&fx.root, &[], &[]);
    let ev = srv.events("/events/o/xss", &[]);
    let parts = Events::parts(&ev.next("the board"));
    let streamed: String = parts
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for (what, body) in [
        ("index", srv.get("/").body),
        ("board", srv.get("/o/xss").body),
        ("timeline", srv.get("/o/xss/timeline.svg").body),
        ("stream", streamed),
    ] {
        assert!(!body.contains("<script>alert"), "{what}: {body}");
        assert!(!body.contains("<img src=x"), "{what}: {body}");
        assert!(!body.contains("<i>label"), "{what}: {body}");
        assert!(!body.contains("href=\"javascript:"), "{what}: {body}");
        assert!(body.contains("&lt;script&gt;alert("), "{what}: {body}");
    }
    assert!(
        srv.get("/o/xss")
            .body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
}

#[test]
fn a_token_is_checked_on_every_request() {
    let fx = Fixture::new();
    let (_dir, _guard) = board(&fx);
    let srv = Server::start(&fx.root, &[], &[("PO_SERVE_TOKEN", TOKEN)]);
    for path in [
        "/",
        "/o/1234",
        "/assets/app.js",
        "/o/1234/log/agent-1",
        "/events",
        "/nothing",
    ] {
        let r = srv.get(path);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert!(!r.body.contains("agent-1"), "{path}");
    }
    let wrong = srv.get_with("/", &["Authorization: Bearer 0123456789abcdef-tokeN"]);
    assert_eq!(wrong.status, 401);
    assert_eq!(srv.get(&format!("/?token={}x", TOKEN)).status, 401);
    let bearer = srv.get_with("/o/1234", &[&format!("Authorization: Bearer {TOKEN}")]);
    assert_eq!(bearer.status, 200);
    assert!(bearer.body.contains("href=\"/o/1234/log/agent-1\""));
    // A browser's token comes in the URL and goes on in every link.
    let browser = srv.get(&format!("/o/1234?token={TOKEN}"));
    assert_eq!(browser.status, 200);
    let q = format!("?token={TOKEN}");
    for link in [
        format!("href=\"/o/1234/log/agent-1{q}\""),
        format!("href=\"/assets/app.css{q}\""),
        format!("src=\"/assets/app.js{q}\""),
        format!("data-events=\"/events/o/1234{q}\""),
    ] {
        assert!(
            browser.body.contains(&link),
            "missing {link} in {}",
            browser.body
        );
    }
    let ev = srv.events(&format!("/events/o/1234{q}"), &[]);
    assert_eq!(ev.status, 200);
    Events::parts(&ev.next("the board"));
    assert_eq!(srv.events("/events/o/1234", &[]).status, 401);
    // With a token, any Host may ask (the token is the check).
    let other_host = srv.get_with(
        "/",
        &[
            "Host: dashboard.example",
            &format!("Authorization: Bearer {TOKEN}"),
        ],
    );
    assert_eq!(other_host.status, 200);
}

#[test]
fn without_a_token_only_requests_for_localhost_are_answered() {
    let fx = Fixture::new();
    board(&fx);
    let srv = Server::start(&fx.root, &[], &[]);
    assert_eq!(srv.get_with("/", &["Host: 127.0.0.1:8731"]).status, 200);
    let rebound = srv.get_with("/", &["Host: attacker.example:8731"]);
    assert_eq!(rebound.status, 421);
    assert!(!rebound.body.contains("1234"));
    assert_eq!(
        srv.request("GET / HTTP/1.0\r\n\r\n").status,
        421,
        "no Host at all"
    );
}

#[test]
fn a_network_address_needs_a_token_and_a_short_one_is_refused() {
    let fx = Fixture::new();
    let serve = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_po-serve"));
        c.arg("--runtime-dir")
            .arg(&fx.root)
            .env_remove("PO_SERVE_TOKEN");
        c
    };
    let out = serve().args(["--listen", "0.0.0.0:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a loopback address") && err.contains("--token"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let short = serve()
        .args(["--listen", "0.0.0.0:0", "--token", "short"])
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 16 characters"));
    let bad = serve().args(["--listen", "localhost"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(64));

    // With a token it serves, and checks it (asked over loopback).
    let mut c = serve();
    c.args(["--listen", "0.0.0.0:0"])
        .env("PO_SERVE_TOKEN", TOKEN);
    let mut srv = Server::spawn(c);
    srv.addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    assert_eq!(srv.get("/").status, 401);
    assert_eq!(srv.get(&format!("/?token={TOKEN}")).status, 200);
}

#[test]
fn paths_cannot_leave_the_runtime_root() {
    let fx = Fixture::new();
    let (dir, _guard) = board(&fx);
    let secret = fx.tmp.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET\n").unwrap();
    // A status file that names a log outside the root, and a log that is a
    // link out of it.
    task(&dir, 6, |s| s.log_file = Some(secret.clone()));
    let link = fx.root.join("logs/session/agent-7.log");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    task(&dir, 7, |s| s.log_file = Some(link.clone()));
    let srv = Server::start(&fx.root, &[], &[]);
    let raw = |path: &str| {
        srv.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        ))
    };
    for path in [
        "/o/../../secret.txt",
        "/o/1234/log/../../../secret.txt",
        "/o/%2e%2e/log/agent-1",
        "/o/1234/log/..%2F..%2Fsecret.txt",
        "/assets/../../secret.txt",
        "/o/.hidden",
        "/events/log/1234/%2e%2e%2fagent-1",
        "//etc/passwd",
    ] {
        let r = raw(path);
        assert!(r.status == 400 || r.status == 404, "{path}: {}", r.status);
        assert!(
            !r.body.contains("TOP-SECRET") && !r.body.contains("root:"),
            "{path}"
        );
    }
    assert_eq!(raw("/o/1234/log/agent-9").status, 404);
    for agent in ["agent-6", "agent-7"] {
        let page = srv.get(&format!("/o/1234/log/{agent}"));
        assert_eq!(page.status, 200);
        assert!(!page.body.contains("TOP-SECRET"), "{agent}: {}", page.body);
        assert!(
            page.body.contains("lies outside the runtime root"),
            "{agent}: {}",
            page.body
        );
        let ev = srv.events(&format!("/events/log/1234/{agent}"), &[]);
        let e = ev.next("the refusal");
        assert_eq!(e.name, "note", "{e:?}");
        assert!(!e.data.contains("TOP-SECRET"));
    }
}

/// The board shows the spend against the budget, and a tile whose agent
/// reported tokens but no cost shows `—` for its cost, never `$0.00`.
#[test]
fn the_board_shows_spend_against_the_budget_and_no_made_up_cost() {
    let fx = Fixture::new();
    let (dir, _) = spending(&fx, "31");
    set_budget(&dir, 0.05);
    let srv = Server::start(&fx.root, &[], &[]);
    let index = srv.get("/").body;
    assert!(index.contains("<td>$0.0268 / $0.0500</td>"), "{index}");
    let page = srv.get("/o/31").body;
    assert!(
        page.contains(
            "spent $0.0168 + $0.0100 running of $0.0500 budget (1 task reported no cost)"
        ),
        "{page}"
    );
    let tile = |n: u32| {
        let start = page.find(&format!("id=\"t-agent-{n}\"")).unwrap();
        let end = page[start..].find("</article>").unwrap();
        page[start..start + end].to_string()
    };
    assert!(
        tile(1).contains("<dt>cost</dt><dd>$0.0168</dd>"),
        "{}",
        tile(1)
    );
    let t3 = tile(3);
    assert!(t3.contains("<dt>cost</dt><dd>—</dd>"), "{t3}");
    assert!(t3.contains("<dt>tokens</dt><dd>7,000</dd>"), "{t3}");
    assert!(!page.contains("$0.00<"), "{page}");
}

/// Keep-alive and pipelining: requests on one connection are answered in
/// order; HEAD gets the head alone; what is not an HTTP/1.x request head is
/// refused with the status that says why, and the connection closed.
#[test]
fn requests_on_one_connection_are_answered_in_order_and_bad_heads_refused() {
    use std::io::{Read, Write};
    let fx = Fixture::new();
    let (_dir, _guard) = board(&fx);
    let srv = Server::start(&fx.root, &[], &[]);
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(serve_support::HANG_GUARD)).unwrap();
    s.write_all(
        b"GET /o/1234 HTTP/1.1\r\nHost: localhost\r\n\r\n\
          HEAD /assets/app.css HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /nothing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let statuses: Vec<&str> = all
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &all[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "200", "404"], "{all}");
    let board_at = all.find("id=\"t-agent-1\"").expect("the board came first");
    assert!(board_at < all.find("HTTP/1.1 404").unwrap());
    // The HEAD answer has a length but no body: the next answer follows it.
    let head = &all[all
        .find("HTTP/1.1 200 OK\r\nContent-Type: text/css")
        .unwrap()..];
    let end = head.find("\r\n\r\n").unwrap() + 4;
    assert!(head[end..].starts_with("HTTP/1.1 404"), "{head}");
    assert!(all.contains("Connection: keep-alive") && all.contains("Connection: close"));

    for (raw, status) in [
        ("GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505),
        ("GET /\r\nHost: localhost\r\n\r\n", 400),
        (
            "GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n",
            400,
        ),
        (
            "GET / HTTP/1.1\r\nHost: localhost\r\n folded: x\r\n\r\n",
            400,
        ),
    ] {
        assert_eq!(srv.request(raw).status, status, "{raw:?}");
    }
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert_eq!(srv.request(&huge).status, 431);
    assert_eq!(srv.get("/").status, 200, "still answering");
}
