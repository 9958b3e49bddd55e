//! Applying a configuration revision at issue 16's size: 1,000 stored
//! sources x 3 environments x 10 mappings (30,000 mappings).
//!
//! Run: `BENCH_DIR=/var/tmp cargo bench -p tributary-manage --bench live_config`
//! (PostgreSQL too when `TRIBUTARY_TEST_POSTGRES` is set).
//!
//! - `load`: the first refresh's work, every stored document compiled and
//!   indexed (`LiveConfig::with_changes` with all of them).
//! - `apply_one_revision`: a revision that changed one source (a mapping
//!   added), applied to the loaded configuration; what every replica does.
//! - `compile_one_document`: the part of that spent validating the changed
//!   document with the file's loader.
//! - `create_mapping_sqlite` / `_postgres`: the whole change an operator
//!   waits for (`Manager::create_mapping`: refresh, compile, credential
//!   check, durable commit, apply) against a real store holding the
//!   configuration.

use std::{
    collections::BTreeMap,
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use serde_json::{Map, Value, json};
use tributary_core::config::{self, Config, EnvironmentConfig, source_from_document};
use tributary_manage::Manager;
use tributary_pipeline::{LiveConfig, Pipeline};
use tributary_store::{
    NewRevision, PostgresOptions, PostgresStore, SqliteStore, Store, StoredSource,
};

const SOURCES: usize = 1_000;
const ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];
const MAPPINGS: usize = 10;

fn main() {
    divan::main();
}

fn file_config() -> Config {
    let text: String = ENVIRONMENTS
        .iter()
        .map(|e| format!("[environments.{e}]\n"))
        .collect();
    config::load("bench.toml", &text, &|_| None).expect("the bench's file loads")
}

fn environments() -> BTreeMap<String, EnvironmentConfig> {
    file_config().environments
}

fn key(i: usize) -> String {
    format!("source-{i:04}")
}

/// Source `i` as the management API stores it: a token and a write key per
/// environment, and ten trigger mappings on ten event types.
fn document(i: usize) -> Map<String, Value> {
    let environments: Map<String, Value> = ENVIRONMENTS
        .iter()
        .map(|env| {
            let mappings: Vec<Value> = (0..MAPPINGS)
                .map(|m| {
                    json!({"id": format!("event-{m}:trigger_workflow"), "event": format!("Event {m}"),
                        "action": "trigger_workflow", "workflow": format!("workflow-{m}"),
                        "recipients": "userId", "actor": "properties.actor_id"})
                })
                .collect();
            let env_doc = json!({
                "token": format!("tok_{i:04}_{env}_0123456789abcdef"),
                "write_key": format!("wk_{i:04}_{env}_0123456789abcdef"),
                "mappings": mappings,
            });
            ((*env).to_owned(), env_doc)
        })
        .collect();
    let doc = json!({"key": key(i), "kind": "segment", "name": format!("Source {i}"),
        "environments": environments});
    match doc {
        Value::Object(m) => m,
        _ => unreachable!("built as an object"),
    }
}

fn stored(i: usize, revision: u64, document: &Map<String, Value>) -> StoredSource {
    StoredSource {
        key: key(i),
        revision,
        document: Some(Value::Object(document.clone()).to_string()),
    }
}

fn all_stored() -> Vec<StoredSource> {
    (0..SOURCES).map(|i| stored(i, 1, &document(i))).collect()
}

fn loaded() -> LiveConfig {
    let (live, problems) =
        LiveConfig::from_file(&file_config()).with_changes(1, all_stored(), &environments(), None);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(live.sources().count(), SOURCES);
    live
}

/// Source `i` with an eleventh mapping in production.
fn with_new_mapping(i: usize) -> Map<String, Value> {
    let mut doc = document(i);
    let list = doc["environments"]["production"]["mappings"]
        .as_array_mut()
        .expect("mappings");
    list.push(json!({"id": "order-placed", "event": "Order Placed",
        "action": "trigger_workflow", "workflow": "order-placed", "recipients": "userId"}));
    doc
}

#[divan::bench(sample_count = 10)]
fn load(bencher: divan::Bencher) {
    let environments = environments();
    let empty = LiveConfig::from_file(&file_config());
    bencher
        .with_inputs(all_stored)
        .bench_local_values(|changes| {
            black_box(empty.with_changes(1, changes, &environments, None))
        });
}

#[divan::bench(sample_count = 50)]
fn apply_one_revision(bencher: divan::Bencher) {
    let environments = environments();
    let live = loaded();
    let changed = with_new_mapping(SOURCES / 2);
    bencher
        .with_inputs(|| vec![stored(SOURCES / 2, 2, &changed)])
        .bench_local_values(|changes| {
            black_box(live.with_changes(2, changes, &environments, None))
        });
}

#[divan::bench(sample_count = 50)]
fn compile_one_document(bencher: divan::Bencher) {
    let environments = environments();
    let changed = Value::Object(with_new_mapping(SOURCES / 2));
    bencher.bench_local(|| black_box(source_from_document(&changed, &environments)));
}

/// A pipeline and manager over `store` after one revision that wrote every
/// source, loaded as a starting replica loads it.
fn manager_over(rt: &tokio::runtime::Runtime, store: Arc<dyn Store>) -> Manager {
    rt.block_on(async {
        let revision = NewRevision {
            actor: "bench".into(),
            summary: "load the bench configuration".into(),
            changes: json!([]),
            sources: (0..SOURCES)
                .map(|i| (key(i), Some(Value::Object(document(i)).to_string())))
                .collect(),
        };
        let head = store.config_head().await.expect("head");
        store.commit_config(head, revision).await.expect("commit");
        let pipeline = Pipeline::new(Arc::new(file_config()), store)
            .await
            .expect("pipeline");
        assert_eq!(pipeline.live().sources().count(), SOURCES);
        Manager::new(Arc::new(pipeline), Vec::new())
    })
}

/// One `create_mapping` per iteration, each on the next source in turn.
fn bench_create_mapping(bencher: divan::Bencher, rt: &tokio::runtime::Runtime, manager: &Manager) {
    let next = AtomicUsize::new(0);
    bencher.bench_local(|| {
        let i = next.fetch_add(1, Ordering::Relaxed) % SOURCES;
        let mapping = json!({"event": "Order Placed", "action": "trigger_workflow",
            "workflow": "order-placed", "recipients": "userId"});
        rt.block_on(manager.create_mapping("bench", &key(i), "production", None, mapping))
            .expect("create mapping")
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[divan::bench(sample_count = 30, sample_size = 1)]
fn create_mapping_sqlite(bencher: divan::Bencher) {
    let rt = runtime();
    let dir = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into()))
        .expect("dir");
    let store = rt
        .block_on(SqliteStore::open_dir(dir.path()))
        .expect("open sqlite");
    let manager = manager_over(&rt, Arc::new(store));
    bench_create_mapping(bencher, &rt, &manager);
}

#[divan::bench(
    sample_count = 30,
    sample_size = 1,
    ignore = std::env::var("TRIBUTARY_TEST_POSTGRES").map_or(true, |u| u.is_empty())
)]
fn create_mapping_postgres(bencher: divan::Bencher) {
    let rt = runtime();
    let url = std::env::var("TRIBUTARY_TEST_POSTGRES").expect("checked by `ignore`");
    let options = PostgresOptions {
        schema: Some(format!("bench_live_{}", std::process::id())),
        ..Default::default()
    };
    let store = rt
        .block_on(PostgresStore::connect(&url, options))
        .expect("connect postgres");
    let manager = manager_over(&rt, Arc::new(store));
    bench_create_mapping(bencher, &rt, &manager);
}
