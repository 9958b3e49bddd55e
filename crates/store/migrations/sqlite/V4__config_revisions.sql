-- The live configuration: every change is a revision; each source's
-- document is kept with the revision that last wrote it (NULL: deleted
-- then), so a replica reads only what changed after the revision it has.
CREATE TABLE config_revisions (
    number     INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    summary    TEXT NOT NULL,
    changes    TEXT NOT NULL
);

CREATE TABLE config_sources (
    key      TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    document TEXT
) WITHOUT ROWID;

CREATE INDEX config_sources_by_revision ON config_sources (revision);
