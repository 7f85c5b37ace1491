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
    use antix::domain::{EndpointId, KeyLimits, Millis};
    use antix::manage::Actor;
    use antix::manage::keys::KeyInput;

    use super::KeyForm;
    use crate::api::ApiError;
    use crate::api::ssr::Fields;
    use crate::format::{parse_count, parse_usd};

    /// Reads the form as typed, then asks the core's checks (the rules are
    /// [`antix::manage::keys::check`]); every bad field is reported at once.
    pub async fn read(
        s: &antix::Services,
        actor: &Actor,
        form: &KeyForm,
    ) -> Result<KeyInput, ApiError> {
        let mut f = Fields::default();
        let expires_at = f.check("expires", parse_expiry(&form.expires)).flatten();
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
        let input = KeyInput {
            name: form.name.clone(),
            expires_at,
            limits: KeyLimits {
                budget_daily_nanos,
                budget_monthly_nanos,
                budget_total_nanos,
                rpm,
                tpm,
                allowed_models: form
                    .allowed_models
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
                allowed_endpoints: form
                    .allowed_endpoints
                    .iter()
                    .map(|u| EndpointId(*u))
                    .collect(),
                allow_unmetered: form.allow_unmetered,
            },
        };
        for e in antix::manage::keys::check(&s.store, actor, &input).await? {
            f.check::<()>(e.field, Err(e.message));
        }
        f.finish()?;
        Ok(input)
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
        let actor = actor(&s).await?;
        antix::manage::keys::may_issue(&actor, form.allow_unmetered)?;
        let input = ssr_keys::read(&s, &actor, &form).await?;
        let issued = antix::manage::keys::issue(&s.store, &s.keys, &actor, &input).await?;
        Ok(CreatedKey {
            id: issued.key.id.0,
            name: issued.key.name,
            secret: issued.secret.expose_secret().to_owned(),
        })
    })
    .await
}

#[server(endpoint = "update_key", input = Json)]
pub async fn update_key(id: Uuid, form: KeyForm) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        let id = antix::domain::VirtualKeyId(id);
        antix::manage::keys::find(&s.store, &actor, id).await?;
        let input = ssr_keys::read(&s, &actor, &form).await?;
        antix::manage::keys::update(&s.store, &actor, id, &input).await?;
        Ok(())
    })
    .await
}

#[server(endpoint = "revoke_key")]
pub async fn revoke_key(id: Uuid) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        antix::manage::keys::revoke(&s.store, &actor, antix::domain::VirtualKeyId(id)).await?;
        Ok(())
    })
    .await
}
