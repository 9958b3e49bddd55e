//! Test support: backends, events and plans.

#![allow(dead_code, unreachable_pub)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tributary_core::{
    ActionType,
    dedup::DedupScope,
    event::{Event, EventId, EventKind},
    plan::{ActionPayload, ActionPlan, PlanOrigin, PlanOutcome, SkipReason},
};
use tributary_store::{
    AppendItem, LocalExecution, PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store,
};

/// A store and whatever keeps its data alive for the test.
pub struct Harness {
    pub store: Arc<dyn Store>,
    pub backend: &'static str,
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the test's own schema.
    schema: Option<String>,
}

/// `production`'s actions run in the store (where the backend can).
pub fn production_in_store() -> LocalExecution {
    LocalExecution::InStore(vec!["production".to_owned()])
}

impl Harness {
    /// A new, empty store of the same backend, opened with `local`.
    pub async fn like(&self, local: LocalExecution) -> Harness {
        match self.backend {
            "sqlite" => sqlite_with(SqliteOptions {
                local_execution: local,
                ..SqliteOptions::default()
            })
            .await
            .expect("sqlite"),
            _ => postgres_with(PostgresOptions {
                local_execution: local,
                ..PostgresOptions::default()
            })
            .await
            .expect("postgres"),
        }
    }

    /// The same data, reopened with `local`.
    pub async fn reopen(self, local: LocalExecution) -> Harness {
        let Harness {
            store,
            backend,
            _dir,
            schema,
        } = self;
        drop(store);
        let Some(dir) = _dir else {
            return postgres_with(PostgresOptions {
                schema,
                local_execution: local,
                ..PostgresOptions::default()
            })
            .await
            .expect("reopen postgres");
        };
        let store = SqliteStore::open(
            dir.path().join("t.db"),
            SqliteOptions {
                local_execution: local,
                ..SqliteOptions::default()
            },
        )
        .await
        .expect("reopen sqlite");
        Harness {
            store: Arc::new(store),
            backend,
            _dir: Some(dir),
            schema: None,
        }
    }
}

pub async fn sqlite() -> Option<Harness> {
    sqlite_with(SqliteOptions::default()).await
}

pub async fn sqlite_with(options: SqliteOptions) -> Option<Harness> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("t.db"), options)
        .await
        .expect("open sqlite");
    Some(Harness {
        store: Arc::new(store),
        backend: "sqlite",
        _dir: Some(dir),
        schema: None,
    })
}

/// The PostgreSQL URL, or `None` (with a loud message) when unset outside CI.
/// In CI a missing server fails the test.
pub fn postgres_url() -> Option<String> {
    match std::env::var("TRIBUTARY_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "CI=true but TRIBUTARY_TEST_POSTGRES is unset: .ci/setup-postgres.sh must start PostgreSQL"
                );
            }
            eprintln!(
                "\n!!!!!!!! SKIPPED: PostgreSQL test, TRIBUTARY_TEST_POSTGRES is unset \
                 (source .ci/setup-postgres.sh with CI=true to run it) !!!!!!!!\n"
            );
            None
        }
    }
}

static SCHEMA_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh schema name, so tests run in parallel without seeing each other.
pub fn fresh_schema() -> String {
    let n = SCHEMA_SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or(0);
    format!(
        "t_{}_{}_{n}",
        std::process::id(),
        nanos.rem_euclid(1_000_000_000)
    )
}

pub async fn postgres() -> Option<Harness> {
    postgres_with(PostgresOptions::default()).await
}

pub async fn postgres_with(mut options: PostgresOptions) -> Option<Harness> {
    let url = postgres_url()?;
    if options.schema.is_none() {
        options.schema = Some(fresh_schema());
    }
    options.pool_size = options.pool_size.min(8);
    let schema = options.schema.clone();
    let store = PostgresStore::connect(&url, options)
        .await
        .expect("connect postgres");
    Some(Harness {
        store: Arc::new(store),
        backend: "postgres",
        _dir: None,
        schema,
    })
}

pub fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("valid time")
}

pub fn event_at(
    source: &str,
    event_type: &str,
    user: Option<&str>,
    received_at: DateTime<Utc>,
) -> Event {
    Event {
        id: EventId::generate(received_at),
        environment: "production".into(),
        source: source.into(),
        kind: EventKind::Track,
        event: event_type.into(),
        user_id: user.map(str::to_owned),
        anonymous_id: None,
        data: json!({"plan": "pro"}),
        timestamp: received_at,
        received_at,
        message_id: None,
        raw: json!({"type": "track", "event": event_type, "userId": user}),
        headers: Default::default(),
        preprocess: None,
    }
}

pub fn event(source: &str, event_type: &str, user: Option<&str>) -> Event {
    event_at(source, event_type, user, Utc::now())
}

pub fn identify_plan(user: &str, attributes: Value) -> ActionPlan {
    ActionPlan {
        action: ActionType::IdentifyUser,
        origin: PlanOrigin::Mapping {
            mapping: "m-identify".into(),
        },
        outcome: PlanOutcome::Planned {
            payload: ActionPayload::IdentifyUser {
                user_id: user.into(),
                attributes: attributes.as_object().cloned().unwrap_or_default(),
            },
        },
        notes: Vec::new(),
    }
}

pub fn trigger_plan(workflow: &str, user: &str) -> ActionPlan {
    ActionPlan {
        action: ActionType::TriggerWorkflow,
        origin: PlanOrigin::Mapping {
            mapping: "m-trigger".into(),
        },
        outcome: PlanOutcome::Planned {
            payload: ActionPayload::TriggerWorkflow {
                workflow: workflow.into(),
                recipients: vec![tributary_core::plan::RecipientRef::User(user.into())],
                actor: None,
                tenant: None,
                data: json!({}).into(),
                cancellation_key: None,
            },
        },
        notes: Vec::new(),
    }
}

pub fn skipped_plan() -> ActionPlan {
    ActionPlan {
        action: ActionType::TriggerWorkflow,
        origin: PlanOrigin::Mapping {
            mapping: "m-off".into(),
        },
        outcome: PlanOutcome::Skipped {
            reason: SkipReason::Inactive,
        },
        notes: Vec::new(),
    }
}

pub fn scope_for(e: &Event, key: &str, window: Duration) -> DedupScope {
    DedupScope {
        key: key.into(),
        event_type: e.event.clone(),
        source: e.source.clone(),
        environment: e.environment.clone(),
        window,
    }
}

pub const DAY: Duration = Duration::from_secs(86_400);

/// An item with one identify plan and a dedup key.
pub fn keyed_item(key: &str) -> AppendItem {
    let e = event("web", "signup", Some("u1"));
    let dedup = Some(scope_for(&e, key, DAY));
    AppendItem {
        event: e,
        plans: vec![identify_plan("u1", json!({"name": "Ada"}))],
        dedup,
        provenance: Default::default(),
    }
}

pub fn plain_item(e: Event, plans: Vec<ActionPlan>) -> AppendItem {
    AppendItem {
        event: e,
        plans,
        dedup: None,
        provenance: Default::default(),
    }
}
