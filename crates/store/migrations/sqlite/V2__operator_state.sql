-- Per-day counters, so per-source status never counts the event log.
CREATE TABLE source_stats (
    source        TEXT NOT NULL,
    environment   TEXT NOT NULL,
    day           INTEGER NOT NULL,
    count         INTEGER NOT NULL,
    last_received INTEGER NOT NULL,
    PRIMARY KEY (source, environment, day)
) WITHOUT ROWID;

CREATE TABLE known_event_types (
    source      TEXT NOT NULL,
    environment TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (source, environment, event_type)
) WITHOUT ROWID;

CREATE TABLE mapping_overrides (
    source      TEXT NOT NULL,
    environment TEXT NOT NULL,
    mapping     TEXT NOT NULL,
    active      INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (source, environment, mapping)
) WITHOUT ROWID;

CREATE TABLE local_records (
    kind       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    id         TEXT NOT NULL,
    data       TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, scope, id)
) WITHOUT ROWID;

-- Action ids already applied by the local sink: at-least-once runs, one effect.
CREATE TABLE local_applied (
    action_id  TEXT PRIMARY KEY,
    applied_at INTEGER NOT NULL
) WITHOUT ROWID;
