use rusqlite::Connection;

use super::*;

fn version(path: &Path) -> u32 {
    Connection::open(path)
        .unwrap()
        .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap()
}

#[tokio::test]
async fn opening_an_older_database_upgrades_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let id = EventId::generate(Utc::now());
    {
        let conn = Connection::open(&path).unwrap();
        migrate_sqlite(&conn, 1).unwrap();
        conn.execute(
            "INSERT INTO events (id, received_at, source, environment, status, error) \
             VALUES (?1, 1, 'web', 'production', 'rejected', 'bad: json')",
            [id.to_string()],
        )
        .unwrap();
        assert!(conn.prepare("SELECT 1 FROM mapping_overrides").is_err());
    }
    assert_eq!(version(&path), 1);
    let store = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(version(&path), migrate::latest());
    // Old rows survive; the new tables work.
    let old = store.event_detail(id).await.unwrap().unwrap();
    assert_eq!(old.event.error.as_deref(), Some("bad: json"));
    store
        .set_mapping_active("web", "production", "m1", false)
        .await
        .unwrap();
    assert_eq!(store.mapping_overrides().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_newer_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    {
        let conn = Connection::open(&path).unwrap();
        migrate_sqlite(&conn, migrate::latest()).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)",
            [],
        )
        .unwrap();
    }
    let err = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .err()
        .expect("must refuse");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err:?}"
    );
}
