//! `/api/v1/credentials`: the organization's provider credentials: list (never the key), set
//! or replace by name, turn off and on, delete, test.

use antix::Services;
use antix::domain::{CredentialId, Provider};
use antix::manage::credentials::{self as ops, CredentialSpec};
use antix::store::credentials::StoredCredential;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    ApiError, ApiResult, ErrorBody, PageQuery, authenticate, create_once, json, json_body, page_of,
    path_id, query, time,
};

/// A provider credential: its last four characters, never the key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialView {
    pub id: uuid::Uuid,
    /// `openai`, `anthropic` or `gemini`.
    pub provider: String,
    pub name: String,
    pub last4: String,
    /// An OpenAI-compatible server's base URL; `null`: the provider's own.
    pub base_url: Option<String>,
    /// Share of the provider's calls (0: only when the others fail).
    pub weight: i64,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub enabled: bool,
    pub updated_by: uuid::Uuid,
    pub updated_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialList {
    pub data: Vec<CredentialView>,
    pub next_cursor: Option<String>,
}

/// A credential to set. Setting a provider's existing name replaces that credential (its id,
/// health and history stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialRequest {
    /// `openai`, `anthropic` or `gemini`.
    pub provider: String,
    /// Default `default`.
    #[serde(default)]
    pub name: Option<String>,
    /// The provider's API key. Write-only: it is never sent back.
    pub api_key: String,
    /// OpenAI-compatible servers only.
    #[serde(default)]
    pub base_url: Option<String>,
    /// 0 to 1000, default 1.
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub rpm: Option<i64>,
    #[serde(default)]
    pub tpm: Option<i64>,
    /// Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A change to a credential (only whether it is used; set it again to change the rest).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialPatch {
    pub enabled: bool,
}

/// What testing a credential found.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestView {
    pub ok: bool,
    /// The provider's HTTP status, when it answered.
    pub status: Option<u16>,
    pub message: String,
    pub latency_ms: u64,
}

fn view(c: &StoredCredential) -> CredentialView {
    CredentialView {
        id: c.id.0,
        provider: c.provider.clone(),
        name: c.name.clone(),
        last4: c.last4.clone(),
        base_url: c.base_url.clone(),
        weight: c.weight,
        rpm: c.rpm,
        tpm: c.tpm,
        enabled: c.enabled,
        updated_by: c.updated_by.0,
        updated_at: time(c.updated_at),
    }
}

/// List the organization's provider credentials.
#[utoipa::path(get, path = "/api/v1/credentials", tag = "credentials", params(PageQuery),
    responses((status = 200, body = CredentialList), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list(
    State(s): State<Services>,
    headers: HeaderMap,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let actor = authenticate(&s, &headers).await?;
    let q = query(q)?;
    let all = ops::list(&s.store, &actor).await?;
    let (page, next_cursor) = page_of(all, &q, |c| c.id.0)?;
    let data = page.iter().map(view).collect();
    Ok(json(StatusCode::OK, &CredentialList { data, next_cursor }))
}

/// Set a provider credential (admins): adds it, or replaces the provider's one of that name.
#[utoipa::path(post, path = "/api/v1/credentials", tag = "credentials",
    request_body = CredentialRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer to a retry")),
    responses((status = 200, body = CredentialView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn set(State(s): State<Services>, headers: HeaderMap, body: Bytes) -> Response {
    let s = &s;
    create_once(
        s,
        &headers,
        "POST /credentials",
        &body,
        |actor, req: CredentialRequest| async move {
            let provider = Provider::parse(&req.provider)
                .ok_or_else(|| ApiError::invalid("provider", "Use openai, anthropic or gemini."))?;
            let spec = CredentialSpec {
                provider,
                name: req.name.unwrap_or_else(|| "default".into()),
                api_key: req.api_key.into(),
                base_url: req.base_url,
                weight: req.weight.unwrap_or(1),
                rpm: req.rpm,
                tpm: req.tpm,
                enabled: req.enabled.unwrap_or(true),
            };
            let c = ops::set(&s.store, &s.keys, &s.settings, &actor, &spec).await?;
            Ok((
                StatusCode::OK,
                serde_json::to_value(view(&c)).unwrap_or_default(),
            ))
        },
    )
    .await
}

async fn find(
    s: &Services,
    headers: &HeaderMap,
    id: &str,
) -> ApiResult<(antix::manage::Actor, StoredCredential)> {
    let actor = authenticate(s, headers).await?;
    let c = ops::find(&s.store, &actor, CredentialId(path_id(id)?)).await?;
    Ok((actor, c))
}

/// Get one provider credential.
#[utoipa::path(get, path = "/api/v1/credentials/{id}", tag = "credentials",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = CredentialView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let (_, c) = find(&s, &headers, &id).await?;
    Ok(json(StatusCode::OK, &view(&c)))
}

/// Turn a credential off (kept, never used) or back on (admins).
#[utoipa::path(patch, path = "/api/v1/credentials/{id}", tag = "credentials",
    params(("id" = uuid::Uuid, Path)), request_body = CredentialPatch,
    responses((status = 200, body = CredentialView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let (actor, c) = find(&s, &headers, &id).await?;
    let req: CredentialPatch = json_body(&headers, &body)?;
    let c = ops::set_enabled(&s.store, &actor, c.id, req.enabled).await?;
    Ok(json(StatusCode::OK, &view(&c)))
}

/// Delete a credential (admins).
#[utoipa::path(delete, path = "/api/v1/credentials/{id}", tag = "credentials",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let (actor, c) = find(&s, &headers, &id).await?;
    ops::delete(&s.store, &actor, c.id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Test a credential (admins): the provider's cheapest authenticated call (its model list).
#[utoipa::path(post, path = "/api/v1/credentials/{id}/test", tag = "credentials",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = TestView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn test(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let (actor, c) = find(&s, &headers, &id).await?;
    let t = ops::test(&s.store, &s.keys, &s.settings, &actor, c.id).await?;
    Ok(json(
        StatusCode::OK,
        &TestView {
            ok: t.ok,
            status: t.status,
            message: t.message,
            latency_ms: t.latency_ms,
        },
    ))
}
