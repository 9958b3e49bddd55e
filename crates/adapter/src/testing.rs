//! Test helpers for adapters (feature `testing`): default source-environment
//! settings, fixture requests with fixed receipt time and ids, and a stable
//! JSON rendering of an adapter's answer for golden snapshots.

use std::{
    fs,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tributary_core::{
    FieldPath, Secret,
    config::{DEFAULT_DEDUP_WINDOW, DedupSettings, SourceEnvironment},
    path::DataAlias,
};

use crate::{AdapterError, IdSource, Parsed, RawRequest};

/// The receipt time of every fixture request: 2025-03-01T10:00:05Z.
pub fn received_at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_740_823_205, 0).unwrap_or_default()
}

/// Settings with no verification, identify on, dedup on `messageId`.
pub fn source_environment(alias: DataAlias) -> SourceEnvironment {
    SourceEnvironment {
        token: Secret::new("tok_test"),
        retired_tokens: Vec::new(),
        write_key: None,
        api_key: None,
        verification: None,
        preprocess: None,
        identify: true,
        dedup: DedupSettings {
            enabled: true,
            key_path: compile("messageId", alias),
            window: DEFAULT_DEDUP_WINDOW,
        },
        event_type: None,
        event_type_path: None,
        timestamp_path: None,
        mappings: Vec::new(),
    }
}

/// Compiles a path, panicking on a typo in a test.
pub fn compile(path: &str, alias: DataAlias) -> FieldPath {
    match FieldPath::compile(path, alias) {
        Ok(p) => p,
        Err(e) => panic!("test path `{path}` does not compile: {e}"),
    }
}

/// The `.json` fixtures in `dir`, sorted by name.
pub fn fixtures(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("fixture dir {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// A request for a fixture body: received at [`received_at`], ids counting
/// from 0, and headers from the sidecar `<name>.headers` (`Name: value`
/// lines) when there is one, else `Content-Type: application/json`.
pub fn fixture_request(path: &Path) -> RawRequest {
    let body = fs::read(path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    let mut req = RawRequest::new("src_test", "production", body, received_at())
        .with_ids(IdSource::sequential(0));
    let sidecar = path.with_extension("headers");
    match fs::read_to_string(&sidecar) {
        Ok(text) => {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                if let Some((name, value)) = line.split_once(':') {
                    req = req.with_header(name.trim(), value.trim());
                }
            }
        }
        Err(_) => req = req.with_header("Content-Type", "application/json"),
    }
    req
}

/// A stable JSON view of an adapter's answer, for snapshots.
pub fn render(result: &Result<Parsed, AdapterError>) -> Value {
    match result {
        Err(e) => json!({
            "rejected": {
                "category": e.category(),
                "body": e.to_body(),
            }
        }),
        Ok(parsed) => json!({
            "verification": parsed.verification,
            "body_write_key": parsed.body_write_key.as_ref().map(|k| k.expose().to_owned()),
            "notes": parsed.notes,
            "items": parsed.items.iter().map(|r| match r {
                Ok(event) => json!({"event": event}),
                Err(problem) => json!({"error": problem}),
            }).collect::<Vec<_>>(),
        }),
    }
}
