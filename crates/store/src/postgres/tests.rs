use super::*;

fn url() -> Option<String> {
    match std::env::var("TRIBUTARY_TEST_POSTGRES") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI=true but TRIBUTARY_TEST_POSTGRES is unset"
            );
            eprintln!(
                "\n!!!!!!!! SKIPPED: PostgreSQL migration test, TRIBUTARY_TEST_POSTGRES is unset !!!!!!!!\n"
            );
            None
        }
    }
}

#[tokio::test]
async fn opening_an_older_database_upgrades_it() {
    let Some(url) = url() else {
        return;
    };
    let schema = format!(
        "mig_{}_{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    );
    let options = PostgresOptions {
        schema: Some(schema.clone()),
        pool_size: 2,
        ..Default::default()
    };
    let pool = build_pool(&url, &options).unwrap();
    migrate_postgres(&pool, Some(&schema), 1).await.unwrap();
    let id = EventId::generate(Utc::now());
    {
        let client = pool.get().await.unwrap();
        client
            .execute(
                "INSERT INTO events (id, received_at, source, environment, status, error) \
                 VALUES ($1, 1, 'web', 'production', 'rejected', 'bad: json')",
                &[&id.to_string()],
            )
            .await
            .unwrap();
        assert!(
            client
                .simple_query("SELECT 1 FROM mapping_overrides")
                .await
                .is_err()
        );
    }
    let store = PostgresStore::connect(&url, options).await.unwrap();
    let version: i32 = pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(u32::try_from(version).unwrap(), migrate::latest());
    let old = store.event_detail(id).await.unwrap().unwrap();
    assert_eq!(old.event.error.as_deref(), Some("bad: json"));
    store
        .set_mapping_active("web", "production", "m1", false)
        .await
        .unwrap();
    assert_eq!(store.mapping_overrides().await.unwrap().len(), 1);
}
