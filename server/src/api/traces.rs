//! `/api/v1/endpoints/{id}/traces` and `/usage`: the Traces tab's list (same filters, same
//! search, same rules) and one trace with its bodies; the Overview's 30-day totals.

use antix::Services;
use antix::domain::TraceId;
use antix::export::dollars;
use antix::store::observe::Cursor;
use antix::store::traces::{DailyTotals, TraceRow};
use app::model::TraceQuery;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiResult, ErrorBody, json, path_id, query, time, visible_endpoint};

/// The Traces tab's filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct TraceParams {
    /// `1h`, `24h`, `7d`, `30d`, `custom` (with `from`/`to`), or empty for all time.
    pub range: Option<String>,
    /// Custom range start, `YYYY-MM-DDTHH:MM` UTC.
    pub from: Option<String>,
    /// Custom range end, `YYYY-MM-DDTHH:MM` UTC.
    pub to: Option<String>,
    /// `virtual_key`, `byok` or `oauth`.
    pub auth: Option<String>,
    pub model: Option<String>,
    /// A virtual key id.
    pub key: Option<String>,
    /// `ok` or `error`.
    pub status: Option<String>,
    /// Substring searched in request and response bodies (3 characters or more).
    pub q: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// One recorded call.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TraceView {
    pub id: uuid::Uuid,
    pub started_at: String,
    /// `virtual_key`, `byok` or `oauth`.
    pub auth_mode: String,
    pub key_id: Option<uuid::Uuid>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub method: String,
    pub path: String,
    pub status_code: i64,
    /// `ok`, `rejected`, `upstream_error`, `upstream_cut`, `timeout`, `client_disconnected`
    /// or `shutdown_aborted`.
    pub outcome: String,
    pub error: Option<String>,
    pub stream: bool,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    /// Dollars, as a decimal string.
    pub cost_usd: Option<String>,
    /// The cost is an estimate (BYOK or OAuth: the provider bills the caller).
    pub cost_estimated: bool,
    pub latency_ms: f64,
    /// Time to first token, for streams.
    pub ttft_ms: Option<f64>,
    pub session: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TraceList {
    pub data: Vec<TraceView>,
    pub next_cursor: Option<String>,
}

/// One call with what was sent and received (secrets redacted when recorded).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TraceDetail {
    pub trace: TraceView,
    /// Request headers as recorded (JSON object text).
    pub request_headers: Option<String>,
    pub response_headers: Option<String>,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
    /// For streams: the response assembled from its events.
    pub response_assembled: Option<String>,
    /// The stored body was cut at the recording limit.
    pub request_truncated: bool,
    pub response_truncated: bool,
}

/// Totals of one day or of the window. Dollar amounts are decimal strings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TotalsView {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    /// Billed through virtual keys.
    pub cost_billed_usd: String,
    /// Estimated for BYOK and OAuth calls.
    pub cost_estimated_usd: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DayView {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub totals: TotalsView,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    /// The window's first day, `YYYY-MM-DD` (UTC): the last 30 days.
    pub since: String,
    pub totals: TotalsView,
    pub days: Vec<DayView>,
}

pub(super) fn trace_view(r: &TraceRow) -> TraceView {
    TraceView {
        id: r.id.0,
        started_at: time(r.started_at),
        auth_mode: r.auth_mode.clone(),
        key_id: r.virtual_key_id.map(|k| k.0),
        provider: r.provider.clone(),
        model: r.model.clone(),
        method: r.method.clone(),
        path: r.path.clone(),
        status_code: r.status_code,
        outcome: r.outcome.clone(),
        error: r.error.clone(),
        stream: r.is_stream,
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        cache_read_tokens: r.cache_read_tokens,
        cache_write_tokens: r.cache_write_tokens,
        reasoning_tokens: r.reasoning_tokens,
        cost_usd: r.cost_nanos.map(dollars),
        cost_estimated: r.cost_estimated,
        latency_ms: r.latency_us as f64 / 1000.0,
        ttft_ms: r.ttft_us.map(|t| t as f64 / 1000.0),
        session: r.session_key.clone(),
    }
}

fn totals(t: &DailyTotals) -> TotalsView {
    TotalsView {
        requests: t.requests,
        errors: t.errors,
        input_tokens: t.input_tokens,
        output_tokens: t.output_tokens,
        cache_read_tokens: t.cache_read_tokens,
        cache_write_tokens: t.cache_write_tokens,
        reasoning_tokens: t.reasoning_tokens,
        cost_billed_usd: dollars(t.cost_billed_nanos),
        cost_estimated_usd: dollars(t.cost_estimated_nanos),
    }
}

fn day(ms: i64) -> String {
    time(ms)[..10].to_owned()
}

/// List an endpoint's traces, newest first, with the Traces tab's filters and body search.
#[utoipa::path(get, path = "/api/v1/endpoints/{id}/traces", tag = "traces",
    params(("id" = uuid::Uuid, Path), TraceParams),
    responses((status = 200, body = TraceList), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn list(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<TraceParams>, QueryRejection>,
) -> ApiResult {
    let e = visible_endpoint(&s, &headers, &id).await?;
    let q = query(q)?;
    let limit = match q.limit {
        None => 50,
        Some(n @ 1..=200) => n,
        Some(_) => return Err(ApiError::invalid("limit", "Use a limit from 1 to 200.")),
    };
    let portal_query = TraceQuery {
        range: q.range.unwrap_or_default(),
        from: q.from.unwrap_or_default(),
        to: q.to.unwrap_or_default(),
        auth: q.auth.unwrap_or_default(),
        model: q.model.unwrap_or_default(),
        key: q.key.unwrap_or_default(),
        status: q.status.unwrap_or_default(),
        q: q.q.unwrap_or_default(),
        after: String::new(),
    };
    let filter = app::api::traces::filter_of(&portal_query, antix::domain::now_ms())?;
    let after = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            Cursor::decode(c)
                .ok_or_else(|| ApiError::invalid("cursor", "Use the `next_cursor` of a page."))?,
        ),
    };
    let page = s
        .store
        .list_traces(e.id, &filter, after, limit)
        .await
        .map_err(|err| ApiError::from(app::api::traces::convert::search_error(err)))?;
    Ok(json(
        StatusCode::OK,
        &TraceList {
            data: page.rows.iter().map(trace_view).collect(),
            next_cursor: page.next.map(Cursor::encode),
        },
    ))
}

/// Get one trace with its recorded headers and bodies.
#[utoipa::path(get, path = "/api/v1/endpoints/{id}/traces/{trace_id}", tag = "traces",
    params(("id" = uuid::Uuid, Path), ("trace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = TraceDetail), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(s): State<Services>,
    headers: HeaderMap,
    Path((id, trace_id)): Path<(String, String)>,
) -> ApiResult {
    let e = visible_endpoint(&s, &headers, &id).await?;
    let tid = TraceId(path_id(&trace_id)?);
    let row = s.store.trace(tid).await?.ok_or(ApiError::NotFound)?;
    // The trace must be this endpoint's: an id from elsewhere is simply not found.
    if row.endpoint_id != e.id {
        return Err(ApiError::NotFound);
    }
    let bodies = s.store.trace_bodies(tid).await?;
    let text = |b: &Option<Vec<u8>>| {
        b.as_deref()
            .and_then(|z| antix::store::compression::decompress(z, 256 << 20))
            .map(|raw| String::from_utf8_lossy(&raw).into_owned())
    };
    let detail = TraceDetail {
        trace: trace_view(&row),
        request_headers: bodies.as_ref().map(|b| b.request_headers.clone()),
        response_headers: bodies.as_ref().map(|b| b.response_headers.clone()),
        request_body: bodies.as_ref().and_then(|b| text(&b.request_body)),
        response_body: bodies.as_ref().and_then(|b| text(&b.response_body)),
        response_assembled: bodies.as_ref().and_then(|b| text(&b.response_assembled)),
        request_truncated: bodies.as_ref().is_some_and(|b| b.request_truncated),
        response_truncated: bodies.as_ref().is_some_and(|b| b.response_truncated),
    };
    Ok(json(StatusCode::OK, &detail))
}

/// An endpoint's usage over the last 30 days: totals and one entry per day (from the daily
/// totals, kept whatever the trace retention).
#[utoipa::path(get, path = "/api/v1/endpoints/{id}/usage", tag = "traces",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Usage), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn usage(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let e = visible_endpoint(&s, &headers, &id).await?;
    let o = antix::overview::overview(&s.store, e.id, antix::domain::now_ms()).await?;
    Ok(json(
        StatusCode::OK,
        &Usage {
            since: day(o.since),
            totals: totals(&o.totals),
            days: o
                .days
                .iter()
                .map(|(d, t)| DayView {
                    day: day(*d),
                    totals: totals(t),
                })
                .collect(),
        },
    ))
}
