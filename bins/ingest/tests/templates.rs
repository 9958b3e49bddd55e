//! Every source template, end to end: a source made with `template = "<key>"`
//! receives each of the template's example payloads over real HTTP, signed
//! as the platform signs (Stripe's and Svix's own Python libraries for Stripe
//! and Clerk; the platforms' documented HMAC schemes for WorkOS and Shopify;
//! the configured header for the rest), typed by the template's path,
//! deduplicated by its key, and planned by its default mappings. Also the
//! source providers API and its abuse cases.

mod support;

use std::{process::Command, sync::OnceLock};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::TestServer;
use tributary_store::EventFilter;
use tributary_templates::{Template, all, get};

const ADMIN: &str = "admin-token-templates-0123456789";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn token(key: &str) -> String {
    format!("tok_{:_<26}", key.replace('-', "_"))
}

fn secret(t: &Template) -> &'static str {
    match t.verification_scheme() {
        Some("standard-webhooks") => WHSEC,
        Some("timestamped") => "whsec_timestamped_template_secret",
        Some(_) => "a-template-secret-0123456789",
        None => "",
    }
}

fn config() -> String {
    let mut text = format!("[admin]\ntoken = \"{ADMIN}\"\n\n[environments.production]\n");
    for t in all() {
        text.push_str(&format!(
            "\n[[sources]]\nkey = \"{key}\"\ntemplate = \"{key}\"\n\n[sources.environments.production]\ntoken = \"{token}\"\n",
            key = t.key,
            token = token(&t.key),
        ));
        if t.verification_scheme().is_some() {
            text.push_str(&format!(
                "verification = {{ secret = \"{}\" }}\n",
                secret(t)
            ));
        }
    }
    text
}

fn python_libraries_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Command::new("python3")
            .args(["-c", "import stripe, svix"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Headers the platform's library makes for `body`.
fn sign_with_library(platform: &str, secret: &str, body: &[u8]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.json");
    std::fs::write(&file, body).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sign_webhook.py");
    let out = Command::new("python3")
        .args([script, platform, secret, file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{platform} signing failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let headers: serde_json::Map<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    headers
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap().to_owned()))
        .collect()
}

fn hmac_sha256(secret: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The headers the platform would send with `body`; `None` when its
/// library is not installed here (outside CI).
fn signed_headers(t: &Template, body: &[u8]) -> Option<Vec<(String, String)>> {
    let s = secret(t);
    Some(match t.key.as_str() {
        "stripe" | "clerk" => {
            if !python_libraries_available() {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "stripe and svix must be installed in CI (.ci/setup-python.sh)"
                );
                eprintln!("SKIPPED {}: pip install stripe svix", t.key);
                return None;
            }
            let platform = if t.key == "stripe" { "stripe" } else { "svix" };
            sign_with_library(platform, s, body)
        }
        // WorkOS documents `t=<ms>, v1=<hex HMAC-SHA256 of "<t>.<body>">`;
        // no library in the registries we use signs one.
        "workos" => {
            let t_ms = chrono::Utc::now().timestamp_millis().to_string();
            let sig = hex::encode(hmac_sha256(s, &[t_ms.as_bytes(), b".", body]));
            vec![("workos-signature".into(), format!("t={t_ms}, v1={sig}"))]
        }
        // Shopify documents base64 HMAC-SHA256 of the body.
        "shopify" => {
            let sig = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(s, &[body]));
            vec![("x-shopify-hmac-sha256".into(), sig)]
        }
        _ => match t.verification_scheme() {
            Some("shared-secret") => vec![("x-webhook-secret".into(), s.into())],
            Some("bearer") => vec![("authorization".into(), format!("Bearer {s}"))],
            None => Vec::new(),
            Some(other) => panic!("{}: no signer for {other}", t.key),
        },
    })
}

/// What each example must plan: (event type, action, JSON pointer into the
/// plan's payload, value).
fn expected(key: &str) -> Vec<(&'static str, &'static str, &'static str, Value)> {
    match key {
        "stripe" => vec![
            (
                "customer.created",
                "identify_user",
                "/user_id",
                json!("cus_QtmplAda01"),
            ),
            (
                "customer.created",
                "identify_user",
                "/attributes/email",
                json!("ada@example.com"),
            ),
            (
                "invoice.created",
                "trigger_workflow",
                "/workflow",
                json!("invoice-created"),
            ),
            (
                "invoice.created",
                "trigger_workflow",
                "/data/amount_due",
                json!(4200),
            ),
            (
                "invoice.paid",
                "trigger_workflow",
                "/workflow",
                json!("invoice-paid"),
            ),
            (
                "invoice.paid",
                "trigger_workflow",
                "/data/amount_paid",
                json!(4200),
            ),
        ],
        "clerk" => vec![
            (
                "user.created",
                "identify_user",
                "/user_id",
                json!("user_2TmplGraceHopper01"),
            ),
            (
                "user.created",
                "identify_user",
                "/attributes/email",
                json!("grace@example.com"),
            ),
            (
                "user.updated",
                "identify_user",
                "/attributes/name",
                json!("Grace B."),
            ),
            (
                "user.deleted",
                "delete_user",
                "/user_id",
                json!("user_2TmplGraceHopper01"),
            ),
            (
                "organization.created",
                "set_tenant",
                "/id",
                json!("org_2TmplNavyLabs01"),
            ),
            (
                "organization.updated",
                "set_tenant",
                "/attributes/name",
                json!("Navy Research Labs"),
            ),
        ],
        "workos" => vec![
            (
                "dsync.user.created",
                "identify_user",
                "/attributes/email",
                json!("blair@example.com"),
            ),
            (
                "dsync.user.deleted",
                "delete_user",
                "/user_id",
                json!("directory_user_01TMPLBLAIR0000000000000001"),
            ),
            (
                "dsync.group.created",
                "set_object",
                "/collection",
                json!("workos-groups"),
            ),
        ],
        "supabase" => vec![
            (
                "INSERT",
                "identify_user",
                "/attributes/email",
                json!("linus@example.com"),
            ),
            (
                "UPDATE",
                "identify_user",
                "/attributes/name",
                json!("Linus T. Example"),
            ),
            (
                "DELETE",
                "delete_user",
                "/user_id",
                json!("6f1c1f8e-2b7a-4c3e-9a51-1d2e3f4a5b6c"),
            ),
        ],
        "posthog" => vec![
            (
                "$identify",
                "identify_user",
                "/attributes/email",
                json!("margaret@example.com"),
            ),
            (
                "subscription_upgraded",
                "trigger_workflow",
                "/data/plan",
                json!("team"),
            ),
        ],
        "shopify" => vec![
            (
                "customers/create",
                "identify_user",
                "/user_id",
                json!("706405506930370084"),
            ),
            (
                "customers/update",
                "identify_user",
                "/attributes/email",
                json!("bob@example.com"),
            ),
            (
                "orders/create",
                "trigger_workflow",
                "/workflow",
                json!("order-confirmation"),
            ),
            (
                "orders/create",
                "trigger_workflow",
                "/data/name",
                json!("#1001"),
            ),
        ],
        "amplitude" => vec![
            (
                "$identify",
                "identify_user",
                "/attributes/email",
                json!("katherine@example.com"),
            ),
            (
                "cohort_membership",
                "add_audience_member",
                "/audience",
                json!("a1b2c3d"),
            ),
        ],
        "clay" => vec![
            (
                "lead.enriched",
                "identify_user",
                "/user_id",
                json!("hedy@example.com"),
            ),
            (
                "lead.enriched",
                "identify_user",
                "/attributes/company",
                json!("Example Films"),
            ),
            (
                "lead.qualified",
                "trigger_workflow",
                "/data/score",
                json!(87),
            ),
        ],
        "segment" | "rudderstack" | "jitsu" | "freshpaint" => vec![
            (
                "Order Completed",
                "trigger_workflow",
                "/workflow",
                json!("order-completed"),
            ),
            (
                "identify",
                "identify_user",
                "/attributes/email",
                json!("ada@example.com"),
            ),
        ],
        "http-legacy" => vec![(
            "Comment Created",
            "trigger_workflow",
            "/workflow",
            json!("comment-created"),
        )],
        "http" => vec![],
        other => panic!("no expectations for template {other}"),
    }
}

/// Sends a request and reads its JSON answer.
trait SendJson {
    async fn send_json(self) -> Value;
}

impl SendJson for reqwest::RequestBuilder {
    async fn send_json(self) -> Value {
        self.send().await.unwrap().json().await.unwrap()
    }
}

/// Sends `body` to the template's source with the signature and the
/// platform's other headers.
async fn receive(
    server: &TestServer,
    t: &Template,
    body: &[u8],
    headers: &[(String, String)],
    extra: &[(String, String)],
) -> reqwest::Response {
    let mut req = server
        .http
        .post(format!(
            "{}/integrations/receive/{}",
            server.base,
            token(&t.key)
        ))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers.iter().chain(extra) {
        req = req.header(k.as_str(), v.as_str());
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_template_receives_verifies_types_dedups_and_plans_its_examples() {
    let server = TestServer::start(&config(), false).await;
    let mut checked = 0;
    for t in all() {
        for example in &t.examples {
            let body = serde_json::to_vec(&example.body).unwrap();
            let Some(signature) = signed_headers(t, &body) else {
                continue;
            };
            let extra: Vec<(String, String)> = example.headers.clone().into_iter().collect();
            let first = receive(&server, t, &body, &signature, &extra).await;
            let status = first.status();
            let answer = first.text().await.unwrap();
            let legacy = t.kind == "http-legacy";
            if legacy {
                assert_eq!(status, 204, "{} {}: {answer}", t.key, example.event_type);
            } else {
                assert_eq!(status, 200, "{} {}: {answer}", t.key, example.event_type);
                assert_eq!(
                    serde_json::from_str::<Value>(&answer).unwrap(),
                    json!({"accepted": 1, "duplicates": 0}),
                    "{} {}",
                    t.key,
                    example.event_type
                );
            }

            // A wrong signature is refused, where the template verifies.
            if t.verification_scheme().is_some() {
                let forged: Vec<(String, String)> = signature
                    .iter()
                    .map(|(k, v)| (k.clone(), format!("{v}x")))
                    .collect();
                let refused = receive(&server, t, &body, &forged, &extra).await;
                assert_eq!(refused.status(), 401, "{} {}", t.key, example.event_type);
            }

            // The same delivery again is a duplicate by the template's key.
            let again = receive(&server, t, &body, &signature, &extra).await;
            let dedup_off = t.key == "supabase";
            if !legacy {
                let answer: Value = again.json().await.unwrap();
                let want = if dedup_off {
                    json!({"accepted": 1, "duplicates": 0})
                } else {
                    json!({"accepted": 0, "duplicates": 1})
                };
                assert_eq!(answer, want, "{} {} sent twice", t.key, example.event_type);
            }

            // Typed by the template's path, and planned by its mappings.
            let page = server
                .store
                .list_events(
                    &EventFilter {
                        source: Some(t.key.clone()),
                        event_type: Some(example.event_type.clone()),
                        ..EventFilter::default()
                    },
                    None,
                    10,
                )
                .await
                .unwrap();
            let statuses: Vec<String> = page
                .items
                .iter()
                .map(|e| format!("{:?}", e.status))
                .collect();
            let accepted: Vec<_> = page
                .items
                .iter()
                .filter(|e| format!("{:?}", e.status) == "Accepted")
                .collect();
            let want_accepted = if dedup_off { 2 } else { 1 };
            assert_eq!(
                accepted.len(),
                want_accepted,
                "{} {}: {statuses:?}",
                t.key,
                example.event_type
            );
            if legacy {
                assert!(
                    statuses.iter().any(|s| s == "Duplicate"),
                    "{}: {statuses:?}",
                    t.key
                );
            }
            // The event time comes from the template's path where the example
            // has that field (every example is dated before this test runs).
            let event = accepted[0].event.as_ref().unwrap();
            let time_path = t.environment_defaults().get("timestamp_path").cloned();
            let has_time = match time_path.as_ref().and_then(Value::as_str) {
                Some(p) if p.starts_with("body.") => example
                    .body
                    .pointer(&format!("/{}", p["body.".len()..].replace('.', "/")))
                    .is_some(),
                Some(p) => example.headers.contains_key(&p["headers.".len()..]),
                None => false,
            };
            if has_time {
                assert!(
                    event.timestamp < event.received_at - chrono::Duration::seconds(60),
                    "{} {}: the event time {} was not read from the body",
                    t.key,
                    example.event_type,
                    event.timestamp
                );
            }
            let detail = server
                .store
                .event_detail(accepted[0].id)
                .await
                .unwrap()
                .unwrap();
            let plans: Vec<Value> = detail
                .actions
                .iter()
                .map(|a| serde_json::to_value(&a.plan).unwrap())
                .collect();
            for (event_type, action, pointer, value) in expected(&t.key) {
                if event_type != example.event_type {
                    continue;
                }
                let found = plans.iter().any(|p| {
                    p["action"] == action
                        && p["status"] == "planned"
                        && p["payload"].pointer(pointer) == Some(&value)
                });
                assert!(
                    found,
                    "{} {event_type}: no planned {action} with {pointer} = {value}; plans: {}",
                    t.key,
                    serde_json::to_string_pretty(&plans).unwrap()
                );
                checked += 1;
            }
        }
    }
    let wanted: usize = all()
        .iter()
        .filter(|t| python_libraries_available() || !["stripe", "clerk"].contains(&t.key.as_str()))
        .map(|t| expected(&t.key).len())
        .sum();
    assert_eq!(checked, wanted, "every expectation was checked");
}

#[tokio::test]
async fn the_source_providers_api_answers_the_templates_behind_the_admin_token() {
    let server = TestServer::start(&config(), false).await;
    let get_ = |path: &str, auth: bool| {
        let mut req = server.http.get(format!("{}/api/v1{path}", server.base));
        if auth {
            req = req.bearer_auth(ADMIN);
        }
        req.send()
    };
    // No token, or a wrong one: 401 before anything is read.
    assert_eq!(
        get_("/source_providers", false).await.unwrap().status(),
        401
    );
    assert_eq!(
        get_("/source_providers/stripe", false)
            .await
            .unwrap()
            .status(),
        401
    );
    let wrong = server
        .http
        .get(format!("{}/api/v1/source_providers", server.base))
        .bearer_auth("not-the-admin-token-0000")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let list: Value = get_("/source_providers", true)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys: Vec<&str> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), all().len());
    assert!(keys.contains(&"stripe") && keys.contains(&"clerk"));

    let one = get_(
        "/source_providers/clerk?include=default_action_mappings,example_payloads",
        true,
    )
    .await
    .unwrap();
    assert_eq!(one.status(), 200);
    let clerk: Value = one.json().await.unwrap();
    assert_eq!(
        clerk["default_settings"]["idempotency_key_path"],
        "headers.svix-id"
    );
    assert_eq!(clerk["verification"]["scheme"], "standard-webhooks");
    assert_eq!(
        clerk["default_action_mappings"][0]["action_type"],
        "users_identify"
    );
    assert_eq!(
        clerk["example_payloads"]["user.created"]["body"]["type"],
        "user.created"
    );
    // Repeated include parameters read the same as a list.
    let repeated: Value = get_(
        "/source_providers/clerk?include=example_payloads&include=default_action_mappings",
        true,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(repeated, clerk);
    // Without include: the summary only.
    let bare: Value = get_("/source_providers/clerk", true)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(bare.get("example_payloads").is_none());

    // Unknown key: 404 with a JSON error.
    let missing = get_("/source_providers/not-a-platform", true)
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let long = format!("/source_providers/{}", "x".repeat(5000));
    assert_eq!(get_(&long, true).await.unwrap().status(), 404);

    // A bad include: 422 naming the field; a query that is not a query: 400.
    let bad = get_("/source_providers/stripe?include=secrets", true)
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["field"], "include");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("secrets")
    );
    let garbled = get_("/source_providers/stripe?include=%ff%fe", true)
        .await
        .unwrap();
    assert!(
        [400, 422].contains(&garbled.status().as_u16()),
        "{}",
        garbled.status()
    );
    assert!(get("stripe").is_some());
}

/// What the management API's create route does with `"template"` (the
/// filling is `tributary_templates::fill_from_template`, the call the route
/// makes): a filled request creates a working source, and the stored source
/// holds the copied defaults.
#[tokio::test]
async fn a_source_created_through_the_api_from_a_template_receives_and_plans() {
    let server = TestServer::start(&config(), false).await;
    let request: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "key": "billing-api",
        "template": "stripe",
        "name": "Billing",
        "environments": {"production": {"verification": {"secret": "whsec_api_created_secret"}}}
    }))
    .unwrap();
    // The route fills the request from the template itself.
    let created = server
        .http
        .post(format!("{}/api/v1/sources", server.base))
        .bearer_auth(ADMIN)
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let unknown = server
        .http
        .post(format!("{}/api/v1/sources", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"key": "other", "template": "no-such-platform"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 422);
    let unknown: Value = unknown.json().await.unwrap();
    assert_eq!(unknown["error"]["field"], "/template", "{unknown}");
    let created: Value = created.json().await.unwrap();
    let token = created["secrets"]["production"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let shown: Value = server
        .http
        .get(format!("{}/api/v1/sources/billing-api", server.base))
        .bearer_auth(ADMIN)
        .send_json()
        .await;
    let env = &shown["environments"]["production"];
    assert_eq!(env["event_type_path"], "body.type", "{shown}");
    assert_eq!(env["mappings"].as_array().unwrap().len(), 3, "{shown}");

    let body = serde_json::to_vec(&get("stripe").unwrap().examples[2].body).unwrap();
    let t = chrono::Utc::now().timestamp().to_string();
    let sig = hex::encode(hmac_sha256(
        "whsec_api_created_secret",
        &[t.as_bytes(), b".", &body],
    ));
    let answer: Value = server
        .http
        .post(format!("{}/integrations/receive/{token}", server.base))
        .header("stripe-signature", format!("t={t},v1={sig}"))
        .body(body)
        .send_json()
        .await;
    assert_eq!(answer, json!({"accepted": 1, "duplicates": 0}));
}
