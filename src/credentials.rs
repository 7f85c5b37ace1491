//! Organizations' provider credentials: sealed with AES-256-GCM under the credentials key, with
//! the row's identity (organization, provider and, since credentials have ids, the id) as
//! associated data, so a ciphertext copied to another row or tenant does not decrypt. Shown
//! only as their last four characters. An organization may hold several per provider (a name
//! each): the proxy balances between the enabled ones by weight (see `crate::gateway::balance`).

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{CryptoError, Keys};
use crate::domain::{CredentialId, Millis, OrgId, Provider, UserId};
use crate::store::credentials::{NewCredential, StoredCredential};
use crate::store::{Store, StoreError};

/// A decrypted credential, ready to call the provider with.
#[derive(Clone)]
pub struct UpstreamCredential {
    pub id: CredentialId,
    pub name: String,
    pub secret: SecretString,
    /// A custom OpenAI-compatible base URL, when the organization set one.
    pub base_url: Option<url::Url>,
    pub weight: u32,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub enabled: bool,
}

impl std::fmt::Debug for UpstreamCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamCredential")
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .field("base_url", &self.base_url.as_ref().map(url::Url::as_str))
            .finish()
    }
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
    #[error(transparent)]
    Keyring(#[from] Box<crate::keyring::KeyringError>),
}

/// A credential to store, before encryption.
pub struct CredentialInput<'a> {
    pub org: OrgId,
    pub provider: Provider,
    /// Its name among the provider's credentials (`default` when there is one).
    pub name: &'a str,
    pub secret: &'a SecretString,
    pub base_url: Option<&'a str>,
    pub by: UserId,
    pub at: Millis,
    pub weight: u32,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub enabled: bool,
}

impl<'a> CredentialInput<'a> {
    /// A provider's only credential: named `default`, weight 1, enabled, no limits.
    pub fn single(
        org: OrgId,
        provider: Provider,
        secret: &'a SecretString,
        base_url: Option<&'a str>,
        by: UserId,
        at: Millis,
    ) -> Self {
        CredentialInput {
            org,
            provider,
            name: "default",
            secret,
            base_url,
            by,
            at,
            weight: 1,
            rpm: None,
            tpm: None,
            enabled: true,
        }
    }
}

/// Adds (or, by name, replaces) a credential. Returns its id.
pub async fn set(
    store: &Store,
    keys: &Keys,
    c: &CredentialInput<'_>,
) -> Result<CredentialId, StoreError> {
    // A rotation may have started since this server did: encrypt with the key it moves to.
    if let Err(e) = crate::keyring::learn(store, keys).await {
        tracing::warn!(error = %e, "could not read the keyring");
    }
    // Replacing a named credential keeps its id (so its health and history stay with it).
    let id = store
        .credentials_for(c.org, c.provider)
        .await?
        .into_iter()
        .find(|r| r.name == c.name)
        .map_or_else(|| CredentialId(uuid::Uuid::new_v4()), |r| r.id);
    let (ciphertext, key_id) = keys.encrypt_newest(
        c.secret.expose_secret().as_bytes(),
        &crate::keyring::aad(c.org, c.provider, id, 2),
    );
    store
        .put_credential(&NewCredential {
            id,
            org: c.org,
            provider: c.provider,
            name: c.name,
            ciphertext: &ciphertext,
            key_version: 2,
            last4: &last4(c.secret.expose_secret()),
            base_url: c.base_url,
            updated_by: c.by,
            at: c.at,
            key_id: &key_id,
            weight: i64::from(c.weight),
            rpm: c.rpm,
            tpm: c.tpm,
            enabled: c.enabled,
        })
        .await
}

/// The organization's first enabled credential for a provider, decrypted.
pub async fn get(
    store: &Store,
    keys: &Keys,
    org: OrgId,
    provider: Provider,
) -> Result<Option<UpstreamCredential>, CredentialError> {
    match store.credential(org, provider).await? {
        Some(row) => open_or_learn(store, keys, &row).await.map(Some),
        None => Ok(None),
    }
}

/// Opens a credential; one made with a master key this server has not learned yet (a rotation
/// started elsewhere) sends it to the keyring first.
pub async fn open_or_learn(
    store: &Store,
    keys: &Keys,
    row: &StoredCredential,
) -> Result<UpstreamCredential, CredentialError> {
    if let Some(id) = row.key_id.as_deref()
        && !keys.knows(id)
    {
        crate::keyring::learn_throttled(store, keys)
            .await
            .map_err(Box::new)?;
    }
    open(keys, row)
}

/// Every credential of a provider, decrypted, through the store's hot-path cache (the proxy's
/// lookup). Decrypting is cheap next to a database round trip, and keeping only ciphertext in
/// memory keeps secrets out of the cache.
pub async fn all_cached(
    store: &Store,
    keys: &Keys,
    org: OrgId,
    provider: Provider,
) -> Result<Vec<UpstreamCredential>, CredentialError> {
    let rows = store.credentials_cached(org, provider).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows.iter() {
        out.push(open_or_learn(store, keys, row).await?);
    }
    Ok(out)
}

/// The first enabled credential of a provider through the cache.
pub async fn get_cached(
    store: &Store,
    keys: &Keys,
    org: OrgId,
    provider: Provider,
) -> Result<Option<UpstreamCredential>, CredentialError> {
    let rows = store.credentials_cached(org, provider).await?;
    match rows.iter().find(|r| r.enabled) {
        Some(row) => open_or_learn(store, keys, row).await.map(Some),
        None => Ok(None),
    }
}

fn open(keys: &Keys, row: &StoredCredential) -> Result<UpstreamCredential, CredentialError> {
    let aad = crate::keyring::aad_of(row).ok_or(CryptoError::Decrypt)?;
    let plain = keys.decrypt_by(row.key_id.as_deref(), &row.ciphertext, &aad)?;
    let secret = String::from_utf8(plain).map_err(|_| CryptoError::Decrypt)?;
    let base_url = row
        .base_url
        .as_deref()
        .map(|u| url::Url::parse(u).map_err(|e| CredentialError::BadBaseUrl(e.to_string())))
        .transpose()?;
    Ok(UpstreamCredential {
        id: row.id,
        name: row.name.clone(),
        secret: SecretString::from(secret),
        base_url,
        weight: u32::try_from(row.weight).unwrap_or(0),
        rpm: row.rpm,
        tpm: row.tpm,
        enabled: row.enabled,
    })
}

/// What the credential "Test" button reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub ok: bool,
    pub status: Option<u16>,
    pub message: String,
    pub latency_ms: u64,
}

/// The start of a response body, at most `cap` bytes, within 15 s.
async fn read_capped(mut res: reqwest::Response, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = res.chunk().await {
            out.extend_from_slice(&chunk[..chunk.len().min(cap - out.len())]);
            if out.len() >= cap {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(15), read).await;
    out
}

/// Makes the cheapest authenticated call the provider has (listing models) with the stored
/// credential, through the SSRF-guarded client when the organization set its own base URL.
pub async fn test(
    settings: &crate::config::Settings,
    cred: &UpstreamCredential,
    provider: Provider,
) -> TestOutcome {
    let started = std::time::Instant::now();
    let custom = cred.base_url.is_some();
    let base = cred
        .base_url
        .clone()
        .unwrap_or_else(|| settings.upstream.for_provider(provider).clone());
    let path = match provider {
        Provider::Gemini => "/v1beta/models",
        Provider::OpenAi | Provider::Anthropic => "/v1/models",
    };
    let url = format!(
        "{}{}",
        base.as_str().trim_end_matches('/'),
        crate::egress::without_repeated_version(&base, path)
    );
    let outcome = |ok, status, message: String| TestOutcome {
        ok,
        status,
        message,
        latency_ms: started.elapsed().as_millis() as u64,
    };
    let Ok(parsed) = url::Url::parse(&url) else {
        return outcome(false, None, "The base URL is not valid.".into());
    };
    if custom && let Err(e) = crate::egress::check_target(&parsed, settings.dev_mode) {
        return outcome(false, None, e);
    }
    let client = if custom {
        crate::egress::guarded_client(settings.timeouts.connect, settings.dev_mode)
    } else {
        crate::egress::client(settings.timeouts.connect)
    };
    let Ok(client) = client else {
        return outcome(false, None, "Could not create an HTTP client.".into());
    };
    let secret = cred.secret.expose_secret();
    let Ok((name, value)) = crate::egress::provider_auth(provider, secret) else {
        return outcome(
            false,
            None,
            "The stored key is not valid header text.".into(),
        );
    };
    let mut req = client.get(parsed).header(name, value);
    if provider == Provider::Anthropic {
        req = req.header("anthropic-version", "2023-06-01");
    }
    match tokio::time::timeout(std::time::Duration::from_secs(15), req.send()).await {
        Err(_) => outcome(
            false,
            None,
            "The provider did not answer within 15 s.".into(),
        ),
        Ok(Err(e)) => outcome(
            false,
            None,
            format!(
                "Could not reach the provider: {}",
                crate::egress::describe_error(&e)
            ),
        ),
        Ok(Ok(res)) => {
            let status = res.status().as_u16();
            // A model list is a few hundred KB at most; an endless or huge answer from a base
            // URL pointing elsewhere is not read past this.
            let bytes = read_capped(res, 2 << 20).await;
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            if (200..300).contains(&status) {
                let n = body
                    .get("data")
                    .or_else(|| body.get("models"))
                    .and_then(serde_json::Value::as_array)
                    .map_or(0, Vec::len);
                outcome(
                    true,
                    Some(status),
                    format!("Connected: the key works ({n} models listed)."),
                )
            } else {
                let detail = body
                    .pointer("/error/message")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("no details")
                    .replace(secret, "<redacted>");
                outcome(
                    false,
                    Some(status),
                    format!("The provider refused the key (HTTP {status}): {detail}"),
                )
            }
        }
    }
}
