//! Provider credentials of the current organization: shown by their last four characters only,
//! set and replaced by admins (a new base URL always needs the key re-entered), and tested.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::ApiError;
use crate::model::{CredentialsPage, TestResult};

#[cfg(feature = "ssr")]
fn parse_provider(name: &str) -> Result<antix::domain::Provider, ApiError> {
    antix::domain::Provider::parse(name).ok_or(ApiError::NotFound)
}

#[server(endpoint = "credentials", input = GetUrl)]
pub async fn list_credentials() -> Result<CredentialsPage, ApiError> {
    use super::ssr::*;
    use crate::model::CredentialView;
    use antix::domain::Provider;
    run(async {
        let s = services()?;
        let (_, m) = org_context(&s).await?;
        let stored = s.store.list_credentials(m.org.id).await?;
        let mut providers = Vec::new();
        for p in Provider::ALL {
            let c = stored.iter().find(|c| c.provider == p.as_str());
            let updated_by = match c {
                Some(c) => s.store.user(c.updated_by).await?.map(|u| u.name),
                None => None,
            };
            providers.push(CredentialView {
                provider: p.as_str().to_owned(),
                label: match p {
                    Provider::OpenAi => "OpenAI (and OpenAI-compatible)",
                    Provider::Anthropic => "Anthropic",
                    Provider::Gemini => "Gemini",
                }
                .to_owned(),
                configured: c.is_some(),
                last4: c.map(|c| c.last4.clone()),
                base_url: c.and_then(|c| c.base_url.clone()),
                updated_at: c.map(|c| c.updated_at),
                updated_by,
            });
        }
        Ok(CredentialsPage {
            providers,
            is_admin: m.role == antix::domain::Role::Admin,
        })
    })
    .await
}

/// Sets the organization's key for a provider. The key is write-only: it is never sent back.
#[server(endpoint = "set_credential")]
pub async fn set_credential(
    provider: String,
    api_key: String,
    base_url: String,
) -> Result<(), ApiError> {
    use super::ssr::*;
    use secrecy::SecretString;
    run(async {
        let s = services()?;
        let (user, m) = org_context(&s).await?;
        require_admin(&m)?;
        let p = parse_provider(&provider)?;
        let mut f = Fields::default();
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
        f.finish()?;
        antix::credentials::set(
            &s.store,
            &s.keys,
            &antix::credentials::CredentialInput {
                org: m.org.id,
                provider: p,
                secret: &SecretString::from(key.to_owned()),
                base_url: base.as_deref(),
                by: user.id,
                at: antix::domain::now_ms(),
            },
        )
        .await?;
        Ok(())
    })
    .await
}

#[server(endpoint = "delete_credential")]
pub async fn delete_credential(provider: String) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let (_, m) = org_context(&s).await?;
        require_admin(&m)?;
        let p = parse_provider(&provider)?;
        s.store.delete_credential(m.org.id, p).await?;
        Ok(())
    })
    .await
}

/// Calls the provider's model list with the stored key and reports what happened.
#[server(endpoint = "test_credential")]
pub async fn test_credential(provider: String) -> Result<TestResult, ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let (_, m) = org_context(&s).await?;
        require_admin(&m)?;
        let p = parse_provider(&provider)?;
        let cred = antix::credentials::get(&s.store, &s.keys, m.org.id, p)
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::Conflict("Set a key for this provider first.".into()))?;
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
