//! `/api/v1/keys`: virtual keys: list with spend, issue (the secret shown once), change limits,
//! revoke.

use antix::Services;
use antix::domain::{EndpointId, KeyLimits, VirtualKey, VirtualKeyId};
use antix::export::dollars;
use antix::manage::keys::{self as ops, KeyInput};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::ExposeSecret;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::{
    ApiError, ApiResult, ErrorBody, FieldMessage, PageQuery, authenticate, create_once, json,
    json_body, page_of, path_id, query, time,
};

/// A virtual key (never its secret) with its limits and what it has spent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    pub id: uuid::Uuid,
    pub name: String,
    /// The key's recognisable start and end, e.g. `sk-vk-Ab3d…x9Yz`.
    pub display: String,
    pub created_by: uuid::Uuid,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
    pub limits: LimitsView,
    pub spend: SpendView,
}

/// Limits; `null` means none. Dollar amounts are decimal strings (exact, no float rounding).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LimitsView {
    pub budget_daily_usd: Option<String>,
    pub budget_monthly_usd: Option<String>,
    pub budget_total_usd: Option<String>,
    /// Requests per minute.
    pub rpm: Option<i64>,
    /// Tokens per minute.
    pub tpm: Option<i64>,
    /// Model patterns (`*` wildcard) the key may call; empty: any.
    pub allowed_models: Vec<String>,
    /// Endpoints the key may call; empty: any of the organization's.
    pub allowed_endpoints: Vec<uuid::Uuid>,
    /// May call APIs Antix cannot meter although it has a budget or model list.
    pub allow_unmetered: bool,
}

/// Spend in the current UTC day and month, and in all, in dollars.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SpendView {
    pub day_usd: String,
    pub month_usd: String,
    pub total_usd: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub data: Vec<KeyView>,
    pub next_cursor: Option<String>,
}

/// A newly issued key: `secret` is shown this once and never again.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    pub key: KeyView,
    pub secret: String,
}

/// A key's settings. On create, a missing field means none; on update, a missing field keeps
/// its value and `null` clears it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// 1 to 80 characters (required on create).
    #[serde(default)]
    pub name: Option<String>,
    /// RFC 3339 instant the key stops working, e.g. `2027-01-31T23:59:59Z`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Option<String>>,
    /// Dollars, as a decimal string (`"25"`, `"0.50"`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub budget_daily_usd: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub budget_monthly_usd: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub budget_total_usd: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub rpm: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub tpm: Option<Option<i64>>,
    #[serde(default)]
    pub allowed_models: Option<Vec<String>>,
    #[serde(default)]
    pub allowed_endpoints: Option<Vec<uuid::Uuid>>,
    #[serde(default)]
    pub allow_unmetered: Option<bool>,
}

/// A field that is present: `Some(value)`, `Some(None)` for `null` (absent stays `None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl KeyRequest {
    /// The settings this request asks for, starting from `base` (the key's current ones, or
    /// none on create), or every unreadable field.
    fn apply(self, base: KeyInput) -> ApiResult<KeyInput> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: String| {
            errors.push(FieldMessage {
                field: field.into(),
                message,
            })
        };
        let mut out = base;
        if let Some(name) = self.name {
            out.name = name;
        }
        if let Some(exp) = self.expires_at {
            out.expires_at = match exp {
                None => None,
                Some(t) => match chrono::DateTime::parse_from_rfc3339(t.trim()) {
                    Ok(t) => Some(t.timestamp_millis()),
                    Err(_) => {
                        bad(
                            "expires_at",
                            "Use an RFC 3339 time, like 2027-01-31T23:59:59Z.".into(),
                        );
                        out.expires_at
                    }
                },
            };
        }
        let l = &mut out.limits;
        for (field, value, slot) in [
            (
                "budget_daily_usd",
                self.budget_daily_usd,
                &mut l.budget_daily_nanos,
            ),
            (
                "budget_monthly_usd",
                self.budget_monthly_usd,
                &mut l.budget_monthly_nanos,
            ),
            (
                "budget_total_usd",
                self.budget_total_usd,
                &mut l.budget_total_nanos,
            ),
        ] {
            match value {
                None => {}
                Some(None) => *slot = None,
                Some(Some(text)) => match app::format::parse_usd(&text) {
                    Ok(Some(n)) => *slot = Some(n),
                    Ok(None) => *slot = None,
                    Err(m) => bad(field, m),
                },
            }
        }
        if let Some(v) = self.rpm {
            l.rpm = v;
        }
        if let Some(v) = self.tpm {
            l.tpm = v;
        }
        if let Some(v) = self.allowed_models {
            l.allowed_models = v;
        }
        if let Some(v) = self.allowed_endpoints {
            l.allowed_endpoints = v.into_iter().map(EndpointId).collect();
        }
        if let Some(v) = self.allow_unmetered {
            l.allow_unmetered = v;
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(ApiError::Invalid(errors))
        }
    }
}

/// The core's field names are the portal's; the API names money fields by their unit.
fn api_field(field: &str) -> String {
    match field {
        "budget_daily" | "budget_monthly" | "budget_total" => format!("{field}_usd"),
        "expires" => "expires_at".into(),
        other => other.into(),
    }
}

fn renamed(e: ApiError) -> ApiError {
    match e {
        ApiError::Invalid(fields) => ApiError::Invalid(
            fields
                .into_iter()
                .map(|f| FieldMessage {
                    field: api_field(&f.field),
                    message: f.message,
                })
                .collect(),
        ),
        other => other,
    }
}

async fn view(s: &Services, k: &VirtualKey) -> ApiResult<KeyView> {
    let spend = s.store.key_spend(k.id, antix::domain::now_ms()).await?;
    let l: &KeyLimits = &k.limits;
    Ok(KeyView {
        id: k.id.0,
        name: k.name.clone(),
        display: k.display.clone(),
        created_by: k.created_by.0,
        created_at: time(k.created_at),
        expires_at: k.expires_at.map(time),
        revoked_at: k.revoked_at.map(time),
        last_used_at: k.last_used_at.map(time),
        limits: LimitsView {
            budget_daily_usd: l.budget_daily_nanos.map(dollars),
            budget_monthly_usd: l.budget_monthly_nanos.map(dollars),
            budget_total_usd: l.budget_total_nanos.map(dollars),
            rpm: l.rpm,
            tpm: l.tpm,
            allowed_models: l.allowed_models.clone(),
            allowed_endpoints: l.allowed_endpoints.iter().map(|e| e.0).collect(),
            allow_unmetered: l.allow_unmetered,
        },
        spend: SpendView {
            day_usd: dollars(spend.day_nanos),
            month_usd: dollars(spend.month_nanos),
            total_usd: dollars(spend.total_nanos),
        },
    })
}

/// List the organization's virtual keys (revoked ones included), newest first.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", params(PageQuery),
    responses((status = 200, body = KeyList), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list(
    State(s): State<Services>,
    headers: HeaderMap,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let actor = authenticate(&s, &headers).await?;
    let q = query(q)?;
    let all = ops::list(&s.store, &actor).await?;
    let (page, next_cursor) = page_of(all, &q, |k| k.id.0)?;
    let mut data = Vec::with_capacity(page.len());
    for k in &page {
        data.push(view(&s, k).await?);
    }
    Ok(json(StatusCode::OK, &KeyList { data, next_cursor }))
}

/// Issue a virtual key. The response holds its secret, shown this once.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = KeyRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer to a retry")),
    responses((status = 201, body = CreatedKey), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(State(s): State<Services>, headers: HeaderMap, body: Bytes) -> Response {
    let s = &s;
    create_once(
        s,
        &headers,
        "POST /keys",
        &body,
        |actor, req: KeyRequest| async move {
            if req.name.is_none() {
                return Err(ApiError::invalid("name", "Enter a name."));
            }
            let input = req.apply(KeyInput::default()).map_err(renamed)?;
            let issued = ops::issue(&s.store, &s.keys, &actor, &input)
                .await
                .map_err(|e| renamed(e.into()))?;
            let created = CreatedKey {
                key: view(s, &issued.key).await?,
                secret: issued.secret.expose_secret().to_owned(),
            };
            Ok((
                StatusCode::CREATED,
                serde_json::to_value(created).unwrap_or_default(),
            ))
        },
    )
    .await
}

async fn find(
    s: &Services,
    headers: &HeaderMap,
    id: &str,
) -> ApiResult<(antix::manage::Actor, VirtualKey)> {
    let actor = authenticate(s, headers).await?;
    let k = ops::find(&s.store, &actor, VirtualKeyId(path_id(id)?)).await?;
    Ok((actor, k))
}

/// Get one virtual key.
#[utoipa::path(get, path = "/api/v1/keys/{id}", tag = "keys", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = KeyView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let (_, k) = find(&s, &headers, &id).await?;
    Ok(json(StatusCode::OK, &view(&s, &k).await?))
}

/// Change a key's name, expiry or limits (missing fields keep their value, `null` clears).
#[utoipa::path(patch, path = "/api/v1/keys/{id}", tag = "keys", params(("id" = uuid::Uuid, Path)),
    request_body = KeyRequest,
    responses((status = 200, body = KeyView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let (actor, k) = find(&s, &headers, &id).await?;
    let req: KeyRequest = json_body(&headers, &body)?;
    let base = KeyInput {
        name: k.name.clone(),
        expires_at: k.expires_at,
        limits: k.limits.clone(),
    };
    let input = req.apply(base).map_err(renamed)?;
    let updated = ops::update(&s.store, &actor, k.id, &input)
        .await
        .map_err(|e| renamed(e.into()))?;
    Ok(json(StatusCode::OK, &view(&s, &updated).await?))
}

/// Revoke a key: calls with it are refused from then on.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = KeyView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let (actor, k) = find(&s, &headers, &id).await?;
    let revoked = ops::revoke(&s.store, &actor, k.id).await?;
    Ok(json(StatusCode::OK, &view(&s, &revoked).await?))
}
