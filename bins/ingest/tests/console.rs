//! The operator console in a real browser: Chromium driven over WebDriver
//! (chromedriver) against the real `tributary-ingest` binary. With
//! `TRIBUTARY_SCREENSHOTS=1`, each page is saved as a screenshot into
//! `docs/console/`, which docs/console.md shows.
//!
//! Needs `chromium` and `chromedriver` on PATH (`.ci/setup-browser.sh`
//! installs them in CI). Outside CI, without them, the browser test says so
//! and passes; in CI a missing browser fails it.

mod process;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use process::{ADMIN, ConfigLines, free_port, start, wait_ready, write_config};
use serde_json::json;

/// How long any wait in these tests may take before the test fails. Waits
/// end as soon as their condition holds; nothing asserts a duration.
const DEADLINE: Duration = Duration::from_secs(15);

const TOKEN: &str = "seg_console_0123456789abcdef";

const WRITE_KEY: &str = "wk_console_0123456789abcdef";

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Chromium and chromedriver, or `None` (outside CI) when either is missing.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = on_path("chromium").or_else(|| on_path("chromium-browser"));
    let driver = on_path("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("chromium and chromedriver are needed in CI (.ci/setup-browser.sh)")
        }
        _ => {
            eprintln!("chromium or chromedriver not on PATH: console browser test skipped");
            None
        }
    }
}

/// The service with a Segment source whose `Signed Up` triggers a workflow
/// (local sink), and an admin token, so the console is on.
struct Service {
    base: String,
    dir: tempfile::TempDir,
    _child: Killed,
}

async fn service() -> Service {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        dir.path(),
        port,
        TOKEN,
        ConfigLines {
            mapping: Some(""),
            environment: &format!("write_key = \"{WRITE_KEY}\""),
            // A second environment to promote to.
            server: "\n[environments.production]",
        },
    );
    let child = Killed(start(&config));
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&reqwest::Client::new(), &base).await;
    Service {
        base,
        dir,
        _child: child,
    }
}

/// A browser session on a fresh profile; chromedriver stops with it.
struct Browser {
    client: Client,
    _driver: Killed,
    _profile: tempfile::TempDir,
}

async fn open_browser(chromium: &Path, driver: &Path, extra_args: &[&str]) -> Browser {
    let port = free_port();
    let driver = Killed(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + DEADLINE;
    while http.get(format!("{url}/status")).send().await.is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ]
    .iter()
    .chain(extra_args)
    .map(|a| (*a).to_owned())
    .collect();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({"binary": chromium, "args": args}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&url)
        .await
        .expect("a WebDriver session");
    Browser {
        client,
        _driver: driver,
        _profile: profile,
    }
}

/// Saves the page as `docs/console/{name}.png` when `TRIBUTARY_SCREENSHOTS=1`
/// (docs/console.md says when to refresh them); otherwise the run leaves the
/// tree as it was.
async fn screenshot(client: &Client, name: &str) {
    if std::env::var("TRIBUTARY_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let png = client.screenshot().await.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn find(client: &Client, css: &str) -> Element {
    match client
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => element,
        Err(e) => panic!("no `{css}` on {}: {e}", path_of(client).await),
    }
}

async fn path_of(client: &Client) -> String {
    client.current_url().await.unwrap().path().to_owned()
}

/// Waits until the page's path is `path`.
async fn wait_for_path(client: &Client, path: &str) {
    let deadline = Instant::now() + DEADLINE;
    while path_of(client).await != path {
        assert!(
            Instant::now() < deadline,
            "still at {} instead of {path}",
            path_of(client).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn send_event(url: &str, event: &str, extra_header: Option<(&str, &str)>) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json");
    if let Some((name, value)) = extra_header {
        request = request.header(name, value);
    }
    let response = request
        .body(
            json!({
                "type": "track", "event": event, "userId": "u1",
                "properties": {"note": event},
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

/// The ids of the event log's rows, newest first. The live tail replaces
/// rows while they are read; a read that meets a replaced row starts again.
async fn event_rows(client: &Client) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    'read: loop {
        let mut ids = Vec::new();
        for row in client
            .find_all(Locator::Css("tbody#events tr[data-id]"))
            .await
            .unwrap()
        {
            match row.attr("data-id").await {
                Ok(Some(id)) => ids.push(id),
                _ => {
                    assert!(Instant::now() < deadline, "the event log never held still");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue 'read;
                }
            }
        }
        return ids;
    }
}

/// Waits, without reloading, until the event log shows `count` rows.
async fn wait_for_rows(client: &Client, count: usize) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let rows = event_rows(client).await;
        if rows.len() >= count {
            return rows;
        }
        assert!(Instant::now() < deadline, "the event log shows {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens the event log and marks the page, so a reload would be noticed.
async fn open_event_log(client: &Client, base: &str) {
    client
        .goto(&format!("{base}/console/events"))
        .await
        .unwrap();
    find(client, "tbody#events").await;
    client
        .execute("window.__notReloaded = true; return true;", vec![])
        .await
        .unwrap();
}

async fn still_the_same_page(client: &Client) -> bool {
    client
        .execute("return window.__notReloaded === true;", vec![])
        .await
        .unwrap()
        == json!(true)
}

/// Reloads an event's page until its first action has `status`.
async fn wait_for_action_status(client: &Client, status: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let found = client
            .find_all(Locator::Css(&format!(
                "section.action[data-status=\"{status}\"]"
            )))
            .await
            .unwrap();
        if !found.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no action became {status} on {}",
            path_of(client).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        client.refresh().await.unwrap();
    }
}

/// Waits until the element `css` has text containing `part`. An element
/// replaced while it is read (a navigation, a live update) is read again.
async fn wait_for_text(client: &Client, css: &str, part: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = find(client, css).await.text().await.unwrap_or_default();
        if text.contains(part) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "`{css}` never showed {part:?}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the element at `css` has the attribute `name`, and returns it.
async fn wait_for_attr(client: &Client, css: &str, name: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(Some(value)) = find(client, css).await.attr(name).await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "`{css}` never got the attribute {name}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends a `Plan Chosen` track event for `user` to a receive URL.
async fn send_plan_chosen(url: &str, message_id: &str) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(
            json!({
                "type": "track", "event": "Plan Chosen", "userId": "u1",
                "messageId": message_id, "properties": {"plan": "pro", "seats": 3},
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

/// Opens the newest event's page from the event log.
async fn open_newest_event(c: &Client, base: &str, rows: &[String]) {
    c.goto(&format!("{base}/console/events/{}", rows[0]))
        .await
        .unwrap();
    find(c, ".event-name").await;
}

#[tokio::test]
async fn an_operator_works_through_the_console_in_a_real_browser() {
    let Some((chromium, driver)) = browser() else {
        return;
    };
    let started = Instant::now();
    let svc = service().await;
    let browser = open_browser(&chromium, &driver, &[]).await;
    let c = &browser.client;
    let base = &svc.base;

    // Without a session every page leads to sign-in; a wrong token is refused.
    c.goto(&format!("{base}/console/sources")).await.unwrap();
    wait_for_path(c, "/console/sign-in").await;
    screenshot(c, "sign-in").await;
    find(c, "#token")
        .await
        .send_keys("adm_wrong_token")
        .await
        .unwrap();
    find(c, "form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let error = find(c, ".notice.error").await.text().await.unwrap();
    assert!(error.contains("not the admin token"), "{error}");
    assert_eq!(path_of(c).await, "/console/sign-in");

    // Signing in lands on the sources page. The file's source is marked
    // read-only; its receive URL is masked until copied (a recorded reveal).
    find(c, "#token").await.send_keys(ADMIN).await.unwrap();
    find(c, "form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_for_path(c, "/console/sources").await;
    assert!(!c.source().await.unwrap().contains(TOKEN));
    let marker = find(c, "section[data-source=\"web\"] .badge.file").await;
    assert!(marker.text().await.unwrap().contains("read-only"));

    // The write key stays hidden until revealed, then shows in place.
    let key = find(c, "#write-key-0-0").await;
    assert_ne!(key.text().await.unwrap(), WRITE_KEY);
    assert!(!c.source().await.unwrap().contains(WRITE_KEY));
    find(c, "#write-key-0-0 ~ form.reveal button")
        .await
        .click()
        .await
        .unwrap();
    wait_for_text(c, "#write-key-0-0", WRITE_KEY).await;
    assert_eq!(path_of(c).await, "/console/sources", "revealed in place");
    let copy_key = find(c, "button.copy[data-copy-target=\"write-key-0-0\"]").await;
    assert!(copy_key.is_displayed().await.unwrap());

    // Keyboard: the first Tab reaches the skip link, and focus is visible.
    c.goto(&format!("{base}/console/sources")).await.unwrap();
    find(c, "body")
        .await
        .send_keys(&fantoccini::key::Key::Tab.to_string())
        .await
        .unwrap();
    let focus = c
        .execute(
            "const e = document.activeElement; \
             return [e.className, getComputedStyle(e).outlineStyle];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focus, json!(["skip", "solid"]), "keyboard focus");

    // Create a source: its receive URL and write key are shown once, with a curl line.
    find(c, "#new-source").await.click().await.unwrap();
    wait_for_path(c, "/console/sources/new").await;
    find(c, "#f-key").await.send_keys("shop").await.unwrap();
    find(c, "#f-kind")
        .await
        .select_by_value("segment")
        .await
        .unwrap();
    find(c, "#f-name").await.send_keys("Shop").await.unwrap();
    find(c, "#f-description")
        .await
        .send_keys("The web shop")
        .await
        .unwrap();
    find(c, "#create-source").await.click().await.unwrap();
    let created_url = find(c, ".created-url")
        .await
        .attr("data-value")
        .await
        .unwrap()
        .unwrap();
    assert!(
        created_url.starts_with(&format!("{base}/integrations/receive/tok_")),
        "{created_url}"
    );
    let page = find(c, "main").await.text().await.unwrap();
    assert!(page.contains("curl -X POST"), "{page}");
    screenshot(c, "source-created").await;

    // Back on the sources page the URL is masked; "Copy receive URL" reveals it.
    c.goto(&format!("{base}/console/sources")).await.unwrap();
    let shop_url = "section[data-source=\"shop\"] .receive-url";
    assert!(!c.source().await.unwrap().contains(&created_url));
    find(
        c,
        "section[data-source=\"shop\"] form.reveal[data-copy] button",
    )
    .await
    .click()
    .await
    .unwrap();
    // The masked URL already reads `…/receive/tok_…`: the reveal is done
    // once the element carries the value.
    let receive_url = wait_for_attr(c, shop_url, "data-value").await;
    assert_eq!(
        receive_url, created_url,
        "the copied URL is the created one"
    );
    screenshot(c, "sources").await;

    // An event sent to the copied URL appears in the open log without a reload.
    open_event_log(c, base).await;
    send_plan_chosen(&receive_url, "shop-1").await;
    wait_for_rows(c, 1).await;
    assert!(still_the_same_page(c).await, "the log was reloaded");
    screenshot(c, "events").await;

    // From its event type, a mapping: pick the action, then fill the
    // recipients by clicking a field of the received event.
    c.goto(&format!(
        "{base}/console/sources/shop/environments/development"
    ))
    .await
    .unwrap();
    wait_for_text(c, "#event-types", "Plan Chosen").await;
    find(c, "#event-types a.map-event")
        .await
        .click()
        .await
        .unwrap();
    wait_for_path(
        c,
        "/console/sources/shop/environments/development/new-mapping",
    )
    .await;
    find(c, "#c-action")
        .await
        .select_by_value("trigger_workflow")
        .await
        .unwrap();
    find(c, "#choose").await.click().await.unwrap();
    find(c, "#mapping-form").await;
    find(c, "#f-p-workflow")
        .await
        .send_keys("plan-chosen")
        .await
        .unwrap();
    // A path that reaches nothing is warned about in the preview.
    find(c, "#f-p-actor")
        .await
        .send_keys("properties.nope")
        .await
        .unwrap();
    wait_for_text(c, "#preview .warning", "properties.nope").await;
    find(c, "#f-p-actor").await.clear().await.unwrap();
    find(c, "#f-p-actor").await.send_keys(" ").await.unwrap();
    find(c, "#f-p-recipients").await.click().await.unwrap();
    find(c, "button.pick[data-path=\"userId\"]")
        .await
        .click()
        .await
        .unwrap();
    let recipients = find(c, "#f-p-recipients")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(recipients.as_deref(), Some("userId"));
    // The picker works from the keyboard too: Enter on a field's button.
    find(c, "#f-p-tenant").await.click().await.unwrap();
    let pick = find(c, "button.pick[data-path=\"properties.plan\"]").await;
    c.execute("arguments[0].focus(); return true;", vec![json!(pick)])
        .await
        .unwrap();
    pick.send_keys(&fantoccini::key::Key::Enter.to_string())
        .await
        .unwrap();
    let tenant = find(c, "#f-p-tenant").await.prop("value").await.unwrap();
    assert_eq!(tenant.as_deref(), Some("properties.plan"));
    find(c, "#f-p-tenant").await.clear().await.unwrap();
    find(c, "#f-p-tenant").await.send_keys(" ").await.unwrap();
    // The preview follows the form: the warning goes once the path is gone.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let warnings = c.find_all(Locator::Css("#preview .warning")).await.unwrap();
        let text = find(c, "#preview").await.text().await.unwrap_or_default();
        if warnings.is_empty() && text.contains("planned") && !text.contains("tenant") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the preview did not follow the form: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recipients = wait_for_text(c, "#preview tr[data-parameter=\"recipients\"]", "\"u1\"").await;
    assert!(recipients.contains("userId"), "{recipients}");
    screenshot(c, "mapping").await;
    find(c, "#save-mapping").await.click().await.unwrap();
    wait_for_path(c, "/console/sources/shop/environments/development").await;
    find(c, "tr[data-mapping=\"Plan Chosen:trigger_workflow\"]").await;
    // Rehearse a payload on the environment page: its plan, nothing stored.
    find(c, "#f-body")
        .await
        .send_keys(
            r#"{"type":"track","event":"Plan Chosen","userId":"u9","properties":{"plan":"team"}}"#,
        )
        .await
        .unwrap();
    find(c, "#rehearse").await.click().await.unwrap();
    let rehearsal = wait_for_text(c, "#rehearsal", "planned").await;
    assert!(rehearsal.contains("trigger_workflow"), "{rehearsal}");
    assert!(rehearsal.contains("u9"), "{rehearsal}");
    screenshot(c, "rehearse").await;

    // The next event runs the action.
    open_event_log(c, base).await;
    let before = event_rows(c).await.len();
    send_plan_chosen(&receive_url, "shop-2").await;
    let rows = wait_for_rows(c, before + 1).await;
    open_newest_event(c, base, &rows).await;
    wait_for_action_status(c, "succeeded").await;
    let page = find(c, "main").await.text().await.unwrap();
    for part in [
        "Normalized event",
        "Raw body",
        "Headers",
        "trigger_workflow",
        "content-type",
    ] {
        assert!(page.contains(part), "{part} missing: {page}");
    }
    screenshot(c, "event-detail").await;

    // Dry run shows the plans; replay makes a new entry.
    find(c, "#dry-run").await.click().await.unwrap();
    // The click navigates: wait for the new page's heading, not the old one's.
    let heading = wait_for_text(c, "h1", "Dry run").await;
    assert_eq!(heading, "Dry run");
    screenshot(c, "dry-run").await;
    c.back().await.unwrap();
    find(c, "#replay").await.click().await.unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let path = path_of(c).await;
        if path.starts_with("/console/events/") && !path.ends_with(&rows[0]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replay did not open its entry: {path}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_action_status(c, "succeeded").await;

    // Switched off, the mapping plans nothing that runs for the next event.
    c.goto(&format!(
        "{base}/console/sources/shop/environments/development"
    ))
    .await
    .unwrap();
    screenshot(c, "environment").await;
    find(c, "tr[data-mapping] button.toggle")
        .await
        .click()
        .await
        .unwrap();
    wait_for_text(c, "tr[data-mapping] .badge", "inactive").await;
    open_event_log(c, base).await;
    let before = event_rows(c).await.len();
    send_plan_chosen(&receive_url, "shop-3").await;
    let rows = wait_for_rows(c, before + 1).await;
    assert!(still_the_same_page(c).await, "the log was reloaded");
    open_newest_event(c, base, &rows).await;
    find(c, "section.action[data-status=\"skipped\"]").await;
    let reason = find(c, ".skip-reason").await.text().await.unwrap();
    assert_eq!(reason, "mapping inactive");

    // Promote: the dry run shows what production would get.
    c.goto(&format!("{base}/console/sources")).await.unwrap();
    find(c, "section[data-source=\"shop\"] a[href$=\"/promote\"]")
        .await
        .click()
        .await
        .unwrap();
    find(c, "#show-diff").await.click().await.unwrap();
    let diff = wait_for_text(c, "table.diff", "").await;
    assert!(diff.contains("plan-chosen"), "{diff}");
    find(c, "#apply-promote").await;
    screenshot(c, "promote").await;

    // The revision log says what the console did, and who.
    c.goto(&format!("{base}/console/revisions")).await.unwrap();
    let log = find(c, "#revisions").await.text().await.unwrap();
    for part in [
        "create source shop",
        "reveal token of shop/development",
        "create mapping in shop/development",
        "update mapping Plan Chosen:trigger_workflow in shop/development",
        "console:sha256:",
    ] {
        assert!(log.contains(part), "{part} missing: {log}");
    }
    assert!(!log.contains(&receive_url), "a reveal records no value");
    screenshot(c, "revisions").await;

    // Hostile content in an event's name, body, a header and a field name
    // renders as text, in the log, the event and the path picker.
    let evil = r#"<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">"#;
    open_event_log(c, base).await;
    let before = event_rows(c).await.len();
    send_event(&receive_url, evil, Some(("x-evil", evil))).await;
    let rows = wait_for_rows(c, before + 1).await;
    assert_inert(c, evil).await;
    c.goto(&format!("{base}/console/events/{}", rows[0]))
        .await
        .unwrap();
    let name = find(c, ".event-name").await.text().await.unwrap();
    assert_eq!(name, evil, "the name is shown as text");
    let headers = find(c, "table.headers").await.text().await.unwrap();
    assert!(
        headers.contains("x-evil") && headers.contains(evil),
        "{headers}"
    );
    assert_inert(c, evil).await;
    screenshot(c, "event-escaped").await;
    let response = reqwest::Client::new()
        .post(&receive_url)
        .header("content-type", "application/json")
        .body(
            json!({"type": "track", "event": evil, "userId": "u1",
                "properties": {evil: evil}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let picker_url = reqwest::Url::parse_with_params(
        &format!("{base}/console/sources/shop/environments/development/new-mapping"),
        &[("event", evil), ("action", "trigger_workflow")],
    )
    .unwrap();
    c.goto(picker_url.as_str()).await.unwrap();
    let picked = find(c, ".picker").await.text().await.unwrap();
    assert!(
        picked.contains(evil),
        "the field name shows as text: {picked}"
    );
    assert_inert(c, evil).await;

    c.goto(&format!("{base}/console/actions")).await.unwrap();
    find(c, "table[aria-label=\"Action log\"]").await;
    screenshot(c, "actions").await;

    // Signing out ends the session.
    find(c, "form.sign-out button").await.click().await.unwrap();
    wait_for_path(c, "/console/sign-in").await;
    c.goto(&format!("{base}/console/events")).await.unwrap();
    wait_for_path(c, "/console/sign-in").await;

    browser.client.clone().close().await.unwrap();

    // The same pages when the browser prefers dark.
    let dark = open_browser(&chromium, &driver, &["--force-dark-mode"]).await;
    let d = &dark.client;
    d.goto(&format!("{base}/console/sign-in")).await.unwrap();
    sign_in_browser(d).await;
    let background = d
        .execute(
            "return getComputedStyle(document.body).backgroundColor;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        background,
        json!("rgb(15, 18, 22)"),
        "the dark palette applies"
    );
    screenshot(d, "sources-dark").await;
    d.goto(&format!("{base}/console/events/{}", rows[0]))
        .await
        .unwrap();
    find(d, ".event-name").await;
    screenshot(d, "event-detail-dark").await;
    dark.client.clone().close().await.unwrap();
    eprintln!("console browser flow took {:?}", started.elapsed());
    drop(svc.dir);
}

/// Signs in on the sign-in page the browser shows.
async fn sign_in_browser(c: &Client) {
    find(c, "#token").await.send_keys(ADMIN).await.unwrap();
    find(c, "form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_for_path(c, "/console/sources").await;
}

/// No script of the event ran and none of its elements exists.
async fn assert_inert(c: &Client, evil: &str) {
    let pwned = c
        .execute("return window.__pwned === undefined;", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, json!(true), "an event's script ran");
    assert!(c.get_alert_text().await.is_err(), "an alert is open");
    let injected = c
        .execute(
            "return document.querySelectorAll('img[src=\"x\"]').length + \
             Array.from(document.scripts).filter(s => !s.src).length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(injected, json!(0), "an injected element exists");
    let text = find(c, "main").await.text().await.unwrap();
    assert!(text.contains(evil), "the hostile text is shown escaped");
}

/// Signs in with reqwest; returns the session cookie pair.
async fn sign_in(base: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .post(format!("{base}/console/sign-in"))
        .form(&[("token", ADMIN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_binary_refuses_a_console_post_without_its_csrf_token() {
    let svc = service().await;
    let base = &svc.base;
    let cookie = sign_in(base).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(format!(
            "{base}/console/sources/web/environments/development"
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let action = html
        .split("action=\"")
        .map(|s| s.split('"').next().unwrap())
        .find(|a| a.contains("/mappings/"))
        .unwrap()
        .to_owned();
    let refused = client
        .post(format!("{base}{action}"))
        .header("cookie", &cookie)
        .form(&[("active", "false")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let after = client
        .get(format!(
            "{base}/console/sources/web/environments/development"
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        after.contains("badge active"),
        "the mapping was switched off"
    );

    let no_session = client
        .get(format!("{base}/console/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_session.status(), 303);
    assert_eq!(no_session.headers()["location"], "/console/sign-in");
}

#[test]
fn check_config_prints_the_console_url() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, TOKEN, ConfigLines::default());
    let out = Command::new(env!("CARGO_BIN_EXE_tributary-ingest"))
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("Console: http://127.0.0.1:{port}/console ")),
        "{stdout}"
    );
}
