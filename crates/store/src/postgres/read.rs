//! PostgreSQL reads.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::{Row, types::ToSql};
use tributary_core::event::EventId;

use crate::{
    ActionFilter, ActionId, ActionRecord, AttemptRecord, EventDetail, EventFilter, EventRecord,
    KnownEventType, LocalKind, LocalRecord, MappingOverride, Page, SourceStatus, StoreError,
    model::{from_ms, id_floor, ms},
    rows::{self, ACTION_COLUMNS, DecodedEvent, EVENT_COLUMNS},
};

fn event_from_row(r: &Row) -> Result<DecodedEvent, StoreError> {
    rows::event_record(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
        r.try_get(7)?,
        r.try_get(8)?,
        r.try_get(9)?,
        r.try_get(10)?,
        r.try_get(11)?,
    )
}

fn action_from_row(r: &Row) -> Result<ActionRecord, StoreError> {
    rows::action_record(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
        r.try_get(7)?,
        r.try_get(8)?,
        r.try_get(9)?,
        r.try_get(10)?,
        r.try_get(11)?,
        || Ok(r.try_get(12)?),
    )
}

pub(super) async fn list_events(
    pool: &Pool,
    filter: &EventFilter,
    before: Option<EventId>,
    limit: usize,
) -> Result<Page<EventRecord, EventId>, StoreError> {
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE TRUE");
    let mut args: Vec<String> = Vec::new();
    let mut add = |clause: &str, v: String| {
        args.push(v);
        sql.push_str(&format!(" AND {clause} ${}", args.len()));
    };
    if let Some(v) = &filter.source {
        add("source =", v.clone());
    }
    if let Some(v) = &filter.environment {
        add("environment =", v.clone());
    }
    if let Some(v) = &filter.event_type {
        add("event_type =", v.clone());
    }
    if let Some(v) = &filter.user_id {
        add("user_id =", v.clone());
    }
    if let Some(v) = filter.status {
        add("status =", v.as_str().to_owned());
    }
    if let Some(t) = filter.since {
        add("id >=", id_floor(t));
    }
    if let Some(t) = filter.until {
        add("id <", id_floor(t));
    }
    if let Some(b) = before {
        add("id <", b.to_string());
    }
    let n = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", args.len() + 1));
    let mut params: Vec<&(dyn ToSql + Sync)> =
        args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
    params.push(&n);
    let client = super::checkout(pool).await?;
    let rows = client.query(&sql, &params).await?;
    let decoded = rows
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let mut items = with_shared_headers(&client, decoded).await?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// The records with the headers they share with other events filled in.
async fn with_shared_headers(
    client: &deadpool_postgres::Client,
    decoded: Vec<DecodedEvent>,
) -> Result<Vec<EventRecord>, StoreError> {
    let wanted = rows::shared_headers_wanted(&decoded);
    let mut holders = Vec::new();
    if !wanted.is_empty() {
        for r in client
            .query(
                "SELECT id, event_json FROM events WHERE id = ANY($1) AND event_json IS NOT NULL",
                &[&wanted],
            )
            .await?
        {
            holders.push((r.try_get(0)?, r.try_get(1)?));
        }
    }
    rows::fill_shared_headers(decoded, &holders)
}

pub(super) async fn event_detail(
    pool: &Pool,
    id: EventId,
) -> Result<Option<EventDetail>, StoreError> {
    let client = super::checkout(pool).await?;
    let id_s = id.to_string();
    let Some(row) = client
        .query_opt(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1"),
            &[&id_s],
        )
        .await?
    else {
        return Ok(None);
    };
    let event = with_shared_headers(&client, vec![event_from_row(&row)?])
        .await?
        .pop()
        .ok_or_else(|| StoreError::Database("a decoded event went missing".to_owned()))?;
    let actions = client
        .query(
            &format!(
                "SELECT {ACTION_COLUMNS} FROM {} WHERE a.event_id = $1 ORDER BY a.position",
                rows::action_tables(false)
            ),
            &[&id_s],
        )
        .await?
        .iter()
        .map(action_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<String> = actions.iter().map(|a| a.id.to_string()).collect();
    let mut attempts = Vec::new();
    // An action run at append keeps its one attempt in its own row
    // (`actions.summary`, docs/store.md); the others have attempts rows.
    for r in client
        .query(
            "SELECT id, 1::bigint, created_at, updated_at, status, summary FROM actions \
             WHERE id = ANY($1) AND summary IS NOT NULL \
             UNION ALL \
             SELECT action_id, attempt, started_at, finished_at, outcome, summary FROM attempts \
             WHERE action_id = ANY($1) ORDER BY 1, 2",
            &[&ids],
        )
        .await?
    {
        let action: String = r.get(0);
        attempts.push((
            rows::parse_action_id("attempts.action_id", &action)?,
            AttemptRecord {
                attempt: u32::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                started_at: from_ms(r.get(2)),
                finished_at: from_ms(r.get(3)),
                outcome: r.get(4),
                summary: r.get(5),
            },
        ));
    }
    Ok(Some(EventDetail {
        event,
        actions,
        attempts,
    }))
}

pub(super) async fn find_actions(
    pool: &Pool,
    filter: &ActionFilter,
    before: Option<ActionId>,
    limit: usize,
) -> Result<Page<ActionRecord, ActionId>, StoreError> {
    let (sql, args) = rows::actions_query(filter, before, |n| format!("${n}"));
    let n = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let mut params: Vec<&(dyn ToSql + Sync)> =
        args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
    params.push(&n);
    let rows = super::checkout(pool).await?.query(&sql, &params).await?;
    let mut items = rows
        .iter()
        .map(action_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|a| a.id)
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

pub(super) async fn source_statuses(
    pool: &Pool,
    now: DateTime<Utc>,
) -> Result<Vec<SourceStatus>, StoreError> {
    let since_day = rows::day_of(ms(now)) - 29;
    let rows = pool
        .get()
        .await?
        .query(
            "SELECT source, environment, \
               coalesce(sum(CASE WHEN day >= $1 THEN count ELSE 0 END), 0)::bigint, max(last_received) \
             FROM source_stats GROUP BY source, environment ORDER BY source, environment",
            &[&since_day],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| SourceStatus {
            source: r.get(0),
            environment: r.get(1),
            count_30d: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
            last_received_at: r.get::<_, Option<i64>>(3).map(from_ms),
        })
        .collect())
}

fn local_from_row(kind: LocalKind, r: &Row) -> Result<LocalRecord, StoreError> {
    let data: String = r.try_get(2)?;
    let stored: String = r.try_get(0)?;
    let (environment, scope) = crate::local::split_scope(&stored);
    Ok(LocalRecord {
        kind,
        environment,
        scope,
        id: r.try_get(1)?,
        data: serde_json::from_str(&data)
            .map_err(|e| StoreError::decode("local_records.data", e))?,
        updated_at: from_ms(r.try_get(3)?),
    })
}

pub(super) async fn local_record(
    pool: &Pool,
    kind: LocalKind,
    scope: &str,
    id: &str,
) -> Result<Option<LocalRecord>, StoreError> {
    super::checkout(pool).await?
        .query_opt(
            "SELECT scope, id, data, updated_at FROM local_records WHERE kind = $1 AND scope = $2 AND id = $3",
            &[&kind.as_str(), &scope, &id],
        )
        .await?
        .map(|r| local_from_row(kind, &r))
        .transpose()
}

pub(super) async fn local_records(
    pool: &Pool,
    kind: LocalKind,
    scope: &str,
) -> Result<Vec<LocalRecord>, StoreError> {
    super::checkout(pool).await?
        .query(
            "SELECT scope, id, data, updated_at FROM local_records WHERE kind = $1 AND scope = $2 ORDER BY id",
            &[&kind.as_str(), &scope],
        )
        .await?
        .iter()
        .map(|r| local_from_row(kind, r))
        .collect()
}

pub(super) async fn mapping_overrides(pool: &Pool) -> Result<Vec<MappingOverride>, StoreError> {
    let rows = pool
        .get()
        .await?
        .query(
            "SELECT source, environment, mapping, active, updated_at FROM mapping_overrides \
             ORDER BY source, environment, mapping",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| MappingOverride {
            source: r.get(0),
            environment: r.get(1),
            mapping: r.get(2),
            active: r.get(3),
            updated_at: from_ms(r.get(4)),
        })
        .collect())
}

pub(super) async fn known_event_types(
    pool: &Pool,
    source: &str,
    environment: &str,
) -> Result<Vec<KnownEventType>, StoreError> {
    let rows = pool
        .get()
        .await?
        .query(
            "SELECT event_type, max(last_seen) FROM known_event_types \
             WHERE source = $1 AND environment = $2 GROUP BY event_type ORDER BY event_type",
            &[&source, &environment],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| KnownEventType {
            event_type: r.get(0),
            last_seen_at: from_ms(r.get(1)),
        })
        .collect())
}
