//! Issuing virtual keys: a fresh random key, shown once; only its keyed hash (for lookup) and a
//! display form are stored.

use secrecy::SecretString;

use crate::crypto::{self, Keys};
use crate::domain::{KeyLimits, Millis, OrgId, UserId, VirtualKey};
use crate::store::keys::NewVirtualKey;
use crate::store::{Store, StoreError};

/// A newly issued key. `secret` is the only copy of the key there will ever be.
pub struct IssuedKey {
    pub key: VirtualKey,
    pub secret: SecretString,
}

pub async fn issue(
    store: &Store,
    keys: &Keys,
    org: OrgId,
    created_by: UserId,
    name: &str,
    expires_at: Option<Millis>,
    limits: &KeyLimits,
) -> Result<IssuedKey, StoreError> {
    let secret = crypto::generate_virtual_key();
    let key = store
        .create_virtual_key(&NewVirtualKey {
            org,
            created_by,
            name,
            key_hash: &keys.token_hash(&secret),
            display: &crypto::key_display(&secret),
            expires_at,
            limits,
        })
        .await?;
    Ok(IssuedKey {
        key,
        secret: SecretString::from(secret),
    })
}
