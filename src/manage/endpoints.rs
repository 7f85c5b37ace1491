//! Endpoints: list, find, create, rename, duplicate as an org endpoint, archive.

use super::{Actor, ManageError, Result};
use crate::access;
use crate::domain::{Endpoint, EndpointId, Membership, OrgId, Role, Scope, now_ms};
use crate::store::Store;
use crate::store::endpoints::{CreateEndpointError, NewEndpoint};

/// The endpoints of the actor's organization the actor may see (archived ones included).
pub async fn list(store: &Store, actor: &Actor) -> Result<Vec<Endpoint>> {
    Ok(store.visible_endpoints(actor.org(), actor.user.id).await?)
}

/// An endpoint the actor may see, with the actor's membership in its organization. A portal
/// user reaches any organization they belong to; a token only its own.
pub async fn find(store: &Store, actor: &Actor, id: EndpointId) -> Result<(Endpoint, Membership)> {
    let found = access::visible_endpoint(store, &actor.user, id).await?;
    match found {
        Some((e, _)) if actor.token.is_some() && e.org_id != actor.org() => {
            Err(ManageError::NotFound)
        }
        Some(found) => Ok(found),
        None => Err(ManageError::NotFound),
    }
}

/// [`find`], for a change: the actor must own it (or be an admin, for an org-shared one), it
/// must be active, and a token must be allowed to write. `what` ends the refusal.
pub async fn find_to_manage(
    store: &Store,
    actor: &Actor,
    id: EndpointId,
    what: &str,
) -> Result<(Endpoint, Membership)> {
    let (e, m) = find(store, actor, id).await?;
    actor.may_write()?;
    if !access::can_manage_endpoint(&e, &actor.user, &m) {
        return Err(ManageError::Forbidden(format!(
            "Only the owner (or an admin, for org-shared endpoints) can {what}."
        )));
    }
    if e.archived_at.is_some() {
        return Err(ManageError::Conflict("This endpoint is archived.".into()));
    }
    Ok((e, m))
}

/// Creates an endpoint in `org`, where the actor must be a member. Org-shared endpoints are
/// for admins only; personal ones count against the organization's per-user limit.
pub async fn create(
    store: &Store,
    actor: &Actor,
    org: OrgId,
    scope: &str,
    name: &str,
) -> Result<Endpoint> {
    actor.may_write()?;
    let role = if org == actor.org() {
        Some(actor.membership.role)
    } else if actor.token.is_some() {
        None
    } else {
        store.role_in(actor.user.id, org).await?
    };
    let role = role.ok_or(ManageError::NotFound)?;
    let mut errors = Vec::new();
    let scope = match scope {
        "personal" => Some(Scope::Personal),
        "org_shared" if role == Role::Admin => Some(Scope::OrgShared),
        "org_shared" => {
            errors.push(crate::domain::FieldError::new(
                "scope",
                "Only organization admins can create org-shared endpoints.",
            ));
            None
        }
        _ => {
            errors.push(crate::domain::FieldError::new(
                "scope",
                "Choose personal or org_shared.",
            ));
            None
        }
    };
    let name = crate::domain::validate_name("name", name)
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(scope), Some(name)) = (scope, name) else {
        return Err(ManageError::Invalid(errors));
    };
    store
        .create_endpoint(&NewEndpoint {
            org,
            owner: actor.user.id,
            scope,
            name: &name,
        })
        .await
        .map_err(|e| match e {
            CreateEndpointError::PersonalLimit { limit } => ManageError::invalid(
                "scope",
                format!(
                    "You already have {limit} personal endpoints in this organization, its limit. \
                     Archive one, or ask an admin to raise the limit."
                ),
            ),
            CreateEndpointError::Store(s) => s.into(),
        })
}

pub async fn rename(store: &Store, actor: &Actor, id: EndpointId, name: &str) -> Result<Endpoint> {
    let (mut e, _) = find_to_manage(store, actor, id, "rename it").await?;
    let name = crate::domain::validate_name("name", name)?;
    store.rename_endpoint(e.id, &name).await?;
    e.name = name;
    Ok(e)
}

/// Copies a personal endpoint into a new org-shared one (a new URL; the original stays active).
pub async fn duplicate(store: &Store, actor: &Actor, id: EndpointId) -> Result<Endpoint> {
    let (e, m) = find(store, actor, id).await?;
    actor.may_write()?;
    if m.role != Role::Admin {
        return Err(ManageError::Forbidden(
            "Only organization admins can do this.".into(),
        ));
    }
    if e.scope != Scope::Personal {
        return Err(ManageError::Conflict(
            "Only personal endpoints can be duplicated as org endpoints.".into(),
        ));
    }
    if e.archived_at.is_some() {
        return Err(ManageError::Conflict("This endpoint is archived.".into()));
    }
    debug_assert!(access::can_duplicate_endpoint(&e, &m));
    store
        .duplicate_endpoint_as_shared(&e, actor.user.id)
        .await
        .map_err(|err| match err {
            CreateEndpointError::Store(st) => st.into(),
            // Org-shared endpoints have no per-user limit; kept for completeness.
            other => ManageError::Conflict(other.to_string()),
        })
}

/// Archives an endpoint: irreversible; the proxy answers 410 Gone from then on. `confirm`, when
/// given, must be the endpoint's name (the portal asks for it; the API does not).
pub async fn archive(
    store: &Store,
    actor: &Actor,
    id: EndpointId,
    confirm: Option<&str>,
) -> Result<Endpoint> {
    let (mut e, _) = find_to_manage(store, actor, id, "archive it").await?;
    if confirm.is_some_and(|c| c.trim() != e.name) {
        return Err(ManageError::invalid(
            "confirm",
            "Type the endpoint's name exactly to confirm.",
        ));
    }
    let now = now_ms();
    store.archive_endpoint(e.id, now).await?;
    e.archived_at = Some(now);
    Ok(e)
}
