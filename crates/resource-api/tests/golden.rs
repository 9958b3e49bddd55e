//! Golden fixtures: resource-API calls (Hightouch's and Census's HTTP Request
//! destinations), row webhooks and Polytomic deliveries, snapshotted.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tributary_adapter::testing::{fixture_request, fixtures, render, source_environment};
use tributary_core::{
    Secret,
    config::{Verification, VerificationScheme},
    path::DataAlias,
};
use tributary_resource_api::{ApiRequest, CallAnswer, PolytomicAdapter, RowAdapter, parse_call};

fn dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(rel)
}

fn snapshot(name: &str, value: &Value) {
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_json_snapshot!(name, value);
    });
}

fn render_call(fixture: &Value) -> Value {
    let body = match &fixture["body"] {
        Value::Null => Vec::new(),
        b => serde_json::to_vec(b).unwrap(),
    };
    let result = parse_call(ApiRequest {
        method: fixture["method"].as_str().unwrap(),
        path: fixture["path"].as_str().unwrap(),
        query: fixture["query"].as_str(),
        body: &body,
    });
    match result {
        Ok(call) => {
            let answer = match call.answer {
                CallAnswer::Entity(e) => json!({"entity": e}),
                CallAnswer::Subscriptions(s) => json!({"subscriptions": s}),
                CallAnswer::BulkOperation { rows } => json!({"bulk_operation": rows}),
                CallAnswer::WorkflowRun => json!("workflow_run"),
                CallAnswer::NoContent => json!("no_content"),
            };
            json!({
                "event_type": call.operation.event_type(),
                "user_id": call.user_id,
                "payloads": call.payloads,
                "answer": answer,
            })
        }
        Err(e) => json!({"error": {
            "status": e.status(), "code": e.code(), "field": e.field(), "message": e.message(),
        }}),
    }
}

#[test]
fn resource_api_calls() {
    let mut n = 0;
    for sub in ["hightouch/api", "census/api"] {
        for path in fixtures(&dir(sub)) {
            let fixture: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let tool = sub.split('/').next().unwrap();
            let name = format!("{tool}_api_{}", path.file_stem().unwrap().to_string_lossy());
            snapshot(&name, &render_call(&fixture));
            n += 1;
        }
    }
    assert!(n >= 10);
}

#[test]
fn row_webhooks() {
    let settings = source_environment(DataAlias::Literal);
    for sub in ["hightouch/rows", "census/rows"] {
        for path in fixtures(&dir(sub)) {
            let tool = sub.split('/').next().unwrap();
            let name = format!(
                "{tool}_rows_{}",
                path.file_stem().unwrap().to_string_lossy()
            );
            let result = RowAdapter::new().parse(&fixture_request(&path), &settings);
            snapshot(&name, &render(&result));
        }
    }
}

#[test]
fn polytomic_deliveries() {
    let mut settings = source_environment(DataAlias::Literal);
    settings.verification = Some(Verification {
        scheme: VerificationScheme::Bearer {
            token: Secret::new("poly-bearer-secret"),
        },
        enforce: false,
    });
    let files = fixtures(&dir("polytomic"));
    assert!(files.len() >= 4);
    for path in files {
        let name = format!("polytomic_{}", path.file_stem().unwrap().to_string_lossy());
        let result = PolytomicAdapter::new().parse(&fixture_request(&path), &settings);
        snapshot(&name, &render(&result));
    }
}
