//! `GET /endpoints/{id}/export?format=csv|jsonl&…`: the Traces tab's current view as a file.
//! The filters are the tab's own URL query (same names, same meaning, same checks); the body is
//! streamed page by page, so an export of a million traces holds one page in memory.
//!
//! A portal route (the session cookie signs it in, the endpoint must be visible to the user),
//! outside the server functions because its answer is a download, not JSON. A GET that changes
//! nothing: a cross-site link can start a download to the victim's own disk, never read it.

use antix::Services;
use antix::domain::EndpointId;
use antix::export::{self, Format};
use app::api::ApiError;
use app::model::TraceQuery;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExportQuery {
    pub format: String,
    #[serde(flatten)]
    pub filters: TraceQuery,
}

pub async fn export(
    State(services): State<Services>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
    headers: HeaderMap,
) -> Response {
    match start(&services, &id, q, &headers).await {
        Ok(res) => res,
        Err(e) => refuse(&e),
    }
}

async fn start(
    s: &Services,
    id: &str,
    q: ExportQuery,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let format = Format::parse(&q.format)
        .ok_or_else(|| ApiError::invalid("format", "Choose csv or jsonl."))?;
    let token = session_token(s, headers).ok_or(ApiError::Unauthenticated)?;
    let user = antix::accounts::session_user(&s.store, &s.keys, &token)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let id = id.parse::<Uuid>().map_err(|_| ApiError::NotFound)?;
    let (endpoint, membership) = antix::access::visible_endpoint(&s.store, &user, EndpointId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let filter = app::api::traces::filter_of(&q.filters, antix::domain::now_ms())?;
    let keys = s
        .store
        .list_virtual_keys(membership.org.id)
        .await?
        .into_iter()
        .map(|k| (k.id, k.name))
        .collect();
    let mut body = Box::pin(export::stream(
        s.store.clone(),
        endpoint.id,
        filter,
        keys,
        format,
    ));
    // The first page decides the status: a search that is refused or too slow is a clear
    // error, not a 200 with an empty file.
    let first = match body.next().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => return Err(app::api::traces::convert::search_error(e)),
        None => bytes::Bytes::new(),
    };
    let rest = body.map(|chunk| {
        chunk.map_err(|e| {
            tracing::warn!(error = %e, "trace export cut short");
            std::io::Error::other(e.to_string())
        })
    });
    let stream = futures_util::stream::once(async move { Ok(first) }).chain(rest);
    let filename = format!(
        "antix-traces-{}-{}.{}",
        &endpoint.id.to_string()[..8],
        chrono::Utc::now().format("%Y%m%d-%H%M"),
        format.extension()
    );
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

fn session_token(s: &Services, headers: &HeaderMap) -> Option<String> {
    let name = if s.settings.secure_cookies() {
        app::api::ssr::SESSION_COOKIE_SECURE
    } else {
        app::api::ssr::SESSION_COOKIE
    };
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The error as plain text with its status (a download link has no page to show JSON in).
fn refuse(e: &ApiError) -> Response {
    let text = match e {
        ApiError::Invalid(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    };
    (e.status(), format!("{text}\n")).into_response()
}
