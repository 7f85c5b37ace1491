//! Endpoints: list, create, detail, rename, duplicate as an org endpoint, archive.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use uuid::Uuid;

use super::ApiError;
use crate::model::{EndpointDetail, EndpointsPage};

/// The endpoints the user may see in the current organization, with 30-day totals.
#[server(endpoint = "endpoints", input = GetUrl)]
pub async fn list_endpoints() -> Result<EndpointsPage, ApiError> {
    use super::ssr::*;
    use crate::model::EndpointSummary;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        let endpoints = antix::manage::endpoints::list(&s.store, &actor).await?;
        let (user, m) = (actor.user, actor.membership);
        let now = antix::domain::now_ms();
        let since = antix::overview::window_start(now);
        let stats = s.store.endpoint_stats(m.org.id, since).await?;
        let names: std::collections::HashMap<_, _> = s
            .store
            .members(m.org.id)
            .await?
            .into_iter()
            .map(|mb| (mb.user.id, mb.user.name))
            .collect();
        let personal_count = endpoints
            .iter()
            .filter(|e| {
                e.scope == antix::domain::Scope::Personal
                    && e.owner_id == user.id
                    && e.archived_at.is_none()
            })
            .count() as i64;
        Ok(EndpointsPage {
            org_id: m.org.id.0,
            org_name: m.org.name.clone(),
            is_admin: m.role == antix::domain::Role::Admin,
            personal_count,
            personal_limit: m.org.max_personal_endpoints,
            endpoints: endpoints
                .into_iter()
                .map(|e| {
                    let st = stats.get(&e.id).copied().unwrap_or_default();
                    EndpointSummary {
                        id: e.id.0,
                        name: e.name,
                        scope: e.scope.into(),
                        owner_name: names
                            .get(&e.owner_id)
                            .cloned()
                            .unwrap_or_else(|| "former member".into()),
                        created_at: e.created_at,
                        archived_at: e.archived_at,
                        requests_30d: st.requests,
                        cost_billed_30d_nanos: st.cost_billed_nanos,
                        cost_estimated_30d_nanos: st.cost_estimated_nanos,
                    }
                })
                .collect(),
        })
    })
    .await
}

/// Creates an endpoint in an organization the user belongs to. Org-shared endpoints are for
/// admins only; personal ones count against the organization's per-user limit.
#[server(endpoint = "create_endpoint")]
pub async fn create_endpoint(org: Uuid, scope: String, name: String) -> Result<Uuid, ApiError> {
    use super::ssr::*;
    use antix::domain::OrgId;
    run(async {
        let s = services()?;
        let user = require_user(&s).await?;
        let membership = s
            .store
            .memberships(user.id)
            .await?
            .into_iter()
            .find(|m| m.org.id.0 == org)
            .ok_or(ApiError::NotFound)?;
        let actor = antix::manage::Actor::portal(user, membership);
        let e =
            antix::manage::endpoints::create(&s.store, &actor, OrgId(org), &scope, &name).await?;
        set_org_cookie(org, s.settings.secure_cookies());
        leptos_axum::redirect(&format!("/endpoints/{}", e.id));
        Ok(e.id.0)
    })
    .await
}

#[server(endpoint = "endpoint", input = GetUrl)]
pub async fn get_endpoint(id: Uuid) -> Result<EndpointDetail, ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let user = require_user(&s).await?;
        let (e, m) = visible_endpoint(&s, &user, id).await?;
        let retention = s.store.endpoint_retention(e.id).await?;
        let instance_days = s.settings.trace_retention_days;
        let owner_name = s
            .store
            .user(e.owner_id)
            .await?
            .map(|u| u.name)
            .unwrap_or_else(|| "former member".into());
        Ok(EndpointDetail {
            id: e.id.0,
            name: e.name.clone(),
            scope: e.scope.into(),
            org_name: m.org.name.clone(),
            owner_name,
            created_at: e.created_at,
            archived_at: e.archived_at,
            urls: endpoint_urls(&s, e.id.0),
            can_manage: antix::access::can_manage_endpoint(&e, &user, &m)
                && e.archived_at.is_none(),
            can_duplicate: antix::access::can_duplicate_endpoint(&e, &m),
            passthrough: e.passthrough,
            has_sessions: s.store.has_sessions(e.id).await?,
            fallbacks: e
                .fallbacks
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            retention_days: retention.endpoint_days,
            retention_inherited: retention.org_days.unwrap_or(instance_days),
        })
    })
    .await
}

#[server(endpoint = "rename_endpoint")]
pub async fn rename_endpoint(id: Uuid, name: String) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = endpoint_actor(&s, id).await?;
        antix::manage::endpoints::rename(&s.store, &actor, antix::domain::EndpointId(id), &name)
            .await?;
        Ok(())
    })
    .await
}

/// How many days the endpoint keeps its traces: a whole number (0: forever), or empty to
/// follow the organization's setting. Older traces are deleted in the background, whole days at
/// a time; the Overview's daily totals stay.
#[server(endpoint = "endpoint_retention")]
pub async fn set_endpoint_retention(id: Uuid, days: String) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let user = require_user(&s).await?;
        let (e, _) = manageable_endpoint(&s, &user, id, "change its retention").await?;
        let days = parse_retention(&days)?;
        s.store.set_endpoint_retention(e.id, days).await?;
        Ok(())
    })
    .await
}

/// Days of retention from a form field: empty inherits, else 0 to 36,500.
#[cfg(feature = "ssr")]
pub fn parse_retention(text: &str) -> Result<Option<u32>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(n) if n <= 36_500 => Ok(Some(n)),
        _ => Err(ApiError::invalid(
            "days",
            "Enter a whole number of days from 0 (keep forever) to 36500, or leave it empty to inherit.",
        )),
    }
}

/// Whether the endpoint passes through callers' own provider keys and OAuth tokens, or takes
/// Antix virtual keys only (then every call is billed to the organization, under its keys'
/// limits). A checkbox form: present means "on".
#[server(endpoint = "endpoint_auth")]
pub async fn set_endpoint_auth(id: Uuid, passthrough: Option<String>) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let user = require_user(&s).await?;
        let (e, _) = manageable_endpoint(&s, &user, id, "change who may call it").await?;
        s.store
            .set_endpoint_passthrough(e.id, passthrough.is_some())
            .await?;
        Ok(())
    })
    .await
}

/// The endpoint's fallback targets: one `provider/model` (or `provider/model#credential`) per
/// line, tried in order when a call's own target fails. A named credential must exist.
#[server(endpoint = "endpoint_fallbacks")]
pub async fn set_endpoint_fallbacks(id: Uuid, fallbacks: String) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let user = require_user(&s).await?;
        let (e, _) = manageable_endpoint(&s, &user, id, "change its fallbacks").await?;
        let list = antix::domain::Fallback::parse_list(&fallbacks)
            .map_err(|msg| ApiError::invalid("fallbacks", msg))?;
        if list.iter().any(|f| f.credential.is_some()) {
            let creds = s.store.list_credentials(e.org_id).await?;
            for f in &list {
                if let Some(name) = &f.credential
                    && !creds
                        .iter()
                        .any(|c| c.provider == f.provider.as_str() && &c.name == name)
                {
                    return Err(ApiError::invalid(
                        "fallbacks",
                        format!(
                            "`{f}`: the organization has no {} credential named {name}.",
                            f.provider
                        ),
                    ));
                }
            }
        }
        s.store.set_endpoint_fallbacks(e.id, &list).await?;
        Ok(())
    })
    .await
}

/// Copies a personal endpoint into a new org-shared one (new URL; the original stays active).
#[server(endpoint = "duplicate_endpoint")]
pub async fn duplicate_endpoint(id: Uuid) -> Result<Uuid, ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = endpoint_actor(&s, id).await?;
        let copy =
            antix::manage::endpoints::duplicate(&s.store, &actor, antix::domain::EndpointId(id))
                .await?;
        Ok(copy.id.0)
    })
    .await
}

/// Archives an endpoint: irreversible; the proxy answers 410 Gone from then on. The user types
/// the endpoint's name to confirm.
#[server(endpoint = "archive_endpoint")]
pub async fn archive_endpoint(id: Uuid, confirm: String) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = endpoint_actor(&s, id).await?;
        antix::manage::endpoints::archive(
            &s.store,
            &actor,
            antix::domain::EndpointId(id),
            Some(&confirm),
        )
        .await?;
        Ok(())
    })
    .await
}
