-- The hot tables. Each is keyed by a ULID, which sorts by time, so appends land
-- at the right edge of the primary keys. The random-key indexes are deliberate:
-- `dedup` (cross-process uniqueness, docs/product-decisions.md, "Dedup") and
-- `events_by_user`.

CREATE TABLE events (
    id           TEXT COLLATE "C" PRIMARY KEY,
    received_at  BIGINT NOT NULL,
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
CREATE INDEX events_by_user ON events (user_id, id) WHERE user_id IS NOT NULL;

CREATE TABLE actions (
    id           TEXT COLLATE "C" PRIMARY KEY,
    event_id     TEXT COLLATE "C" NOT NULL,
    position     BIGINT NOT NULL,
    action_type  TEXT NOT NULL,
    source       TEXT NOT NULL,
    environment  TEXT NOT NULL,
    plan_json    TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX actions_by_event ON actions (event_id);
CREATE INDEX actions_by_status ON actions (status, id);

-- Only actions that still have to run: small, so claiming stays cheap.
-- A leased row's run_at is its lease expiry, so an expired lease is simply due.
CREATE TABLE outbox (
    action_id        TEXT COLLATE "C" PRIMARY KEY,
    run_at           BIGINT NOT NULL,
    attempt          BIGINT NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    claimed_at       BIGINT
);
CREATE INDEX outbox_by_run_at ON outbox (run_at);

CREATE TABLE attempts (
    action_id   TEXT COLLATE "C" NOT NULL,
    attempt     BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    summary     TEXT NOT NULL,
    PRIMARY KEY (action_id, attempt)
);

-- hash = first 8 bytes of SHA-256 over the scope; verified against the event.
CREATE TABLE dedup (
    hash       BIGINT PRIMARY KEY,
    event_id   TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dedup_by_expiry ON dedup (expires_at);
