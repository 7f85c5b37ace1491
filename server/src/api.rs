//! The management REST API under `/api/v1`: a thin adapter over [`antix::manage`] (the same
//! operations and rules as the portal) for scripts and infrastructure-as-code.
//!
//! Authenticated by organization API tokens (`Authorization: Bearer antix_api_…`), never by the
//! portal's cookie, so it is outside the portal's CSRF guard and no browser can be tricked into
//! calling it. Every error has one JSON shape (`{"error": {"type", "message", "fields"?}}`),
//! lists are cursor-paginated (`limit`, `cursor` → `next_cursor`), creates honour
//! `Idempotency-Key`, and the OpenAPI 3.1 document is generated from these handlers
//! (`/api/v1/openapi.json`, read at `/api/v1/docs`).

use antix::Services;
use antix::manage::{Actor, ManageError};
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

mod credentials;
mod endpoints;
mod keys;
mod members;
mod sessions;
mod traces;

/// The largest request body the API reads (its inputs are small JSON objects).
pub const MAX_BODY: usize = 64 * 1024;

pub fn router(services: Services) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/docs", get(docs))
        .route(
            "/api/v1/endpoints",
            get(endpoints::list).post(endpoints::create),
        )
        .route(
            "/api/v1/endpoints/{id}",
            get(endpoints::get_one).patch(endpoints::rename),
        )
        .route(
            "/api/v1/endpoints/{id}/duplicate",
            post(endpoints::duplicate),
        )
        .route("/api/v1/endpoints/{id}/archive", post(endpoints::archive))
        .route("/api/v1/endpoints/{id}/usage", get(traces::usage))
        .route("/api/v1/endpoints/{id}/traces", get(traces::list))
        .route(
            "/api/v1/endpoints/{id}/traces/{trace_id}",
            get(traces::get_one),
        )
        .route("/api/v1/endpoints/{id}/sessions", get(sessions::list))
        .route(
            "/api/v1/endpoints/{id}/sessions/{key}",
            get(sessions::get_one),
        )
        .route("/api/v1/keys", get(keys::list).post(keys::create))
        .route(
            "/api/v1/keys/{id}",
            get(keys::get_one).patch(keys::update).delete(keys::revoke),
        )
        .route(
            "/api/v1/credentials",
            get(credentials::list).post(credentials::set),
        )
        .route(
            "/api/v1/credentials/{id}",
            get(credentials::get_one)
                .patch(credentials::update)
                .delete(credentials::delete),
        )
        .route("/api/v1/credentials/{id}/test", post(credentials::test))
        .route("/api/v1/members", get(members::list))
        .route(
            "/api/v1/members/{id}",
            get(members::get_one)
                .patch(members::set_role)
                .delete(members::remove),
        )
        .route(
            "/api/v1/invitations",
            get(members::invitations).post(members::invite),
        )
        .route(
            "/api/v1/invitations/{id}",
            axum::routing::delete(members::revoke_invitation),
        )
        // Anything else under the API is a JSON 404, not the portal's page.
        .route("/api/v1", any(not_found))
        .route("/api/v1/{*rest}", any(not_found))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY))
        .with_state(services)
}

async fn not_found() -> Response {
    ApiError::NotFound.into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Antix management API",
        description = "Endpoints, virtual keys, provider credentials, members, traces, sessions and usage of one organization. \
            Authenticate with an organization API token (`Authorization: Bearer antix_api_…`), \
            issued by an admin on the portal's Members page; a read-only token may only read.",
        version = "1"
    ),
    paths(
        endpoints::list, endpoints::create, endpoints::get_one, endpoints::rename,
        endpoints::duplicate, endpoints::archive,
        keys::list, keys::create, keys::get_one, keys::update, keys::revoke,
        credentials::list, credentials::set, credentials::get_one, credentials::update,
        credentials::delete, credentials::test,
        members::list, members::get_one, members::set_role, members::remove,
        members::invitations, members::invite, members::revoke_invitation,
        traces::list, traces::get_one, traces::usage, sessions::list, sessions::get_one,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "endpoints", description = "The stable URLs SDKs use as their base URL."),
        (name = "keys", description = "Virtual keys, billed to the organization under their limits."),
        (name = "credentials", description = "The organization's provider keys (write-only), used for virtual-key calls."),
        (name = "members", description = "Who belongs to the organization, their roles, and invitations."),
        (name = "traces", description = "Recorded calls, agent sessions and usage totals."),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

async fn openapi_json() -> Response {
    let doc = ApiDoc::openapi().to_json().unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc,
    )
        .into_response()
}

/// A readable page of the API, rendered from the same OpenAPI document (no script, no outside
/// assets: it works offline and under the portal's content policy).
async fn docs() -> Response {
    let doc = ApiDoc::openapi();
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut html = String::from(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Antix API</title>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1c1917}\
         code,pre{font:13px ui-monospace,monospace;background:#f5f5f4;padding:.1rem .3rem;border-radius:4px}\
         h2{margin-top:2rem;border-bottom:1px solid #e7e5e4}.op{margin:1rem 0}.m{font-weight:700;text-transform:uppercase;margin-right:.5rem}</style>\
         </head><body>",
    );
    html.push_str(&format!("<h1>{}</h1>", esc(&doc.info.title)));
    if let Some(d) = &doc.info.description {
        html.push_str(&format!("<p>{}</p>", esc(d)));
    }
    html.push_str(
        "<p>Errors: <code>{\"error\": {\"type\", \"message\", \"fields\"?}}</code>. Lists: \
         <code>?limit=</code> (1–200) and <code>?cursor=</code> from the last page's \
         <code>next_cursor</code>. Creates accept an <code>Idempotency-Key</code> header: a retry \
         with the same key and body within a day gets the first answer again. \
         <a href=\"/api/v1/openapi.json\">OpenAPI 3.1 document</a>.</p>",
    );
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("get", &item.get),
            ("post", &item.post),
            ("patch", &item.patch),
            ("delete", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            html.push_str(&format!(
                "<div class=op><h2><span class=m>{method}</span><code>{}</code></h2>",
                esc(path)
            ));
            if let Some(s) = &op.summary {
                html.push_str(&format!("<p><b>{}</b></p>", esc(s)));
            }
            if let Some(d) = &op.description {
                html.push_str(&format!("<p>{}</p>", esc(d)));
            }
            if let Some(params) = &op.parameters
                && !params.is_empty()
            {
                html.push_str("<ul>");
                for p in params {
                    html.push_str(&format!(
                        "<li><code>{}</code> {}</li>",
                        esc(&p.name),
                        esc(p.description.as_deref().unwrap_or(""))
                    ));
                }
                html.push_str("</ul>");
            }
            let codes: Vec<&str> = op.responses.responses.keys().map(String::as_str).collect();
            html.push_str(&format!(
                "<p>Responses: {}</p></div>",
                esc(&codes.join(", "))
            ));
        }
    }
    html.push_str("</body></html>");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
            ),
        ],
        html,
    )
        .into_response()
}

/// The API's one error shape.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable kind: `unauthenticated`, `forbidden`, `not_found`,
    /// `invalid_request`, `conflict`, `rate_limited`, `unavailable` or `internal`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    /// For `invalid_request`: what is wrong with each input field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldMessage>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FieldMessage {
    pub field: String,
    pub message: String,
}

#[derive(Debug)]
pub enum ApiError {
    Unauthenticated,
    Forbidden(String),
    NotFound,
    Invalid(Vec<FieldMessage>),
    Conflict(String),
    RateLimited(String),
    Unavailable,
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldMessage {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Send an organization API token: `Authorization: Bearer antix_api_…`.".into(),
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone()),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found.".into()),
            ApiError::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "Some fields are invalid.".into(),
            ),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone()),
            ApiError::RateLimited(m) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", m.clone()),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The database is unavailable. Try again in a moment.".into(),
            ),
            ApiError::Internal(reference) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("Something went wrong on our side (reference {reference})."),
            ),
        }
    }

    fn body(self) -> (StatusCode, ErrorBody) {
        let (status, kind, message) = self.parts();
        let fields = match self {
            ApiError::Invalid(f) => f,
            _ => Vec::new(),
        };
        (
            status,
            ErrorBody {
                error: ErrorDetail {
                    kind: kind.into(),
                    message,
                    fields,
                },
            },
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = matches!(self, ApiError::RateLimited(_) | ApiError::Unavailable);
        let unauthenticated = matches!(self, ApiError::Unauthenticated);
        let (status, body) = self.body();
        let mut res = (status, axum::Json(body)).into_response();
        if retry {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if unauthenticated {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"antix\""),
            );
        }
        res
    }
}

fn internal(detail: impl std::fmt::Display) -> ApiError {
    let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    tracing::error!(reference = %reference, error = %detail, "API request failed");
    ApiError::Internal(reference)
}

impl From<antix::store::StoreError> for ApiError {
    fn from(e: antix::store::StoreError) -> Self {
        match e {
            antix::store::StoreError::Unavailable(_) => ApiError::Unavailable,
            antix::store::StoreError::NotFound => ApiError::NotFound,
            other => internal(other),
        }
    }
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::NotFound => ApiError::NotFound,
            ManageError::Forbidden(m) => ApiError::Forbidden(m),
            ManageError::Conflict(m) => ApiError::Conflict(m),
            ManageError::Invalid(fields) => ApiError::Invalid(
                fields
                    .into_iter()
                    .map(|f| FieldMessage {
                        field: f.field.to_owned(),
                        message: f.message,
                    })
                    .collect(),
            ),
            ManageError::Store(s) => s.into(),
        }
    }
}

/// The portal's errors (the trace filters are read by the portal's own code).
impl From<app::api::ApiError> for ApiError {
    fn from(e: app::api::ApiError) -> Self {
        use app::api::ApiError as P;
        match e {
            P::Unauthenticated => ApiError::Unauthenticated,
            P::Forbidden(m) => ApiError::Forbidden(m),
            P::NotFound => ApiError::NotFound,
            P::Invalid(fields) => ApiError::Invalid(
                fields
                    .into_iter()
                    .map(|f| FieldMessage {
                        field: f.field,
                        message: f.message,
                    })
                    .collect(),
            ),
            P::Conflict(m) => ApiError::Conflict(m),
            P::Throttled(_) | P::Overloaded(_) => {
                ApiError::RateLimited("Too many heavy requests at once. Try again.".into())
            }
            P::Unavailable => ApiError::Unavailable,
            P::Internal(r) => ApiError::Internal(r),
            P::Request(m) => ApiError::invalid("request", m),
        }
    }
}

pub type ApiResult<T = Response> = Result<T, ApiError>;

/// The actor the request's bearer token stands for. Only the `Authorization` header counts:
/// no cookie, no query parameter (a token in a URL ends up in logs).
pub async fn authenticate(s: &Services, headers: &HeaderMap) -> ApiResult<Actor> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .ok_or(ApiError::Unauthenticated)?;
    antix::manage::tokens::authenticate(&s.store, &s.keys, &bearer)
        .await?
        .ok_or(ApiError::Unauthenticated)
}

/// The endpoint a path's `{id}` names, when the request's token may see it (else not found).
pub async fn visible_endpoint(
    s: &Services,
    headers: &HeaderMap,
    id: &str,
) -> ApiResult<antix::domain::Endpoint> {
    let actor = authenticate(s, headers).await?;
    let id = antix::domain::EndpointId(path_id(id)?);
    let (e, _) = antix::manage::endpoints::find(&s.store, &actor, id).await?;
    Ok(e)
}

/// Reads a JSON body into `T`, or says what is wrong with it in the API's error shape.
pub fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<T> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| {
            let v = v.to_ascii_lowercase();
            v.starts_with("application/json") || v.contains("+json")
        });
    if !is_json {
        return Err(ApiError::invalid(
            "body",
            "Send a JSON body (Content-Type: application/json).",
        ));
    }
    let body: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(body).map_err(|e| ApiError::invalid("body", format!("{e}")))
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    (status, axum::Json(value)).into_response()
}

/// A query string read into `T`, or what is wrong with it in the API's error shape.
pub fn query<T>(
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<T> {
    q.map(|q| q.0)
        .map_err(|e| ApiError::invalid("query", e.body_text()))
}

/// A path id, or not found (an id that is not a UUID names nothing).
pub fn path_id(raw: &str) -> ApiResult<uuid::Uuid> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// Query parameters of a list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct PageQuery {
    /// Items per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// Where to continue: the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> ApiResult<usize> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=200) => Ok(n as usize),
            Some(_) => Err(ApiError::invalid("limit", "Use a limit from 1 to 200.")),
        }
    }
}

/// One page of an in-memory list ordered by a stable id: items after the cursor's id.
pub fn page_of<T>(
    items: Vec<T>,
    q: &PageQuery,
    id: impl Fn(&T) -> uuid::Uuid,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let limit = q.limit()?;
    let start = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => {
            let after: uuid::Uuid = c
                .parse()
                .map_err(|_| ApiError::invalid("cursor", "Use the `next_cursor` of a page."))?;
            items
                .iter()
                .position(|t| id(t) == after)
                .map(|i| i + 1)
                .ok_or_else(|| {
                    ApiError::invalid("cursor", "This cursor names nothing in the list any more.")
                })?
        }
    };
    let rest: Vec<T> = items.into_iter().skip(start).collect();
    let more = rest.len() > limit;
    let page: Vec<T> = rest.into_iter().take(limit).collect();
    let next = if more {
        page.last().map(|t| id(t).to_string())
    } else {
        None
    };
    Ok((page, next))
}

/// Milliseconds as RFC 3339 UTC.
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A create: authenticates, reads the JSON body into `T`, and runs `make` once per
/// `Idempotency-Key` (see [`idempotent`]).
pub async fn create_once<T, F, Fut>(
    s: &Services,
    headers: &HeaderMap,
    route: &str,
    body: &Bytes,
    make: F,
) -> Response
where
    T: serde::de::DeserializeOwned,
    F: FnOnce(Actor, T) -> Fut,
    Fut: Future<Output = ApiResult<(StatusCode, serde_json::Value)>>,
{
    let actor = match authenticate(s, headers).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let req = match json_body::<T>(headers, body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let acting = actor.clone();
    idempotent(s, &actor, headers, route, body, move || make(acting, req)).await
}

/// Runs a create once per `Idempotency-Key`: a retry with the same key and body (within a day)
/// gets the first answer again, marked `Idempotent-Replayed: true`; the same key with another
/// body is refused; a failed create frees its key. The kept answer is encrypted (a key's
/// secret is in it).
pub async fn idempotent<F, Fut>(
    s: &Services,
    actor: &Actor,
    headers: &HeaderMap,
    route: &str,
    body: &Bytes,
    create: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<(StatusCode, serde_json::Value)>>,
{
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_owned));
    let (Some(token), Some(key)) = (actor.token.as_ref(), key) else {
        return match create().await {
            Ok((status, v)) => json(status, &v),
            Err(e) => e.into_response(),
        };
    };
    let key = match key {
        Ok(k) if !k.is_empty() && k.len() <= 255 => k,
        _ => {
            return ApiError::invalid(
                "Idempotency-Key",
                "Use a printable key of 1 to 255 characters.",
            )
            .into_response();
        }
    };
    let request_hash = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(route.as_bytes());
        h.update([0]);
        h.update(body);
        h.finalize().to_vec()
    };
    let aad = format!("idempotency:{}:{key}", token.id);
    let now = antix::domain::now_ms();
    use antix::store::api_tokens::Idempotent;
    match s
        .store
        .reserve_idempotency_key(token.id, &key, &request_hash, now)
        .await
    {
        Err(e) => ApiError::from(e).into_response(),
        Ok(Idempotent::InProgress) => ApiError::Conflict(
            "A request with this Idempotency-Key is still running. Retry in a moment.".into(),
        )
        .into_response(),
        Ok(Idempotent::Mismatch) => ApiError::invalid(
            "Idempotency-Key",
            "This key was used for a different request. Use a new key for a new request.",
        )
        .into_response(),
        Ok(Idempotent::Replay { status, response }) => {
            use base64::Engine;
            let plain = base64::engine::general_purpose::STANDARD
                .decode(&response)
                .ok()
                .and_then(|blob| s.keys.decrypt(&blob, aad.as_bytes()).ok());
            match plain {
                Some(bytes) => {
                    let mut res = (
                        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                        [(header::CONTENT_TYPE, "application/json")],
                        bytes,
                    )
                        .into_response();
                    res.headers_mut()
                        .insert("idempotent-replayed", HeaderValue::from_static("true"));
                    res
                }
                None => ApiError::Conflict(
                    "The first answer to this Idempotency-Key can no longer be read. Use a new key."
                        .into(),
                )
                .into_response(),
            }
        }
        Ok(Idempotent::Reserved) => match create().await {
            Ok((status, v)) => {
                use base64::Engine;
                let bytes = serde_json::to_vec(&v).unwrap_or_default();
                let sealed = base64::engine::general_purpose::STANDARD
                    .encode(s.keys.encrypt(&bytes, aad.as_bytes()));
                if let Err(e) = s
                    .store
                    .complete_idempotency_key(token.id, &key, status.as_u16(), &sealed)
                    .await
                {
                    tracing::warn!(error = %e, "could not keep an idempotent answer");
                }
                json(status, &v)
            }
            Err(e) => {
                if let Err(err) = s.store.release_idempotency_key(token.id, &key).await {
                    tracing::warn!(error = %err, "could not free an idempotency key");
                }
                e.into_response()
            }
        },
    }
}
