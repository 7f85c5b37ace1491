//! `/api/v1/endpoints/{id}/sessions`: multi-turn agent sessions (the Activity tab), most
//! recently active first, and one session's calls in time order.

use antix::Services;

use antix::manage::sessions as ops;
use antix::store::observe::{SessionCursor, SessionRow};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::traces::{TraceView, trace_view};
use super::{ApiError, ApiResult, ErrorBody, PageQuery, json, query, time, visible_endpoint};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct SessionParams {
    /// Case-insensitive substring of the session's first prompt.
    pub q: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A session: calls that share a session key (Claude Code's session id, an
/// `X-Antix-Session` header, or a conversation's fingerprint).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub key: String,
    /// The parent session's key, for sub-agents.
    pub parent: Option<String>,
    pub first_at: String,
    pub last_end_at: String,
    pub calls: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Dollars, as a decimal string.
    pub cost_usd: String,
    /// The start of the first prompt.
    pub preview: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    pub data: Vec<SessionView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionDetail {
    pub session: SessionView,
    /// Its calls in time order (the first 2,000).
    pub calls: Vec<TraceView>,
    /// The session has more calls than `calls` holds.
    pub truncated: bool,
    /// Sessions with the same parent (an agent's sub-agents), in start order.
    pub related: Vec<SessionView>,
}

fn session_view(r: &SessionRow) -> SessionView {
    SessionView {
        key: r.session_key.clone(),
        parent: r.parent.clone(),
        first_at: time(r.first_at),
        last_end_at: time(r.last_end_at),
        calls: r.calls,
        errors: r.errors,
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        cost_usd: antix::export::dollars(r.cost_nanos),
        preview: r.preview.clone(),
    }
}

/// List an endpoint's sessions, most recently active first.
#[utoipa::path(get, path = "/api/v1/endpoints/{id}/sessions", tag = "traces",
    params(("id" = uuid::Uuid, Path), SessionParams),
    responses((status = 200, body = SessionList), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<SessionParams>, QueryRejection>,
) -> ApiResult {
    let e = visible_endpoint(&s, &headers, &id).await?;
    let q = query(q)?;
    let limit = PageQuery {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    let after = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            SessionCursor::decode(c)
                .ok_or_else(|| ApiError::invalid("cursor", "Use the `next_cursor` of a page."))?,
        ),
    };
    let page = ops::list(
        &s.store,
        e.id,
        q.q.as_deref().unwrap_or(""),
        after.as_ref(),
        limit,
    )
    .await?;
    Ok(json(
        StatusCode::OK,
        &SessionList {
            data: page.sessions.iter().map(session_view).collect(),
            next_cursor: page.next.map(|c| c.encode()),
        },
    ))
}

/// Get one session (its key percent-encoded in the path) with its calls.
#[utoipa::path(get, path = "/api/v1/endpoints/{id}/sessions/{key}", tag = "traces",
    params(("id" = uuid::Uuid, Path), ("key" = String, Path, description = "The session key")),
    responses((status = 200, body = SessionDetail), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(s): State<Services>,
    headers: HeaderMap,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult {
    let e = visible_endpoint(&s, &headers, &id).await?;
    let found = ops::get(&s.store, e.id, Some(&key), "").await?;
    Ok(json(
        StatusCode::OK,
        &SessionDetail {
            session: session_view(&found.session),
            calls: found.calls.iter().map(trace_view).collect(),
            truncated: found.truncated,
            related: found.related.iter().map(session_view).collect(),
        },
    ))
}
