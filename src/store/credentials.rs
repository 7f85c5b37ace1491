//! Provider credentials of an organization, stored encrypted (the store never sees the secret;
//! encryption and its associated data are the caller's, see `crate::credentials`). Any number
//! per provider, each named, weighted for load balancing, with optional rate limits, and a
//! health row when it is resting after failures (see [`Store::set_cooldown`]).

use sqlx::FromRow;

use super::{BeginWrite, Result, Store, dispatch, dispatch_write};
use crate::domain::{CredentialId, Millis, OrgId, Provider, UserId};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StoredCredential {
    pub id: CredentialId,
    pub org_id: OrgId,
    pub provider: String,
    pub name: String,
    pub ciphertext: Vec<u8>,
    /// 1: sealed to (organization, provider), from before credentials had ids; 2: sealed to
    /// (organization, provider, id).
    pub key_version: i64,
    pub last4: String,
    pub base_url: Option<String>,
    pub updated_by: UserId,
    pub updated_at: i64,
    /// The master key the ciphertext was made with (`None`: the instance's first).
    pub key_id: Option<String>,
    pub weight: i64,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub enabled: bool,
}

pub struct NewCredential<'a> {
    pub id: CredentialId,
    pub org: OrgId,
    pub provider: Provider,
    pub name: &'a str,
    pub ciphertext: &'a [u8],
    pub key_version: i64,
    pub last4: &'a str,
    pub base_url: Option<&'a str>,
    pub updated_by: UserId,
    pub at: Millis,
    pub key_id: &'a str,
    pub weight: i64,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub enabled: bool,
}

pub(crate) const COLUMNS: &str = "id, org_id, provider, name, ciphertext, key_version, last4, \
    base_url, updated_by, updated_at, key_id, weight, rpm, tpm, enabled";

impl Store {
    /// Adds a credential, or replaces the one of that provider with that name (keeping its id).
    /// Returns the id it is stored under. A replaced credential starts with a clean record: a
    /// rest earned by the secret it had (say, a key the provider rate-limited) does not hold the
    /// new one back; each replica drops its copy when it next reads the rests.
    pub async fn put_credential(&self, c: &NewCredential<'_>) -> Result<CredentialId> {
        let id: CredentialId = dispatch_write!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let id: CredentialId = sqlx::query_scalar(
                "INSERT INTO provider_credentials (id, org_id, provider, name, ciphertext, \
                 key_version, last4, base_url, updated_by, updated_at, key_id, weight, rpm, tpm, \
                 enabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (org_id, provider, name) DO UPDATE SET ciphertext = excluded.ciphertext, \
                 key_version = excluded.key_version, last4 = excluded.last4, \
                 base_url = excluded.base_url, updated_by = excluded.updated_by, \
                 updated_at = excluded.updated_at, key_id = excluded.key_id, \
                 weight = excluded.weight, rpm = excluded.rpm, tpm = excluded.tpm, \
                 enabled = excluded.enabled RETURNING id",
            )
            .bind(c.id)
            .bind(c.org)
            .bind(c.provider.as_str())
            .bind(c.name)
            .bind(c.ciphertext)
            .bind(c.key_version)
            .bind(c.last4)
            .bind(c.base_url)
            .bind(c.updated_by)
            .bind(c.at)
            .bind(c.key_id)
            .bind(c.weight)
            .bind(c.rpm)
            .bind(c.tpm)
            .bind(c.enabled)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM credential_health WHERE credential_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            id
        });
        self.cache.credentials.invalidate(&(c.org, c.provider));
        Ok(id)
    }

    /// The credential of a provider to use when only one is wanted (tests, rotation): the
    /// first enabled one by name.
    pub async fn credential(
        &self,
        org: OrgId,
        provider: Provider,
    ) -> Result<Option<StoredCredential>> {
        Ok(self
            .credentials_for(org, provider)
            .await?
            .into_iter()
            .find(|c| c.enabled))
    }

    /// Every credential of an organization for a provider, by name.
    pub async fn credentials_for(
        &self,
        org: OrgId,
        provider: Provider,
    ) -> Result<Vec<StoredCredential>> {
        let rows: Vec<StoredCredential> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM provider_credentials WHERE org_id = $1 AND provider = $2 \
                 ORDER BY name"
            ))
            .bind(org)
            .bind(provider.as_str())
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// [`Store::credentials_for`] through the hot-path cache (the proxy's lookup).
    pub async fn credentials_cached(
        &self,
        org: OrgId,
        provider: Provider,
    ) -> Result<std::sync::Arc<Vec<StoredCredential>>> {
        self.cache
            .credentials
            .get_or_load(&(org, provider), || {
                let store = self.clone();
                async move {
                    Ok(std::sync::Arc::new(
                        store.credentials_for(org, provider).await?,
                    ))
                }
            })
            .await
    }

    pub async fn credential_by_id(
        &self,
        org: OrgId,
        id: CredentialId,
    ) -> Result<Option<StoredCredential>> {
        let row: Option<StoredCredential> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM provider_credentials WHERE org_id = $1 AND id = $2"
            ))
            .bind(org)
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    pub async fn list_credentials(&self, org: OrgId) -> Result<Vec<StoredCredential>> {
        let rows: Vec<StoredCredential> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM provider_credentials WHERE org_id = $1 \
                 ORDER BY provider, name"
            ))
            .bind(org)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Deletes one credential of the organization.
    pub async fn delete_credential(&self, org: OrgId, id: CredentialId) -> Result<bool> {
        let provider: Option<String> = dispatch_write!(self, |pool| {
            sqlx::query_scalar(
                "DELETE FROM provider_credentials WHERE org_id = $1 AND id = $2 RETURNING provider",
            )
            .bind(org)
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        if let Some(p) = provider.as_deref().and_then(Provider::parse) {
            self.cache.credentials.invalidate(&(org, p));
        }
        Ok(provider.is_some())
    }

    /// Turns a credential on or off (off: never used, kept for later).
    pub async fn set_credential_enabled(
        &self,
        org: OrgId,
        id: CredentialId,
        enabled: bool,
    ) -> Result<bool> {
        let provider: Option<String> = dispatch_write!(self, |pool| {
            sqlx::query_scalar(
                "UPDATE provider_credentials SET enabled = $3 WHERE org_id = $1 AND id = $2 \
                 RETURNING provider",
            )
            .bind(org)
            .bind(id)
            .bind(enabled)
            .fetch_optional(pool)
            .await?
        });
        if let Some(p) = provider.as_deref().and_then(Provider::parse) {
            self.cache.credentials.invalidate(&(org, p));
        }
        Ok(provider.is_some())
    }

    /// When each of these credentials is resting until (only those resting now or lately).
    pub async fn cooldowns(
        &self,
        ids: &[CredentialId],
    ) -> Result<Vec<(CredentialId, Millis, i64)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(CredentialId, Millis, i64)> = dispatch!(self, |pool| {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT credential_id, cooldown_until, failures FROM credential_health \
                 WHERE credential_id IN (",
            );
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            qb.push(")");
            qb.build_query_as().fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// Rests a credential until `until` (after `failures` failures in a row).
    pub async fn set_cooldown(
        &self,
        id: CredentialId,
        until: Millis,
        failures: i64,
        now: Millis,
    ) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO credential_health (credential_id, cooldown_until, failures, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (credential_id) DO UPDATE SET \
                 cooldown_until = excluded.cooldown_until, failures = excluded.failures, \
                 updated_at = excluded.updated_at",
            )
            .bind(id)
            .bind(until)
            .bind(failures)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A credential answered well again: no more rest.
    pub async fn clear_cooldown(&self, id: CredentialId) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query("DELETE FROM credential_health WHERE credential_id = $1")
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
