//! Master key rotation. The master key encrypts organizations' provider credentials; the lookup
//! secrets (the token pepper that virtual keys are hashed with, the session and CSRF keys) are
//! the instance's own, wrapped under the master key, so rotating it keeps every virtual key,
//! portal session and invitation working.
//!
//! `antix admin rotate-master-key` re-encrypts every credential under a new key without
//! downtime: the new key is first stored wrapped under the current one (every server running
//! with the current key learns it, and reads credentials already moved), then rows are moved one
//! by one (each update checks the row is as it was read), then the lookup secrets are re-wrapped.
//! An interrupted run resumes where it stopped; the old key stays valid until it is done.

use crate::crypto::{CryptoError, INSTANCE_SECRETS, Keys, MasterKey};
use crate::domain::{CredentialId, OrgId, Provider, now_ms};
use crate::store::credentials::StoredCredential;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

fn label(purpose: &str) -> String {
    format!("instance/{purpose}")
}

/// The keys a server runs with: derived from its master key, with the instance's lookup secrets
/// (recorded on first start, so an existing instance keeps the ones it always had), and every
/// other master key a rotation wrapped under this one.
pub async fn load(store: &Store, master: &MasterKey) -> Result<Keys, KeyringError> {
    let mut keys = master.keys();
    learn(store, &keys).await?;
    for purpose in INSTANCE_SECRETS {
        if store.instance_secret(purpose).await?.is_none()
            && let Some(derived) = keys.derived_instance_secret(purpose)
        {
            let wrapped = keys.wrap(&derived, &label(purpose));
            store
                .put_instance_secret(purpose, keys.key_id(), &wrapped, false)
                .await?;
        }
        // Read back: when two servers start at once, the first to record it wins.
        if let Some((key_id, wrapped)) = store.instance_secret(purpose).await? {
            let secret = keys.unwrap_by(&key_id, &wrapped, &label(purpose))?;
            keys = keys.with_instance_secret(purpose, secret);
        }
    }
    Ok(keys)
}

/// Learns the master keys wrapped under this server's, and those wrapped under them (rotations
/// chain), and notes the newest, which new credentials are encrypted with.
pub async fn learn(store: &Store, keys: &Keys) -> Result<(), KeyringError> {
    keys.last_learn_ms
        .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
    let entries = store.keyring_entries().await?;
    loop {
        let mut learned = false;
        for (id, wrapped, by) in &entries {
            if keys.knows(by) && !keys.knows(id) {
                keys.learn_master_by(by, id, wrapped)?;
                learned = true;
            }
        }
        if !learned {
            break;
        }
    }
    // The end of the chain from this key: each step is a key wrapped under the previous one.
    let mut newest = keys.key_id().to_owned();
    let mut seen = vec![newest.clone()];
    while let Some((id, _, _)) = entries
        .iter()
        .find(|(id, _, by)| *by == newest && keys.knows(id) && !seen.contains(id))
    {
        newest = id.clone();
        seen.push(newest.clone());
    }
    keys.set_newest((newest != keys.key_id()).then_some(newest));
    Ok(())
}

/// [`learn`], at most once every few seconds: for a row made with a key no server here knows,
/// which would otherwise send every request that reads it to the database.
pub async fn learn_throttled(store: &Store, keys: &Keys) -> Result<(), KeyringError> {
    const EVERY_MS: i64 = 5_000;
    let last = keys
        .last_learn_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    if now_ms() - last < EVERY_MS {
        return Ok(());
    }
    learn(store, keys).await
}

/// Forgets the master keys no credential or lookup secret uses any more, once a rotation is
/// done and every server runs on the new key: the new key stays wrapped under the old one
/// until then, so whoever holds the old key could read it from the database.
pub async fn forget_retired(store: &Store, keys: &Keys) -> Result<u64, KeyringError> {
    if !rotation_done(store, keys).await? {
        return Ok(0);
    }
    Ok(store.delete_keyring_entries().await?)
}

/// Whether every credential and lookup secret is on this server's key.
pub async fn rotation_done(store: &Store, keys: &Keys) -> Result<bool, KeyringError> {
    if !store.credentials_not_on(keys.key_id(), 1).await?.is_empty() {
        return Ok(false);
    }
    for purpose in INSTANCE_SECRETS {
        if let Some((key_id, _)) = store.instance_secret(purpose).await?
            && key_id != keys.key_id()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What a rotation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Credentials moved to the new key by this run.
    pub moved: u64,
    /// Credentials left on another key (changed concurrently, or `limit` reached).
    pub remaining: u64,
}

/// Moves every credential to `new` and re-wraps the lookup secrets under it, `keys` being the
/// current master's (as [`load`] built them). `limit` bounds the rows moved by this call (a
/// test interrupts a rotation with it); the lookup secrets move only once every row has.
pub async fn rotate(
    store: &Store,
    keys: &Keys,
    new: &MasterKey,
    limit: Option<u64>,
) -> Result<Rotation, KeyringError> {
    let new_keys = new.keys();
    let new_id = new_keys.key_id().to_owned();
    if new_id != keys.key_id() {
        store
            .put_keyring_entry(&new_id, &keys.wrap_master(new), keys.key_id(), now_ms())
            .await?;
        learn(store, keys).await?;
    }
    let mut report = Rotation::default();
    loop {
        let rows = store.credentials_not_on(&new_id, 100).await?;
        if rows.is_empty() || limit.is_some_and(|l| report.moved >= l) {
            report.remaining = rows.len() as u64;
            break;
        }
        let mut progressed = false;
        for row in rows {
            if limit.is_some_and(|l| report.moved >= l) {
                break;
            }
            let Some(aad) = aad_of(&row) else {
                continue;
            };
            let plain = keys.decrypt_by(row.key_id.as_deref(), &row.ciphertext, &aad)?;
            let ciphertext = new_keys.encrypt(&plain, &aad);
            if store
                .reencrypt_credential(
                    row.org_id,
                    row.id,
                    &row.provider,
                    row.key_id.as_deref(),
                    &row.ciphertext,
                    &ciphertext,
                    &new_id,
                )
                .await?
            {
                report.moved += 1;
                progressed = true;
            }
        }
        if !progressed {
            // Rows changed under us are read again on the next pass; none moved in a whole
            // pass means they keep changing: leave them for the next run.
            report.remaining = store.credentials_not_on(&new_id, 1000).await?.len() as u64;
            break;
        }
    }
    if report.remaining == 0 {
        for purpose in INSTANCE_SECRETS {
            if let Some((key_id, wrapped)) = store.instance_secret(purpose).await? {
                let secret = keys.unwrap_by(&key_id, &wrapped, &label(purpose))?;
                let rewrapped = new_keys.wrap(&secret, &label(purpose));
                store
                    .put_instance_secret(purpose, &new_id, &rewrapped, true)
                    .await?;
            }
        }
    }
    Ok(report)
}

/// The credentials of an organization that a server with `keys` cannot read (it was started
/// with a key a rotation has not reached, or the other way round).
pub async fn unreadable(store: &Store, keys: &Keys, org: OrgId) -> Result<Vec<String>, StoreError> {
    Ok(store
        .list_credentials(org)
        .await?
        .into_iter()
        .filter(|c| c.key_id.as_deref().is_some_and(|k| !keys.knows(k)))
        .map(|c| c.provider)
        .collect())
}

/// Associated data: version 1 rows (from before credentials had ids) are sealed to the
/// organization and provider, version 2 to their id too.
pub(crate) fn aad(org: OrgId, provider: Provider, id: CredentialId, version: i64) -> Vec<u8> {
    if version <= 1 {
        format!("antix/provider_credentials/v1|{org}|{}", provider.as_str()).into_bytes()
    } else {
        format!(
            "antix/provider_credentials/v2|{org}|{}|{id}",
            provider.as_str()
        )
        .into_bytes()
    }
}

/// The associated data of a stored row.
pub(crate) fn aad_of(row: &StoredCredential) -> Option<Vec<u8>> {
    Some(aad(
        row.org_id,
        Provider::parse(&row.provider)?,
        row.id,
        row.key_version,
    ))
}
