//! The PostgreSQL backend, for any number of replicas sharing one database.

mod append;
mod config_log;
mod local_apply;
mod ops;
mod read;
mod tls;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::NoTls;
use tributary_core::{event::EventId, plan::ActionPayload};

use crate::{
    ActionFilter, ActionId, ActionRecord, AdminQueries, AppendItem, AppendOutcome, AttemptOutcome,
    ClaimedAction, EventDetail, EventFilter, EventLog, EventRecord, KnownEventType, LocalApply,
    LocalEffect, LocalExecution, LocalKind, LocalRecipients, LocalRecord, MappingOverride,
    MappingOverrides, Outbox, Page, PruneReport, RejectedRequest, Retention, SourceStatus,
    StoreError, local, migrate,
};

/// Tuning for [`PostgresStore`].
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Pooled connections.
    pub pool_size: usize,
    /// Appends waiting for a committer before callers get [`StoreError::Overloaded`].
    pub queue_capacity: usize,
    /// The most events in one group commit.
    pub max_batch: usize,
    /// Group commits in flight at once (each holds one connection). More
    /// committers split the same load into smaller groups, and each group
    /// costs the server a transaction, a WAL flush and a plan's execution
    /// per table whatever its size. A group takes two round trips (its
    /// `BEGIN` and `COMMIT` travel with its statements), so one committer
    /// keeps up: on two cores it answered 11-19% more events than two, with
    /// a quarter to a third less PostgreSQL CPU per event, for one replica
    /// and for two (docs/PERFORMANCE.md). With a larger or a distant
    /// PostgreSQL server, more may pay; that was not measured.
    pub committers: usize,
    /// How long to wait for a pooled connection (or a new one) before [`StoreError::Unavailable`].
    pub connect_timeout: Duration,
    /// The schema to use (created if missing); `None` uses the server's `search_path`.
    pub schema: Option<String>,
    /// Shown in `pg_stat_activity`.
    pub application_name: String,
    /// Which environments' actions the appends run themselves.
    pub local_execution: LocalExecution,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            queue_capacity: 8_192,
            max_batch: 1_024,
            committers: 1,
            connect_timeout: Duration::from_secs(5),
            schema: None,
            application_name: "tributary".into(),
            local_execution: LocalExecution::ThroughSink,
        }
    }
}

/// The scale-out store. Dedup holds across processes through the `dedup`
/// table's primary key; claims use `FOR UPDATE SKIP LOCKED`. Lost connections
/// surface as [`StoreError::Unavailable`] and the pool opens new ones.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    queue: mpsc::Sender<append::AppendJob>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:pass@host:port/db`), applies
    /// missing migrations and starts the committers.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let pool = build_pool(url, &options)?;
        migrate_postgres(&pool, options.schema.as_deref(), migrate::latest()).await?;
        let run = Arc::new(append::RunAtAppend::new(&pool, &options.local_execution).await?);
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let first_shard = ops::random_shard();
        for n in 0..options.committers.max(1) {
            tokio::spawn(append::committer(
                pool.clone(),
                Arc::clone(&rx),
                options.max_batch.max(1),
                Arc::clone(&run),
                ops::committer_shard(first_shard, n),
            ));
        }
        Ok(Self { pool, queue: tx })
    }
}

pub(crate) fn build_pool(url: &str, options: &PostgresOptions) -> Result<Pool, StoreError> {
    // The URL holds a password: errors name the problem, never the URL.
    let (url, tls) = tls::split_url(url)?;
    let mut config: tokio_postgres::Config =
        url.parse()
            .map_err(|e: tokio_postgres::Error| StoreError::InvalidInput {
                field: "store.url",
                problem: with_causes(&e),
            })?;
    if let Some(schema) = &options.schema {
        if schema.is_empty()
            || !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(StoreError::InvalidInput {
                field: "schema",
                problem: "use letters, digits and underscores".into(),
            });
        }
        config.options(format!("-c search_path={schema}"));
    }
    config.connect_timeout(options.connect_timeout);
    config.application_name(&options.application_name);
    config.ssl_mode(tls::driver_mode(tls.mode));
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tls::connector(&tls)? {
        Some(connector) => Manager::from_config(config, connector, manager_config),
        None => Manager::from_config(config, NoTls, manager_config),
    };
    Pool::builder(manager)
        .max_size(options.pool_size.max(options.committers + 1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.connect_timeout))
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.connect_timeout))
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Runs `sql` inside `tx`, prepared once per connection (the pool's
/// statement cache) rather than sent as text, which costs a second round
/// trip and a new plan each time. Several awaited at once on one connection
/// are pipelined, sent in the order they are first polled; when the
/// statement is in the cache already, the first poll sends it.
pub(crate) async fn execute_cached(
    tx: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&statement, params).await?)
}

/// [`execute_cached`] for a statement that returns rows.
pub(crate) async fn query_cached(
    tx: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query(&statement, params).await?)
}

/// A pooled connection. Failures to open one keep their causes: the driver's
/// own text for a failed TLS handshake or connect is only "error performing
/// TLS handshake", while the cause says which certificate check failed.
pub(crate) async fn checkout(pool: &Pool) -> Result<Object, StoreError> {
    pool.get().await.map_err(|e| match e {
        PoolError::Backend(e) if e.as_db_error().is_none() => {
            StoreError::Unavailable(with_causes(&e))
        }
        other => other.into(),
    })
}

/// An error's text followed by its causes' (each only when it adds something).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Any number of processes may start at once: the advisory lock lets one
/// migrate while the others wait, then find nothing left to do.
const MIGRATION_LOCK: i64 = 0x7472_6962_6d69_6772;

pub(crate) async fn migrate_postgres(
    pool: &Pool,
    schema: Option<&str>,
    target: u32,
) -> Result<(), StoreError> {
    let mut client = checkout(pool).await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    if let Some(schema) = schema {
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
    }
    tx.batch_execute(migrate::CREATE_TABLE).await?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let current = u32::try_from(current).unwrap_or(0);
    if current > migrate::latest() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known: migrate::latest(),
        });
    }
    for m in migrate::MIGRATIONS
        .iter()
        .filter(|m| m.version > current && m.version <= target)
    {
        let fail = |e: tokio_postgres::Error| StoreError::Migration {
            version: m.version,
            name: m.name,
            reason: e.to_string(),
        };
        tx.batch_execute(m.postgres).await.map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[
                &i32::try_from(m.version).unwrap_or(i32::MAX),
                &m.name,
                &Utc::now().timestamp_millis(),
            ],
        )
        .await
        .map_err(fail)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "Applied PostgreSQL migration."
        );
    }
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl EventLog for PostgresStore {
    async fn append(&self, items: Vec<AppendItem>) -> Result<Vec<AppendOutcome>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.queue
            .try_send(append::AppendJob { items, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })?;
        let outcomes = rx.await.map_err(|_| StoreError::Closed)??;
        for outcome in &outcomes {
            if let AppendOutcome::Accepted { ran_local, .. } = outcome {
                ran_local.iter().for_each(crate::LocalRun::report);
            }
        }
        Ok(outcomes)
    }

    async fn record_rejected(&self, request: RejectedRequest) -> Result<EventId, StoreError> {
        ops::record_rejected(&self.pool, &request).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        checkout(&self.pool).await?.simple_query("SELECT 1").await?;
        Ok(())
    }
}

#[async_trait]
impl Outbox for PostgresStore {
    async fn claim(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedAction>, StoreError> {
        ops::claim(&self.pool, owner, limit, lease).await
    }

    async fn finish_attempt(
        &self,
        action: ActionId,
        owner: &str,
        outcome: AttemptOutcome,
    ) -> Result<(), StoreError> {
        ops::finish_attempt(&self.pool, action, owner, &outcome).await
    }

    async fn finish_attempts(
        &self,
        owner: &str,
        attempts: Vec<(ActionId, AttemptOutcome)>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        ops::finish_attempts(&self.pool, owner, &attempts).await
    }
}

#[async_trait]
impl LocalRecipients for PostgresStore {
    async fn apply_local(
        &self,
        action: ActionId,
        environment: &str,
        payload: &ActionPayload,
    ) -> Result<LocalEffect, StoreError> {
        let item = LocalApply {
            action,
            environment: environment.to_owned(),
            payload: payload.clone(),
        };
        local_apply::apply_local_many(&self.pool, std::slice::from_ref(&item))
            .await?
            .pop()
            .unwrap_or(Err(StoreError::Closed))
    }

    async fn apply_local_many(
        &self,
        items: Vec<LocalApply>,
    ) -> Result<Vec<Result<LocalEffect, StoreError>>, StoreError> {
        local_apply::apply_local_many(&self.pool, &items).await
    }

    async fn local_record(
        &self,
        kind: LocalKind,
        environment: &str,
        scope: &str,
        id: &str,
    ) -> Result<Option<LocalRecord>, StoreError> {
        read::local_record(
            &self.pool,
            kind,
            &local::stored_scope(environment, scope),
            id,
        )
        .await
    }

    async fn local_records(
        &self,
        kind: LocalKind,
        environment: &str,
        scope: &str,
    ) -> Result<Vec<LocalRecord>, StoreError> {
        read::local_records(&self.pool, kind, &local::stored_scope(environment, scope)).await
    }
}

#[async_trait]
impl AdminQueries for PostgresStore {
    async fn list_events(
        &self,
        filter: &EventFilter,
        before: Option<EventId>,
        limit: usize,
    ) -> Result<Page<EventRecord, EventId>, StoreError> {
        read::list_events(&self.pool, filter, before, limit).await
    }

    async fn event_detail(&self, id: EventId) -> Result<Option<EventDetail>, StoreError> {
        read::event_detail(&self.pool, id).await
    }

    async fn find_actions(
        &self,
        filter: &ActionFilter,
        before: Option<ActionId>,
        limit: usize,
    ) -> Result<Page<ActionRecord, ActionId>, StoreError> {
        read::find_actions(&self.pool, filter, before, limit).await
    }

    async fn source_statuses(&self, now: DateTime<Utc>) -> Result<Vec<SourceStatus>, StoreError> {
        read::source_statuses(&self.pool, now).await
    }

    async fn known_event_types(
        &self,
        source: &str,
        environment: &str,
    ) -> Result<Vec<KnownEventType>, StoreError> {
        read::known_event_types(&self.pool, source, environment).await
    }
}

#[async_trait]
impl MappingOverrides for PostgresStore {
    async fn set_mapping_active(
        &self,
        source: &str,
        environment: &str,
        mapping: &str,
        active: bool,
    ) -> Result<(), StoreError> {
        ops::set_mapping_active(&self.pool, source, environment, mapping, active).await
    }

    async fn forget_mapping_overrides(
        &self,
        source: &str,
        mapping: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        ops::forget_mapping_overrides(&self.pool, source, mapping).await
    }

    async fn mapping_overrides(&self) -> Result<Vec<MappingOverride>, StoreError> {
        read::mapping_overrides(&self.pool).await
    }
}

#[async_trait]
impl Retention for PostgresStore {
    async fn prune(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<PruneReport, StoreError> {
        ops::prune(&self.pool, cutoff, now, batch).await
    }
}

#[cfg(test)]
mod tests;
