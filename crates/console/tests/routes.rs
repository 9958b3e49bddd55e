//! The console's routes through `oneshot` (no socket): sign-in, sessions,
//! CSRF, the security headers, escaping of untrusted content.

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tributary_console::{BASE_PATH, ConsoleState, SIGN_IN_FAILURES_PER_WINDOW, router};
use tributary_core::{
    config,
    event::{Event, EventId, EventKind, Headers},
};
use tributary_manage::Manager;
use tributary_pipeline::Pipeline;
use tributary_store::{AppendItem, SqliteStore, Store};

const ADMIN: &str = "adm_console_test_0123456789";

fn config_text(public_url: &str) -> String {
    format!(
        r#"
[server]
public_url = "{public_url}"

[admin]
token = "{ADMIN}"

[environments.development]

[environments.production]

[[sources]]
key = "web"
kind = "segment"

[sources.environments.development]
token = "tok_console_0123456789abcdef"
write_key = "wk_console_secret_0123456789"

[[sources.environments.development.mappings]]
id = "welcome"
event = "Signed Up"
action = "trigger_workflow"
workflow = "welcome"
"#
    )
}

struct Console {
    app: Router,
    pipeline: Arc<Pipeline>,
    manager: Arc<Manager>,
    _dir: tempfile::TempDir,
}

async fn console_at(public_url: &str) -> Console {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
    let config = config::load("test.toml", &config_text(public_url), &|_| None).unwrap();
    let pipeline = Arc::new(Pipeline::new(Arc::new(config), store).await.unwrap());
    let manager = Arc::new(Manager::new(pipeline.clone(), Vec::new()));
    let app = Router::new().nest(BASE_PATH, router(ConsoleState::new(manager.clone())));
    Console {
        app,
        pipeline,
        manager,
        _dir: dir,
    }
}

async fn console() -> Console {
    console_at("http://127.0.0.1:8080").await
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Console {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn sign_in_with(&self, token: &str) -> Answer {
        self.send(
            Request::post(format!("{BASE_PATH}/sign-in"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("token={token}")))
                .unwrap(),
        )
        .await
    }

    /// Signs in; returns the cookie pair and the session's CSRF token.
    async fn sign_in(&self) -> (String, String) {
        let answer = self.sign_in_with(ADMIN).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let set_cookie = answer.headers[header::SET_COOKIE].to_str().unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let page = self.get(&cookie, "/sources").await;
        let csrf = page
            .body
            .split(r#"name="csrf-token" content=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        (cookie, csrf)
    }

    async fn get(&self, cookie: &str, path: &str) -> Answer {
        self.send(
            Request::get(format!("{BASE_PATH}{path}"))
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn post_form(
        &self,
        cookie: &str,
        path: &str,
        form: &str,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::post(format!("{BASE_PATH}{path}"))
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(form.to_owned())).unwrap())
            .await
    }
}

fn assert_security_headers(answer: &Answer) {
    let csp = answer.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(answer.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(answer.headers[header::REFERRER_POLICY], "same-origin");
}

#[tokio::test]
async fn pages_without_a_session_redirect_to_sign_in() {
    let c = console().await;
    for path in [
        "",
        "/sources",
        "/events",
        "/actions",
        "/events/01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/sources/web/environments/development",
    ] {
        for cookie in ["", "tributary_console=0123456789abcdef"] {
            let answer = c.get(cookie, path).await;
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
            assert_eq!(
                answer.headers[header::LOCATION],
                "/console/sign-in",
                "{path}"
            );
            assert_security_headers(&answer);
        }
    }
    let answer = c
        .post_form(
            "",
            "/sources/web/environments/development/mappings/welcome",
            "active=false",
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(
        c.pipeline
            .mapping_active("web", "development", &mapping(&c))
    );
}

fn mapping(c: &Console) -> tributary_core::config::Mapping {
    c.pipeline.config().sources[0].environments["development"].mappings[0].clone()
}

#[tokio::test]
async fn the_sign_in_page_and_assets_need_no_session_and_carry_the_headers() {
    let c = console().await;
    let page = c.get("", "/sign-in").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_security_headers(&page);
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert!(page.body.contains(r#"<label for="token">"#));
    assert!(!page.body.contains("<script>"), "no inline script");
    for asset in ["console.css", "console.js"] {
        let answer = c.get("", &format!("/assets/{asset}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{asset}");
        assert_security_headers(&answer);
    }
    let missing = c.get("", "/assets/other.js").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_security_headers(&missing);
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_the_right_one_gets_a_strict_cookie() {
    let c = console().await;
    let wrong = c.sign_in_with("adm_not_the_token").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(!wrong.headers.contains_key(header::SET_COOKIE));
    let empty = c.sign_in_with("").await;
    assert_eq!(empty.status, StatusCode::UNAUTHORIZED);

    let right = c.sign_in_with(ADMIN).await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    assert_eq!(right.headers[header::LOCATION], "/console/sources");
    let cookie = right.headers[header::SET_COOKIE].to_str().unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let id = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(id.len() >= 32, "at least 128 bits: {id}");

    let https = console_at("https://tributary.example.com").await;
    let right = https.sign_in_with(ADMIN).await;
    let cookie = right.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn failed_sign_ins_beyond_the_limit_refuse_even_the_right_token() {
    let c = console().await;
    for _ in 0..SIGN_IN_FAILURES_PER_WINDOW {
        assert_eq!(
            c.sign_in_with("adm_guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let answer = c.sign_in_with(ADMIN).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!answer.headers.contains_key(header::SET_COOKIE));
}

#[tokio::test]
async fn a_post_needs_the_sessions_csrf_token_and_this_site() {
    let c = console().await;
    let (cookie, csrf) = c.sign_in().await;
    let (other_cookie, other_csrf) = c.sign_in().await;
    assert_ne!(csrf, other_csrf);
    let path = "/sources/web/environments/development/mappings/welcome";
    let m = mapping(&c);

    for (form, extra) in [
        ("active=false".to_owned(), vec![]),
        ("active=false&csrf=0000".to_owned(), vec![]),
        (format!("active=false&csrf={other_csrf}"), vec![]),
        ("active=false".to_owned(), vec![("x-csrf-token", "nope")]),
        (
            format!("active=false&csrf={csrf}"),
            vec![("sec-fetch-site", "cross-site")],
        ),
        (
            format!("active=false&csrf={csrf}"),
            vec![
                ("origin", "https://evil.example"),
                ("host", "127.0.0.1:8080"),
            ],
        ),
    ] {
        let answer = c.post_form(&cookie, path, &form, &extra).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{form} {extra:?}");
        assert_security_headers(&answer);
        assert!(c.pipeline.mapping_active("web", "development", &m));
    }

    let ok = c
        .post_form(
            &cookie,
            path,
            &format!("active=false&csrf={csrf}"),
            &[
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert!(!c.pipeline.mapping_active("web", "development", &m));

    let by_header = c
        .post_form(
            &other_cookie,
            path,
            "active=true",
            &[("x-csrf-token", &other_csrf)],
        )
        .await;
    assert_eq!(by_header.status, StatusCode::SEE_OTHER);
    assert!(c.pipeline.mapping_active("web", "development", &m));
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let c = console().await;
    let (cookie, csrf) = c.sign_in().await;
    assert_eq!(c.get(&cookie, "/sources").await.status, StatusCode::OK);
    let out = c
        .post_form(&cookie, "/sign-out", &format!("csrf={csrf}"), &[])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let cleared = out.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let after = c.get(&cookie, "/sources").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.headers[header::LOCATION], "/console/sign-in");
}

#[tokio::test]
async fn a_reveal_shows_the_key_only_to_a_post_with_the_token() {
    let c = console().await;
    let (cookie, csrf) = c.sign_in().await;
    let sources = c.get(&cookie, "/sources").await;
    assert!(!sources.body.contains("wk_console_secret_0123456789"));
    assert!(
        !sources.body.contains("tok_console_0123456789abcdef"),
        "the receive URL's token is a secret"
    );
    assert!(
        sources
            .body
            .contains("http://127.0.0.1:8080/integrations/receive/tok_…")
    );
    let path = "/sources/web/environments/development/reveal";
    let refused = c.post_form(&cookie, path, "kind=write_key", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.body.contains("wk_console_secret"));
    let json = c
        .post_form(
            &cookie,
            path,
            "kind=write_key",
            &[("x-csrf-token", &csrf), ("accept", "application/json")],
        )
        .await;
    assert_eq!(json.status, StatusCode::OK);
    let value: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(value["value"], "wk_console_secret_0123456789");
    assert_eq!(json.headers[header::CACHE_CONTROL], "no-store");
    let none = c
        .post_form(&cookie, path, &format!("kind=api_key&csrf={csrf}"), &[])
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let url = c
        .post_form(
            &cookie,
            path,
            "kind=token",
            &[("x-csrf-token", &csrf), ("accept", "application/json")],
        )
        .await;
    let value: serde_json::Value = serde_json::from_str(&url.body).unwrap();
    assert_eq!(
        value["value"],
        "http://127.0.0.1:8080/integrations/receive/tok_console_0123456789abcdef"
    );
    // Each reveal is a revision made by the console, without the value.
    let revisions = c.manager.revisions(None, 10).await.unwrap();
    let summaries: Vec<&str> = revisions.iter().map(|r| r.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "reveal token of web/development",
            "reveal write_key of web/development"
        ]
    );
    let actor = format!(
        "console:{}",
        tributary_manage::fingerprint("adm_console_test_0123456789")
    );
    assert!(revisions.iter().all(|r| r.actor == actor), "{revisions:?}");
    assert!(!format!("{revisions:?}").contains("wk_console_secret"));
}

#[tokio::test]
async fn untrusted_event_content_is_escaped_and_credential_headers_never_shown() {
    let c = console().await;
    let now = chrono::Utc::now();
    let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let headers: Headers = [
        ("x-note".to_owned(), evil.to_owned()),
        (
            "authorization".to_owned(),
            "Bearer sk_live_leaked".to_owned(),
        ),
        ("x-api-key".to_owned(), "key_leaked".to_owned()),
    ]
    .into();
    let event = Event {
        id: EventId::generate(now),
        environment: "development".into(),
        source: "web".into(),
        kind: EventKind::Track,
        event: evil.into(),
        user_id: Some("javascript:alert(3)".into()),
        anonymous_id: None,
        data: serde_json::json!({"html": evil}),
        timestamp: now,
        received_at: now,
        message_id: None,
        raw: serde_json::json!({"event": evil}),
        headers,
        preprocess: None,
    };
    let id = event.id;
    c.pipeline
        .store()
        .append(vec![AppendItem {
            event,
            plans: vec![],
            dedup: None,
            provenance: Default::default(),
        }])
        .await
        .unwrap();
    let (cookie, _) = c.sign_in().await;
    for path in [
        "/events".to_owned(),
        format!("/events/{id}"),
        "/sources/web/environments/development".to_owned(),
        "/events/tail?after=".to_owned(),
    ] {
        let page = c.get(&cookie, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            !page.body.contains("<script>alert"),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("<img src=x"), "{path}");
        assert!(
            page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}"
        );
        assert!(!page.body.contains("href=\"javascript:"), "{path}");
    }
    let detail = c.get(&cookie, &format!("/events/{id}")).await;
    assert!(detail.body.contains("x-note"));
    assert!(!detail.body.contains("authorization"), "{}", detail.body);
    assert!(!detail.body.contains("sk_live_leaked"));
    assert!(!detail.body.contains("x-api-key"));
}

#[tokio::test]
async fn a_dry_run_plans_without_storing_and_a_replay_stores_a_new_entry() {
    let c = console().await;
    let receipt = c
        .pipeline
        .receive("tok_console_0123456789abcdef", tributary_adapter_request())
        .await
        .unwrap();
    assert_eq!(receipt.accepted, 1);
    let page = c
        .pipeline
        .store()
        .list_events(&Default::default(), None, 10)
        .await
        .unwrap();
    let id = page.items[0].id;
    let (cookie, csrf) = c.sign_in().await;
    let dry = c
        .post_form(
            &cookie,
            &format!("/events/{id}/replay"),
            &format!("dry_run=true&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK);
    assert!(dry.body.contains("trigger_workflow"), "{}", dry.body);
    let count = |c: &Console| {
        let store = c.pipeline.store().clone();
        async move {
            store
                .list_events(&Default::default(), None, 10)
                .await
                .unwrap()
                .items
                .len()
        }
    };
    assert_eq!(count(&c).await, 1);
    let replay = c
        .post_form(
            &cookie,
            &format!("/events/{id}/replay"),
            &format!("csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(replay.status, StatusCode::SEE_OTHER);
    assert_eq!(count(&c).await, 2);
    let location = replay.headers[header::LOCATION].to_str().unwrap();
    assert!(location.starts_with("/console/events/") && !location.ends_with(&id.to_string()));
    assert_eq!(
        c.get(&cookie, location.strip_prefix(BASE_PATH).unwrap())
            .await
            .status,
        StatusCode::OK
    );
}

fn tributary_adapter_request() -> tributary_adapter::RawRequest {
    tributary_adapter::RawRequest::new(
        "",
        "",
        br#"{"type":"track","event":"Signed Up","userId":"u1"}"#.to_vec(),
        chrono::Utc::now(),
    )
    .with_header("content-type", "application/json")
}

#[tokio::test]
async fn bad_parameters_are_a_400_page_naming_the_field() {
    let c = console().await;
    let (cookie, _) = c.sign_in().await;
    let answer = c.get(&cookie, "/events?since=yesterday").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("since"));
    let answer = c.get(&cookie, "/events?status=lost").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("status"));
    let answer = c.get(&cookie, "/events/not-an-id").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = c.get(&cookie, "/sources/web/environments/nowhere").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.post_form(
            &cookie,
            "/sources/web/environments/development/reveal",
            "kind=write_key",
            &[("x-csrf-token", "x")]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
}

/// A source made through the management layer, with a token to send to.
async fn stored_source(c: &Console) -> String {
    let created = c
        .manager
        .create_source(
            "test",
            serde_json::json!({"key": "app", "kind": "segment", "name": "App"}),
        )
        .await
        .unwrap();
    created.secrets["development"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn send(c: &Console, token: &str, body: serde_json::Value) {
    let request = tributary_adapter::RawRequest::new(
        "",
        "",
        body.to_string().into_bytes(),
        chrono::Utc::now(),
    )
    .with_header("content-type", "application/json");
    let receipt = c.pipeline.receive(token, request).await.unwrap();
    assert_eq!(receipt.accepted, 1);
}

/// Maps `E` to a workflow in `app`/`development`, as mapping `m`.
async fn add_mapping(c: &Console) {
    c.manager
        .create_mapping(
            "test",
            "app",
            "development",
            None,
            serde_json::json!({"id": "m", "event": "E", "action": "trigger_workflow", "workflow": "w"}),
        )
        .await
        .unwrap();
}

/// The text of the element with `id` (a field's help and messages).
fn element_text<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &body[start..];
    &rest[..rest.find("</div>").unwrap_or(rest.len())]
}

#[tokio::test]
async fn every_change_refuses_a_post_without_the_csrf_token_and_changes_nothing() {
    let c = console().await;
    stored_source(&c).await;
    add_mapping(&c).await;
    let (cookie, csrf) = c.sign_in().await;
    let head = || async { c.manager.revisions(None, 1).await.unwrap()[0].number };
    let before = head().await;
    let env = "/sources/app/environments/development";
    let routes = [
        ("/sources".to_owned(), "key=other&kind=segment"),
        ("/sources/app/delete".to_owned(), "force=true"),
        (
            "/sources/app/promote".to_owned(),
            "from=development&to=production",
        ),
        (format!("{env}/identify"), "identify=false"),
        (format!("{env}/rotate"), "credential=write_key"),
        (format!("{env}/reveal"), "kind=token"),
        (
            format!("{env}/mappings"),
            "event=E&action=trigger_workflow&p.workflow=x",
        ),
        (format!("{env}/mappings/m"), "active=false"),
        (
            format!("{env}/mappings/m/edit"),
            "event=E&action=trigger_workflow&p.workflow=x",
        ),
        (format!("{env}/mappings/m/delete"), ""),
    ];
    for (path, form) in &routes {
        let missing = c.post_form(&cookie, path, form, &[]).await;
        assert_eq!(missing.status, StatusCode::FORBIDDEN, "{path}");
        let wrong = c
            .post_form(&cookie, path, &format!("{form}&csrf=wrong"), &[])
            .await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{path}");
        let cross = c
            .post_form(
                &cookie,
                path,
                &format!("{form}&csrf={csrf}"),
                &[("sec-fetch-site", "cross-site")],
            )
            .await;
        assert_eq!(cross.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        head().await,
        before,
        "a refused POST changed the configuration"
    );
    assert_eq!(
        c.manager.mapping("app", "development", "m").await.unwrap()["active"],
        true
    );
}

#[tokio::test]
async fn a_source_made_in_the_console_shows_its_secrets_once_and_refusals_beside_their_field() {
    let c = console().await;
    let (cookie, csrf) = c.sign_in().await;
    let form = c.get(&cookie, "/sources/new").await;
    assert_eq!(form.status, StatusCode::OK);
    for kind in tributary_core::config::SourceKind::ALL {
        assert!(form.body.contains(&format!("value=\"{}\"", kind.as_str())));
    }
    let created = c
        .post_form(
            &cookie,
            "/sources",
            &format!("key=app&kind=segment&name=Mobile+app&description=iOS&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let view = c.manager.source("app").await.unwrap();
    assert_eq!(view["name"], "Mobile app");
    assert_eq!(view["managed_by"], "api");
    let token = c
        .manager
        .reveal(
            "test",
            "app",
            "development",
            tributary_manage::Credential::Token,
        )
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:8080/integrations/receive/{token}");
    assert!(created.body.contains(&url), "{}", created.body);
    assert!(created.body.contains("curl -X POST"));
    assert!(created.body.contains("wk_"));
    let sources = c.get(&cookie, "/sources").await;
    assert!(!sources.body.contains(&token), "shown only once");
    assert!(sources.body.contains("managed by API"));
    assert!(
        sources.body.contains("managed by file"),
        "the file source is marked"
    );
    let revisions = c.manager.revisions(None, 5).await.unwrap();
    let create = revisions
        .iter()
        .find(|r| r.summary == "create source app")
        .unwrap();
    assert!(
        create.actor.starts_with("console:sha256:"),
        "{}",
        create.actor
    );

    let bad = c
        .post_form(
            &cookie,
            "/sources",
            &format!("key=Bad+Key&kind=segment&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let help = element_text(&bad.body, "f-key-help");
    assert!(help.contains("field-error"), "{help}");
    assert!(
        bad.body.contains("value=\"Bad Key\""),
        "the form keeps what was typed"
    );
    let taken = c
        .post_form(
            &cookie,
            "/sources",
            &format!("key=app&kind=segment&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(
        element_text(&taken.body, "f-key-help").contains("field-error"),
        "{}",
        taken.body
    );
    let file = c
        .post_form(
            &cookie,
            "/sources",
            &format!("key=web&kind=segment&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(file.status, StatusCode::CONFLICT, "{}", file.body);
}

#[tokio::test]
async fn identify_rotate_and_delete_go_through_the_manager() {
    let c = console().await;
    stored_source(&c).await;
    let (cookie, csrf) = c.sign_in().await;
    let env = "/sources/app/environments/development";
    let identify = c
        .post_form(
            &cookie,
            &format!("{env}/identify"),
            &format!("identify=false&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(identify.status, StatusCode::SEE_OTHER);
    let view = c.manager.source("app").await.unwrap();
    assert_eq!(view["environments"]["development"]["identify"], false);

    let key = |c: &Console| {
        let m = c.manager.clone();
        async move {
            m.reveal(
                "test",
                "app",
                "development",
                tributary_manage::Credential::WriteKey,
            )
            .await
            .unwrap()
        }
    };
    let old = key(&c).await;
    let rotated = c
        .post_form(
            &cookie,
            &format!("{env}/rotate"),
            &format!("credential=write_key&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let new = key(&c).await;
    assert_ne!(old, new);
    assert!(rotated.body.contains(&new), "the new key is shown once");
    let rotated = c
        .post_form(
            &cookie,
            &format!("{env}/rotate"),
            &format!("credential=token&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let token = c
        .manager
        .reveal(
            "test",
            "app",
            "development",
            tributary_manage::Credential::Token,
        )
        .await
        .unwrap();
    assert!(
        rotated.body.contains(&format!(
            "http://127.0.0.1:8080/integrations/receive/{token}"
        )),
        "{}",
        rotated.body
    );
    assert!(rotated.body.contains("keeps working until"));

    // A file source has no such controls, and the manager refuses them.
    let file = c
        .post_form(
            &cookie,
            "/sources/web/environments/development/identify",
            &format!("identify=false&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(file.status, StatusCode::CONFLICT);
    assert!(file.body.contains("configuration file"), "{}", file.body);

    add_mapping(&c).await;
    let confirm = c.get(&cookie, "/sources/app/delete").await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("name=\"force\""));
    let refused = c
        .post_form(&cookie, "/sources/app/delete", &format!("csrf={csrf}"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("has 1 mappings"), "{}", refused.body);
    assert!(c.manager.source("app").await.is_ok());
    let deleted = c
        .post_form(
            &cookie,
            "/sources/app/delete",
            &format!("force=true&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(c.manager.source("app").await.is_err());
}

#[tokio::test]
async fn a_mapping_is_built_from_a_received_event_with_the_picker_and_its_preview() {
    let c = console().await;
    let token = stored_source(&c).await;
    let evil = "<script>window.__pwned=1</script>";
    send(
        &c,
        &token,
        serde_json::json!({"type": "track", "event": "Plan Chosen", "userId": "u1",
            "properties": {"plan": "pro", evil: 1}}),
    )
    .await;
    send(
        &c,
        &token,
        serde_json::json!({"type": "track", "event": evil, "userId": "u1"}),
    )
    .await;
    let (cookie, csrf) = c.sign_in().await;
    let env = "/sources/app/environments/development";
    let page = c.get(&cookie, env).await;
    assert!(
        page.body.contains("new-mapping?event=Plan%20Chosen"),
        "{}",
        page.body
    );

    let form = c
        .get(
            &cookie,
            &format!("{env}/new-mapping?event=Plan+Chosen&action=trigger_workflow"),
        )
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    for path in ["properties.plan", "userId", "type"] {
        assert!(
            form.body.contains(&format!("data-path=\"{path}\"")),
            "{path}"
        );
    }
    assert!(form.body.contains("class=\"param-path\""));
    assert!(
        !form.body.contains("<script>window"),
        "a field name is escaped"
    );
    assert!(
        form.body
            .contains("&lt;script&gt;window.__pwned=1&lt;/script&gt;")
    );
    let evil_type = c
        .get(
            &cookie,
            &format!(
                "{env}/new-mapping?event={}&action=trigger_workflow",
                urlencode(evil)
            ),
        )
        .await;
    assert_eq!(evil_type.status, StatusCode::OK);
    assert!(
        !evil_type.body.contains("<script>window"),
        "an event type is escaped"
    );

    let preview = |query: &'static str| {
        let c = &c;
        let cookie = &cookie;
        async move { c.get(cookie, &format!("{env}/preview?{query}")).await }
    };
    let nothing = preview(
        "event=Plan+Chosen&action=trigger_workflow&p.workflow=plan&p.recipients=properties.nope",
    )
    .await;
    assert_eq!(nothing.status, StatusCode::OK);
    assert!(
        nothing.body.contains("class=\"warning\"") && nothing.body.contains("resolved to nothing"),
        "a required path that reaches nothing skips the plan: {}",
        nothing.body
    );
    assert!(nothing.body.contains("properties.nope"));
    // An optional path that reaches nothing: the engine's note is the warning.
    let optional = preview(
        "event=Plan+Chosen&action=trigger_workflow&p.workflow=plan&p.recipients=userId&p.actor=properties.nope",
    )
    .await;
    assert!(
        optional.body.contains("data-status=\"planned\""),
        "{}",
        optional.body
    );
    assert!(
        optional.body.contains("which this event does not have"),
        "{}",
        optional.body
    );
    let resolved = preview(
        "event=Plan+Chosen&action=trigger_workflow&p.workflow=plan&p.recipients=userId&p.data=properties",
    )
    .await;
    assert!(
        !resolved.body.contains("class=\"warning\""),
        "{}",
        resolved.body
    );
    assert!(
        resolved.body.contains("&quot;u1&quot;"),
        "{}",
        resolved.body
    );
    assert!(resolved.body.contains("data-status=\"planned\""));
    let invalid = preview("event=Plan+Chosen&action=trigger_workflow").await;
    assert!(invalid.body.contains("workflow"), "{}", invalid.body);

    let refused = c
        .post_form(
            &cookie,
            &format!("{env}/mappings"),
            &format!("event=Plan+Chosen&action=trigger_workflow&p.recipients=userId&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        element_text(&refused.body, "f-p-workflow-help").contains("field-error"),
        "{}",
        refused.body
    );
    let saved = c
        .post_form(
            &cookie,
            &format!("{env}/mappings"),
            &format!("event=Plan+Chosen&action=trigger_workflow&p.workflow=plan&p.recipients=userId&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let id = "Plan Chosen:trigger_workflow";
    let mapping = c.manager.mapping("app", "development", id).await.unwrap();
    assert_eq!(mapping["workflow"], "plan");
    assert_eq!(mapping["recipients"], "userId");

    let path = format!("{env}/mappings/Plan%20Chosen%3Atrigger_workflow");
    let edit = c.get(&cookie, &format!("{path}/edit")).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("value=\"plan\""));
    let edited = c
        .post_form(
            &cookie,
            &format!("{path}/edit"),
            &format!("event=Plan+Chosen&action=trigger_workflow&p.workflow=upgrade&p.recipients=&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(edited.status, StatusCode::SEE_OTHER, "{}", edited.body);
    let mapping = c.manager.mapping("app", "development", id).await.unwrap();
    assert_eq!(mapping["workflow"], "upgrade");
    assert!(mapping.get("recipients").is_none(), "{mapping}");

    let off = c
        .post_form(&cookie, &path, &format!("active=false&csrf={csrf}"), &[])
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    let mapping = c.manager.mapping("app", "development", id).await.unwrap();
    assert_eq!(mapping["active"], false);
    let summary = &c.manager.revisions(None, 1).await.unwrap()[0].summary;
    assert_eq!(summary, &format!("update mapping {id} in app/development"));

    let gone = c
        .post_form(
            &cookie,
            &format!("{path}/delete"),
            &format!("csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert!(c.manager.mapping("app", "development", id).await.is_err());
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn promote_shows_the_diff_first_and_the_revision_log_pages() {
    let c = console().await;
    stored_source(&c).await;
    add_mapping(&c).await;
    let (cookie, csrf) = c.sign_in().await;
    let dry = c
        .get(
            &cookie,
            "/sources/app/promote?from=development&to=production",
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert!(
        dry.body.contains("&quot;id&quot;:&quot;m&quot;"),
        "{}",
        dry.body
    );
    assert!(dry.body.contains("apply-promote"));
    assert!(
        c.manager
            .mappings("app", "production")
            .await
            .unwrap()
            .is_empty(),
        "a dry run changes nothing"
    );
    let applied = c
        .post_form(
            &cookie,
            "/sources/app/promote",
            &format!("from=development&to=production&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(applied.status, StatusCode::OK);
    let promoted = c.manager.mappings("app", "production").await.unwrap();
    assert_eq!(promoted[0]["id"], "m");

    let revisions = c.get(&cookie, "/revisions").await;
    assert_eq!(revisions.status, StatusCode::OK);
    assert!(
        revisions
            .body
            .contains("promote mappings of app from development to production")
    );
    assert!(revisions.body.contains("console:sha256:"));
    let head = c.manager.revisions(None, 1).await.unwrap()[0].number;
    let older = c.get(&cookie, &format!("/revisions?before={head}")).await;
    assert!(
        !older.body.contains("promote mappings"),
        "paged with before"
    );
    assert!(older.body.contains("create source app"));
    assert_eq!(
        c.get(&cookie, "/revisions?before=x").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_rehearsal_shows_the_preprocess_scripts_result_or_its_error() {
    let c = console().await;
    c.manager
        .create_source(
            "test",
            serde_json::json!({"key": "hooks", "kind": "http", "environments": {"development": {
                "preprocess": {"enforce": false, "script":
                    "export function main(ctx) {\n  if (ctx.body.boom) { throw new Error('boom'); }\n  return { verified: false, tier: ctx.body.tier };\n}"}}}}),
        )
        .await
        .unwrap();
    let (cookie, csrf) = c.sign_in().await;
    let path = "/sources/hooks/environments/development/rehearse";
    let body = serde_json::json!({"type": "x", "tier": "<gold>"}).to_string();
    let shown = c
        .post_form(
            &cookie,
            path,
            &format!("body={}&csrf={csrf}", urlencode(&body)),
            &[],
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert!(shown.body.contains("id=\"preprocess\""), "{}", shown.body);
    assert!(
        shown
            .body
            .contains("&quot;tier&quot;: &quot;&lt;gold&gt;&quot;"),
        "the output, escaped: {}",
        shown.body
    );
    let boom = serde_json::json!({"type": "x", "boom": true}).to_string();
    let failed = c
        .post_form(
            &cookie,
            path,
            &format!("body={}&csrf={csrf}", urlencode(&boom)),
            &[],
        )
        .await;
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.body);
    assert!(
        failed.body.contains("hooks/development threw at line 2"),
        "{}",
        failed.body
    );
}

#[tokio::test]
async fn rehearsing_a_payload_shows_its_plans_or_its_refusal_and_stores_nothing() {
    let c = console().await;
    stored_source(&c).await;
    add_mapping(&c).await;
    let (cookie, csrf) = c.sign_in().await;
    let env = "/sources/app/environments/development";

    let page = c.get(&cookie, env).await;
    assert!(page.body.contains("id=\"rehearse-form\""), "{}", page.body);

    let body = serde_json::json!({"type": "track", "event": "E", "userId": "u1"}).to_string();
    let refused = c
        .post_form(
            &cookie,
            &format!("{env}/rehearse"),
            &format!("body={}", urlencode(&body)),
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "no CSRF token");

    let planned = c
        .post_form(
            &cookie,
            &format!("{env}/rehearse"),
            &format!("body={}&csrf={csrf}", urlencode(&body)),
            &[],
        )
        .await;
    assert_eq!(planned.status, StatusCode::OK, "{}", planned.body);
    assert!(
        planned.body.contains("data-status=\"planned\""),
        "{}",
        planned.body
    );
    assert!(
        planned.body.contains("&quot;workflow&quot;: &quot;w&quot;"),
        "{}",
        planned.body
    );
    assert!(
        planned
            .body
            .contains("data-verification=\"not_configured\""),
        "{}",
        planned.body
    );

    let evil = "<script>window.__pwned=1</script>";
    let hostile = serde_json::json!({"type": "track", "event": evil, "userId": evil}).to_string();
    let escaped = c
        .post_form(
            &cookie,
            &format!("{env}/rehearse"),
            &format!(
                "body={}&headers={}&csrf={csrf}",
                urlencode(&hostile),
                urlencode(&format!("X-Evil: {evil}"))
            ),
            &[],
        )
        .await;
    assert_eq!(escaped.status, StatusCode::OK, "{}", escaped.body);
    assert!(!escaped.body.contains("<script>window"), "{}", escaped.body);
    assert!(
        escaped
            .body
            .contains("&lt;script&gt;window.__pwned=1&lt;/script&gt;")
    );

    let malformed = c
        .post_form(
            &cookie,
            &format!("{env}/rehearse"),
            &format!("body={}&csrf={csrf}", urlencode("{not json <b>")),
            &[],
        )
        .await;
    assert_eq!(malformed.status, StatusCode::OK, "{}", malformed.body);
    assert!(
        malformed.body.contains("400 Bad Request"),
        "{}",
        malformed.body
    );
    assert!(
        malformed.body.contains("{not json &lt;b&gt;"),
        "the form keeps the body, escaped"
    );

    let bad_headers = c
        .post_form(
            &cookie,
            &format!("{env}/rehearse"),
            &format!("body=%7B%7D&headers=nocolon&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(bad_headers.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_headers.body.contains("`headers`"),
        "{}",
        bad_headers.body
    );

    let logged = c
        .pipeline
        .store()
        .list_events(&tributary_store::EventFilter::default(), None, 10)
        .await
        .unwrap();
    assert!(logged.items.is_empty(), "a rehearsal stores nothing");
}

#[tokio::test]
async fn the_environment_page_has_the_identify_switch_and_the_receive_url_reveal() {
    let c = console().await;
    stored_source(&c).await;
    let (cookie, csrf) = c.sign_in().await;
    let env = "/sources/app/environments/development";
    let page = c.get(&cookie, env).await;
    assert!(
        page.body
            .contains(&format!("action=\"/console{env}/reveal\"")),
        "{}",
        page.body
    );
    assert!(page.body.contains("Copy receive URL"));
    assert!(page.body.contains("…/receive/tok_") || page.body.contains("/receive/tok_"));
    assert!(
        page.body
            .contains(&format!("action=\"/console{env}/identify\""))
    );
    let switched = c
        .post_form(
            &cookie,
            &format!("{env}/identify"),
            &format!("identify=true&back=environment&csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER, "{}", switched.body);
    assert_eq!(switched.headers[header::LOCATION], format!("/console{env}"));
    let source = c.manager.source("app").await.unwrap();
    assert_eq!(source["environments"]["development"]["identify"], true);
    let file_source = c
        .get(&cookie, "/sources/web/environments/development")
        .await;
    assert!(
        !file_source.body.contains("/identify\""),
        "a file source has no identify switch"
    );
}

#[tokio::test]
async fn event_detail_shows_its_provenance_and_a_replay_links_its_original() {
    let c = console().await;
    let token = stored_source(&c).await;
    add_mapping(&c).await;
    c.manager
        .update_environment(
            "test",
            "app",
            "development",
            None,
            serde_json::json!({"verification": {"scheme": "segment-signature",
                "secret": "shared-secret", "enforce": false}}),
        )
        .await
        .unwrap();
    let revision = c.manager.revisions(None, 1).await.unwrap()[0].number;
    send(
        &c,
        &token,
        serde_json::json!({"type": "track", "event": "E", "userId": "u1"}),
    )
    .await;
    let (cookie, csrf) = c.sign_in().await;
    let original = c
        .pipeline
        .store()
        .list_events(&tributary_store::EventFilter::default(), None, 1)
        .await
        .unwrap()
        .items[0]
        .id;
    let page = c.get(&cookie, &format!("/events/{original}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(&format!(
            "href=\"/console/revisions?before={}#revision-{revision}\"",
            revision + 1
        )),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("class=\"badge failed\" data-verification=\"unenforced:failed\""),
        "a failed verification stands out: {}",
        page.body
    );
    assert!(!page.body.contains("Replay of"));
    let revisions = c
        .get(&cookie, &format!("/revisions?before={}", revision + 1))
        .await;
    assert!(
        revisions
            .body
            .contains(&format!("id=\"revision-{revision}\""))
    );

    let replayed = c
        .post_form(
            &cookie,
            &format!("/events/{original}/replay"),
            &format!("csrf={csrf}"),
            &[],
        )
        .await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER, "{}", replayed.body);
    let location = replayed.headers[header::LOCATION].to_str().unwrap();
    let replay = c
        .get(&cookie, location.strip_prefix(BASE_PATH).unwrap())
        .await;
    assert!(
        replay.body.contains(&format!(
            "href=\"/console/events/{original}\" class=\"replay-of\""
        )),
        "{}",
        replay.body
    );
}

#[tokio::test]
async fn the_action_log_filters_by_source_action_user_event_and_time_and_pages_with_them() {
    let c = console().await;
    let token = stored_source(&c).await;
    add_mapping(&c).await;
    for i in 0..52 {
        let user = if i == 0 { "other" } else { "u1" };
        send(
            &c,
            &token,
            serde_json::json!({"type": "track", "event": "E", "userId": user}),
        )
        .await;
    }
    let (cookie, _) = c.sign_in().await;
    let rows = |body: &str| body.matches("<tr data-action=").count();

    let other = c.get(&cookie, "/actions?user_id=other").await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);
    assert_eq!(rows(&other.body), 1, "{}", other.body);
    let event_id = other
        .body
        .split("href=\"/console/events/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let by_event = c
        .get(&cookie, &format!("/actions?event_id={event_id}"))
        .await;
    assert_eq!(rows(&by_event.body), 1);

    assert_eq!(rows(&c.get(&cookie, "/actions?source=web").await.body), 0);
    assert_eq!(
        rows(&c.get(&cookie, "/actions?action=identify_user").await.body),
        0
    );
    assert_eq!(
        rows(&c.get(&cookie, "/actions?until=2000-01-01T00:00").await.body),
        0
    );

    let first = c
        .get(
            &cookie,
            "/actions?source=app&environment=development&action=trigger_workflow&user_id=u1&since=2000-01-01T00:00",
        )
        .await;
    assert_eq!(rows(&first.body), 50, "{}", first.body);
    let older = first
        .body
        .split("rel=\"next\"")
        .next()
        .and_then(|b| b.rsplit("href=\"").next())
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(older.contains("user_id=u1&"), "{older}");
    assert!(older.contains("cursor="), "{older}");
    let second = c.get(&cookie, older.strip_prefix(BASE_PATH).unwrap()).await;
    assert_eq!(rows(&second.body), 1, "{}", second.body);
    assert!(
        !second.body.contains(&event_id),
        "the other user's action is not on it"
    );

    let bad = c.get(&cookie, "/actions?action=launch").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("`action`"), "{}", bad.body);
    let bad = c.get(&cookie, "/actions?event_id=nope").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("`event_id`"), "{}", bad.body);
}
