//! Virtual keys: list, issue (shown once), change limits, revoke.

use super::{Actor, ManageError, Result};
use crate::crypto::Keys;
use crate::domain::{EndpointId, FieldError, KeyLimits, Millis, VirtualKey, VirtualKeyId, now_ms};
use crate::store::{Store, StoreError};
use crate::virtual_keys::IssuedKey;

/// A key's settings, typed (each adapter parses its own input format into this).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyInput {
    pub name: String,
    /// The key stops working at this instant. `None`: never expires.
    pub expires_at: Option<Millis>,
    pub limits: KeyLimits,
}

/// The largest budget a key may have: a billion dollars, in nano-dollars.
pub const MAX_BUDGET_NANOS: i64 = 1_000_000_000 * 1_000_000_000;
/// At most this many model patterns per key.
pub const MAX_MODEL_PATTERNS: usize = 100;

/// The keys of the actor's organization the actor may see: an admin every key, a member their
/// own.
pub async fn list(store: &Store, actor: &Actor) -> Result<Vec<VirtualKey>> {
    Ok(store
        .list_virtual_keys(actor.org())
        .await?
        .into_iter()
        .filter(|k| actor.is_admin() || k.created_by == actor.user.id)
        .collect())
}

/// A key the actor may see and manage (the rule is [`crate::access::managed_key`]).
pub async fn find(store: &Store, actor: &Actor, id: VirtualKeyId) -> Result<VirtualKey> {
    crate::access::managed_key(store, &actor.user, &actor.membership, id)
        .await?
        .ok_or(ManageError::NotFound)
}

/// Every problem with `input`, field by field: the name, an expiry in the past, model patterns,
/// budgets and rates out of range, and endpoints the actor cannot see (a key never carries more
/// than its creator's reach; a member's key must name its endpoints).
pub async fn check(store: &Store, actor: &Actor, input: &KeyInput) -> Result<Vec<FieldError>> {
    let mut errors = Vec::new();
    if let Err(e) = crate::domain::validate_name("name", &input.name) {
        errors.push(e);
    }
    if input.expires_at.is_some_and(|t| t <= now_ms()) {
        errors.push(FieldError::new("expires", "Pick a date in the future."));
    }
    let l = &input.limits;
    for (field, v) in [
        ("budget_daily", l.budget_daily_nanos),
        ("budget_monthly", l.budget_monthly_nanos),
        ("budget_total", l.budget_total_nanos),
    ] {
        if v.is_some_and(|n| !(0..=MAX_BUDGET_NANOS).contains(&n)) {
            errors.push(FieldError::new(
                field,
                "Enter an amount from 0 to 1,000,000,000 dollars.",
            ));
        }
    }
    for (field, v) in [("rpm", l.rpm), ("tpm", l.tpm)] {
        if v.is_some_and(|n| n <= 0) {
            errors.push(FieldError::new(
                field,
                "Enter a whole number greater than 0.",
            ));
        }
    }
    if l.allowed_models.len() > MAX_MODEL_PATTERNS
        || l.allowed_models
            .iter()
            .any(|p| p.trim().is_empty() || p.len() > 100 || p.chars().any(char::is_control))
    {
        errors.push(FieldError::new(
            "allowed_models",
            "Patterns are model names with `*` wildcards.",
        ));
    }
    let visible: Vec<EndpointId> = store
        .visible_endpoints(actor.org(), actor.user.id)
        .await?
        .into_iter()
        .filter(|e| e.archived_at.is_none())
        .map(|e| e.id)
        .collect();
    if l.allowed_endpoints.iter().any(|e| !visible.contains(e)) {
        errors.push(FieldError::new(
            "allowed_endpoints",
            "Pick endpoints of this organization.",
        ));
    } else if !actor.is_admin() && l.allowed_endpoints.is_empty() {
        errors.push(FieldError::new(
            "allowed_endpoints",
            "Members' keys are for their own use: pick the endpoints this key may call.",
        ));
    }
    Ok(errors)
}

/// Whether the actor may issue keys (`unmetered`: one that may call APIs Antix cannot meter).
/// Admins always may; members when the organization lets them, and never an unmetered one.
pub fn may_issue(actor: &Actor, unmetered: bool) -> Result<()> {
    actor.may_write()?;
    if !actor.is_admin() && !actor.membership.org.members_can_create_keys {
        return Err(ManageError::Forbidden(
            "Only organization admins can issue keys here.".into(),
        ));
    }
    // Calls whose cost is unknown are the admins' risk to take, not a member's.
    if !actor.is_admin() && unmetered {
        return Err(ManageError::Forbidden(
            "Only organization admins can let a key call APIs Antix cannot meter.".into(),
        ));
    }
    Ok(())
}

/// Issues a key billed to the actor's organization (who may: [`may_issue`]).
pub async fn issue(
    store: &Store,
    keys: &Keys,
    actor: &Actor,
    input: &KeyInput,
) -> Result<IssuedKey> {
    may_issue(actor, input.limits.allow_unmetered)?;
    let errors = check(store, actor, input).await?;
    if !errors.is_empty() {
        return Err(ManageError::Invalid(errors));
    }
    let name = crate::domain::validate_name("name", &input.name)?;
    Ok(crate::virtual_keys::issue(
        store,
        keys,
        actor.org(),
        actor.user.id,
        &name,
        input.expires_at,
        &input.limits,
    )
    .await?)
}

/// Changes a key's name, expiry and limits. A member may rename their key, never lift its
/// limits: those are the admins' promise about the organization's credential.
pub async fn update(
    store: &Store,
    actor: &Actor,
    id: VirtualKeyId,
    input: &KeyInput,
) -> Result<VirtualKey> {
    let k = find(store, actor, id).await?;
    actor.may_write()?;
    let errors = check(store, actor, input).await?;
    if !errors.is_empty() {
        return Err(ManageError::Invalid(errors));
    }
    if !actor.is_admin() && (input.limits != k.limits || input.expires_at != k.expires_at) {
        return Err(ManageError::Forbidden(
            "Only organization admins can change a key's limits or expiry.".into(),
        ));
    }
    let name = crate::domain::validate_name("name", &input.name)?;
    store
        .update_virtual_key(actor.org(), k.id, &name, input.expires_at, &input.limits)
        .await?;
    store
        .virtual_key(k.id)
        .await?
        .ok_or(ManageError::Store(StoreError::NotFound))
}

/// Revokes a key: calls with it are refused from then on. Revoking twice keeps the first time.
pub async fn revoke(store: &Store, actor: &Actor, id: VirtualKeyId) -> Result<VirtualKey> {
    let k = find(store, actor, id).await?;
    actor.may_write()?;
    store
        .revoke_virtual_key(actor.org(), k.id, now_ms())
        .await?;
    store
        .virtual_key(k.id)
        .await?
        .ok_or(ManageError::Store(StoreError::NotFound))
}
