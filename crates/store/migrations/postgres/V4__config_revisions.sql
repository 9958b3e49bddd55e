-- The live configuration: every change is a revision; each source's
-- document is kept with the revision that last wrote it (NULL: deleted
-- then), so a replica reads only what changed after the revision it has.
CREATE TABLE config_revisions (
    number     BIGINT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    summary    TEXT NOT NULL,
    changes    TEXT NOT NULL
);

CREATE TABLE config_sources (
    key      TEXT PRIMARY KEY,
    revision BIGINT NOT NULL,
    document TEXT
);

CREATE INDEX config_sources_by_revision ON config_sources (revision);
