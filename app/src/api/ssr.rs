//! Server-only helpers for server functions: the shared services, the request's cookies and
//! client address, the current user and organization, and error conversion. Compiled only with
//! the `ssr` feature.

use std::net::SocketAddr;

use antix::Services;
use antix::accounts::AccountError;
use antix::domain::{FieldError, Membership, User};
use antix::store::StoreError;
use http::HeaderValue;
use http::header::SET_COOKIE;
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

use super::error::{ApiError, FieldMessage};

/// Cookie holding the portal session token. With an https public URL it is `__Host-` prefixed
/// and `Secure` (the prefix is refused by browsers without `Secure`, so plain-http development
/// uses the unprefixed name).
pub const SESSION_COOKIE_SECURE: &str = "__Host-antix_session";
pub const SESSION_COOKIE: &str = "antix_session";
/// Cookie holding the selected organization id. Not a secret and never trusted: membership is
/// checked on every request.
pub const ORG_COOKIE: &str = "antix_org";

pub fn services() -> Result<Services, ApiError> {
    use_context::<Services>().ok_or_else(|| internal("services missing from context"))
}

fn parts() -> Option<http::request::Parts> {
    use_context::<http::request::Parts>()
}

/// A cookie of the current request.
pub fn cookie(name: &str) -> Option<String> {
    let parts = parts()?;
    parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The peer address of the request, for login throttling.
/// The client's address: the TCP peer, or what a trusted reverse proxy says
/// (`ANTIX_TRUSTED_PROXIES`, see [`antix::client_ip`]).
pub fn client_addr() -> String {
    let trusted = services()
        .map(|s| s.settings.trusted_proxies.clone())
        .unwrap_or_default();
    parts()
        .and_then(|p| {
            p.extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| antix::client_ip::client_address(c.0.ip(), &p.headers, &trusted))
        })
        .map_or_else(|| "unknown".into(), |ip| ip.to_string())
}

fn set_cookie(value: String) {
    if let (Some(res), Ok(v)) = (
        use_context::<ResponseOptions>(),
        HeaderValue::from_str(&value),
    ) {
        res.append_header(SET_COOKIE, v);
    }
}

fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SESSION_COOKIE_SECURE
    } else {
        SESSION_COOKIE
    }
}

pub fn set_session_cookie(token: &str, max_age_secs: i64, secure: bool) {
    let name = session_cookie_name(secure);
    let secure_attr = if secure { "; Secure" } else { "" };
    set_cookie(format!(
        "{name}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure_attr}"
    ));
}

pub fn clear_session_cookie(secure: bool) {
    let name = session_cookie_name(secure);
    let secure_attr = if secure { "; Secure" } else { "" };
    set_cookie(format!(
        "{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure_attr}"
    ));
}

pub fn set_org_cookie(org: uuid::Uuid, secure: bool) {
    let secure_attr = if secure { "; Secure" } else { "" };
    set_cookie(format!(
        "{ORG_COOKIE}={org}; Path=/; SameSite=Lax; Max-Age=31536000{secure_attr}"
    ));
}

/// The session token from the request's cookie, if any.
pub fn session_token(services: &Services) -> Option<String> {
    cookie(session_cookie_name(services.settings.secure_cookies()))
}

pub async fn current_user(services: &Services) -> Result<Option<User>, ApiError> {
    let Some(token) = session_token(services) else {
        return Ok(None);
    };
    Ok(antix::accounts::session_user(&services.store, &services.keys, &token).await?)
}

pub async fn require_user(services: &Services) -> Result<User, ApiError> {
    current_user(services)
        .await?
        .ok_or(ApiError::Unauthenticated)
}

/// The organization the user is working in: the one named by the org cookie when they are a
/// member of it, else their first. `None` when they belong to none.
pub async fn current_membership(
    services: &Services,
    user: &User,
) -> Result<(Vec<Membership>, Option<Membership>), ApiError> {
    let memberships = services.store.memberships(user.id).await?;
    let wanted = cookie(ORG_COOKIE).and_then(|v| v.parse::<uuid::Uuid>().ok());
    let current = wanted
        .and_then(|w| memberships.iter().find(|m| m.org.id.0 == w))
        .or_else(|| memberships.first())
        .cloned();
    Ok((memberships, current))
}

/// Runs a server function body and, on error, sets the HTTP status the error calls for.
///
/// Not for plain HTML form posts (JavaScript not loaded yet): those are answered with a redirect
/// back to the form, carrying the error in the URL, and a status here would replace the
/// redirect.
pub async fn run<T>(body: impl Future<Output = Result<T, ApiError>>) -> Result<T, ApiError> {
    let result = body.await;
    let plain_form_post = parts().is_some_and(|p| {
        p.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    });
    if let Err(e) = &result
        && !plain_form_post
        && let Some(res) = use_context::<ResponseOptions>()
    {
        res.set_status(e.status());
    }
    result
}

/// Logs an unexpected failure under a fresh reference id and returns only the id.
pub fn internal(detail: impl std::fmt::Display) -> ApiError {
    let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    tracing::error!(reference = %reference, error = %detail, "portal request failed");
    ApiError::Internal(reference)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable,
            StoreError::NotFound => ApiError::NotFound,
            other => internal(other),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Invalid(vec![FieldMessage {
            field: e.field.to_owned(),
            message: e.message,
        }])
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(fields) => ApiError::Invalid(
                fields
                    .into_iter()
                    .map(|f| FieldMessage {
                        field: f.field.to_owned(),
                        message: f.message,
                    })
                    .collect(),
            ),
            AccountError::AlreadyInitialized => {
                ApiError::Conflict("This instance already has an administrator.".into())
            }
            AccountError::EmailTaken => {
                ApiError::invalid("email", "An account with this e-mail already exists.")
            }
            AccountError::BadCredentials => ApiError::Forbidden("Wrong e-mail or password.".into()),
            AccountError::Throttled { retry_after_secs } => ApiError::Throttled(retry_after_secs),
            AccountError::Busy => {
                ApiError::Overloaded("Too many sign-ins at once. Try again in a moment.".into())
            }
            AccountError::Store(s) => s.into(),
            AccountError::Internal(detail) => internal(detail),
        }
    }
}

impl From<antix::domain::Role> for crate::model::Role {
    fn from(r: antix::domain::Role) -> Self {
        match r {
            antix::domain::Role::Admin => crate::model::Role::Admin,
            antix::domain::Role::Member => crate::model::Role::Member,
        }
    }
}

/// The signed-in user and their membership in the current organization.
pub async fn org_context(s: &Services) -> Result<(User, Membership), ApiError> {
    let user = require_user(s).await?;
    let (_, current) = current_membership(s, &user).await?;
    let m = current
        .ok_or_else(|| ApiError::Forbidden("You are not a member of any organization.".into()))?;
    Ok((user, m))
}

pub fn require_admin(m: &Membership) -> Result<(), ApiError> {
    if m.role == antix::domain::Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Only organization admins can do this.".into(),
        ))
    }
}

/// An endpoint the user may see, with their membership in its organization (the rule is
/// [`antix::access::visible_endpoint`]). Anything else is the same `NotFound`.
pub async fn visible_endpoint(
    s: &Services,
    user: &User,
    id: uuid::Uuid,
) -> Result<(antix::domain::Endpoint, antix::domain::Membership), ApiError> {
    antix::access::visible_endpoint(&s.store, user, antix::domain::EndpointId(id))
        .await?
        .ok_or(ApiError::NotFound)
}

/// An endpoint the user may change and that is still active: its owner's, or, for an
/// org-shared one, any admin's (the rule is [`antix::manage::endpoints::find_to_manage`]).
/// `what` ends the refusal ("change its fallbacks").
pub async fn manageable_endpoint(
    s: &Services,
    user: &User,
    id: uuid::Uuid,
    what: &str,
) -> Result<(antix::domain::Endpoint, antix::domain::Membership), ApiError> {
    let (_, m) = visible_endpoint(s, user, id).await?;
    let actor = antix::manage::Actor::portal(user.clone(), m);
    Ok(antix::manage::endpoints::find_to_manage(
        &s.store,
        &actor,
        antix::domain::EndpointId(id),
        what,
    )
    .await?)
}

/// The signed-in user acting in their current organization.
pub async fn actor(s: &Services) -> Result<antix::manage::Actor, ApiError> {
    let (user, m) = org_context(s).await?;
    Ok(antix::manage::Actor::portal(user, m))
}

/// The signed-in user acting on one endpoint, in the endpoint's organization.
pub async fn endpoint_actor(
    s: &Services,
    id: uuid::Uuid,
) -> Result<antix::manage::Actor, ApiError> {
    let user = require_user(s).await?;
    let (_, m) = visible_endpoint(s, &user, id).await?;
    Ok(antix::manage::Actor::portal(user, m))
}

impl From<antix::manage::ManageError> for ApiError {
    fn from(e: antix::manage::ManageError) -> Self {
        use antix::manage::ManageError as M;
        match e {
            M::NotFound => ApiError::NotFound,
            M::Forbidden(msg) => ApiError::Forbidden(msg),
            M::Conflict(msg) => ApiError::Conflict(msg),
            M::Invalid(fields) => ApiError::Invalid(
                fields
                    .into_iter()
                    .map(|f| FieldMessage {
                        field: f.field.to_owned(),
                        message: f.message,
                    })
                    .collect(),
            ),
            M::Store(st) => st.into(),
        }
    }
}

pub fn endpoint_urls(s: &Services, id: uuid::Uuid) -> crate::model::EndpointUrls {
    let base = format!("{}/v1/{id}", s.settings.public_base());
    crate::model::EndpointUrls {
        openai: format!("{base}/openai"),
        anthropic: format!("{base}/anthropic"),
        gemini: format!("{base}/gemini"),
        multi: format!("{base}/multi"),
    }
}

impl From<antix::domain::Scope> for crate::model::Scope {
    fn from(s: antix::domain::Scope) -> Self {
        match s {
            antix::domain::Scope::Personal => crate::model::Scope::Personal,
            antix::domain::Scope::OrgShared => crate::model::Scope::OrgShared,
        }
    }
}

/// Collects field errors; `finish` fails with all of them at once.
#[derive(Default)]
pub struct Fields(Vec<FieldMessage>);

impl Fields {
    pub fn check<T>(&mut self, field: &str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(message) => {
                self.0.push(FieldMessage {
                    field: field.to_owned(),
                    message,
                });
                None
            }
        }
    }

    /// Whether `field` already has a message (the first one is the one to show).
    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|m| m.field == field)
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.0))
        }
    }
}
