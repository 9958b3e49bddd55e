-- The hot tables. Each is keyed (or indexed) by a ULID or a rowid, which sort
-- by time, so appends land at the right edge of every B-tree. No index has a
-- random leading key: that is the write wall on SQLite (docs/store.md).

CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    received_at  INTEGER NOT NULL,
    source       TEXT,
    environment  TEXT,
    event_type   TEXT,
    user_id      TEXT,
    message_id   TEXT,
    status       TEXT NOT NULL,
    duplicate_of TEXT,
    error        TEXT,
    body_excerpt TEXT,
    event_json   TEXT
);
CREATE INDEX events_by_source ON events (source, environment, id);

CREATE TABLE actions (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    event_id     TEXT NOT NULL,
    position     INTEGER NOT NULL,
    action_type  TEXT NOT NULL,
    source       TEXT NOT NULL,
    environment  TEXT NOT NULL,
    plan_json    TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX actions_by_event ON actions (event_id);
CREATE INDEX actions_by_status ON actions (status, id);

-- Only actions that still have to run: small, so claiming stays cheap.
-- A leased row's run_at is its lease expiry, so an expired lease is simply due.
CREATE TABLE outbox (
    action_id        TEXT PRIMARY KEY,
    run_at           INTEGER NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    claimed_at       INTEGER
) WITHOUT ROWID;
CREATE INDEX outbox_by_run_at ON outbox (run_at);

CREATE TABLE attempts (
    action_id   TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    summary     TEXT NOT NULL,
    PRIMARY KEY (action_id, attempt)
) WITHOUT ROWID;

-- The dedup keys' durable log: appended in time order (sequential key), never
-- updated. The writer keeps the live keys in memory, loaded from here at
-- open, so checking a random messageId costs a hash probe, not a random
-- B-tree insert (docs/store.md). A replaced key is a newer row for the hash.
CREATE TABLE dedup_log (
    seq        INTEGER PRIMARY KEY,
    hash       INTEGER NOT NULL,
    event_id   TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX dedup_log_by_expiry ON dedup_log (expires_at);
