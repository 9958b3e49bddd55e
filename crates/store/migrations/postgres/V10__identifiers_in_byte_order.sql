-- Every identifier column compares as bytes ("C"), whatever the database's
-- default collation. A database made with a language locale (en_US.UTF-8 is
-- the default of many hosted and distribution-made clusters) would otherwise
-- compare each key of `events_by_source`, `events_by_user`, the status index
-- and the small keyed tables through the C library's locale rules: 14-37%
-- more time per insert into a table keyed like `events` on that locale
-- (docs/PERFORMANCE.md). Byte order is also SQLite's, so both backends list
-- sources, event types and records in the same order. The ULID columns have
-- been "C" since version 1.
--
-- Changing only a column's collation keeps the table's rows where they are;
-- PostgreSQL rebuilds the indexes on the columns changed, holding the table's
-- lock while it does (docs/store.md, "Upgrading").
ALTER TABLE events
    ALTER COLUMN source TYPE TEXT COLLATE "C",
    ALTER COLUMN environment TYPE TEXT COLLATE "C",
    ALTER COLUMN event_type TYPE TEXT COLLATE "C",
    ALTER COLUMN user_id TYPE TEXT COLLATE "C",
    ALTER COLUMN message_id TYPE TEXT COLLATE "C",
    ALTER COLUMN status TYPE TEXT COLLATE "C",
    ALTER COLUMN duplicate_of TYPE TEXT COLLATE "C";
ALTER TABLE actions
    ALTER COLUMN action_type TYPE TEXT COLLATE "C",
    ALTER COLUMN source TYPE TEXT COLLATE "C",
    ALTER COLUMN environment TYPE TEXT COLLATE "C",
    ALTER COLUMN status TYPE TEXT COLLATE "C";
ALTER TABLE outbox
    ALTER COLUMN lease_owner TYPE TEXT COLLATE "C";
ALTER TABLE dedup
    ALTER COLUMN event_id TYPE TEXT COLLATE "C";
ALTER TABLE source_stats
    ALTER COLUMN source TYPE TEXT COLLATE "C",
    ALTER COLUMN environment TYPE TEXT COLLATE "C";
ALTER TABLE known_event_types
    ALTER COLUMN source TYPE TEXT COLLATE "C",
    ALTER COLUMN environment TYPE TEXT COLLATE "C",
    ALTER COLUMN event_type TYPE TEXT COLLATE "C";
ALTER TABLE mapping_overrides
    ALTER COLUMN source TYPE TEXT COLLATE "C",
    ALTER COLUMN environment TYPE TEXT COLLATE "C",
    ALTER COLUMN mapping TYPE TEXT COLLATE "C";
ALTER TABLE local_records
    ALTER COLUMN kind TYPE TEXT COLLATE "C",
    ALTER COLUMN scope TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE config_sources
    ALTER COLUMN key TYPE TEXT COLLATE "C";
