//! Virtual keys: list with spend against budget, issue (shown once), edit limits, revoke.

use leptos::prelude::*;
use leptos::server_fn::codec::{GetUrl, Json};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ApiError;
use crate::model::{CreatedKey, KeysPage};

/// The key form, as typed: amounts in dollars, counts and dates as text (checked on the server).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyForm {
    pub name: String,
    /// `YYYY-MM-DD`: the key works through the end of that day (UTC). Empty: no expiry.
    pub expires: String,
    pub budget_daily: String,
    pub budget_monthly: String,
    pub budget_total: String,
    pub rpm: String,
    pub tpm: String,
    /// Comma-separated patterns, `*` as wildcard. Empty: every model.
    pub allowed_models: String,
    pub allowed_endpoints: Vec<Uuid>,
    /// Let a limited key call APIs Antix cannot meter (their cost is not counted).
    #[serde(default)]
    pub allow_unmetered: bool,
}

#[server(endpoint = "keys", input = GetUrl)]
pub async fn list_keys() -> Result<KeysPage, ApiError> {
    use super::ssr::*;
    use crate::model::{EndpointChoice, KeyLimitsView, KeySpendView, KeySummary};
    use antix::domain::Role;
    run(async {
        let s = services()?;
        let (user, m) = org_context(&s).await?;
        let is_admin = m.role == Role::Admin;
        let names: std::collections::HashMap<_, _> = s
            .store
            .members(m.org.id)
            .await?
            .into_iter()
            .map(|mb| (mb.user.id, mb.user.name))
            .collect();
        let now = antix::domain::now_ms();
        let mut keys = Vec::new();
        for k in s.store.list_virtual_keys(m.org.id).await? {
            if !is_admin && k.created_by != user.id {
                continue;
            }
            let spend = s.store.key_spend(k.id, now).await?;
            keys.push(KeySummary {
                id: k.id.0,
                name: k.name,
                display: k.display,
                created_by: names
                    .get(&k.created_by)
                    .cloned()
                    .unwrap_or_else(|| "former member".into()),
                created_at: k.created_at,
                expires_at: k.expires_at,
                revoked_at: k.revoked_at,
                last_used_at: k.last_used_at,
                expired: k.expires_at.is_some_and(|e| e <= now),
                limits: KeyLimitsView {
                    budget_daily_nanos: k.limits.budget_daily_nanos,
                    budget_monthly_nanos: k.limits.budget_monthly_nanos,
                    budget_total_nanos: k.limits.budget_total_nanos,
                    rpm: k.limits.rpm,
                    tpm: k.limits.tpm,
                    allowed_models: k.limits.allowed_models,
                    allowed_endpoints: k.limits.allowed_endpoints.iter().map(|e| e.0).collect(),
                    allow_unmetered: k.limits.allow_unmetered,
                },
                spend: KeySpendView {
                    day_nanos: spend.day_nanos,
                    month_nanos: spend.month_nanos,
                    total_nanos: spend.total_nanos,
                },
                can_manage: is_admin || k.created_by == user.id,
            });
        }
        let endpoints = s
            .store
            .visible_endpoints(m.org.id, user.id)
            .await?
            .into_iter()
            .filter(|e| e.archived_at.is_none())
            .map(|e| EndpointChoice {
                id: e.id.0,
                name: e.name,
                scope: e.scope.into(),
            })
            .collect();
        Ok(KeysPage {
            keys,
            can_create: is_admin || m.org.members_can_create_keys,
            is_admin,
            endpoints,
        })
    })
    .await
}

#[cfg(feature = "ssr")]
mod ssr_keys {
    use antix::domain::{EndpointId, KeyLimits, Millis, Role, User};

    use super::KeyForm;
    use crate::api::ApiError;
    use crate::api::ssr::Fields;
    use crate::format::{parse_count, parse_usd};

    /// Checks the form, reporting every bad field at once. Members may only scope their keys to
    /// endpoints they can see themselves, and must scope them: a key never carries more than
    /// its creator's reach.
    pub async fn validate(
        s: &antix::Services,
        user: &User,
        m: &antix::domain::Membership,
        form: &KeyForm,
    ) -> Result<(String, Option<Millis>, KeyLimits), ApiError> {
        let mut f = Fields::default();
        let name = f.check(
            "name",
            antix::domain::validate_name("name", &form.name).map_err(|e| e.message),
        );
        let expires = f.check("expires", parse_expiry(&form.expires)).flatten();
        let budget_daily_nanos = f
            .check("budget_daily", parse_usd(&form.budget_daily))
            .flatten();
        let budget_monthly_nanos = f
            .check("budget_monthly", parse_usd(&form.budget_monthly))
            .flatten();
        let budget_total_nanos = f
            .check("budget_total", parse_usd(&form.budget_total))
            .flatten();
        let rpm = f.check("rpm", parse_count(&form.rpm)).flatten();
        let tpm = f.check("tpm", parse_count(&form.tpm)).flatten();
        let allowed_models: Vec<String> = form
            .allowed_models
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        if allowed_models
            .iter()
            .any(|p| p.len() > 100 || p.chars().any(char::is_control))
        {
            f.check::<()>(
                "allowed_models",
                Err("Patterns are model names with `*` wildcards.".into()),
            );
        }
        let visible: Vec<EndpointId> = s
            .store
            .visible_endpoints(m.org.id, user.id)
            .await?
            .into_iter()
            .filter(|e| e.archived_at.is_none())
            .map(|e| e.id)
            .collect();
        let allowed_endpoints: Vec<EndpointId> = form
            .allowed_endpoints
            .iter()
            .map(|u| EndpointId(*u))
            .collect();
        if allowed_endpoints.iter().any(|e| !visible.contains(e)) {
            f.check::<()>(
                "allowed_endpoints",
                Err("Pick endpoints of this organization.".into()),
            );
        } else if m.role != Role::Admin && allowed_endpoints.is_empty() {
            f.check::<()>(
                "allowed_endpoints",
                Err(
                    "Members' keys are for their own use: pick the endpoints this key may call."
                        .into(),
                ),
            );
        }
        f.finish()?;
        Ok((
            name.unwrap_or_default(),
            expires,
            KeyLimits {
                budget_daily_nanos,
                budget_monthly_nanos,
                budget_total_nanos,
                rpm,
                tpm,
                allowed_models,
                allowed_endpoints,
                allow_unmetered: form.allow_unmetered,
            },
        ))
    }

    fn parse_expiry(text: &str) -> Result<Option<Millis>, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(None);
        }
        let date = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .map_err(|_| "Use a date like 2027-01-31.".to_owned())?;
        let end = date
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|dt| dt.and_utc().timestamp_millis())
            .ok_or_else(|| "Use a date like 2027-01-31.".to_owned())?;
        if end <= antix::domain::now_ms() {
            return Err("Pick a date in the future.".into());
        }
        Ok(Some(end))
    }
}

#[server(endpoint = "create_key", input = Json)]
pub async fn create_key(form: KeyForm) -> Result<CreatedKey, ApiError> {
    use super::ssr::*;
    use secrecy::ExposeSecret;
    run(async {
        let s = services()?;
        let (user, m) = org_context(&s).await?;
        if m.role != antix::domain::Role::Admin && !m.org.members_can_create_keys {
            return Err(ApiError::Forbidden(
                "Only organization admins can issue keys here.".into(),
            ));
        }
        // Calls whose cost is unknown are the admins' risk to take, not a member's.
        if m.role != antix::domain::Role::Admin && form.allow_unmetered {
            return Err(ApiError::Forbidden(
                "Only organization admins can let a key call APIs Antix cannot meter.".into(),
            ));
        }
        let (name, expires, limits) = ssr_keys::validate(&s, &user, &m, &form).await?;
        let issued = antix::virtual_keys::issue(
            &s.store, &s.keys, m.org.id, user.id, &name, expires, &limits,
        )
        .await?;
        Ok(CreatedKey {
            id: issued.key.id.0,
            name: issued.key.name,
            secret: issued.secret.expose_secret().to_owned(),
        })
    })
    .await
}

/// A key of the current organization that the user may manage (the rule is
/// [`antix::access::managed_key`]); anything else is `NotFound`.
#[cfg(feature = "ssr")]
async fn managed_key(
    s: &antix::Services,
    user: &antix::domain::User,
    m: &antix::domain::Membership,
    id: Uuid,
) -> Result<antix::domain::VirtualKey, ApiError> {
    antix::access::managed_key(&s.store, user, m, antix::domain::VirtualKeyId(id))
        .await?
        .ok_or(ApiError::NotFound)
}

#[server(endpoint = "update_key", input = Json)]
pub async fn update_key(id: Uuid, form: KeyForm) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let (user, m) = org_context(&s).await?;
        let k = managed_key(&s, &user, &m, id).await?;
        let (name, expires, limits) = ssr_keys::validate(&s, &user, &m, &form).await?;
        // Limits are the admins' promise about the organization's credential: a member sees
        // their key's limits and may rename it, never lift them.
        if m.role != antix::domain::Role::Admin && (limits != k.limits || expires != k.expires_at) {
            return Err(ApiError::Forbidden(
                "Only organization admins can change a key's limits or expiry.".into(),
            ));
        }
        s.store
            .update_virtual_key(m.org.id, k.id, &name, expires, &limits)
            .await?;
        Ok(())
    })
    .await
}

#[server(endpoint = "revoke_key")]
pub async fn revoke_key(id: Uuid) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let (user, m) = org_context(&s).await?;
        let k = managed_key(&s, &user, &m, id).await?;
        s.store
            .revoke_virtual_key(m.org.id, k.id, antix::domain::now_ms())
            .await?;
        Ok(())
    })
    .await
}
