//! Organization API tokens: issued and revoked by admins, presented as `Authorization: Bearer`
//! to the management API.

use secrecy::SecretString;

use super::{Actor, ManageError, Result};
use crate::crypto::{self, Keys};
use crate::domain::{ApiToken, ApiTokenId, Role, now_ms};
use crate::store::Store;
use crate::store::api_tokens::NewApiToken;

/// A newly issued token. `secret` is the only copy there will ever be.
pub struct IssuedToken {
    pub token: ApiToken,
    pub secret: SecretString,
}

/// At most this many live tokens per organization: tokens are for scripts and pipelines, and a
/// loop that issues them must not fill the table.
pub const MAX_TOKENS_PER_ORG: usize = 100;

pub async fn list(store: &Store, actor: &Actor) -> Result<Vec<ApiToken>> {
    actor.require_admin()?;
    Ok(store.list_api_tokens(actor.org()).await?)
}

/// Issues a token for the actor's organization. Only admins issue tokens, and only from the
/// portal or the CLI: a token cannot mint a longer-lived copy of itself.
pub async fn issue(
    store: &Store,
    keys: &Keys,
    actor: &Actor,
    name: &str,
    can_write: bool,
) -> Result<IssuedToken> {
    actor.require_admin()?;
    if actor.token.is_some() {
        return Err(ManageError::Forbidden(
            "API tokens are issued in the portal, not with another token.".into(),
        ));
    }
    let name = crate::domain::validate_name("name", name)?;
    let live = store
        .list_api_tokens(actor.org())
        .await?
        .iter()
        .filter(|t| t.revoked_at.is_none())
        .count();
    if live >= MAX_TOKENS_PER_ORG {
        return Err(ManageError::Conflict(format!(
            "This organization has {MAX_TOKENS_PER_ORG} live API tokens, the most it may have. \
             Revoke one first."
        )));
    }
    let secret = crypto::generate_api_token();
    let token = store
        .create_api_token(&NewApiToken {
            org: actor.org(),
            created_by: actor.user.id,
            name: &name,
            token_hash: &keys.token_hash(&secret),
            display: &crypto::api_token_display(&secret),
            can_write,
        })
        .await?;
    Ok(IssuedToken {
        token,
        secret: SecretString::from(secret),
    })
}

pub async fn revoke(store: &Store, actor: &Actor, id: ApiTokenId) -> Result<()> {
    actor.require_admin()?;
    actor.may_write()?;
    match store.revoke_api_token(actor.org(), id, now_ms()).await {
        Err(crate::store::StoreError::NotFound) => Err(ManageError::NotFound),
        other => Ok(other?),
    }
}

/// The actor a bearer token stands for, or `None` when it opens nothing: not a token's shape,
/// unknown, revoked, or its creator is no longer an admin of its organization (a token never
/// outlives its creator's rights).
pub async fn authenticate(store: &Store, keys: &Keys, bearer: &str) -> Result<Option<Actor>> {
    if !crypto::api_token_checksum_ok(bearer) {
        return Ok(None);
    }
    let Some(token) = store.api_token_by_hash(&keys.token_hash(bearer)).await? else {
        return Ok(None);
    };
    if token.revoked_at.is_some() {
        return Ok(None);
    }
    let Some(user) = store.user(token.created_by).await? else {
        return Ok(None);
    };
    let Some(membership) = store
        .memberships(user.id)
        .await?
        .into_iter()
        .find(|m| m.org.id == token.org_id && m.role == Role::Admin)
    else {
        return Ok(None);
    };
    let now = now_ms();
    if token
        .last_used_at
        .is_none_or(|t| t < now - crate::domain::MINUTE_MS)
    {
        store.touch_api_token(token.id, now).await?;
    }
    Ok(Some(Actor {
        user,
        membership,
        token: Some(token),
    }))
}
