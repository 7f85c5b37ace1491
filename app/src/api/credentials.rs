//! Provider credentials of the current organization: shown by their last four characters only,
//! set and replaced by admins (a new base URL always needs the key re-entered), and tested.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::ApiError;
use crate::model::{CredentialsPage, TestResult};
use uuid::Uuid;

#[cfg(feature = "ssr")]
fn parse_provider(name: &str) -> Result<antix::domain::Provider, ApiError> {
    antix::domain::Provider::parse(name).ok_or(ApiError::NotFound)
}

#[server(endpoint = "credentials", input = GetUrl)]
pub async fn list_credentials() -> Result<CredentialsPage, ApiError> {
    use super::ssr::*;
    use crate::model::{CredentialView, ProviderCredentials};
    use antix::domain::Provider;
    run(async {
        let s = services()?;
        let (_, m) = org_context(&s).await?;
        let stored = s.store.list_credentials(m.org.id).await?;
        let ids: Vec<_> = stored.iter().map(|c| c.id).collect();
        let now = antix::domain::now_ms();
        let resting: Vec<_> = s.store.cooldowns(&ids).await?;
        let mut providers = Vec::new();
        for p in Provider::ALL {
            let mut credentials = Vec::new();
            for c in stored.iter().filter(|c| c.provider == p.as_str()) {
                credentials.push(CredentialView {
                    id: c.id.0,
                    name: c.name.clone(),
                    last4: c.last4.clone(),
                    base_url: c.base_url.clone(),
                    weight: c.weight,
                    rpm: c.rpm,
                    tpm: c.tpm,
                    enabled: c.enabled,
                    updated_at: c.updated_at,
                    updated_by: s.store.user(c.updated_by).await?.map(|u| u.name),
                    resting_until: resting
                        .iter()
                        .find(|(id, until, _)| *id == c.id && *until > now)
                        .map(|(_, until, _)| *until),
                });
            }
            providers.push(ProviderCredentials {
                provider: p.as_str().to_owned(),
                label: match p {
                    Provider::OpenAi => "OpenAI (and OpenAI-compatible)",
                    Provider::Anthropic => "Anthropic",
                    Provider::Gemini => "Gemini",
                }
                .to_owned(),
                credentials,
            });
        }
        Ok(CredentialsPage {
            providers,
            is_admin: m.role == antix::domain::Role::Admin,
        })
    })
    .await
}

/// Adds a credential for a provider, or replaces the one with that name. The key is
/// write-only: it is never sent back. Several credentials of a provider share its calls by
/// weight (0: only when the others fail).
#[server(endpoint = "set_credential")]
pub async fn set_credential(
    provider: String,
    name: String,
    api_key: String,
    base_url: String,
    weight: String,
    rpm: String,
    tpm: String,
) -> Result<(), ApiError> {
    use super::ssr::*;
    use antix::manage::credentials::{self as core, CredentialSpec};
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        actor.require_admin()?;
        let provider = parse_provider(&provider)?;
        // The form's text fields into numbers; the core checks the rest.
        let mut f = Fields::default();
        let weight = match weight.trim() {
            "" => Some(1),
            w => f.check(
                "weight",
                w.parse::<u32>()
                    .map_err(|_| "A whole number from 0 to 1000.".to_owned()),
            ),
        };
        let mut limit = |field: &'static str, v: &str| match v.trim() {
            "" => None,
            v => f
                .check(
                    field,
                    v.parse::<i64>()
                        .map_err(|_| "A whole number above 0, or empty for no limit.".to_owned()),
                )
                .or(Some(0)),
        };
        let (rpm, tpm) = (limit("rpm", &rpm), limit("tpm", &tpm));
        let name = name.trim();
        let spec = CredentialSpec {
            provider,
            name: if name.is_empty() { "default" } else { name }.to_owned(),
            api_key: api_key.into(),
            base_url: Some(base_url),
            weight: weight.unwrap_or(0),
            rpm,
            tpm,
            enabled: true,
        };
        let (problems, _) = core::check(&s.settings, &spec);
        for p in problems {
            if !f.has(p.field) {
                f.check::<()>(p.field, Err(p.message));
            }
        }
        f.finish()?;
        core::set(&s.store, &s.keys, &s.settings, &actor, &spec).await?;
        Ok(())
    })
    .await
}

#[server(endpoint = "delete_credential")]
pub async fn delete_credential(id: Uuid) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        antix::manage::credentials::delete(&s.store, &actor, antix::domain::CredentialId(id))
            .await?;
        Ok(())
    })
    .await
}

/// Turns a credential off (kept, never used) or back on.
#[server(endpoint = "set_credential_enabled")]
pub async fn set_credential_enabled(id: Uuid, enabled: bool) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        antix::manage::credentials::set_enabled(
            &s.store,
            &actor,
            antix::domain::CredentialId(id),
            enabled,
        )
        .await?;
        Ok(())
    })
    .await
}

/// Calls the provider's model list with the stored key and reports what happened.
#[server(endpoint = "test_credential")]
pub async fn test_credential(id: Uuid) -> Result<TestResult, ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        let t = antix::manage::credentials::test(
            &s.store,
            &s.keys,
            &s.settings,
            &actor,
            antix::domain::CredentialId(id),
        )
        .await?;
        Ok(TestResult {
            ok: t.ok,
            status: t.status,
            message: t.message,
            latency_ms: t.latency_ms,
        })
    })
    .await
}
