-- Per-day counters, so per-source status never counts the event log.
CREATE TABLE source_stats (
    source        TEXT NOT NULL,
    environment   TEXT NOT NULL,
    day           BIGINT NOT NULL,
    count         BIGINT NOT NULL,
    last_received BIGINT NOT NULL,
    PRIMARY KEY (source, environment, day)
);

CREATE TABLE known_event_types (
    source      TEXT NOT NULL,
    environment TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    last_seen   BIGINT NOT NULL,
    PRIMARY KEY (source, environment, event_type)
);

CREATE TABLE mapping_overrides (
    source      TEXT NOT NULL,
    environment TEXT NOT NULL,
    mapping     TEXT NOT NULL,
    active      BOOLEAN NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (source, environment, mapping)
);

CREATE TABLE local_records (
    kind       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    id         TEXT NOT NULL,
    data       TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, scope, id)
);

-- Action ids already applied by the local sink: at-least-once runs, one effect.
CREATE TABLE local_applied (
    action_id  TEXT COLLATE "C" PRIMARY KEY,
    applied_at BIGINT NOT NULL
);
