//! SQLite reads, on reader connections that never block the writer (WAL).

use chrono::{DateTime, Utc};
use rusqlite::{
    Connection, OptionalExtension, Row, params, params_from_iter, types::Value as SqlValue,
};
use tributary_core::event::EventId;

use super::packed::{StoredJson, stored_json};
use crate::{
    ActionFilter, ActionId, ActionRecord, AttemptRecord, EventDetail, EventFilter, EventRecord,
    FILTER_SCAN_ROWS, KnownEventType, LocalKind, LocalRecord, MappingOverride, Page, SourceStatus,
    StoreError,
    model::{from_ms, id_floor, ms},
    rows::{self, ACTION_COLUMNS, DecodedEvent, EVENT_COLUMNS},
};

fn event_from_row(r: &Row<'_>) -> rusqlite::Result<Result<DecodedEvent, StoreError>> {
    Ok(rows::event_record(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        stored_json(r.get(11)?),
    ))
}

fn action_from_row(r: &Row<'_>) -> rusqlite::Result<Result<ActionRecord, StoreError>> {
    Ok(rows::action_record(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get::<_, StoredJson>(4)?.0,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        || {
            Ok(r.get::<_, Option<StoredJson>>(12)
                .map_err(|e| StoreError::decode("events.event_json", e))?
                .map(|j| j.0))
        },
    ))
}

fn collect<T>(
    rows: impl Iterator<Item = rusqlite::Result<Result<T, StoreError>>>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for r in rows {
        out.push(r??);
    }
    Ok(out)
}

pub(super) fn list_events(
    conn: &Connection,
    filter: &EventFilter,
    before: Option<EventId>,
    limit: usize,
) -> Result<Page<EventRecord, EventId>, StoreError> {
    // What `events_by_source` and the id (a ULID: its time) serve.
    let mut served: Vec<(&'static str, String)> = Vec::new();
    if let Some(v) = &filter.source {
        served.push(("source =", v.clone()));
    }
    if let Some(v) = &filter.environment {
        served.push(("environment =", v.clone()));
    }
    if let Some(t) = filter.since {
        served.push(("id >=", id_floor(t)));
    }
    if let Some(t) = filter.until {
        served.push(("id <", id_floor(t)));
    }
    if let Some(b) = before {
        served.push(("id <", b.to_string()));
    }
    // What no index serves: looked for in the newest FILTER_SCAN_ROWS
    // entries the served clauses select (the window).
    let mut unserved: Vec<(&'static str, String)> = Vec::new();
    if let Some(v) = &filter.event_type {
        unserved.push(("event_type =", v.clone()));
    }
    if let Some(v) = &filter.user_id {
        unserved.push(("user_id =", v.clone()));
    }
    if let Some(v) = filter.status {
        unserved.push(("status =", v.as_str().to_owned()));
    }
    // A full window's lowest id bounds the scan; below it is the next page's.
    let floor = if unserved.is_empty() {
        None
    } else {
        window_end(conn, "events", &served)?
    };
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE TRUE");
    let mut params: Vec<SqlValue> = Vec::new();
    let bound = floor.iter().map(|f| ("id >=", f.clone()));
    for (clause, value) in served.iter().cloned().chain(bound).chain(unserved) {
        params.push(SqlValue::Text(value));
        sql.push_str(&format!(" AND {clause} ?{}", params.len()));
    }
    params.push(SqlValue::Integer(
        i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1),
    ));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", params.len()));
    let mut stmt = conn.prepare_cached(&sql)?;
    let decoded = collect(stmt.query_map(params_from_iter(params), event_from_row)?)?;
    let mut items = with_shared_headers(conn, decoded)?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|e| e.id)
    } else {
        floor
            .map(|id| rows::parse_event_id("events.id", &id))
            .transpose()?
    };
    Ok(Page { items, next_cursor })
}

/// The lowest id of the window the `clauses` select, when it is full
/// (older rows may match: the next page starts below it); `None` when the
/// window holds every row they select.
fn window_end(
    conn: &Connection,
    table: &str,
    clauses: &[(&'static str, String)],
) -> Result<Option<String>, StoreError> {
    let window = rows::window_query(table, clauses, 1, |n| format!("?{n}"));
    let (count, lowest): (i64, Option<String>) = conn
        .prepare_cached(&format!("SELECT count(*), min(id) FROM ({window})"))?
        .query_row(
            params_from_iter(clauses.iter().map(|(_, v)| v.as_str())),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
    Ok(lowest.filter(|_| usize::try_from(count).is_ok_and(|c| c >= FILTER_SCAN_ROWS)))
}

/// The records with the headers they share with other events filled in.
fn with_shared_headers(
    conn: &Connection,
    decoded: Vec<DecodedEvent>,
) -> Result<Vec<EventRecord>, StoreError> {
    let mut holders = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT id, event_json FROM events WHERE id = ?1 AND event_json IS NOT NULL",
    )?;
    for id in rows::shared_headers_wanted(&decoded) {
        if let Some(holder) = stmt
            .query_row([&id], |r| Ok((r.get(0)?, r.get::<_, StoredJson>(1)?.0)))
            .optional()?
        {
            holders.push(holder);
        }
    }
    rows::fill_shared_headers(decoded, &holders)
}

pub(super) fn event_detail(
    conn: &Connection,
    id: EventId,
) -> Result<Option<EventDetail>, StoreError> {
    let id_s = id.to_string();
    let event = conn
        .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))?
        .query_row([&id_s], event_from_row)
        .optional()?
        .transpose()?;
    let Some(event) = event else {
        return Ok(None);
    };
    let event = with_shared_headers(conn, vec![event])?
        .pop()
        .ok_or_else(|| StoreError::Database("a decoded event went missing".to_owned()))?;
    let actions = collect(
        conn.prepare_cached(&format!(
            "SELECT {ACTION_COLUMNS} FROM {} WHERE a.event_id = ?1 ORDER BY a.position",
            rows::action_tables(false)
        ))?
        .query_map([&id_s], action_from_row)?,
    )?;
    let mut attempts = Vec::new();
    for a in &actions {
        // An action run at append keeps its one attempt in its own row
        // (`actions.summary`, docs/store.md); the others have attempts rows.
        let rows: Vec<(i64, i64, i64, String, String)> = conn
            .prepare_cached(
                "SELECT 1, created_at, updated_at, status, summary FROM actions \
                 WHERE id = ?1 AND summary IS NOT NULL \
                 UNION ALL \
                 SELECT attempt, started_at, finished_at, outcome, summary FROM attempts \
                 WHERE action_id = ?1 ORDER BY 1",
            )?
            .query_map([a.id.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        for (attempt, started, finished, outcome, summary) in rows {
            attempts.push((
                a.id,
                AttemptRecord {
                    attempt: u32::try_from(attempt).unwrap_or(0),
                    started_at: from_ms(started),
                    finished_at: from_ms(finished),
                    outcome,
                    summary,
                },
            ));
        }
    }
    Ok(Some(EventDetail {
        event,
        actions,
        attempts,
    }))
}

pub(super) fn find_actions(
    conn: &Connection,
    filter: &ActionFilter,
    before: Option<ActionId>,
    limit: usize,
) -> Result<Page<ActionRecord, ActionId>, StoreError> {
    let (mut sql, args) = rows::actions_query(filter, before, |n| format!("?{n}"));
    let mut params: Vec<SqlValue> = args.into_iter().map(SqlValue::Text).collect();
    params.push(SqlValue::Integer(
        i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1),
    ));
    // A full window's lowest id bounds the scan; below it is the next page's.
    let floor = match rows::actions_window(filter, before) {
        Some(clauses) => window_end(conn, "actions", &clauses)?,
        None => None,
    };
    if let Some(floor) = &floor {
        let order = sql
            .rfind(" ORDER BY a.id DESC")
            .ok_or_else(|| StoreError::Database("the action query has no order".to_owned()))?;
        params.push(SqlValue::Text(floor.clone()));
        sql.insert_str(order, &format!(" AND a.id >= ?{}", params.len()));
    }
    let mut items = collect(
        conn.prepare_cached(&sql)?
            .query_map(params_from_iter(params), action_from_row)?,
    )?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|a| a.id)
    } else {
        floor
            .map(|id| rows::parse_action_id("actions.id", &id))
            .transpose()?
    };
    Ok(Page { items, next_cursor })
}

pub(super) fn source_statuses(
    conn: &Connection,
    now: DateTime<Utc>,
) -> Result<Vec<SourceStatus>, StoreError> {
    let since_day = rows::day_of(ms(now)) - 29;
    let mut stmt = conn.prepare_cached(
        "SELECT source, environment, \
           sum(CASE WHEN day >= ?1 THEN count ELSE 0 END), max(last_received) \
         FROM source_stats GROUP BY source, environment ORDER BY source, environment",
    )?;
    let rows = stmt.query_map([since_day], |r| {
        Ok(SourceStatus {
            source: r.get(0)?,
            environment: r.get(1)?,
            count_30d: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            last_received_at: r.get::<_, Option<i64>>(3)?.map(from_ms),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn local_from_row(
    kind: LocalKind,
    r: &Row<'_>,
) -> rusqlite::Result<Result<LocalRecord, StoreError>> {
    let StoredJson(data) = r.get(2)?;
    Ok(serde_json::from_str(&data)
        .map_err(|e| StoreError::decode("local_records.data", e))
        .and_then(|data| {
            let stored: String = r.get(0).map_err(StoreError::from)?;
            let (environment, scope) = crate::local::split_scope(&stored);
            Ok(LocalRecord {
                kind,
                environment,
                scope,
                id: r.get(1).map_err(StoreError::from)?,
                data,
                updated_at: from_ms(r.get(3).map_err(StoreError::from)?),
            })
        }))
}

pub(super) fn local_record(
    conn: &Connection,
    kind: LocalKind,
    scope: &str,
    id: &str,
) -> Result<Option<LocalRecord>, StoreError> {
    conn.prepare_cached(
        "SELECT scope, id, data, updated_at FROM local_records WHERE kind = ?1 AND scope = ?2 AND id = ?3",
    )?
    .query_row(params![kind.as_str(), scope, id], |r| local_from_row(kind, r))
    .optional()?
    .transpose()
}

pub(super) fn local_records(
    conn: &Connection,
    kind: LocalKind,
    scope: &str,
) -> Result<Vec<LocalRecord>, StoreError> {
    collect(
        conn.prepare_cached(
            "SELECT scope, id, data, updated_at FROM local_records WHERE kind = ?1 AND scope = ?2 ORDER BY id",
        )?
        .query_map(params![kind.as_str(), scope], |r| local_from_row(kind, r))?,
    )
}

pub(super) fn mapping_overrides(conn: &Connection) -> Result<Vec<MappingOverride>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT source, environment, mapping, active, updated_at FROM mapping_overrides \
         ORDER BY source, environment, mapping",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(MappingOverride {
            source: r.get(0)?,
            environment: r.get(1)?,
            mapping: r.get(2)?,
            active: r.get(3)?,
            updated_at: from_ms(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn known_event_types(
    conn: &Connection,
    source: &str,
    environment: &str,
) -> Result<Vec<KnownEventType>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT event_type, last_seen FROM known_event_types WHERE source = ?1 AND environment = ?2 \
         ORDER BY event_type",
    )?;
    let rows = stmt.query_map(params![source, environment], |r| {
        Ok(KnownEventType {
            event_type: r.get(0)?,
            last_seen_at: from_ms(r.get(1)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
