//! Organizations' provider credentials: sealed with AES-256-GCM under the credentials key, with
//! the row's identity (organization and provider) as associated data, so a ciphertext copied to
//! another row or tenant does not decrypt. Shown only as their last four characters.

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{CryptoError, Keys};
use crate::domain::{Millis, OrgId, Provider, UserId};
use crate::store::credentials::NewCredential;
use crate::store::{Store, StoreError};

/// A decrypted credential, ready to call the provider with.
#[derive(Clone)]
pub struct UpstreamCredential {
    pub secret: SecretString,
    /// A custom OpenAI-compatible base URL, when the organization set one.
    pub base_url: Option<url::Url>,
}

impl std::fmt::Debug for UpstreamCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamCredential")
            .field("secret", &"<redacted>")
            .field("base_url", &self.base_url.as_ref().map(url::Url::as_str))
            .finish()
    }
}

fn aad(org: OrgId, provider: Provider) -> Vec<u8> {
    format!("antix/provider_credentials/v1|{org}|{}", provider.as_str()).into_bytes()
}

/// The last four characters, for display.
pub fn last4(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("stored base URL is invalid: {0}")]
    BadBaseUrl(String),
}

/// A credential to store, before encryption.
pub struct CredentialInput<'a> {
    pub org: OrgId,
    pub provider: Provider,
    pub secret: &'a SecretString,
    pub base_url: Option<&'a str>,
    pub by: UserId,
    pub at: Millis,
}

pub async fn set(store: &Store, keys: &Keys, c: &CredentialInput<'_>) -> Result<(), StoreError> {
    let ciphertext = keys.encrypt(c.secret.expose_secret().as_bytes(), &aad(c.org, c.provider));
    store
        .put_credential(&NewCredential {
            org: c.org,
            provider: c.provider,
            ciphertext: &ciphertext,
            last4: &last4(c.secret.expose_secret()),
            base_url: c.base_url,
            updated_by: c.by,
            at: c.at,
        })
        .await
}

/// The organization's credential for a provider, decrypted.
pub async fn get(
    store: &Store,
    keys: &Keys,
    org: OrgId,
    provider: Provider,
) -> Result<Option<UpstreamCredential>, CredentialError> {
    let Some(row) = store.credential(org, provider).await? else {
        return Ok(None);
    };
    let plain = keys.decrypt(&row.ciphertext, &aad(org, provider))?;
    let secret = String::from_utf8(plain).map_err(|_| CryptoError::Decrypt)?;
    let base_url = row
        .base_url
        .as_deref()
        .map(|u| url::Url::parse(u).map_err(|e| CredentialError::BadBaseUrl(e.to_string())))
        .transpose()?;
    Ok(Some(UpstreamCredential {
        secret: SecretString::from(secret),
        base_url,
    }))
}
