-- Per-day counters, so per-source status never counts the event log. Each
-- group commit updates one of 16 shards (chosen at random), so concurrent
-- groups of one busy source do not queue on one row lock; reads sum them.
CREATE TABLE source_stats (
    source        TEXT NOT NULL,
    environment   TEXT NOT NULL,
    day           BIGINT NOT NULL,
    shard         SMALLINT NOT NULL,
    count         BIGINT NOT NULL,
    last_received BIGINT NOT NULL,
    PRIMARY KEY (source, environment, day, shard)
);

CREATE TABLE known_event_types (
    source      TEXT NOT NULL,
    environment TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    shard       SMALLINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    PRIMARY KEY (source, environment, event_type, shard)
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
