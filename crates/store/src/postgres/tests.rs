use super::*;
use crate::{ActionFilter, ActionStatus};
use tokio_postgres::types::ToSql;

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

/// A schema of its own for one test (named after `prefix`), migrated to
/// `version`, with options and a pool that use it.
async fn fresh_schema(
    url: &str,
    prefix: &str,
    version: u32,
) -> (String, PostgresOptions, deadpool_postgres::Pool) {
    let schema = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    );
    let options = PostgresOptions {
        schema: Some(schema.clone()),
        pool_size: 2,
        ..Default::default()
    };
    let pool = build_pool(url, &options).unwrap();
    migrate_postgres(&pool, Some(&schema), version)
        .await
        .unwrap();
    (schema, options, pool)
}

#[tokio::test]
async fn opening_an_older_database_upgrades_it() {
    let Some(url) = url() else {
        return;
    };
    let (_, options, pool) = fresh_schema(&url, "mig", 1).await;
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

/// Every key the store indexes compares as bytes, whatever the database's
/// default collation: no index column may take the database's default,
/// which on a language locale costs each insert its locale comparisons.
#[tokio::test]
async fn every_indexed_text_column_compares_as_bytes() {
    let Some(url) = url() else {
        return;
    };
    let (schema, _, pool) = fresh_schema(&url, "collation", migrate::latest()).await;
    let client = pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT ix.relname::text, a.attname::text, coalesce(co.collname::text, '') \
             FROM pg_index i \
             JOIN pg_class ix ON ix.oid = i.indexrelid \
             JOIN pg_class t ON t.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             CROSS JOIN LATERAL unnest(i.indkey::int2[], i.indcollation::oid[]) AS k(attnum, coll) \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
             LEFT JOIN pg_collation co ON co.oid = k.coll \
             WHERE n.nspname = $1 AND k.coll <> 0",
            &[&schema],
        )
        .await
        .unwrap();
    let columns: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    // The indexes the hot path writes are among those checked.
    for (index, column) in [
        ("events_by_source", "source"),
        ("events_by_user", "user_id"),
        ("actions_by_status", "status"),
        ("local_records_pkey", "id"),
    ] {
        assert!(
            columns.iter().any(|(i, c, _)| i == index && c == column),
            "{index}.{column} not found in {columns:?}"
        );
    }
    let other: Vec<_> = columns.iter().filter(|(_, _, coll)| coll != "C").collect();
    assert!(other.is_empty(), "not in byte order: {other:?}");
}

/// The action log's status filter is served by the partial status index
/// for every status it holds, and `succeeded` (left out of it) by the log's
/// own order, on a table where most actions succeeded.
#[tokio::test]
async fn the_partial_status_index_serves_every_status_it_holds() {
    let Some(url) = url() else {
        return;
    };
    let (schema, _, pool) = fresh_schema(&url, "status", migrate::latest()).await;
    let client = pool.get().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO actions (id, event_id, position, action_type, source, environment, \
               plan_json, status, attempts, created_at, updated_at) \
             SELECT lpad(n::text, 26, '0'), lpad(n::text, 26, '0'), 0, 'trigger_workflow', 'web', \
               'production', '{}', CASE WHEN n % 100 = 0 THEN 'failed' \
                 WHEN n % 100 = 1 THEN 'skipped' WHEN n % 100 = 2 THEN 'pending' \
                 ELSE 'succeeded' END, 1, n, n \
             FROM generate_series(1, 20000) AS n; \
             ANALYZE actions",
        )
        .await
        .unwrap();
    let definition: String = client
        .query_one("SELECT pg_get_indexdef('actions_by_status'::regclass)", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        definition.contains("WHERE (status <> 'succeeded'::text)"),
        "{definition}"
    );
    for &status in ActionStatus::ALL {
        let filter = ActionFilter {
            status: Some(status),
            ..ActionFilter::default()
        };
        let (sql, args) = crate::rows::actions_query(&filter, None, |n| format!("${n}"));
        let limit = 50_i64;
        let mut params: Vec<&(dyn ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        params.push(&limit);
        let plan: Vec<String> = client
            .query(&format!("EXPLAIN {sql}"), &params)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert_eq!(
            plan.contains("actions_by_status"),
            status != ActionStatus::Succeeded,
            "{status:?}: {plan}"
        );
    }
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

/// A track event with message id `key`, deduplicated on it, whose one plan
/// triggers a workflow for `u1` with the event's data.
fn planned_item(key: &str) -> AppendItem {
    let mut item = crate::test_items::keyed(key, 0);
    item.plans = vec![crate::test_items::trigger_plan(
        tributary_core::plan::TriggerData::OfEvent,
        &["u1"],
    )];
    item
}

/// How many rows each table a group writes holds, and in how many
/// transactions they were written.
async fn group_rows(client: &deadpool_postgres::Object) -> (Vec<i64>, i64) {
    let tables = ["events", "actions", "outbox", "dedup", "source_stats"];
    let mut counts = Vec::new();
    for table in tables {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        counts.push(n);
    }
    let union = tables
        .map(|t| format!("SELECT xmin::text AS x FROM {t}"))
        .join(" UNION ALL ");
    let transactions: i64 = client
        .query_one(&format!("SELECT count(DISTINCT x) FROM ({union}) t"), &[])
        .await
        .unwrap()
        .get(0);
    (counts, transactions)
}

/// A group's `BEGIN` and `COMMIT` share round trips with its statements:
/// every statement must still run inside the transaction, also on a
/// connection that has prepared nothing yet (a statement sent after its
/// prepare would follow the `COMMIT`).
#[tokio::test]
async fn a_group_commits_in_one_transaction_or_not_at_all() {
    let Some(url) = url() else {
        return;
    };
    let (schema, options, pool) = fresh_schema(&url, "round", migrate::latest()).await;
    let client = pool.get().await.unwrap();
    // The outbox refuses every row, so the group fails in its last round,
    // after its events and actions were sent.
    client
        .batch_execute("ALTER TABLE outbox ADD CONSTRAINT refuse_all CHECK (run_at < 0)")
        .await
        .unwrap();
    let store = PostgresStore::connect(&url, options).await.unwrap();
    let err = store.append(vec![planned_item("k1")]).await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err}");
    assert_eq!(group_rows(&client).await, (vec![0; 5], 0));

    client
        .batch_execute("ALTER TABLE outbox DROP CONSTRAINT refuse_all")
        .await
        .unwrap();
    // The key is new again, and the group's rows share one transaction.
    let outcomes = store.append(vec![planned_item("k1")]).await.unwrap();
    assert!(
        matches!(outcomes[..], [AppendOutcome::Accepted { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(group_rows(&client).await, (vec![1; 5], 1));
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

async fn backend_pid(client: &deadpool_postgres::Object) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// A connection whose group did not reach its `COMMIT` never goes back to
/// the pool (its transaction may still be open); one that did, does.
#[tokio::test]
async fn only_a_committed_group_returns_its_connection() {
    let Some(url) = url() else {
        return;
    };
    let (schema, _, pool) = fresh_schema(&url, "open", migrate::latest()).await;
    let open = append::OpenTransaction::new(pool.get().await.unwrap());
    open.client().batch_execute("BEGIN").await.unwrap();
    let left_open = backend_pid(open.client()).await;
    drop(open);
    let next = append::OpenTransaction::new(pool.get().await.unwrap());
    let committed = backend_pid(next.client()).await;
    assert_ne!(
        committed, left_open,
        "a connection left in a transaction came back"
    );
    next.committed();
    let client = pool.get().await.unwrap();
    assert_eq!(backend_pid(&client).await, committed);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

mod tls_url {
    //! Taking the TLS parameters out of connection strings (no server needed).

    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::super::tls::{RootCert, SslMode, TlsSettings, split_url};
    use crate::StoreError;

    fn problem(e: StoreError) -> String {
        match e {
            StoreError::InvalidInput { field, problem } => {
                assert_eq!(field, "store.url");
                problem
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn url_parameters_are_taken_out_and_the_rest_kept_in_order() {
        let (rest, tls) = split_url(
            "postgres://u:p%40ss@db.example:5433/app?application_name=x&sslmode=verify-full\
             &connect_timeout=3&sslrootcert=%2Fetc%2Fca%20dir%2Froot.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p%40ss@db.example:5433/app?application_name=x&connect_timeout=3"
        );
        assert_eq!(
            tls,
            TlsSettings {
                mode: SslMode::VerifyFull,
                root_cert: Some(RootCert::File(PathBuf::from("/etc/ca dir/root.pem"))),
            }
        );
        let (rest, tls) = split_url("postgresql://u@h/db?sslmode=require").unwrap();
        assert_eq!(rest, "postgresql://u@h/db");
        assert_eq!(tls.mode, SslMode::Require);
        assert_eq!(tls.root_cert, None);
    }

    #[test]
    fn defaults_follow_libpq() {
        let (rest, tls) = split_url("postgres://u@h/db").unwrap();
        assert_eq!(rest, "postgres://u@h/db");
        assert_eq!(tls.mode, SslMode::Prefer);
        let (_, tls) = split_url("postgres://u@h/db?sslrootcert=system").unwrap();
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root_cert, Some(RootCert::System));
        let (_, tls) = split_url("postgres://u@h/db?sslrootcert=/ca.pem").unwrap();
        assert_eq!(tls.mode, SslMode::Prefer);
        let e = split_url("postgres://u@h/db?sslrootcert=system&sslmode=require").unwrap_err();
        assert!(problem(e).contains("verify-full"));
    }

    #[test]
    fn keyword_form_is_understood_too() {
        let (rest, tls) = split_url(
            "host=h password='it\\'s quoted' sslmode = verify-ca  sslrootcert='/a b/ca.pem' dbname=d",
        )
        .unwrap();
        assert_eq!(rest, "host=h password='it\\'s quoted' dbname=d");
        assert_eq!(tls.mode, SslMode::VerifyCa);
        assert_eq!(
            tls.root_cert,
            Some(RootCert::File(PathBuf::from("/a b/ca.pem")))
        );
        let e = split_url("host=h password='never closed").unwrap_err();
        let p = problem(e);
        assert!(p.contains("password") && !p.contains("never"), "{p}");
    }

    #[test]
    fn bad_values_are_named_without_echoing_the_url() {
        let p =
            problem(split_url("postgres://u:hunter2@h/db?sslmode=verify-everything").unwrap_err());
        assert!(p.contains("sslmode") && !p.contains("hunter2"), "{p}");
        let p = problem(
            split_url("postgres://u:hunter2@h/db?sslcert=/c.pem&sslkey=/k.pem").unwrap_err(),
        );
        assert!(p.contains("sslcert") && p.contains("not supported"), "{p}");
        let p = problem(split_url("postgres://u:hunter2@h/db?sslmode=%zz").unwrap_err());
        assert!(p.contains("sslmode") && !p.contains("hunter2"), "{p}");
    }

    fn param() -> impl Strategy<Value = String> {
        ("[a-z_]{1,12}", "[A-Za-z0-9%._~-]{0,12}")
            .prop_filter("not a TLS parameter", |(k, _)| !k.starts_with("ssl"))
            .prop_map(|(k, v)| format!("{k}={v}"))
    }

    /// A value as libpq's keyword form quotes it.
    fn quote(v: &str) -> String {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    proptest! {
        #[test]
        fn any_input_gives_a_result_not_a_panic(s in any::<String>()) {
            let _ = split_url(&s);
            let _ = split_url(&format!("postgres://u:p@h/db?{s}"));
        }

        #[test]
        fn url_keeps_every_other_parameter(
            others in proptest::collection::vec(param(), 0..6),
            at in any::<prop::sample::Index>(),
            mode in prop::sample::select(vec!["disable", "prefer", "require", "verify-ca", "verify-full"]),
            password in "[A-Za-z0-9]{1,16}",
        ) {
            let base = format!("postgres://user:{password}@db.example:5432/app");
            let mut with = others.clone();
            with.insert(at.index(others.len() + 1), format!("sslmode={mode}"));
            let (rest, tls) = split_url(&format!("{base}?{}", with.join("&"))).unwrap();
            let expected = if others.is_empty() { base } else { format!("{base}?{}", others.join("&")) };
            prop_assert_eq!(rest, expected);
            prop_assert_eq!(tls.root_cert, None);
            prop_assert_eq!(format!("{:?}", tls.mode).to_lowercase().replace('-', ""), mode.replace('-', ""));
        }

        #[test]
        fn keyword_values_round_trip(
            path in "[ -~]{1,24}",
            password in "[ -~]{0,16}",
        ) {
            let s = format!("host=h password={} sslmode=verify-full sslrootcert={}", quote(&password), quote(&path));
            let (rest, tls) = split_url(&s).unwrap();
            prop_assert_eq!(rest, format!("host=h password={}", quote(&password)));
            prop_assert_eq!(tls.root_cert, Some(if path == "system" { RootCert::System } else { RootCert::File(PathBuf::from(&path)) }));
        }

        #[test]
        fn errors_never_show_the_password(
            password in "[A-Za-z0-9]{8,16}",
            mode in "[a-z]{1,10}",
        ) {
            prop_assume!(!["disable", "prefer", "require"].contains(&mode.as_str()));
            let e = split_url(&format!("postgres://u:{password}@h/db?sslmode={mode}")).unwrap_err();
            prop_assert!(!e.to_string().contains(&password));
            let e = split_url(&format!("user=u password={password} sslmode={mode}")).unwrap_err();
            prop_assert!(!e.to_string().contains(&password));
        }
    }
}

mod tls_live {
    //! TLS against the CI server (ssl = on, certificate from a throwaway CA
    //! for localhost and 127.0.0.1; see .ci/setup-postgres.sh).

    use std::time::Duration;

    use super::*;

    /// The server's URL and its CA file, or `None` (loudly) outside CI.
    fn tls_env() -> Option<(String, String)> {
        let url = url()?;
        match std::env::var("TRIBUTARY_TEST_POSTGRES_CA") {
            Ok(ca) if !ca.is_empty() => Some((url, ca)),
            _ => {
                assert_ne!(
                    std::env::var("CI").as_deref(),
                    Ok("true"),
                    "CI=true but TRIBUTARY_TEST_POSTGRES_CA is unset: .ci/setup-postgres.sh must export it"
                );
                eprintln!(
                    "\n!!!!!!!! SKIPPED: PostgreSQL TLS test, TRIBUTARY_TEST_POSTGRES_CA is unset !!!!!!!!\n"
                );
                None
            }
        }
    }

    fn with_params(url: &str, params: &str) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{params}")
    }

    fn options() -> PostgresOptions {
        PostgresOptions {
            pool_size: 2,
            committers: 1,
            connect_timeout: Duration::from_secs(5),
            ..Default::default()
        }
    }

    /// Whether the pooled session is encrypted, as the server sees it.
    async fn encrypted(url: &str) -> Result<bool, StoreError> {
        let pool = build_pool(url, &options())?;
        let client = checkout(&pool).await?;
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    /// The same server in libpq's keyword form, under the name `host` (which
    /// need not resolve: `hostaddr` gives the address).
    fn keyword_form(url: &str, host_name: Option<&str>, params: &str) -> String {
        let config: tokio_postgres::Config = url.parse().unwrap();
        let tokio_postgres::config::Host::Tcp(host) = &config.get_hosts()[0] else {
            panic!("the test server must be reached over TCP");
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let ip = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .unwrap()
            .next()
            .unwrap()
            .ip();
        format!(
            "host={} hostaddr={ip} port={port} user={} dbname={} {params}",
            host_name.unwrap_or(host),
            config.get_user().unwrap_or("postgres"),
            config.get_dbname().unwrap_or("postgres"),
        )
    }

    #[tokio::test]
    async fn require_encrypts_without_checking_the_certificate() {
        let Some((url, _)) = tls_env() else {
            return;
        };
        // No root file: the test CA is unknown, and `require` connects anyway.
        assert!(
            encrypted(&with_params(&url, "sslmode=require"))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn prefer_is_the_default_and_encrypts_when_the_server_offers_it() {
        let Some((url, _)) = tls_env() else {
            return;
        };
        assert!(encrypted(&url).await.unwrap());
        assert!(
            encrypted(&with_params(&url, "sslmode=prefer"))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn disable_is_plain() {
        let Some((url, _)) = tls_env() else {
            return;
        };
        assert!(
            !encrypted(&with_params(&url, "sslmode=disable"))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn verify_full_with_the_ca_runs_a_store() {
        let Some((url, ca)) = tls_env() else {
            return;
        };
        let url = with_params(&url, &format!("sslmode=verify-full&sslrootcert={ca}"));
        assert!(encrypted(&url).await.unwrap());
        let store = PostgresStore::connect(
            &url,
            PostgresOptions {
                schema: Some(format!(
                    "tls_{}_{}",
                    std::process::id(),
                    Utc::now().timestamp_micros()
                )),
                ..options()
            },
        )
        .await
        .unwrap();
        store.ping().await.unwrap();
        store
            .set_mapping_active("web", "production", "m1", false)
            .await
            .unwrap();
        assert_eq!(store.mapping_overrides().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn verify_full_without_the_ca_fails_clearly() {
        let Some((url, _)) = tls_env() else {
            return;
        };
        // The built-in Mozilla roots do not include the test CA. The password
        // (ignored by the trust-auth test server) must not appear in the error.
        let url = keyword_form(&url, None, "password=pw-s3cr3t sslmode=verify-full");
        let Err(err) = PostgresStore::connect(&url, options()).await else {
            panic!("verify-full trusted an unknown CA");
        };
        let text = err.to_string();
        eprintln!("{text}");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(
            text.contains("TLS handshake") && text.contains("UnknownIssuer"),
            "{text}"
        );
        assert!(!text.contains("pw-s3cr3t"), "{text}");
    }

    #[tokio::test]
    async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
        let Some((url, ca)) = tls_env() else {
            return;
        };
        let root = format!("sslrootcert='{ca}'");
        let err = encrypted(&keyword_form(
            &url,
            Some("wrong-name.invalid"),
            &format!("sslmode=verify-full {root}"),
        ))
        .await
        .unwrap_err();
        let text = err.to_string();
        eprintln!("{text}");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(
            text.contains("not valid for name") && text.contains("wrong-name.invalid"),
            "{text}"
        );
        assert!(
            encrypted(&keyword_form(
                &url,
                Some("wrong-name.invalid"),
                &format!("sslmode=verify-ca {root}")
            ))
            .await
            .unwrap()
        );
        // As in libpq, a root file makes `require` check the chain (but not the name).
        assert!(
            encrypted(&keyword_form(
                &url,
                Some("wrong-name.invalid"),
                &format!("sslmode=require {root}")
            ))
            .await
            .unwrap()
        );
    }

    #[tokio::test]
    async fn a_root_file_that_is_not_a_certificate_is_refused_at_startup() {
        let Some((url, _)) = tls_env() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let missing = dir.path().join("missing.pem");
        for file in [&empty, &missing] {
            let url = with_params(
                &url,
                &format!("sslmode=verify-full&sslrootcert={}", file.display()),
            );
            match build_pool(&url, &options()) {
                Err(StoreError::InvalidInput { field, problem }) => {
                    assert_eq!(field, "store.url");
                    assert!(problem.contains("sslrootcert"), "{problem}");
                }
                Err(other) => panic!("{other:?}"),
                Ok(_) => panic!("accepted {}", file.display()),
            }
        }
    }
}
