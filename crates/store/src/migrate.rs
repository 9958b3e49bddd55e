//! Versioned schema migrations, applied at open.
//!
//! Each migration is a pair of SQL files (one per backend) embedded in the
//! binary. `schema_migrations` records what was applied; opening an older
//! database applies the missing versions in order, each in its own
//! transaction; a database newer than this build is refused.

/// One migration.
pub(crate) struct Migration {
    pub(crate) version: u32,
    pub(crate) name: &'static str,
    pub(crate) sqlite: &'static str,
    pub(crate) postgres: &'static str,
}

/// Every migration, oldest first. Never edit a released one: add a new version.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "event_log",
        sqlite: include_str!("../migrations/sqlite/V1__event_log.sql"),
        postgres: include_str!("../migrations/postgres/V1__event_log.sql"),
    },
    Migration {
        version: 2,
        name: "operator_state",
        sqlite: include_str!("../migrations/sqlite/V2__operator_state.sql"),
        postgres: include_str!("../migrations/postgres/V2__operator_state.sql"),
    },
    Migration {
        version: 3,
        name: "derived_running",
        sqlite: include_str!("../migrations/sqlite/V3__derived_running.sql"),
        postgres: include_str!("../migrations/postgres/V3__derived_running.sql"),
    },
    Migration {
        version: 4,
        name: "config_revisions",
        sqlite: include_str!("../migrations/sqlite/V4__config_revisions.sql"),
        postgres: include_str!("../migrations/postgres/V4__config_revisions.sql"),
    },
    Migration {
        version: 5,
        name: "intake_journal",
        sqlite: include_str!("../migrations/sqlite/V5__intake_journal.sql"),
        postgres: include_str!("../migrations/postgres/V5__intake_journal.sql"),
    },
    Migration {
        version: 6,
        name: "json_dictionaries",
        sqlite: include_str!("../migrations/sqlite/V6__json_dictionaries.sql"),
        postgres: include_str!("../migrations/postgres/V6__json_dictionaries.sql"),
    },
    Migration {
        version: 7,
        name: "attempt_in_action_row",
        sqlite: include_str!("../migrations/sqlite/V7__attempt_in_action_row.sql"),
        postgres: include_str!("../migrations/postgres/V7__attempt_in_action_row.sql"),
    },
    Migration {
        version: 8,
        name: "partial_status_index",
        sqlite: include_str!("../migrations/sqlite/V8__partial_status_index.sql"),
        postgres: include_str!("../migrations/postgres/V8__partial_status_index.sql"),
    },
    Migration {
        version: 9,
        name: "action_rows_as_on_sqlite",
        sqlite: include_str!("../migrations/sqlite/V9__action_rows_as_on_sqlite.sql"),
        postgres: include_str!("../migrations/postgres/V9__action_rows_as_on_sqlite.sql"),
    },
    Migration {
        version: 10,
        name: "identifiers_in_byte_order",
        sqlite: include_str!("../migrations/sqlite/V10__identifiers_in_byte_order.sql"),
        postgres: include_str!("../migrations/postgres/V10__identifiers_in_byte_order.sql"),
    },
];

/// The latest version this build knows.
pub(crate) fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The table that records applied migrations (same SQL on both backends).
pub(crate) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";
