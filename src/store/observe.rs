//! Reading traces for the observability screens: the filtered, keyset-paginated trace list
//! (with substring search over bodies), the Overview's totals, and agent sessions.
//!
//! Every query is scoped to one endpoint; callers have already checked the user may see it.
//! Filters are bound parameters, never spliced into SQL; search input is quoted for FTS5 and
//! escaped for `LIKE` over lowercased text, so its syntax (`"`, `OR`, `NEAR(`, `*`, `%`, `_`) is just text.

use std::time::{Duration, Instant};

use sqlx::FromRow;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use super::traces::{DailyTotals, TRACE_COLUMNS, TraceRow};
use super::{Backend, Result, Store, dispatch};
use crate::domain::{EndpointId, Millis, TraceId, VirtualKeyId};

/// How the trace list is narrowed. `None` and empty mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceFilter {
    pub endpoint: Option<EndpointId>,
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub auth_mode: Option<String>,
    pub model: Option<String>,
    pub key: Option<VirtualKeyId>,
    /// Only virtual keys that were presented and refused (unknown, revoked, another
    /// organization's): someone may be trying keys.
    pub unknown_key: bool,
    /// `Some(true)`: errors only (HTTP status ≥ 400 or an incomplete call); `Some(false)`: ok only.
    pub errors: Option<bool>,
    /// Only calls that needed more than one try at the provider, or a fallback.
    pub retried: bool,
    /// Substring of the request or response text (three characters or more).
    pub search: Option<String>,
}

/// Where the next page starts: after this trace in newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// Time and id of the last trace shown (the plain list).
    Time(Millis, TraceId),
    /// The search index position of the last trace shown (search results, in recording order).
    Search(i64),
}

impl Cursor {
    pub fn encode(self) -> String {
        match self {
            Cursor::Time(t, id) => format!("t{t}_{id}"),
            Cursor::Search(r) => format!("s{r}"),
        }
    }

    pub fn decode(s: &str) -> Option<Self> {
        if let Some(rest) = s.strip_prefix('t') {
            let (t, id) = rest.split_once('_')?;
            return Some(Cursor::Time(t.parse().ok()?, id.parse().ok()?));
        }
        s.strip_prefix('s')?.parse().ok().map(Cursor::Search)
    }
}

/// Where a page of sessions continues: after the session that ended at `last_end_at` with
/// `key` (sessions ending in the same millisecond are told apart by key, so none is skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCursor {
    pub last_end_at: Millis,
    pub key: String,
}

impl SessionCursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.last_end_at, self.key)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (t, key) = s.split_once('_')?;
        Some(SessionCursor {
            last_end_at: t.parse().ok()?,
            key: key.to_owned(),
        })
    }
}

/// One page of traces, newest first.
#[derive(Debug, Clone, Default)]
pub struct TracePage {
    pub rows: Vec<TraceRow>,
    pub next: Option<Cursor>,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search for at least 3 characters")]
    TooShort,
    /// Postgres only: the search has no letter or digit, which its trigram index skips.
    #[error("search for something with a letter or digit in it")]
    NoWord,
    /// The query ran past its time budget and was cut off (a search that matches almost
    /// everything on another endpoint, say). The user narrows the time range or the text.
    #[error(
        "this query took too long; narrow the time range or search for something more specific"
    )]
    TooSlow,
    /// Every search slot is taken; the user retries in a moment.
    #[error("too many searches are running; try again in a moment")]
    Busy,
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

impl From<sqlx::Error> for SearchError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            // SQLITE_INTERRUPT (our progress handler), Postgres query_canceled (statement_timeout).
            && matches!(db.code().as_deref(), Some("9" | "57014"))
        {
            return SearchError::TooSlow;
        }
        SearchError::Store(e.into())
    }
}

/// How long one trace-list query may run. Indexed queries take milliseconds; this bounds the
/// pathological ones so a search cannot hold a database connection (and a core) for long.
pub const QUERY_BUDGET: Duration = Duration::from_secs(3);

/// Body searches running at once, per process. The machine's cores are shared with the proxy;
/// a flood of searches queues here instead of crowding out request handling.
static SEARCH_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A connection on which one statement runs under a time budget: SQLite interrupts it from a
/// progress handler, Postgres from `statement_timeout` set for one transaction.
pub(crate) trait Budgeted {
    type Conn: Send;
    fn budgeted(
        &self,
        budget: Duration,
    ) -> impl Future<Output = Result<Self::Conn, sqlx::Error>> + Send;
    /// Takes the budget off again before the connection goes back to its pool.
    fn release(&self, conn: Self::Conn) -> impl Future<Output = ()> + Send;
}

impl Budgeted for SqlitePool {
    type Conn = PoolConnection<sqlx::Sqlite>;

    async fn budgeted(&self, budget: Duration) -> Result<Self::Conn, sqlx::Error> {
        let mut conn = self.acquire().await?;
        let deadline = Instant::now() + budget;
        conn.lock_handle()
            .await?
            .set_progress_handler(10_000, move || Instant::now() < deadline);
        Ok(conn)
    }

    async fn release(&self, mut conn: Self::Conn) {
        let removed = match conn.lock_handle().await {
            Ok(mut h) => {
                h.remove_progress_handler();
                true
            }
            Err(_) => false,
        };
        if !removed {
            // A connection whose handler cannot be removed would interrupt its next user.
            conn.close_on_drop();
        }
    }
}

impl Budgeted for PgPool {
    type Conn = sqlx::Transaction<'static, sqlx::Postgres>;

    async fn budgeted(&self, budget: Duration) -> Result<Self::Conn, sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query(&format!(
            "SET LOCAL statement_timeout = {}",
            budget.as_millis()
        ))
        .execute(&mut *tx)
        .await?;
        Ok(tx)
    }

    async fn release(&self, tx: Self::Conn) {
        // Read-only: ending the transaction is all there is to do (SET LOCAL ends with it).
        let _ = tx.rollback().await;
    }
}

/// The FTS5 query for a literal substring: one quoted phrase, inner quotes doubled, so nothing
/// the user typed is read as query syntax.
fn fts_phrase(needle: &str) -> String {
    format!("\"{}\"", needle.replace('"', "\"\""))
}

/// `LIKE` pattern for a literal substring.
fn like_pattern(needle: &str) -> String {
    let escaped = needle
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[derive(FromRow)]
struct SearchRow {
    #[sqlx(flatten)]
    row: TraceRow,
    search_rowid: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SessionRow {
    pub session_key: String,
    pub parent: Option<String>,
    pub first_at: i64,
    pub last_end_at: i64,
    pub calls: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
    pub preview: String,
}

/// What the Overview's breakdowns group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Model,
    /// Virtual key id as 32 hex digits (the nil id for traffic without a key).
    Key,
    AuthMode,
}

/// Totals grouped by one dimension, for the Overview's breakdowns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakdown {
    pub label: String,
    pub totals: DailyTotals,
}

#[derive(FromRow)]
struct TotalsRow {
    group_key: String,
    requests: i64,
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_write_tokens: i64,
    reasoning_tokens: i64,
    cost_billed_nanos: i64,
    cost_estimated_nanos: i64,
    unpriced: i64,
    retried: i64,
    fell_back: i64,
}

impl From<&TotalsRow> for DailyTotals {
    fn from(r: &TotalsRow) -> Self {
        DailyTotals {
            requests: r.requests,
            errors: r.errors,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cache_read_tokens: r.cache_read_tokens,
            cache_write_tokens: r.cache_write_tokens,
            reasoning_tokens: r.reasoning_tokens,
            cost_billed_nanos: r.cost_billed_nanos,
            cost_estimated_nanos: r.cost_estimated_nanos,
            unpriced: r.unpriced,
            retried: r.retried,
            fell_back: r.fell_back,
        }
    }
}

const SUMS: &str = "COALESCE(CAST(SUM(requests) AS BIGINT), 0) AS requests, \
    COALESCE(CAST(SUM(errors) AS BIGINT), 0) AS errors, \
    COALESCE(CAST(SUM(input_tokens) AS BIGINT), 0) AS input_tokens, \
    COALESCE(CAST(SUM(output_tokens) AS BIGINT), 0) AS output_tokens, \
    COALESCE(CAST(SUM(cache_read_tokens) AS BIGINT), 0) AS cache_read_tokens, \
    COALESCE(CAST(SUM(cache_write_tokens) AS BIGINT), 0) AS cache_write_tokens, \
    COALESCE(CAST(SUM(reasoning_tokens) AS BIGINT), 0) AS reasoning_tokens, \
    COALESCE(CAST(SUM(cost_billed_nanos) AS BIGINT), 0) AS cost_billed_nanos, \
    COALESCE(CAST(SUM(cost_estimated_nanos) AS BIGINT), 0) AS cost_estimated_nanos, \
    COALESCE(CAST(SUM(unpriced) AS BIGINT), 0) AS unpriced, \
    COALESCE(CAST(SUM(retried) AS BIGINT), 0) AS retried, \
    COALESCE(CAST(SUM(fell_back) AS BIGINT), 0) AS fell_back";

/// The sessions the Activity tab lists: every session a client named, and conversations
/// recognised by their first prompt once they have more than one call (a single question is not
/// an agent session).
macro_rules! listed_sessions {
    () => {
        "(calls > 1 OR session_key NOT LIKE 'fp:%')"
    };
}

impl Store {
    /// A page of an endpoint's traces, newest first, narrowed by `filter`.
    pub async fn list_traces(
        &self,
        endpoint: EndpointId,
        filter: &TraceFilter,
        after: Option<Cursor>,
        limit: i64,
    ) -> Result<TracePage, SearchError> {
        let search = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if let Some(s) = search
            && s.chars().count() < 3
        {
            return Err(SearchError::TooShort);
        }
        let limit = limit.clamp(1, 500);
        let sqlite = matches!(self.backend, Backend::Sqlite { .. });
        // pg_trgm indexes only letters and digits: a search with neither could only scan every
        // body (and be cut off seconds later), so it is refused at once.
        if !sqlite && search.is_some_and(|s| !s.chars().any(char::is_alphanumeric)) {
            return Err(SearchError::NoWord);
        }
        let cols: String = TRACE_COLUMNS
            .split(',')
            .map(|c| format!("t.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        macro_rules! filters {
            ($qb:expr) => {{
                if let Some(v) = filter.from {
                    $qb.push(" AND t.started_at >= ").push_bind(v);
                }
                if let Some(v) = filter.to {
                    $qb.push(" AND t.started_at < ").push_bind(v);
                }
                if let Some(v) = &filter.auth_mode {
                    $qb.push(" AND t.auth_mode = ").push_bind(v.clone());
                }
                if let Some(v) = &filter.model {
                    $qb.push(" AND t.model = ").push_bind(v.clone());
                }
                if let Some(v) = filter.key {
                    $qb.push(" AND t.virtual_key_id = ").push_bind(v);
                }
                if filter.unknown_key {
                    $qb.push(" AND t.auth_mode = 'virtual_key' AND t.virtual_key_id IS NULL");
                }
                if filter.retried {
                    $qb.push(" AND (t.attempt_count > 1 OR t.fallback)");
                }
                match filter.errors {
                    Some(true) => {
                        $qb.push(" AND (t.status_code >= 400 OR t.outcome <> 'ok')");
                    }
                    Some(false) => {
                        $qb.push(" AND t.status_code < 400 AND t.outcome = 'ok'");
                    }
                    None => {}
                }
            }};
        }
        match search {
            None => {
                let rows: Vec<TraceRow> = dispatch!(self, |pool| {
                    let mut qb = sqlx::QueryBuilder::new(format!(
                        "SELECT {cols} FROM traces t WHERE t.endpoint_id = "
                    ));
                    qb.push_bind(endpoint);
                    filters!(qb);
                    if let Some(Cursor::Time(ts, id)) = after {
                        // A row value: both databases seek the (endpoint, time, id) index to it,
                        // where an OR of the two parts made every page rescan from the newest.
                        qb.push(" AND (t.started_at, t.id) < (")
                            .push_bind(ts)
                            .push(", ")
                            .push_bind(id)
                            .push(")");
                    }
                    qb.push(" ORDER BY t.started_at DESC, t.id DESC LIMIT ")
                        .push_bind(limit + 1);
                    let mut conn = pool.budgeted(QUERY_BUDGET).await?;
                    let rows = qb.build_query_as().fetch_all(&mut *conn).await;
                    pool.release(conn).await;
                    rows?
                });
                let (rows, next) = page(rows, limit, |r| Cursor::Time(r.started_at, r.id));
                Ok(TracePage { rows, next })
            }
            Some(needle) => {
                let _slot = tokio::time::timeout(QUERY_BUDGET, SEARCH_SLOTS.acquire())
                    .await
                    .map_err(|_| SearchError::Busy)?
                    .map_err(|_| SearchError::Busy)?;
                let rows: Vec<SearchRow> = dispatch!(self, |pool| {
                    let mut qb = if sqlite {
                        let mut qb = sqlx::QueryBuilder::new(format!(
                            "SELECT {cols}, f.rowid AS search_rowid FROM trace_fts f \
                             JOIN trace_search s ON s.rowid = f.rowid JOIN traces t ON t.id = s.trace_id \
                             WHERE trace_fts MATCH "
                        ));
                        qb.push_bind(fts_phrase(needle));
                        qb
                    } else {
                        let mut qb = sqlx::QueryBuilder::new(format!(
                            "SELECT {cols}, CAST(0 AS BIGINT) AS search_rowid FROM trace_search s JOIN traces t ON t.id = s.trace_id \
                             WHERE s.body LIKE "
                        ));
                        // The text is stored lowercased: LIKE compares bytes, where ILIKE
                        // lowercases every candidate body first (several times slower on
                        // 200 KB transcripts).
                        qb.push_bind(like_pattern(&needle.to_lowercase()))
                            .push(" ESCAPE '\\'");
                        qb
                    };
                    qb.push(" AND s.endpoint_id = ").push_bind(endpoint);
                    qb.push(" AND t.endpoint_id = ").push_bind(endpoint);
                    filters!(qb);
                    if sqlite {
                        if let Some(Cursor::Search(r)) = after {
                            qb.push(" AND f.rowid < ").push_bind(r);
                        }
                        // FTS5 walks its doclists in rowid order, so this needs no sort.
                        qb.push(" ORDER BY f.rowid DESC LIMIT ")
                            .push_bind(limit + 1);
                    } else {
                        if let Some(Cursor::Time(ts, id)) = after {
                            // A row value: both databases seek the (endpoint, time, id) index to it,
                            // where an OR of the two parts made every page rescan from the newest.
                            qb.push(" AND (t.started_at, t.id) < (")
                                .push_bind(ts)
                                .push(", ")
                                .push_bind(id)
                                .push(")");
                        }
                        qb.push(" ORDER BY t.started_at DESC, t.id DESC LIMIT ")
                            .push_bind(limit + 1);
                    }
                    let mut conn = pool.budgeted(QUERY_BUDGET).await?;
                    let rows = qb.build_query_as().fetch_all(&mut *conn).await;
                    pool.release(conn).await;
                    rows?
                });
                let cursor = |r: &SearchRow| {
                    if sqlite {
                        Cursor::Search(r.search_rowid)
                    } else {
                        Cursor::Time(r.row.started_at, r.row.id)
                    }
                };
                let (rows, next) = page(rows, limit, cursor);
                Ok(TracePage {
                    rows: rows.into_iter().map(|r| r.row).collect(),
                    next,
                })
            }
        }
    }

    /// Models seen on an endpoint (for the Model filter), most used first.
    pub async fn endpoint_models(&self, endpoint: EndpointId) -> Result<Vec<String>> {
        let rows: Vec<(String, i64)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT model, COALESCE(CAST(SUM(requests) AS BIGINT), 0) AS n FROM trace_daily \
                 WHERE endpoint_id = $1 AND model <> '' GROUP BY model ORDER BY n DESC, model LIMIT 200",
            )
            .bind(endpoint)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(m, _)| m).collect())
    }

    /// Daily totals of an endpoint from `since_day` on (days without traffic are absent).
    pub async fn daily_totals(
        &self,
        endpoint: EndpointId,
        since_day: Millis,
    ) -> Result<Vec<(Millis, DailyTotals)>> {
        let rows: Vec<TotalsRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT CAST(day AS TEXT) AS group_key, {SUMS} FROM trace_daily \
                 WHERE endpoint_id = $1 AND day >= $2 GROUP BY day ORDER BY day"
            ))
            .bind(endpoint)
            .bind(since_day)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .iter()
            .map(|r| (r.group_key.parse().unwrap_or(0), DailyTotals::from(r)))
            .collect())
    }

    /// Totals of an endpoint since `since_day`, grouped by `by`, largest first.
    pub async fn breakdown(
        &self,
        endpoint: EndpointId,
        since_day: Millis,
        by: Dimension,
    ) -> Result<Vec<Breakdown>> {
        let (group, key_text) = match (by, &self.backend) {
            (Dimension::Model, _) => ("model", "model"),
            (Dimension::AuthMode, _) => ("auth_mode", "auth_mode"),
            (Dimension::Key, Backend::Sqlite { .. }) => ("key_id", "lower(hex(key_id))"),
            (Dimension::Key, Backend::Postgres(_)) => {
                ("key_id", "replace(CAST(key_id AS TEXT), '-', '')")
            }
        };
        let rows: Vec<TotalsRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {key_text} AS group_key, {SUMS} FROM trace_daily \
                 WHERE endpoint_id = $1 AND day >= $2 GROUP BY {group} ORDER BY requests DESC LIMIT 50"
            ))
            .bind(endpoint)
            .bind(since_day)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .iter()
            .map(|r| Breakdown {
                label: r.group_key.clone(),
                totals: DailyTotals::from(r),
            })
            .collect())
    }

    /// Whether an endpoint has any agent session listed (the Activity tab is shown only then).
    pub async fn has_sessions(&self, endpoint: EndpointId) -> Result<bool> {
        let n: Option<i64> = dispatch!(self, |pool| {
            sqlx::query_scalar(concat!(
                "SELECT CAST(1 AS BIGINT) FROM trace_sessions WHERE endpoint_id = $1 AND ",
                listed_sessions!(),
                " LIMIT 1"
            ))
            .bind(endpoint)
            .fetch_optional(pool)
            .await?
        });
        Ok(n.is_some())
    }

    /// Sessions of an endpoint, most recently active first; `search` matches their first prompt.
    pub async fn list_sessions(
        &self,
        endpoint: EndpointId,
        search: Option<&str>,
        after: Option<&SessionCursor>,
        limit: i64,
    ) -> Result<Vec<SessionRow>> {
        let rows: Vec<SessionRow> = dispatch!(self, |pool| {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT session_key, parent, first_at, last_end_at, calls, errors, input_tokens, \
                 output_tokens, cost_nanos, preview FROM trace_sessions WHERE ",
            );
            qb.push(listed_sessions!()).push(" AND endpoint_id = ");
            qb.push_bind(endpoint);
            if let Some(s) = search.map(str::trim).filter(|s| !s.is_empty()) {
                qb.push(" AND LOWER(preview) LIKE ")
                    .push_bind(like_pattern(&s.to_lowercase()))
                    .push(" ESCAPE '\\'");
            }
            if let Some(c) = after {
                qb.push(" AND (last_end_at < ")
                    .push_bind(c.last_end_at)
                    .push(" OR (last_end_at = ")
                    .push_bind(c.last_end_at)
                    .push(" AND session_key < ")
                    .push_bind(c.key.clone())
                    .push("))");
            }
            qb.push(" ORDER BY last_end_at DESC, session_key DESC LIMIT ")
                .push_bind(limit.clamp(1, 500));
            qb.build_query_as().fetch_all(pool).await?
        });
        Ok(rows)
    }

    pub async fn session(&self, endpoint: EndpointId, key: &str) -> Result<Option<SessionRow>> {
        let row: Option<SessionRow> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT session_key, parent, first_at, last_end_at, calls, errors, input_tokens, \
                 output_tokens, cost_nanos, preview FROM trace_sessions \
                 WHERE endpoint_id = $1 AND session_key = $2",
            )
            .bind(endpoint)
            .bind(key)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// Sessions sharing a parent (a Claude Code session and its sub-agents), oldest first.
    pub async fn related_sessions(
        &self,
        endpoint: EndpointId,
        parent: &str,
        limit: i64,
    ) -> Result<Vec<SessionRow>> {
        let rows: Vec<SessionRow> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT session_key, parent, first_at, last_end_at, calls, errors, input_tokens, \
                 output_tokens, cost_nanos, preview FROM trace_sessions \
                 WHERE endpoint_id = $1 AND parent = $2 ORDER BY first_at, session_key LIMIT $3",
            )
            .bind(endpoint)
            .bind(parent)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// The calls of one session in time order (at most `limit`).
    pub async fn session_traces(
        &self,
        endpoint: EndpointId,
        key: &str,
        limit: i64,
    ) -> Result<Vec<TraceRow>> {
        let rows: Vec<TraceRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {TRACE_COLUMNS} FROM traces WHERE endpoint_id = $1 AND session_key = $2 \
                 ORDER BY started_at, id LIMIT $3"
            ))
            .bind(endpoint)
            .bind(key)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Refreshes the planner's statistics (after bulk loads, and daily).
    pub async fn analyze(&self) -> Result<()> {
        super::dispatch_write!(self, |pool| {
            let sql = match self.backend {
                Backend::Sqlite { .. } => "PRAGMA optimize",
                Backend::Postgres(_) => "ANALYZE",
            };
            sqlx::query(sql).execute(pool).await?;
        });
        Ok(())
    }
}

/// Trims the one extra row fetched to learn whether another page follows.
fn page<R>(
    mut rows: Vec<R>,
    limit: i64,
    cursor: impl Fn(&R) -> Cursor,
) -> (Vec<R>, Option<Cursor>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(&cursor) } else { None };
    (rows, next)
}

#[cfg(test)]
impl Store {
    /// Runs a deliberately slow statement under `budget` (tests of the budget itself).
    pub(crate) async fn slow_query_within(&self, budget: Duration) -> Result<i64, SearchError> {
        let sql = match self.backend {
            Backend::Sqlite { .. } => {
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) \
                 SELECT CAST(COUNT(*) AS BIGINT) FROM c"
            }
            Backend::Postgres(_) => "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT pg_sleep(5)) s",
        };
        let n: i64 = dispatch!(self, |pool| {
            let mut conn = pool.budgeted(budget).await?;
            let n = sqlx::query_scalar(sql).fetch_one(&mut *conn).await;
            pool.release(conn).await;
            n?
        });
        Ok(n)
    }
}
