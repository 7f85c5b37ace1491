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
    use secrecy::SecretString;
    run(async {
        let s = services()?;
        let (user, m) = org_context(&s).await?;
        require_admin(&m)?;
        let p = parse_provider(&provider)?;
        let mut f = Fields::default();
        let name = name.trim();
        let name = if name.is_empty() { "default" } else { name };
        f.check(
            "name",
            if name.chars().count() > 60 || name.chars().any(char::is_control) {
                Err("A short name, such as \"primary\" or \"team-b\".".to_owned())
            } else {
                Ok(())
            },
        );
        let key = api_key.trim();
        f.check(
            "api_key",
            if key.len() < 8
                || key.len() > 1000
                || key.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                Err("Paste the provider's API key.".to_owned())
            } else if antix::gateway::caller::is_virtual_key(key) {
                Err("That is an Antix virtual key; paste the provider's own key.".to_owned())
            } else {
                Ok(())
            },
        );
        let base = base_url.trim();
        let base = if base.is_empty() {
            None
        } else if p != antix::domain::Provider::OpenAi {
            f.check::<()>(
                "base_url",
                Err("A custom base URL is for OpenAI-compatible providers.".into()),
            );
            None
        } else {
            f.check(
                "base_url",
                antix::egress::validate_base_url(base, s.settings.dev_mode).map(|u| u.to_string()),
            )
        };
        let weight = match weight.trim() {
            "" => Some(1),
            w => f.check(
                "weight",
                w.parse::<u32>()
                    .ok()
                    .filter(|w| *w <= 1000)
                    .ok_or_else(|| "A whole number from 0 to 1000.".to_owned()),
            ),
        };
        let limit = |f: &mut Fields, field: &'static str, v: &str| match v.trim() {
            "" => None,
            v => f.check(
                field,
                v.parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| "A whole number above 0, or empty for no limit.".to_owned()),
            ),
        };
        let rpm = limit(&mut f, "rpm", &rpm);
        let tpm = limit(&mut f, "tpm", &tpm);
        f.finish()?;
        let secret = SecretString::from(key.to_owned());
        let mut input = antix::credentials::CredentialInput::single(
            m.org.id,
            p,
            &secret,
            base.as_deref(),
            user.id,
            antix::domain::now_ms(),
        );
        input.name = name;
        input.weight = weight.unwrap_or(1);
        input.rpm = rpm;
        input.tpm = tpm;
        antix::credentials::set(&s.store, &s.keys, &input).await?;
        Ok(())
    })
    .await
}

#[server(endpoint = "delete_credential")]
pub async fn delete_credential(id: Uuid) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let (_, m) = org_context(&s).await?;
        require_admin(&m)?;
        if !s
            .store
            .delete_credential(m.org.id, antix::domain::CredentialId(id))
            .await?
        {
            return Err(ApiError::NotFound);
        }
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
        let (_, m) = org_context(&s).await?;
        require_admin(&m)?;
        if !s
            .store
            .set_credential_enabled(m.org.id, antix::domain::CredentialId(id), enabled)
            .await?
        {
            return Err(ApiError::NotFound);
        }
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
        let (_, m) = org_context(&s).await?;
        require_admin(&m)?;
        let row = s
            .store
            .credential_by_id(m.org.id, antix::domain::CredentialId(id))
            .await?
            .ok_or(ApiError::NotFound)?;
        let p = parse_provider(&row.provider)?;
        let cred = antix::credentials::open_or_learn(&s.store, &s.keys, &row)
            .await
            .map_err(internal)?;
        let t = antix::credentials::test(&s.settings, &cred, p).await;
        Ok(TestResult {
            ok: t.ok,
            status: t.status,
            message: t.message,
            latency_ms: t.latency_ms,
        })
    })
    .await
}
