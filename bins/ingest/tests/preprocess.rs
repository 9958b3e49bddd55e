//! Preprocess scripts over real HTTP (docs/preprocess-scripts.md): a
//! verification script using the host HMAC accepts a correctly signed
//! delivery and refuses a badly signed one; its output is stored on the event,
//! read by a mapping and by the dedup key; an infinite loop is stopped and the
//! next request served; a throwing script's error names its line; the
//! management API takes a script in a source document and refuses one that
//! does not load; a rehearsal shows the output; the binary refuses to
//! start on a file whose script does not load.

mod process;
mod support;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use support::TestServer;

const ADMIN: &str = "admin-token-preprocess-0123456789";
const HOOKS: &str = "tok_hooks_0123456789abcdefghij";
const SPIN: &str = "tok_spin_0123456789abcdefghijk";
const THROWS: &str = "tok_throws_0123456789abcdefghi";
const SPLIT: &str = "tok_split_0123456789abcdefghij";
const SECRET: &str = "whsec_preprocess_secret";

fn config() -> String {
    format!(
        r#"
[admin]
token = "{ADMIN}"

[environments.production]

[[sources]]
key = "hooks"
kind = "http"

[sources.environments.production]
token = "{HOOKS}"
event_type_path = "body.type"
dedup = {{ key_path = "preprocess.item_idempotency_key" }}

[sources.environments.production.preprocess]
vars = {{ SECRET = "{SECRET}" }}
script = '''
export function main(ctx) {{
  const expected = crypto.hmacSha256Hex(ctx.vars.SECRET, ctx.rawBody);
  const presented = ctx.headers["x-hook-signature"] ?? "";
  return {{
    verified: crypto.timingSafeEqual(expected, presented),
    recipient: ctx.body.customer.id,
    item_idempotency_key: "order-" + ctx.body.id,
  }};
}}
'''

[[sources.environments.production.mappings]]
event = "order.paid"
action = "trigger_workflow"
workflow = "order-paid"
recipients = "preprocess.recipient"

[[sources]]
key = "split"
kind = "http"

[sources.environments.production]
token = "{SPLIT}"

[sources.environments.production.verification]
scheme = "hmac-sha256"
header = "x-hook-signature"
secret = "{SECRET}"

[sources.environments.production.preprocess]
script = '''
export function main(ctx) {{
  const b = ctx.body;
  if (b.broken === "not-an-array") return {{ verified: true, items: "nope" }};
  if (b.broken === "element") return {{ verified: true, items: [{{ body: {{}} }}, 3] }};
  if (b.single) return {{ verified: true, normalized_event: {{ type: "order.paid", id: b.single }} }};
  return {{
    verified: true,
    batch: b.batch,
    items: b.orders.map((o) => ({{
      body: {{ type: "order.paid", id: o.id }},
      item_idempotency_key: "order-" + o.id,
      customer: o.customer,
    }})),
  }};
}}
'''

[[sources.environments.production.mappings]]
event = "order.paid"
action = "trigger_workflow"
workflow = "order-paid"
recipients = "preprocess.customer"

[[sources]]
key = "spin"
kind = "http"

[sources.environments.production]
token = "{SPIN}"

[sources.environments.production.preprocess]
enforce = false
script = "export function main(ctx) {{ while (true) {{}} }}"

[[sources]]
key = "throws"
kind = "http"

[sources.environments.production]
token = "{THROWS}"

[sources.environments.production.preprocess]
# TOML drops the newline after the opening quotes: `main` is line 1.
script = '''
export function main(ctx) {{
  const kind = ctx.body.type;
  throw new Error("cannot handle " + kind);
}}
'''
"#
    )
}

fn sign(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

async fn deliver(
    server: &TestServer,
    token: &str,
    body: &str,
    signature: &str,
) -> (StatusCode, Value) {
    let answer = server
        .http
        .post(format!("{}/integrations/receive/{token}", server.base))
        .header("content-type", "application/json")
        .header("x-hook-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn admin(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = server
        .http
        .request(
            method.parse().unwrap(),
            format!("{}/api/v1{path}", server.base),
        )
        .bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

const ORDER: &str = r#"{"id": 42, "type": "order.paid", "customer": {"id": "cus_7"}}"#;

#[tokio::test]
async fn a_signed_delivery_is_verified_its_output_stored_mapped_and_deduplicated() {
    let server = TestServer::start(&config(), false).await;
    let (status, body) = deliver(&server, HOOKS, ORDER, &sign(ORDER)).await;
    assert!(status.is_success(), "{status} {body}");
    let (_, events) = admin(&server, "GET", "/events?limit=10", None).await;
    let id = events["items"][0]["id"].as_str().unwrap().to_owned();

    let (status, detail) = admin(&server, "GET", &format!("/events/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let event = &detail["event"];
    assert_eq!(
        event["event"]["preprocess"],
        json!({"recipient": "cus_7", "item_idempotency_key": "order-42"}),
        "{detail}"
    );
    assert_eq!(
        event["verification"], "script:enforced:verified",
        "{detail}"
    );
    assert_eq!(
        event["message_id"], "order-42",
        "the dedup key came from the script"
    );
    let action = &detail["actions"][0];
    assert_eq!(
        action["plan"]["payload"]["recipients"],
        json!(["cus_7"]),
        "{detail}"
    );

    // The same order again is a duplicate, by the script's key.
    let (status, body) = deliver(&server, HOOKS, ORDER, &sign(ORDER)).await;
    assert!(status.is_success(), "{status} {body}");
    let (_, events) = admin(&server, "GET", "/events?limit=10", None).await;
    let statuses: Vec<_> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(statuses.contains(&"duplicate".to_owned()), "{events}");
}

#[tokio::test]
async fn a_badly_signed_delivery_is_refused_401_and_logged() {
    let server = TestServer::start(&config(), false).await;
    let (status, body) = deliver(&server, HOOKS, ORDER, &sign("something else")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "script_unverified", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hooks/production"),
        "{body}"
    );
    let (_, events) = admin(&server, "GET", "/events?limit=10", None).await;
    let entry = &events["items"][0];
    assert_eq!(entry["status"], "rejected", "{events}");
    assert!(
        entry["error"]
            .as_str()
            .unwrap()
            .starts_with("script_unverified"),
        "{events}"
    );
    assert!(
        !events.to_string().contains(SECRET),
        "a var never reaches the event log"
    );
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_and_the_next_request_is_served() {
    let server = TestServer::start(&config(), false).await;
    let (status, body) = deliver(&server, SPIN, "{}", "").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "enforce is off: a failed script is 422: {body}"
    );
    assert_eq!(body["error"]["code"], "script_timed_out", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("spin/production"),
        "{body}"
    );
    let (status, body) = deliver(&server, HOOKS, ORDER, &sign(ORDER)).await;
    assert!(
        status.is_success(),
        "served after the loop: {status} {body}"
    );
}

#[tokio::test]
async fn a_throwing_script_names_its_line_and_other_sources_keep_working() {
    let server = TestServer::start(&config(), false).await;
    let (status, body) = deliver(&server, THROWS, ORDER, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "enforced: {body}");
    assert_eq!(body["error"]["code"], "script_threw", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("throws/production threw at line 3"),
        "{message}"
    );
    assert!(
        !message.contains("cannot handle"),
        "the exception's text is for the event log, not the sender: {message}"
    );
    let (_, events) = admin(&server, "GET", "/events?limit=10", None).await;
    let logged = events["items"][0]["error"].as_str().unwrap();
    assert!(
        logged.contains("line 3") && logged.contains("cannot handle order.paid"),
        "{logged}"
    );
    let (status, _) = deliver(&server, HOOKS, ORDER, &sign(ORDER)).await;
    assert!(status.is_success());
}

/// A 422 naming the production environment's script, its message containing `says`.
fn assert_script_refused(status: StatusCode, refused: &Value, says: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        refused["error"]["field"], "/environments/production/preprocess/script",
        "{refused}"
    );
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "{refused}");
}

#[tokio::test]
async fn the_admin_api_takes_a_script_and_refuses_one_that_does_not_load() {
    let server = TestServer::start(&config(), false).await;
    let script = "export function main(ctx) {\n  return { verified: ctx.vars.KEY === 'k1', kind: ctx.body.type };\n}\n";
    let (status, created) = admin(
        &server,
        "POST",
        "/sources",
        Some(
            json!({"key": "made", "kind": "http", "environments": {"production": {
            "preprocess": {"script": script, "vars": {"KEY": "k1"}}}}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(
        !created["source"].to_string().contains("\"k1\""),
        "reads mask a var: {created}"
    );
    let token = created["secrets"]["production"]["token"].as_str().unwrap();
    let (status, body) = deliver(&server, token, r#"{"type":"made.it"}"#, "").await;
    assert!(status.is_success(), "{status} {body}");

    let (status, rehearsal) = admin(
        &server,
        "POST",
        "/sources/made/environments/production/rehearse",
        Some(json!({"body": {"type": "rehearsed"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rehearsal}");
    assert_eq!(rehearsal["preprocess"]["verified"], true, "{rehearsal}");
    assert_eq!(
        rehearsal["preprocess"]["output"]["kind"], "rehearsed",
        "{rehearsal}"
    );
    assert_eq!(
        rehearsal["events"][0]["event"]["preprocess"]["kind"], "rehearsed",
        "{rehearsal}"
    );

    let (status, refused) = admin(
        &server,
        "POST",
        "/sources",
        Some(
            json!({"key": "broken", "kind": "http", "environments": {"production": {
            "preprocess": {"script": "export function main(ctx) {\n  return {;\n}"}}}}),
        ),
    )
    .await;
    assert_script_refused(status, &refused, "line 2");

    // A change to an environment and an import are checked the same way.
    let (status, refused) = admin(
        &server,
        "PATCH",
        "/sources/made/environments/production",
        Some(json!({"preprocess": {"script": "export const main = 1;"}})),
    )
    .await;
    assert_script_refused(status, &refused, "does not export a function `main`");
    let imported = server
        .http
        .post(format!("{}/api/v1/config/import", server.base))
        .bearer_auth(ADMIN)
        .body(
            "[[sources]]\nkey = \"made\"\nkind = \"http\"\n\
             [sources.environments.production]\ntoken = \"tok_made_import_0123456789abcd\"\n\
             [sources.environments.production.preprocess]\n\
             script = \"export function main( {\"\n",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused: Value = imported.json().await.unwrap();
    assert_eq!(
        refused["error"]["field"], "/sources/0/environments/production/preprocess/script",
        "{refused}"
    );
    let (_, source) = admin(&server, "GET", "/sources/made", None).await;
    assert!(
        source.to_string().contains("verified: ctx.vars.KEY"),
        "the served script is unchanged: {source}"
    );
}

/// The binary started on a file whose script has a syntax error on its
/// line 2 (the file's line 23) exits with an error naming both, before
/// it listens; `check-config` refuses the file the same way.
#[test]
fn the_binary_refuses_to_start_on_a_script_that_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let broken = "[sources.environments.development.preprocess]\n\
        script = '''\n\
        export function main(ctx) {\n  return {;\n}\n\
        '''\n";
    let config = process::write_config(
        dir.path(),
        process::free_port(),
        "tok_web_broken_0123456789abcdef",
        process::ConfigLines {
            environment: broken,
            ..process::ConfigLines::default()
        },
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let file_line = text.lines().position(|l| l.contains("return {;")).unwrap() + 1;
    let expected = format!(
        "{}:{file_line}:1: sources[web].environments.development.preprocess.script: \
         preprocess script web/development does not load at line 2",
        config.display()
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary-ingest"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded so a binary that starts anyway fails the test instead of hanging it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the binary started with a script that does not load");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains(&expected), "{expected}\n{stderr}");

    let checked = Command::new(env!("CARGO_BIN_EXE_tributary-ingest"))
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success(), "{stderr}");
    assert!(stderr.contains(&expected), "{expected}\n{stderr}");
}

/// The event log's accepted entries, newest first, each with its detail.
async fn accepted_events(server: &TestServer) -> Vec<Value> {
    let (_, events) = admin(server, "GET", "/events?limit=50", None).await;
    let mut details = Vec::new();
    for entry in events["items"].as_array().unwrap() {
        if entry["status"] == "rejected" {
            continue;
        }
        let id = entry["id"].as_str().unwrap();
        let (_, detail) = admin(server, "GET", &format!("/events/{id}"), None).await;
        details.push(detail);
    }
    details
}

#[tokio::test]
async fn a_script_splits_a_request_into_items_each_deduplicated_and_mapped_alone() {
    let server = TestServer::start(&config(), false).await;
    let body = r#"{"batch": "b1", "orders": [
        {"id": "1", "customer": "cus_1"},
        {"id": "2", "customer": "cus_2"},
        {"id": "3", "customer": "cus_3"}]}"#;
    let (status, receipt) = deliver(&server, SPLIT, body, &sign(body)).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt, json!({"accepted": 3, "duplicates": 0}));

    let mut events = accepted_events(&server).await;
    assert_eq!(events.len(), 3, "{events:?}");
    events.sort_by_key(|d| d["event"]["event"]["message_id"].to_string());
    for (n, detail) in (1..=3).zip(&events) {
        let event = &detail["event"]["event"];
        assert_eq!(
            event["data"],
            json!({"type": "order.paid", "id": n.to_string()})
        );
        assert_eq!(event["message_id"], format!("order-{n}"), "{detail}");
        assert_eq!(
            event["preprocess"],
            json!({"batch": "b1", "item_idempotency_key": format!("order-{n}"), "customer": format!("cus_{n}")}),
            "the request's output and the item's own: {detail}"
        );
        assert_eq!(
            detail["event"]["verification"], "enforced:verified, script:enforced:verified",
            "the declarative check ran on the body as received: {detail}"
        );
        assert_eq!(
            detail["actions"][0]["plan"]["payload"]["recipients"],
            json!([format!("cus_{n}")]),
            "{detail}"
        );
    }

    let (status, receipt) = deliver(&server, SPLIT, body, &sign(body)).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt, json!({"accepted": 0, "duplicates": 3}));

    // A wrong signature over the body as received is refused before any item is made.
    let (status, refused) = deliver(&server, SPLIT, body, &sign("other")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");

    let single = r#"{"single": "9"}"#;
    let (status, receipt) = deliver(&server, SPLIT, single, &sign(single)).await;
    assert_eq!(receipt, json!({"accepted": 1, "duplicates": 0}), "{status}");
    let events = accepted_events(&server).await;
    let made = events
        .iter()
        .find(|d| d["event"]["event"]["data"]["id"] == "9")
        .unwrap_or_else(|| panic!("the normalized event is stored: {events:?}"));
    assert_eq!(
        made["event"]["event"]["data"],
        json!({"type": "order.paid", "id": "9"})
    );
}

#[tokio::test]
async fn malformed_items_are_refused_422_naming_the_field_and_nothing_is_stored() {
    let server = TestServer::start(&config(), false).await;
    for (body, field) in [
        (r#"{"broken": "not-an-array"}"#, "/preprocess/items"),
        (r#"{"broken": "element"}"#, "/preprocess/items/1"),
    ] {
        let (status, refused) = deliver(&server, SPLIT, body, &sign(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(refused["error"]["field"], field, "{refused}");
        assert_eq!(
            refused["error"]["code"], "script_result_invalid",
            "{refused}"
        );
    }
    assert!(accepted_events(&server).await.is_empty());
}
