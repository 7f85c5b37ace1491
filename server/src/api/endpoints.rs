//! `/api/v1/endpoints`: list, create, get, rename, duplicate, archive.

use antix::Services;
use antix::domain::{Endpoint, EndpointId, Scope};
use antix::manage::endpoints as ops;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    ApiError, ApiResult, ErrorBody, PageQuery, authenticate, create_once, idempotent, json,
    json_body, page_of, path_id, query, time,
};

/// An endpoint: the base URLs to paste into an SDK, and who owns it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EndpointView {
    pub id: uuid::Uuid,
    pub name: String,
    /// `personal` (its owner only) or `org_shared` (every member).
    pub scope: String,
    pub owner_id: uuid::Uuid,
    pub created_at: String,
    /// When it was archived (the proxy answers 410 Gone since); `null` while active.
    pub archived_at: Option<String>,
    /// Whether callers' own provider keys and OAuth tokens pass through (else virtual keys
    /// only).
    pub passthrough: bool,
    /// Fallback targets, `provider/model[#credential]`, tried in order.
    pub fallbacks: Vec<String>,
    pub urls: EndpointUrls,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EndpointUrls {
    pub openai: String,
    pub anthropic: String,
    pub gemini: String,
    pub multi: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EndpointList {
    pub data: Vec<EndpointView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// 1 to 80 characters.
    pub name: String,
    /// `org_shared` (default) or `personal` (owned by the token's creator).
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameEndpoint {
    /// 1 to 80 characters.
    pub name: String,
}

pub fn view(s: &Services, e: &Endpoint) -> EndpointView {
    let base = format!("{}/v1/{}", s.settings.public_base(), e.id);
    EndpointView {
        id: e.id.0,
        name: e.name.clone(),
        scope: e.scope.as_str().to_owned(),
        owner_id: e.owner_id.0,
        created_at: time(e.created_at),
        archived_at: e.archived_at.map(time),
        passthrough: e.passthrough,
        fallbacks: e.fallbacks.iter().map(ToString::to_string).collect(),
        urls: EndpointUrls {
            openai: format!("{base}/openai"),
            anthropic: format!("{base}/anthropic"),
            gemini: format!("{base}/gemini"),
            multi: format!("{base}/multi"),
        },
    }
}

/// List the endpoints the token can see.
#[utoipa::path(get, path = "/api/v1/endpoints", tag = "endpoints", params(PageQuery),
    responses((status = 200, body = EndpointList), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list(
    State(s): State<Services>,
    headers: HeaderMap,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let actor = authenticate(&s, &headers).await?;
    let q = query(q)?;
    let mut all = ops::list(&s.store, &actor).await?;
    all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    let (page, next_cursor) = page_of(all, &q, |e| e.id.0)?;
    Ok(json(
        StatusCode::OK,
        &EndpointList {
            data: page.iter().map(|e| view(&s, e)).collect(),
            next_cursor,
        },
    ))
}

/// Create an endpoint.
#[utoipa::path(post, path = "/api/v1/endpoints", tag = "endpoints", request_body = CreateEndpoint,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer to a retry")),
    responses((status = 201, body = EndpointView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(State(s): State<Services>, headers: HeaderMap, body: Bytes) -> Response {
    let s = &s;
    create_once(
        s,
        &headers,
        "POST /endpoints",
        &body,
        |actor, input: CreateEndpoint| async move {
            let scope = input.scope.as_deref().unwrap_or(Scope::OrgShared.as_str());
            let e = ops::create(&s.store, &actor, actor.org(), scope, &input.name).await?;
            Ok((
                StatusCode::CREATED,
                serde_json::to_value(view(s, &e)).unwrap_or_default(),
            ))
        },
    )
    .await
}

/// Get one endpoint.
#[utoipa::path(get, path = "/api/v1/endpoints/{id}", tag = "endpoints",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = EndpointView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let actor = authenticate(&s, &headers).await?;
    let (e, _) = ops::find(&s.store, &actor, EndpointId(path_id(&id)?)).await?;
    Ok(json(StatusCode::OK, &view(&s, &e)))
}

/// Rename an endpoint (its URL stays).
#[utoipa::path(patch, path = "/api/v1/endpoints/{id}", tag = "endpoints",
    params(("id" = uuid::Uuid, Path)), request_body = RenameEndpoint,
    responses((status = 200, body = EndpointView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rename(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let actor = authenticate(&s, &headers).await?;
    let id = EndpointId(path_id(&id)?);
    let input: RenameEndpoint = json_body(&headers, &body)?;
    let e = ops::rename(&s.store, &actor, id, &input.name).await?;
    Ok(json(StatusCode::OK, &view(&s, &e)))
}

/// Copy a personal endpoint into a new org-shared one (a new URL; the original stays).
#[utoipa::path(post, path = "/api/v1/endpoints/{id}/duplicate", tag = "endpoints",
    params(("id" = uuid::Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer to a retry")),
    responses((status = 201, body = EndpointView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn duplicate(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let actor = match authenticate(&s, &headers).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let Ok(uuid) = path_id(&id) else {
        return ApiError::NotFound.into_response();
    };
    let route = format!("POST /endpoints/{uuid}/duplicate");
    idempotent(&s, &actor, &headers, &route, &body, || async {
        let e = ops::duplicate(&s.store, &actor, EndpointId(uuid)).await?;
        Ok((
            StatusCode::CREATED,
            serde_json::to_value(view(&s, &e)).unwrap_or_default(),
        ))
    })
    .await
}

/// Archive an endpoint: irreversible; calls to its URL get 410 Gone from then on.
#[utoipa::path(post, path = "/api/v1/endpoints/{id}/archive", tag = "endpoints",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = EndpointView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn archive(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let actor = authenticate(&s, &headers).await?;
    let e = ops::archive(&s.store, &actor, EndpointId(path_id(&id)?), None).await?;
    Ok(json(StatusCode::OK, &view(&s, &e)))
}
