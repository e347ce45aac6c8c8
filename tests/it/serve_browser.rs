//! po-serve in a real browser: headless Chromium loads the board, waits for
//! the tiles, sees a `po-status set` appear without a reload, shows hostile
//! task text as text, and leaves a screenshot under target/.
//!
//! It needs Chromium, so it is ignored unless asked for (`cargo test --
//! --include-ignored`); asked for without Chromium, it fails.

use crate::engines;
use crate::serve_support;
use crate::watch_support as support;

use po::protocol::{State, store};
use serde_json::json;
use serve_support::{Server, cdp};
use support::*;

#[test]
#[ignore = "needs chromium (apt-get install chromium)"]
fn the_board_updates_live_in_a_real_browser() {
    let chromium = cdp::find()
        .unwrap_or_else(|| panic!("chromium is not installed: this test {}", engines::CHROMIUM));
    let fx = Fixture::new();
    let dir = fx.orch("1234");
    let logs = fx.logs();
    task(&dir, 1, |s| {
        s.title = "Add the login form".into();
        s.status = State::Completed;
        s.start_time = Some(ago(400));
        s.completion_time = Some(ago(120));
        s.progress_percentage = Some(100);
        s.phase = Some("Done".into());
        s.branch = Some("feat/issue-1234-agent-1".into());
        s.pr_number = Some(41);
        s.pr_url = Some("https://github.com/o/r/pull/41".into());
        s.metrics.cost_usd = Some(0.42);
        s.metrics.turns = Some(23);
        s.metrics.input_tokens = Some(18_000);
        s.metrics.output_tokens = Some(2_100);
    });
    let running = task(&dir, 2, |s| {
        s.title = "Write the session store".into();
        s.status = State::InProgress;
        s.start_time = Some(ago(200));
        s.phase = Some("Implementing".into());
        s.progress_percentage = Some(30);
        s.log_file = Some(logs.join("agent-2.log"));
    });
    std::fs::write(logs.join("agent-2.log"), "working\n").unwrap();
    let _live = store::hold_liveness(&running).unwrap().unwrap();
    task(&dir, 3, |s| {
        s.title = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>".into();
    });

    let srv = Server::start(&fx.root, &[], &[]);
    let mut browser = cdp::Browser::launch(&chromium);
    let page = browser.open(&format!("http://{}/o/1234", srv.addr));
    browser.wait_for(
        &page,
        "three tiles",
        "document.querySelectorAll('article.tile').length === 3",
    );
    // The stream is open before the change is made.
    browser.wait_for(
        &page,
        "the live dot",
        "document.getElementById('live')?.classList.contains('off') === false",
    );

    po_status_set(
        &running,
        &["--phase", "Running the browser tests", "--progress", "70"],
    );
    browser.wait_for(
        &page,
        "agent-2's new phase",
        "document.querySelector('#t-agent-2 .phase').textContent.includes('Running the browser tests')",
    );
    assert_eq!(
        browser.eval(&page, "document.querySelector('#t-agent-2 progress').value"),
        json!(70)
    );
    // Hostile text is text: no element made from it, no script run.
    assert_eq!(
        browser.eval(&page, "document.querySelector('#t-agent-3 h3').textContent"),
        json!("<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>")
    );
    assert_eq!(
        browser.eval(&page, "typeof window.__xss"),
        json!("undefined")
    );
    assert_eq!(
        browser.eval(
            &page,
            "document.querySelectorAll('main img, main script').length"
        ),
        json!(0)
    );
    // The timeline has a bar per started task.
    assert_eq!(
        browser.eval(&page, "document.querySelectorAll('#timeline rect').length"),
        json!(2)
    );

    let png = browser.screenshot(&page);
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("po-serve-board.png");
    std::fs::write(&out, &png).unwrap();
    println!("screenshot: {}", out.display());

    // The log view follows the log.
    let log = browser.open(&format!("http://{}/o/1234/log/agent-2", srv.addr));
    browser.wait_for(
        &log,
        "the log's tail",
        "document.getElementById('log')?.textContent === 'working\\n'",
    );
    browser.wait_for(
        &log,
        "the live dot",
        "document.getElementById('live')?.classList.contains('off') === false",
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(logs.join("agent-2.log"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"<b>more</b>\n").unwrap();
    browser.wait_for(
        &log,
        "the appended line",
        "document.getElementById('log')?.textContent === 'working\\n<b>more</b>\\n'",
    );
}
