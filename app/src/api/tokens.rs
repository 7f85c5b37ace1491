//! Organization API tokens (for the management REST API): list, issue (shown once), revoke.
//! Admins only; the rules are [`antix::manage::tokens`].

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use uuid::Uuid;

use super::ApiError;
use crate::model::{ApiTokenView, CreatedToken};

#[server(endpoint = "api_tokens", input = GetUrl)]
pub async fn list_api_tokens() -> Result<Vec<ApiTokenView>, ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        let tokens = antix::manage::tokens::list(&s.store, &actor).await?;
        let names: std::collections::HashMap<_, _> = s
            .store
            .members(actor.org())
            .await?
            .into_iter()
            .map(|mb| (mb.user.id, mb.user.name))
            .collect();
        Ok(tokens
            .into_iter()
            .map(|t| ApiTokenView {
                id: t.id.0,
                name: t.name,
                display: t.display,
                can_write: t.can_write,
                created_by: names
                    .get(&t.created_by)
                    .cloned()
                    .unwrap_or_else(|| "former member".into()),
                created_at: t.created_at,
                last_used_at: t.last_used_at,
                revoked_at: t.revoked_at,
            })
            .collect())
    })
    .await
}

/// Issues a token: `access` is `read` or `write`.
#[server(endpoint = "create_api_token")]
pub async fn create_api_token(name: String, access: String) -> Result<CreatedToken, ApiError> {
    use super::ssr::*;
    use secrecy::ExposeSecret;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        let can_write = match access.as_str() {
            "read" => false,
            "write" => true,
            _ => {
                return Err(ApiError::invalid(
                    "access",
                    "Choose read-only or read-write.",
                ));
            }
        };
        let issued =
            antix::manage::tokens::issue(&s.store, &s.keys, &actor, &name, can_write).await?;
        Ok(CreatedToken {
            name: issued.token.name,
            secret: issued.secret.expose_secret().to_owned(),
        })
    })
    .await
}

#[server(endpoint = "revoke_api_token")]
pub async fn revoke_api_token(id: Uuid) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        antix::manage::tokens::revoke(&s.store, &actor, antix::domain::ApiTokenId(id)).await?;
        Ok(())
    })
    .await
}
