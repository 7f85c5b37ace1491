//! Provider credentials of an organization: listed by their last four characters only, set and
//! replaced by name, turned off and on, deleted and tested by admins. The key is write-only.

use secrecy::{ExposeSecret, SecretString};

use super::{Actor, ManageError, Result};
use crate::config::Settings;
use crate::credentials::{CredentialInput, TestOutcome};
use crate::crypto::Keys;
use crate::domain::{CredentialId, FieldError, Provider, now_ms};
use crate::store::Store;
use crate::store::credentials::StoredCredential;

/// A credential to set, typed (each adapter parses its own input format into this).
#[derive(Debug)]
pub struct CredentialSpec {
    pub provider: Provider,
    /// Its name among the provider's credentials; setting an existing name replaces that one.
    pub name: String,
    pub api_key: SecretString,
    /// OpenAI-compatible servers only.
    pub base_url: Option<String>,
    /// Share of the provider's calls, 0 to 1000 (0: only when the others fail).
    pub weight: u32,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub enabled: bool,
}

/// The largest weight a credential may have.
pub const MAX_WEIGHT: u32 = 1000;

/// Every credential of the actor's organization (members may see them: names and last four
/// characters, never the key).
pub async fn list(store: &Store, actor: &Actor) -> Result<Vec<StoredCredential>> {
    Ok(store.list_credentials(actor.org()).await?)
}

pub async fn find(store: &Store, actor: &Actor, id: CredentialId) -> Result<StoredCredential> {
    store
        .credential_by_id(actor.org(), id)
        .await?
        .ok_or(ManageError::NotFound)
}

/// Every problem with `spec`, field by field, and the base URL as it will be stored.
pub fn check(settings: &Settings, spec: &CredentialSpec) -> (Vec<FieldError>, Option<String>) {
    let mut errors = Vec::new();
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "name",
            "A short name, such as \"primary\" or \"team-b\".",
        ));
    }
    let key = spec.api_key.expose_secret().trim();
    if key.len() < 8 || key.len() > 1000 || key.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        errors.push(FieldError::new("api_key", "Paste the provider's API key."));
    } else if crate::gateway::caller::is_virtual_key(key) {
        errors.push(FieldError::new(
            "api_key",
            "That is an Antix virtual key; paste the provider's own key.",
        ));
    }
    let base = match spec.base_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(_) if spec.provider != Provider::OpenAi => {
            errors.push(FieldError::new(
                "base_url",
                "A custom base URL is for OpenAI-compatible providers.",
            ));
            None
        }
        Some(b) => match crate::egress::validate_base_url(b, settings.dev_mode) {
            Ok(u) => Some(u.to_string()),
            Err(e) => {
                errors.push(FieldError::new("base_url", e));
                None
            }
        },
    };
    if spec.weight > MAX_WEIGHT {
        errors.push(FieldError::new("weight", "A whole number from 0 to 1000."));
    }
    for (field, v) in [("rpm", spec.rpm), ("tpm", spec.tpm)] {
        if v.is_some_and(|n| n <= 0) {
            errors.push(FieldError::new(
                field,
                "A whole number above 0, or empty for no limit.",
            ));
        }
    }
    (errors, base)
}

/// Adds a credential, or replaces the provider's credential of that name (keeping its id, so
/// its health and history stay with it). Admins only.
pub async fn set(
    store: &Store,
    keys: &Keys,
    settings: &Settings,
    actor: &Actor,
    spec: &CredentialSpec,
) -> Result<StoredCredential> {
    actor.may_write()?;
    actor.require_admin()?;
    let (errors, base) = check(settings, spec);
    if !errors.is_empty() {
        return Err(ManageError::Invalid(errors));
    }
    let secret = SecretString::from(spec.api_key.expose_secret().trim().to_owned());
    let mut input = CredentialInput::single(
        actor.org(),
        spec.provider,
        &secret,
        base.as_deref(),
        actor.user.id,
        now_ms(),
    );
    input.name = spec.name.trim();
    input.weight = spec.weight;
    input.rpm = spec.rpm;
    input.tpm = spec.tpm;
    input.enabled = spec.enabled;
    let id = crate::credentials::set(store, keys, &input).await?;
    find(store, actor, id).await
}

pub async fn delete(store: &Store, actor: &Actor, id: CredentialId) -> Result<()> {
    actor.may_write()?;
    actor.require_admin()?;
    if store.delete_credential(actor.org(), id).await? {
        Ok(())
    } else {
        Err(ManageError::NotFound)
    }
}

/// Turns a credential off (kept, never used) or back on.
pub async fn set_enabled(
    store: &Store,
    actor: &Actor,
    id: CredentialId,
    enabled: bool,
) -> Result<StoredCredential> {
    actor.may_write()?;
    actor.require_admin()?;
    if !store
        .set_credential_enabled(actor.org(), id, enabled)
        .await?
    {
        return Err(ManageError::NotFound);
    }
    find(store, actor, id).await
}

/// Calls the provider's model list with the stored key and reports what happened. Admins only
/// (it spends a call of the organization's key); a read-only token may test, it changes nothing.
pub async fn test(
    store: &Store,
    keys: &Keys,
    settings: &Settings,
    actor: &Actor,
    id: CredentialId,
) -> Result<TestOutcome> {
    actor.require_admin()?;
    let row = find(store, actor, id).await?;
    let provider = Provider::parse(&row.provider).ok_or(ManageError::NotFound)?;
    let cred = crate::credentials::open_or_learn(store, keys, &row)
        .await
        .map_err(|e| {
            ManageError::Store(crate::store::StoreError::Corrupt(format!(
                "credential: {e}"
            )))
        })?;
    Ok(crate::credentials::test(settings, &cred, provider).await)
}
