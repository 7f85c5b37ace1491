//! Trace rows: written in batches by the recorder (idempotent by trace id, so a replayed spool
//! or a retried batch never duplicates), read by the portal.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::{BeginWrite, Result, Store, dispatch, dispatch_write};
use crate::domain::{EndpointId, Millis, OrgId, Outcome, TraceId, VirtualKeyId};
use crate::usage::{Usage, UsageSource};

/// Compressed bodies and redacted headers of one trace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceBodies {
    /// JSON object of the redacted request headers.
    pub request_headers: String,
    pub response_headers: String,
    /// zstd-compressed bytes, as sent by the client (capped).
    #[serde(with = "b64_opt")]
    pub request_body: Option<Vec<u8>>,
    /// zstd-compressed bytes, as received from the upstream (raw events for streams; capped).
    #[serde(with = "b64_opt")]
    pub response_body: Option<Vec<u8>>,
    /// zstd-compressed JSON: a streamed response reassembled into its non-streaming shape.
    #[serde(with = "b64_opt")]
    pub response_assembled: Option<Vec<u8>>,
    pub request_truncated: bool,
    pub response_truncated: bool,
}

/// One finished trace, ready to be written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRecord {
    pub id: TraceId,
    pub org_id: OrgId,
    pub endpoint_id: EndpointId,
    pub started_at: Millis,
    pub auth_mode: String,
    pub virtual_key_id: Option<VirtualKeyId>,
    /// The visible prefix of a virtual key that was presented but did not check out.
    #[serde(default)]
    pub key_hint: Option<String>,
    pub provider: Option<String>,
    pub wire: Option<String>,
    pub model: Option<String>,
    pub method: String,
    pub path: String,
    pub status_code: u16,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub is_stream: bool,
    pub usage: Usage,
    pub usage_source: UsageSource,
    pub cost_nanos: Option<i64>,
    pub cost_estimated: bool,
    pub cost_detail: Option<String>,
    pub catalog_version: Option<String>,
    pub ttft_us: Option<i64>,
    pub latency_us: i64,
    pub session_key: Option<String>,
    pub session_parent: Option<String>,
    pub response_id: Option<String>,
    pub request_bytes: i64,
    pub response_bytes: i64,
    pub bodies: TraceBodies,
    /// The budget reservation this call held, settled when the trace is written.
    #[serde(default)]
    pub reservation: Option<crate::limits::Reservation>,
    /// The text indexed for body search: request and response text, without JSON syntax.
    #[serde(default)]
    pub search_text: String,
    /// The session's first prompt, shown in the Activity tab's list.
    #[serde(default)]
    pub session_preview: Option<String>,
    /// What the call did to a batch (created it, learned its results file, read its results).
    #[serde(default)]
    pub batch: Option<super::batches::BatchEvent>,
    /// A fingerprinted session key not yet checked against the idle gap: whether this call
    /// starts a conversation (see [`crate::sessions::split_after_gap`]). Cleared once resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_starts: Option<bool>,
    /// The tools the model called in its answer, comma-separated.
    #[serde(default)]
    pub tool_calls: Option<String>,
    /// The tries at the upstream, when there was more than one (retries, fallbacks).
    #[serde(default)]
    pub attempts: Vec<crate::domain::Attempt>,
}

/// The summary columns of a trace, as listed in the portal.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TraceRow {
    pub id: TraceId,
    pub org_id: OrgId,
    pub endpoint_id: EndpointId,
    pub started_at: i64,
    pub auth_mode: String,
    pub virtual_key_id: Option<VirtualKeyId>,
    pub provider: Option<String>,
    pub wire: Option<String>,
    pub model: Option<String>,
    pub method: String,
    pub path: String,
    pub status_code: i64,
    pub outcome: String,
    pub error: Option<String>,
    pub is_stream: bool,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub usage_source: String,
    pub cost_nanos: Option<i64>,
    pub cost_estimated: bool,
    pub cost_detail: Option<String>,
    pub catalog_version: Option<String>,
    pub ttft_us: Option<i64>,
    pub latency_us: i64,
    pub session_key: Option<String>,
    pub session_parent: Option<String>,
    pub response_id: Option<String>,
    pub request_bytes: i64,
    pub response_bytes: i64,
    pub key_hint: Option<String>,
    /// The tools the model called, comma-separated.
    pub tool_calls: Option<String>,
    /// Tries at the upstream (JSON), when there was more than one.
    pub attempts: Option<String>,
    pub attempt_count: i64,
    /// Served by a fallback target.
    pub fallback: bool,
}

pub const TRACE_COLUMNS: &str = "id, org_id, endpoint_id, started_at, auth_mode, virtual_key_id, \
    provider, wire, model, method, path, status_code, outcome, error, is_stream, input_tokens, \
    output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, usage_source, \
    cost_nanos, cost_estimated, cost_detail, catalog_version, ttft_us, latency_us, session_key, \
    session_parent, response_id, request_bytes, response_bytes, key_hint, tool_calls, attempts, \
    attempt_count, fallback";

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TraceBodiesRow {
    pub request_headers: String,
    pub response_headers: String,
    pub request_body: Option<Vec<u8>>,
    pub response_body: Option<Vec<u8>>,
    pub response_assembled: Option<Vec<u8>>,
    pub request_truncated: bool,
    pub response_truncated: bool,
}

/// One row of daily totals (see migration 0004), summed from traces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyTotals {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_billed_nanos: i64,
    pub cost_estimated_nanos: i64,
    pub unpriced: i64,
    /// Calls that needed more than one try at the provider.
    pub retried: i64,
    /// Calls answered by a fallback target.
    pub fell_back: i64,
}

pub type RollupKey = (EndpointId, Millis, String, uuid::Uuid, String);

impl DailyTotals {
    /// Adds another row's totals to these.
    pub fn merge(&mut self, o: &DailyTotals) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cache_read_tokens += o.cache_read_tokens;
        self.cache_write_tokens += o.cache_write_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.cost_billed_nanos += o.cost_billed_nanos;
        self.cost_estimated_nanos += o.cost_estimated_nanos;
        self.unpriced += o.unpriced;
        self.retried += o.retried;
        self.fell_back += o.fell_back;
    }

    fn add(&mut self, r: &TraceRecord, sign: i64) {
        let t = |v: Option<u64>| i64::try_from(v.unwrap_or(0)).unwrap_or(i64::MAX);
        self.requests += sign;
        if r.status_code >= 400 || r.outcome != Outcome::Ok {
            self.errors += sign;
        }
        self.input_tokens += sign * t(r.usage.input_tokens);
        self.output_tokens += sign * t(r.usage.output_tokens);
        self.cache_read_tokens += sign * t(r.usage.cache_read_tokens);
        self.cache_write_tokens += sign * t(r.usage.cache_write_tokens);
        self.reasoning_tokens += sign * t(r.usage.reasoning_tokens);
        match r.cost_nanos {
            Some(c) if r.cost_estimated => self.cost_estimated_nanos += sign * c,
            Some(c) => self.cost_billed_nanos += sign * c,
            None if r.wire.is_some() => self.unpriced += sign,
            None => {}
        }
        if crate::domain::tries(&r.attempts) > 1 {
            self.retried += sign;
        }
        if crate::domain::served_by_fallback(&r.attempts) {
            self.fell_back += sign;
        }
    }
}

/// Daily totals of traces, grouped as the rollup table keys them.
///
/// Ordered, like every map of rows a transaction upserts: concurrent writers lock the rows in
/// the same order, so on Postgres they never deadlock.
pub fn rollup(records: &[&TraceRecord]) -> std::collections::BTreeMap<RollupKey, DailyTotals> {
    let mut out: std::collections::BTreeMap<RollupKey, DailyTotals> =
        std::collections::BTreeMap::new();
    for r in records {
        let day = crate::domain::day_start(r.started_at);
        let key = (
            r.endpoint_id,
            day,
            r.model.clone().unwrap_or_default(),
            r.virtual_key_id.map_or(uuid::Uuid::nil(), |k| k.0),
            r.auth_mode.clone(),
        );
        out.entry(key).or_default().add(r, 1);
    }
    out
}

/// Adds (or, with negative totals, subtracts) daily totals inside the caller's transaction.
macro_rules! apply_rollup {
    ($tx:expr, $totals:expr) => {{
        for ((endpoint, day, model, key, auth), t) in $totals {
            sqlx::query(
                "INSERT INTO trace_daily (endpoint_id, day, model, key_id, auth_mode, requests, errors, \
                 input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, \
                 cost_billed_nanos, cost_estimated_nanos, unpriced, retried, fell_back) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
                 ON CONFLICT (endpoint_id, day, model, key_id, auth_mode) DO UPDATE SET \
                 requests = trace_daily.requests + excluded.requests, \
                 errors = trace_daily.errors + excluded.errors, \
                 input_tokens = trace_daily.input_tokens + excluded.input_tokens, \
                 output_tokens = trace_daily.output_tokens + excluded.output_tokens, \
                 cache_read_tokens = trace_daily.cache_read_tokens + excluded.cache_read_tokens, \
                 cache_write_tokens = trace_daily.cache_write_tokens + excluded.cache_write_tokens, \
                 reasoning_tokens = trace_daily.reasoning_tokens + excluded.reasoning_tokens, \
                 cost_billed_nanos = trace_daily.cost_billed_nanos + excluded.cost_billed_nanos, \
                 cost_estimated_nanos = trace_daily.cost_estimated_nanos + excluded.cost_estimated_nanos, \
                 unpriced = trace_daily.unpriced + excluded.unpriced, \
                 retried = trace_daily.retried + excluded.retried, \
                 fell_back = trace_daily.fell_back + excluded.fell_back",
            )
            .bind(endpoint)
            .bind(day)
            .bind(model)
            .bind(key)
            .bind(auth)
            .bind(t.requests)
            .bind(t.errors)
            .bind(t.input_tokens)
            .bind(t.output_tokens)
            .bind(t.cache_read_tokens)
            .bind(t.cache_write_tokens)
            .bind(t.reasoning_tokens)
            .bind(t.cost_billed_nanos)
            .bind(t.cost_estimated_nanos)
            .bind(t.unpriced)
            .bind(t.retried)
            .bind(t.fell_back)
            .execute(&mut **$tx)
            .await?;
        }
    }};
}

/// Indexes the searchable text of new traces, inside the inserting transaction. SQLite: the
/// FTS5 trigram table (rowids assigned here, in insertion order, under the write lock);
/// Postgres: the trigram-indexed text table.
///
/// Called last in the transaction, and on SQLite with as few statements as the bind limit
/// allows: FTS5 flushes its pending terms to a new on-disk segment whenever a later statement
/// of the transaction opens a savepoint, so indexing between other inserts made one small
/// segment per statement and left FTS5 merging them (a third of the writer's CPU). Indexed
/// last, a batch becomes one segment, flushed at commit.
macro_rules! index_search {
    ($tx:expr, $sqlite:expr, $fresh:expr) => {{
        let docs: Vec<&&TraceRecord> = $fresh
            .iter()
            .filter(|r| !r.search_text.is_empty())
            .collect();
        if !docs.is_empty() {
            if $sqlite {
                let next: i64 =
                    sqlx::query_scalar("SELECT COALESCE(MAX(rowid), 0) + 1 FROM trace_search")
                        .fetch_one(&mut **$tx)
                        .await?;
                // Multi-row statements: per-statement overhead dominates for short texts. The
                // plain table first, then the FTS5 table (see above).
                for (c, chunk) in docs.chunks(SEARCH_ROWS).enumerate() {
                    let first = next + (c * SEARCH_ROWS) as i64;
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO trace_search (rowid, trace_id, endpoint_id) ",
                    );
                    qb.push_values(chunk.iter().enumerate(), |mut b, (i, r)| {
                        b.push_bind(first + i as i64)
                            .push_bind(r.id)
                            .push_bind(r.endpoint_id);
                    });
                    qb.build().execute(&mut **$tx).await?;
                }
                for (c, chunk) in docs.chunks(FTS_ROWS).enumerate() {
                    let first = next + (c * FTS_ROWS) as i64;
                    let mut qb = sqlx::QueryBuilder::new("INSERT INTO trace_fts (rowid, body) ");
                    qb.push_values(chunk.iter().enumerate(), |mut b, (i, r)| {
                        b.push_bind(first + i as i64).push_bind(&r.search_text);
                    });
                    qb.build().execute(&mut **$tx).await?;
                }
            } else {
                for chunk in docs.chunks(SEARCH_ROWS) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO trace_search (trace_id, endpoint_id, body) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        // Postgres text cannot hold NUL; lowercased for a case-blind LIKE.
                        b.push_bind(r.id)
                            .push_bind(r.endpoint_id)
                            .push_bind(r.search_text.replace('\0', "").to_lowercase());
                    });
                    qb.push(" ON CONFLICT (trace_id) DO NOTHING");
                    qb.build().execute(&mut **$tx).await?;
                }
            }
        }
    }};
}

/// Rows per search-index INSERT (three binds each).
const SEARCH_ROWS: usize = 200;
/// Rows per FTS5 INSERT (two binds each): a whole batch of the recorder's in one statement,
/// far below SQLite's limit of 32,766 binds.
const FTS_ROWS: usize = 1000;

/// Per-session totals of a batch, to add to `trace_sessions`.
#[derive(Debug, Clone, Default)]
pub struct SessionDelta {
    pub parent: Option<String>,
    pub first_at: Millis,
    pub last_end_at: Millis,
    pub calls: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
    pub preview: String,
}

/// Ordered for the same reason as [`rollup`].
pub fn sessions(
    records: &[&TraceRecord],
) -> std::collections::BTreeMap<(EndpointId, String), SessionDelta> {
    let mut out: std::collections::BTreeMap<(EndpointId, String), SessionDelta> =
        std::collections::BTreeMap::new();
    for r in records {
        let Some(key) = &r.session_key else { continue };
        let end = r.started_at + r.latency_us / 1000;
        let d = out
            .entry((r.endpoint_id, key.clone()))
            .or_insert_with(|| SessionDelta {
                first_at: r.started_at,
                last_end_at: end,
                ..Default::default()
            });
        d.first_at = d.first_at.min(r.started_at);
        d.last_end_at = d.last_end_at.max(end);
        d.calls += 1;
        if r.status_code >= 400 || r.outcome != Outcome::Ok {
            d.errors += 1;
        }
        let t = |v: Option<u64>| i64::try_from(v.unwrap_or(0)).unwrap_or(i64::MAX);
        d.input_tokens += t(r.usage.input_tokens);
        d.output_tokens += t(r.usage.output_tokens);
        d.cost_nanos += r.cost_nanos.unwrap_or(0);
        if d.parent.is_none() {
            d.parent = r.session_parent.clone();
        }
        if d.preview.is_empty()
            && let Some(p) = &r.session_preview
        {
            d.preview = p.clone();
        }
    }
    out
}

const SESSION_UPSERT_SQLITE: &str = "INSERT INTO trace_sessions (endpoint_id, session_key, parent, \
    first_at, last_end_at, calls, errors, input_tokens, output_tokens, cost_nanos, preview) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
    ON CONFLICT (endpoint_id, session_key) DO UPDATE SET \
    parent = COALESCE(trace_sessions.parent, excluded.parent), \
    first_at = MIN(trace_sessions.first_at, excluded.first_at), \
    last_end_at = MAX(trace_sessions.last_end_at, excluded.last_end_at), \
    calls = trace_sessions.calls + excluded.calls, errors = trace_sessions.errors + excluded.errors, \
    input_tokens = trace_sessions.input_tokens + excluded.input_tokens, \
    output_tokens = trace_sessions.output_tokens + excluded.output_tokens, \
    cost_nanos = trace_sessions.cost_nanos + excluded.cost_nanos, \
    preview = CASE WHEN trace_sessions.preview = '' THEN excluded.preview ELSE trace_sessions.preview END";

const SESSION_UPSERT_POSTGRES: &str = "INSERT INTO trace_sessions (endpoint_id, session_key, parent, \
    first_at, last_end_at, calls, errors, input_tokens, output_tokens, cost_nanos, preview) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
    ON CONFLICT (endpoint_id, session_key) DO UPDATE SET \
    parent = COALESCE(trace_sessions.parent, excluded.parent), \
    first_at = LEAST(trace_sessions.first_at, excluded.first_at), \
    last_end_at = GREATEST(trace_sessions.last_end_at, excluded.last_end_at), \
    calls = trace_sessions.calls + excluded.calls, errors = trace_sessions.errors + excluded.errors, \
    input_tokens = trace_sessions.input_tokens + excluded.input_tokens, \
    output_tokens = trace_sessions.output_tokens + excluded.output_tokens, \
    cost_nanos = trace_sessions.cost_nanos + excluded.cost_nanos, \
    preview = CASE WHEN trace_sessions.preview = '' THEN excluded.preview ELSE trace_sessions.preview END";

macro_rules! apply_sessions {
    ($tx:expr, $sql:expr, $deltas:expr) => {{
        for ((endpoint, key), d) in $deltas {
            sqlx::query($sql)
                .bind(endpoint)
                .bind(key)
                .bind(d.parent)
                .bind(d.first_at)
                .bind(d.last_end_at)
                .bind(d.calls)
                .bind(d.errors)
                .bind(d.input_tokens)
                .bind(d.output_tokens)
                .bind(d.cost_nanos)
                .bind(d.preview)
                .execute(&mut **$tx)
                .await?;
        }
    }};
}

/// Rows per INSERT statement: few enough that one statement is a short burst of work (the
/// database thread shares the CPU with request handling), many enough to amortize the round
/// trip; 32 columns × 32 rows stays far below both backends' bind limits.
const ROWS_PER_STATEMENT: usize = 32;

fn tok(v: Option<u64>) -> Option<i64> {
    v.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

impl Store {
    /// Writes traces and their bodies in one transaction. Ids already present are skipped, so
    /// replays are harmless. Returns how many traces were new.
    pub async fn insert_traces(&self, records: &[TraceRecord]) -> Result<u64> {
        if records.is_empty() {
            return Ok(0);
        }
        let sqlite = matches!(self.backend, super::Backend::Sqlite { .. });
        let session_sql = if sqlite {
            SESSION_UPSERT_SQLITE
        } else {
            SESSION_UPSERT_POSTGRES
        };
        let now = crate::domain::now_ms();
        let inserted = dispatch_write!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            // Batch holds first: whether a results reading is charged is decided here, in the
            // transaction that records it. Only batch traces take this path.
            let (free, releases) = if records.iter().any(|r| r.batch.is_some()) {
                let tx_ref = &mut tx;
                super::batches::apply_batch_events!(tx_ref, records, now)
            } else {
                (Vec::new(), Vec::new())
            };
            let adjusted: Vec<TraceRecord>;
            let records = if free.is_empty() {
                records
            } else {
                adjusted = records
                    .iter()
                    .map(|r| {
                        let mut r = r.clone();
                        if free.contains(&r.id) {
                            r.cost_nanos = Some(0);
                            r.cost_detail = None;
                        }
                        r
                    })
                    .collect();
                &adjusted
            };
            let mut inserted = 0;
            let mut fresh_all: Vec<&TraceRecord> = Vec::with_capacity(records.len());
            for chunk in records.chunks(ROWS_PER_STATEMENT) {
                let mut qb =
                    sqlx::QueryBuilder::new(format!("INSERT INTO traces ({TRACE_COLUMNS}) "));
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.id)
                        .push_bind(r.org_id)
                        .push_bind(r.endpoint_id)
                        .push_bind(r.started_at)
                        .push_bind(r.auth_mode.as_str())
                        .push_bind(r.virtual_key_id)
                        .push_bind(r.provider.as_deref())
                        .push_bind(r.wire.as_deref())
                        .push_bind(r.model.as_deref())
                        .push_bind(r.method.as_str())
                        .push_bind(r.path.as_str())
                        .push_bind(i64::from(r.status_code))
                        .push_bind(r.outcome.as_str())
                        .push_bind(r.error.as_deref())
                        .push_bind(r.is_stream)
                        .push_bind(tok(r.usage.input_tokens))
                        .push_bind(tok(r.usage.output_tokens))
                        .push_bind(tok(r.usage.cache_read_tokens))
                        .push_bind(tok(r.usage.cache_write_tokens))
                        .push_bind(tok(r.usage.reasoning_tokens))
                        .push_bind(r.usage_source.as_str())
                        .push_bind(r.cost_nanos)
                        .push_bind(r.cost_estimated)
                        .push_bind(r.cost_detail.as_deref())
                        .push_bind(r.catalog_version.as_deref())
                        .push_bind(r.ttft_us)
                        .push_bind(r.latency_us)
                        .push_bind(r.session_key.as_deref())
                        .push_bind(r.session_parent.as_deref())
                        .push_bind(r.response_id.as_deref())
                        .push_bind(r.request_bytes)
                        .push_bind(r.response_bytes)
                        .push_bind(r.key_hint.as_deref())
                        .push_bind(r.tool_calls.as_deref())
                        .push_bind(
                            (!r.attempts.is_empty())
                                .then(|| serde_json::to_string(&r.attempts).ok())
                                .flatten(),
                        )
                        .push_bind(crate::domain::tries(&r.attempts) as i64)
                        .push_bind(crate::domain::served_by_fallback(&r.attempts));
                });
                qb.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
                let new_ids: Vec<TraceId> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
                inserted += new_ids.len() as u64;
                // Limits are charged for new traces only: a replay charges nothing twice.
                fresh_all.extend(chunk.iter().filter(|r| new_ids.contains(&r.id)));

                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO trace_bodies (trace_id, request_headers, response_headers, \
                     request_body, response_body, response_assembled, request_truncated, \
                     response_truncated) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.id)
                        .push_bind(r.bodies.request_headers.as_str())
                        .push_bind(r.bodies.response_headers.as_str())
                        .push_bind(r.bodies.request_body.as_deref())
                        .push_bind(r.bodies.response_body.as_deref())
                        .push_bind(r.bodies.response_assembled.as_deref())
                        .push_bind(r.bodies.request_truncated)
                        .push_bind(r.bodies.response_truncated);
                });
                qb.push(" ON CONFLICT (trace_id) DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            // The shared counters last and once for the whole batch, each in key order: the
            // rows other transactions update too are locked briefly and always in one order.
            let tx_ref = &mut tx;
            super::limits::settle_body!(tx_ref, &fresh_all, &releases);
            apply_rollup!(tx_ref, rollup(&fresh_all));
            apply_sessions!(tx_ref, session_sql, sessions(&fresh_all));
            index_search!(tx_ref, sqlite, &fresh_all);
            tx.commit().await?;
            inserted
        });
        Ok(inserted)
    }

    /// The most recently active session whose key is `base` or `base~…` (a later conversation
    /// that started with the same first prompt), and when it was last active.
    pub async fn latest_session_like(
        &self,
        endpoint: EndpointId,
        base: &str,
    ) -> Result<Option<(String, Millis)>> {
        // `base~<start ms>`. Fingerprint keys hold no LIKE wildcards (`fp:<family>:<hex>`).
        let later = format!("{base}~%");
        let row: Option<(String, Millis)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT session_key, last_end_at FROM trace_sessions \
                 WHERE endpoint_id = $1 AND (session_key = $2 OR session_key LIKE $3) \
                 ORDER BY last_end_at DESC LIMIT 1",
            )
            .bind(endpoint)
            .bind(base)
            .bind(&later)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// Keeps a trace that could not be written, with the reason.
    pub async fn quarantine_trace(&self, record: &TraceRecord, error: &str) -> Result<()> {
        let text = serde_json::to_string(record).unwrap_or_else(|e| format!("unserializable: {e}"));
        dispatch_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO trace_quarantine (trace_id, quarantined_at, error, record) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (trace_id) DO NOTHING",
            )
            .bind(record.id)
            .bind(crate::domain::now_ms())
            .bind(error)
            .bind(text)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn quarantined_count(&self) -> Result<i64> {
        let n: i64 = dispatch!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM trace_quarantine")
                .fetch_one(pool)
                .await?
        });
        Ok(n)
    }

    pub async fn trace(&self, id: TraceId) -> Result<Option<TraceRow>> {
        let row: Option<TraceRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!("SELECT {TRACE_COLUMNS} FROM traces WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    pub async fn trace_bodies(&self, id: TraceId) -> Result<Option<TraceBodiesRow>> {
        let row: Option<TraceBodiesRow> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT request_headers, response_headers, request_body, response_body, \
                 response_assembled, request_truncated, response_truncated \
                 FROM trace_bodies WHERE trace_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// The newest traces of an endpoint (tests and the CLI; the portal uses the filtered query).
    pub async fn recent_traces(&self, endpoint: EndpointId, limit: i64) -> Result<Vec<TraceRow>> {
        let rows: Vec<TraceRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {TRACE_COLUMNS} FROM traces WHERE endpoint_id = $1 \
                 ORDER BY started_at DESC, id DESC LIMIT $2"
            ))
            .bind(endpoint)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    pub async fn count_traces(&self) -> Result<i64> {
        let n: i64 = dispatch!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM traces")
                .fetch_one(pool)
                .await?
        });
        Ok(n)
    }

    /// The session of the trace whose response had this id, to continue a
    /// `previous_response_id` chain.
    pub async fn session_of_response(
        &self,
        endpoint: EndpointId,
        response_id: &str,
    ) -> Result<Option<String>> {
        let key: Option<Option<String>> = dispatch!(self, |pool| {
            sqlx::query_scalar(
                "SELECT session_key FROM traces WHERE response_id = $1 AND endpoint_id = $2 LIMIT 1",
            )
            .bind(response_id)
            .bind(endpoint)
            .fetch_optional(pool)
            .await?
        });
        Ok(key.flatten())
    }

    /// Deletes the daily totals of days before `day` (call once the traces of those days are
    /// gone; retention cuts at day boundaries so the two stay equal).
    pub async fn delete_rollups_before(&self, day: Millis) -> Result<u64> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query("DELETE FROM trace_sessions WHERE last_end_at < $1")
                .bind(day)
                .execute(pool)
                .await?;
            sqlx::query("DELETE FROM trace_daily WHERE day < $1")
                .bind(day)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }

    /// Deletes traces started before `before`, at most `limit` at a time (so retention never
    /// holds the write lock for long). Ids are time-ordered UUIDv7, so this is a primary-key
    /// range. Returns how many went.
    pub async fn delete_traces_before(&self, before: Millis, limit: i64) -> Result<u64> {
        let floor = TraceId::floor(before);
        let sqlite = matches!(self.backend, super::Backend::Sqlite { .. });
        let n = dispatch_write!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let oldest = "SELECT id FROM traces WHERE id < $1 ORDER BY id LIMIT $2";
            if sqlite {
                sqlx::query(&format!(
                    "DELETE FROM trace_fts WHERE rowid IN \
                     (SELECT rowid FROM trace_search WHERE trace_id IN ({oldest}))"
                ))
                .bind(floor)
                .bind(limit)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(&format!(
                "DELETE FROM trace_search WHERE trace_id IN ({oldest})"
            ))
            .bind(floor)
            .bind(limit)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "DELETE FROM trace_bodies WHERE trace_id IN ({oldest})"
            ))
            .bind(floor)
            .bind(limit)
            .execute(&mut *tx)
            .await?;
            let n = sqlx::query(&format!("DELETE FROM traces WHERE id IN ({oldest})"))
                .bind(floor)
                .bind(limit)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n)
    }
}

/// Optional bytes as base64 text in the spool's JSON lines.
mod b64_opt {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| STANDARD.decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}
