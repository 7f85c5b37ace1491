//! The store: one API over two backends, SQLite (embedded default) and Postgres (teams, several
//! gateway replicas).
//!
//! Queries are written once where the two dialects agree, which is most of the time because the
//! schema keeps them agreeing: times are integer milliseconds, ids are UUIDs (a 16-byte blob on
//! SQLite), booleans decode from both, and placeholders are `$1…` (sqlx's SQLite driver binds
//! `$N` by number). The [`dispatch!`] macro expands one query body once per backend, so each arm
//! is type-checked against its own driver with no boxed futures and no trait objects. Where the
//! dialects differ (full-text search, upserts, date arithmetic), the two SQL texts sit side by
//! side in the same function.
//!
//! SQLite gets two pools: readers, and a single writer connection. SQLite allows one writer at a
//! time anyway; funnelling our own writes through one connection means they queue in the pool
//! instead of failing with `SQLITE_BUSY` when a deferred transaction tries to upgrade.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::config::DatabaseUrl;

pub mod accounts;
pub mod alerts;
pub mod api_tokens;
pub mod batches;
pub mod cache;
pub mod compression;
pub mod credentials;
pub mod endpoints;
pub mod keyring;
pub mod keys;
pub mod limits;
pub mod members;
pub mod observe;
pub mod retention;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
#[cfg(test)]
pub(crate) mod tests;
pub mod traces;

/// Expands `$body` once per backend with `$pool` bound to that backend's pool (the reader pool on
/// SQLite). Use [`dispatch_write!`] for statements that write.
macro_rules! dispatch {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite { read, .. } => {
                let $pool = read;
                $body
            }
            $crate::store::Backend::Postgres(pg) => {
                let $pool = pg;
                $body
            }
        }
    };
}

/// Like [`dispatch!`], with the SQLite writer connection.
macro_rules! dispatch_write {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite { write, .. } => {
                let $pool = write;
                $body
            }
            $crate::store::Backend::Postgres(pg) => {
                let $pool = pg;
                $body
            }
        }
    };
}

/// Like [`dispatch_write!`], with SQLite's admission writer.
macro_rules! dispatch_admit {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite { admit, .. } => {
                let $pool = admit;
                $body
            }
            $crate::store::Backend::Postgres(pg) => {
                let $pool = pg;
                $body
            }
        }
    };
}

pub(crate) use {dispatch, dispatch_admit, dispatch_write};

/// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`: it takes the write lock up
/// front (waiting out the busy timeout), where a plain deferred `BEGIN` would fail with
/// `SQLITE_BUSY` at its first write if another process wrote in between.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send
    {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send
    {
        self.begin()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or did not answer in time. Callers map this to 503, never
    /// to an authentication failure.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A uniqueness constraint was violated; the payload names the constraint or column.
    #[error("conflict on {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    /// A stored value could not be interpreted (an unknown enum text, say).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => StoreError::Unavailable(e),
            sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                StoreError::Conflict(db.constraint().unwrap_or("unique").to_owned())
            }
            // SQLITE_BUSY / SQLITE_LOCKED after the busy timeout, Postgres admin shutdown /
            // cannot-connect classes, and a transaction Postgres aborted to break a deadlock
            // or a serialization conflict are unavailability, not bad queries: the work was
            // rolled back whole and can be retried (the recorder spools and replays it).
            sqlx::Error::Database(ref db)
                if matches!(
                    db.code().as_deref(),
                    Some("5" | "6" | "517" | "40P01" | "40001")
                ) || db
                    .code()
                    .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")) =>
            {
                StoreError::Unavailable(e)
            }
            other => StoreError::Query(other),
        }
    }
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
        /// A writer of its own for budget admission, so an admission waits at most for the
        /// transaction in progress, never in line behind queued trace batches.
        admit: SqlitePool,
    },
    Postgres(PgPool),
}

/// One connection pool's use.
#[derive(Debug, Clone, Copy)]
pub struct PoolUse {
    pub name: &'static str,
    pub in_use: usize,
    pub idle: usize,
    pub max: usize,
}

/// Handle to the database. Cheap to clone (pools and the hot-path cache are shared).
#[derive(Clone)]
pub struct Store {
    pub(crate) backend: Backend,
    pub(crate) cache: std::sync::Arc<cache::HotCache>,
    /// When a budget admission last asked for SQLite's write lock (ms since the epoch, 0:
    /// never); see [`Store::writes_contended`].
    admitted_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.kind())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        }
    }
}

/// How long a request waits for a pooled connection before the store reports itself
/// unavailable: long enough to ride out a burst, short enough that clients get a 503 quickly.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long after a budget admission the SQLite write lock counts as contended.
const CONTENDED_FOR: Duration = Duration::from_secs(10);

impl Store {
    /// Opens pools for the URL (creating the SQLite file and its folder when missing) and applies
    /// pending migrations.
    pub async fn open(url: &DatabaseUrl) -> Result<Self> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens pools without migrating.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self> {
        match url {
            DatabaseUrl::Sqlite(u) => {
                let opts = SqliteConnectOptions::from_str(u)
                    .map_err(StoreError::Query)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .pragma("temp_store", "memory")
                    // A checkpoint every 16 MiB of log instead of 4: the pages a busy writer
                    // touches again and again (index tails, daily totals) are copied back to
                    // the database once per checkpoint, and checkpoints were ~4 % of the
                    // gateway's CPU under load.
                    .pragma("wal_autocheckpoint", "4000");
                // The page cache is per connection: 32 MiB for the readers (the trace explorer
                // over a million traces), 4 MiB for the two writers, whose work (appending rows
                // and index segments) touches few pages: the gateway's resident memory stays
                // small (8 MiB gave the same CPU per trace and 5 MiB more peak RSS under load).
                let small_cache = opts.clone().pragma("cache_size", "-4096");
                let opts = opts.pragma("cache_size", "-32768");
                if let Some(parent) = opts.get_filename().parent()
                    && !parent.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
                }
                let write = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(small_cache.clone())
                    .await?;
                let admit = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(small_cache)
                    .await?;
                let read = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(opts.read_only(false))
                    .await?;
                Ok(Store::with_backend(Backend::Sqlite { read, write, admit }))
            }
            DatabaseUrl::Postgres(u) => {
                let opts = PgConnectOptions::from_str(u).map_err(StoreError::Query)?;
                Self::connect_postgres(opts).await
            }
        }
    }

    pub(crate) async fn connect_postgres(opts: PgConnectOptions) -> Result<Self> {
        // Server-side deadlines, so no statement or lock wait holds a connection forever
        // (request-path queries also have a shorter deadline of their own, see
        // `ANTIX_DATABASE_TIMEOUT_MS`; body search sets a tighter one per transaction).
        let opts = opts.options([("statement_timeout", "60s"), ("lock_timeout", "10s")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await?;
        Ok(Store::with_backend(Backend::Postgres(pool)))
    }

    fn with_backend(backend: Backend) -> Self {
        Store {
            backend,
            cache: std::sync::Arc::default(),
            admitted_at: std::sync::Arc::default(),
        }
    }

    /// Whether calls wait on the same write lock as the trace writer: on SQLite (one writer at
    /// a time), while budget admissions have been taking it in the last 10 s. The
    /// recorder then writes smaller batches, so an admission waits for a short transaction;
    /// otherwise larger ones, which cost less per trace (each commit rewrites the index tails
    /// it touched and flushes one search-index segment). Postgres locks rows, not the database.
    pub fn writes_contended(&self) -> bool {
        match self.backend {
            Backend::Sqlite { .. } => {
                let at = self.admitted_at.load(std::sync::atomic::Ordering::Relaxed);
                crate::domain::now_ms().saturating_sub(at) < CONTENDED_FOR.as_millis() as i64
            }
            Backend::Postgres(_) => false,
        }
    }

    /// Notes that an admission is about to take the write lock (SQLite's; a no-op on Postgres).
    pub(crate) fn note_admission(&self) {
        if matches!(self.backend, Backend::Sqlite { .. }) {
            self.admitted_at.store(
                crate::domain::now_ms(),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }

    pub async fn migrate(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite { write, .. } => {
                sqlx::migrate!("./migrations/sqlite").run(write).await?
            }
            Backend::Postgres(pg) => sqlx::migrate!("./migrations/postgres").run(pg).await?,
        }
        Ok(())
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite { .. } => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// How the connection pools are used right now (for metrics).
    pub fn pool_use(&self) -> Vec<PoolUse> {
        fn of<DB: sqlx::Database>(name: &'static str, p: &sqlx::Pool<DB>) -> PoolUse {
            let size = p.size() as usize;
            let idle = p.num_idle();
            PoolUse {
                name,
                in_use: size.saturating_sub(idle),
                idle,
                max: p.options().get_max_connections() as usize,
            }
        }
        match &self.backend {
            Backend::Sqlite { read, write, admit } => {
                vec![of("read", read), of("write", write), of("admit", admit)]
            }
            Backend::Postgres(pg) => vec![of("main", pg)],
        }
    }

    /// A round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<()> {
        dispatch!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes every pool, waiting for checked-out connections to come back.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { read, write, admit } => {
                read.close().await;
                write.close().await;
                admit.close().await;
            }
            Backend::Postgres(pg) => pg.close().await,
        }
    }
}

#[cfg(test)]
mod migration_tests {
    /// Both dialects must define the same migrations, version for version, or one backend would
    /// silently lack a table the other has.
    #[test]
    fn migration_versions_match() {
        let list = |dir: &str| {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        let root = env!("CARGO_MANIFEST_DIR");
        let s = list(&format!("{root}/migrations/sqlite"));
        let p = list(&format!("{root}/migrations/postgres"));
        assert!(!s.is_empty());
        assert_eq!(s, p);
    }
}
