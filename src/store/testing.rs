//! Fresh, isolated stores for tests: a temporary SQLite file, or a new schema in the Postgres
//! database named by `TEST_POSTGRES_URL`. Each test gets its own, so tests run in parallel and
//! test runs never see each other's rows. Compiled for this crate's tests and, through the
//! `test-support` feature, for the server's.

use std::str::FromStr;

use sqlx::Executor;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{Result, Store, StoreError};
use crate::config::DatabaseUrl;

/// The variable naming a Postgres server for tests. When unset, Postgres tests are skipped with
/// a message (and fail instead when `ANTIX_REQUIRE_POSTGRES=1`, which CI sets).
pub const TEST_POSTGRES_URL: &str = "TEST_POSTGRES_URL";

/// Schemas left by a crashed run are dropped by later runs once they are this old.
const STALE_SCHEMA_SECS: u64 = 6 * 3600;

pub struct TestDb {
    pub store: Store,
    /// The URL the store was opened with (SQLite) or the server URL plus schema (Postgres), for
    /// tests that start a second process or pool against the same data.
    pub url: String,
    pub schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
    admin: Option<sqlx::PgPool>,
}

impl TestDb {
    pub async fn sqlite() -> Result<Self> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
        let url = format!("sqlite://{}", dir.path().join("antix.db").display());
        let store = Store::open(&DatabaseUrl::Sqlite(url.clone())).await?;
        Ok(TestDb {
            store,
            url,
            schema: None,
            _dir: Some(dir),
            admin: None,
        })
    }

    /// `Ok(None)` when `TEST_POSTGRES_URL` is unset.
    pub async fn postgres() -> Result<Option<Self>> {
        let Ok(url) = std::env::var(TEST_POSTGRES_URL) else {
            return Ok(None);
        };
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await?;
        drop_stale_schemas(&admin).await;
        // Once per database, before the migrations of concurrent tests race to create it.
        let _ = admin
            .execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
            .await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let schema = format!(
            "antix_t_{now}_{}",
            crate::crypto::random_base62(10).to_lowercase()
        );
        admin
            .execute(format!("CREATE SCHEMA {schema}").as_str())
            .await?;
        let store = Self::open_schema(&url, &schema).await?;
        store.migrate().await?;
        Ok(Some(TestDb {
            store,
            url,
            schema: Some(schema),
            _dir: None,
            admin: Some(admin),
        }))
    }

    /// A second, independent store on the same data (another "replica").
    pub async fn reopen(&self) -> Result<Store> {
        match &self.schema {
            None => Store::connect(&DatabaseUrl::Sqlite(self.url.clone())).await,
            Some(schema) => Self::open_schema(&self.url, schema).await,
        }
    }

    async fn open_schema(url: &str, schema: &str) -> Result<Store> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(StoreError::Query)?
            .options([("search_path", format!("{schema},public"))]);
        Store::connect_postgres(opts).await
    }

    /// Closes the pools and drops the Postgres schema. Call at the end of a passing test; a
    /// failing test leaves its schema for inspection until a later run sweeps it.
    pub async fn cleanup(self) {
        self.store.close().await;
        if let (Some(admin), Some(schema)) = (&self.admin, &self.schema) {
            let _ = admin
                .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
                .await;
            admin.close().await;
        }
    }
}

async fn drop_stale_schemas(admin: &sqlx::PgPool) {
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'antix_t_%'",
    )
    .fetch_all(admin)
    .await
    else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for name in names {
        let ts = name
            .strip_prefix("antix_t_")
            .and_then(|r| r.split('_').next())
            .and_then(|t| t.parse::<u64>().ok());
        if ts.is_some_and(|t| t + STALE_SCHEMA_SECS < now)
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            let _ = admin
                .execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE").as_str())
                .await;
        }
    }
}

/// A Postgres test database, or `None` (after saying so) when `TEST_POSTGRES_URL` is unset;
/// fails instead when `ANTIX_REQUIRE_POSTGRES=1` (CI), so a missing server cannot pass silently.
pub async fn postgres_or_skip(test: &str) -> Result<Option<TestDb>> {
    match TestDb::postgres().await? {
        Some(db) => Ok(Some(db)),
        None => {
            assert!(
                !postgres_required(),
                "ANTIX_REQUIRE_POSTGRES=1 but {TEST_POSTGRES_URL} is not set"
            );
            // Test output is how a skipped backend is reported to whoever runs the suite.
            #[expect(clippy::print_stderr, reason = "the skip notice is the test's output")]
            {
                eprintln!("SKIPPED {test} on Postgres: {TEST_POSTGRES_URL} is not set");
            }
            Ok(None)
        }
    }
}

/// Declares a store test, written once and run on each backend:
/// `store_test!(name, |db| { … })` makes the body `async fn name(db: &TestDb)`, and
/// `name::sqlite` and `name::postgres` run it on a fresh SQLite file and on a fresh Postgres
/// schema (skipped, and said so, without `TEST_POSTGRES_URL`). After ripgrep's `rgtest!`; the
/// closure-like form keeps the body under rustfmt.
#[macro_export]
macro_rules! store_test {
    ($name:ident, |$db:ident| $body:block) => {
        async fn $name($db: &$crate::store::testing::TestDb) $body

        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::store::testing::TestDb::sqlite().await.unwrap();
                super::$name(&db).await;
                db.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let test = concat!(module_path!(), "::", stringify!($name));
                if let Some(db) = $crate::store::testing::postgres_or_skip(test).await.unwrap() {
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            }
        }
    };
}

/// Whether a missing `TEST_POSTGRES_URL` must fail the run instead of skipping.
pub fn postgres_required() -> bool {
    std::env::var("ANTIX_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// A plausible finished trace, for store and recorder tests.
pub fn sample_record(
    org: crate::domain::OrgId,
    endpoint: crate::domain::EndpointId,
    started_at: crate::domain::Millis,
) -> super::traces::TraceRecord {
    use super::traces::{TraceBodies, TraceRecord};
    use crate::domain::Outcome;
    use crate::usage::{Usage, UsageSource};
    TraceRecord {
        id: crate::domain::TraceId::at(started_at),
        org_id: org,
        endpoint_id: endpoint,
        started_at,
        auth_mode: "byok".into(),
        virtual_key_id: None,
        key_hint: None,
        provider: Some("openai".into()),
        wire: Some("openai.chat".into()),
        model: Some("gpt-4o".into()),
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        status_code: 200,
        outcome: Outcome::Ok,
        error: None,
        is_stream: false,
        usage: Usage {
            input_tokens: Some(10),
            output_tokens: Some(5),
            ..Default::default()
        },
        usage_source: UsageSource::Provider,
        cost_nanos: Some(75_000),
        cost_estimated: true,
        cost_detail: None,
        catalog_version: Some("test".into()),
        ttft_us: Some(1000),
        latency_us: 2000,
        session_key: None,
        session_parent: None,
        response_id: None,
        request_bytes: 10,
        response_bytes: 20,
        reservation: None,
        search_text: String::new(),
        session_preview: None,
        session_starts: None,
        tool_calls: None,
        attempts: Vec::new(),
        batch: None,
        bodies: TraceBodies {
            request_headers: "{}".into(),
            response_headers: "{}".into(),
            request_body: Some(super::compression::compress(b"{\"model\":\"gpt-4o\"}")),
            response_body: None,
            response_assembled: None,
            request_truncated: false,
            response_truncated: false,
        },
    }
}
