-- The zstd dictionaries the stored JSON is compressed with (docs/store.md,
-- "Compressed JSON"): keyed by the id zstd writes into every frame made with
-- one, never deleted (a store trains at most one a day by default).
CREATE TABLE json_dictionaries (
    id         INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    dictionary BLOB NOT NULL
);
