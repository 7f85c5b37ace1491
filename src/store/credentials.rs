//! Provider credentials of an organization, stored encrypted (the store never sees the secret;
//! encryption and its associated data are the caller's, see `crate::credentials`).

use sqlx::FromRow;

use super::{Result, Store, dispatch, dispatch_write};
use crate::domain::{Millis, OrgId, Provider, UserId};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StoredCredential {
    pub org_id: OrgId,
    pub provider: String,
    pub ciphertext: Vec<u8>,
    pub key_version: i64,
    pub last4: String,
    pub base_url: Option<String>,
    pub updated_by: UserId,
    pub updated_at: i64,
    /// The master key the ciphertext was made with (`None`: the instance's first).
    pub key_id: Option<String>,
}

pub struct NewCredential<'a> {
    pub org: OrgId,
    pub provider: Provider,
    pub ciphertext: &'a [u8],
    pub last4: &'a str,
    pub base_url: Option<&'a str>,
    pub updated_by: UserId,
    pub at: Millis,
    pub key_id: &'a str,
}

pub(crate) const COLUMNS: &str =
    "org_id, provider, ciphertext, key_version, last4, base_url, updated_by, updated_at, key_id";

impl Store {
    /// Sets (or replaces) the organization's credential for a provider.
    pub async fn put_credential(&self, c: &NewCredential<'_>) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO provider_credentials (org_id, provider, ciphertext, key_version, last4, \
                 base_url, updated_by, updated_at, key_id) VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8) \
                 ON CONFLICT (org_id, provider) DO UPDATE SET ciphertext = excluded.ciphertext, \
                 key_version = excluded.key_version, last4 = excluded.last4, \
                 base_url = excluded.base_url, updated_by = excluded.updated_by, \
                 updated_at = excluded.updated_at, key_id = excluded.key_id",
            )
            .bind(c.org)
            .bind(c.provider.as_str())
            .bind(c.ciphertext)
            .bind(c.last4)
            .bind(c.base_url)
            .bind(c.updated_by)
            .bind(c.at)
            .bind(c.key_id)
            .execute(pool)
            .await?;
        });
        self.cache.credentials.invalidate(&(c.org, c.provider));
        Ok(())
    }

    pub async fn credential(
        &self,
        org: OrgId,
        provider: Provider,
    ) -> Result<Option<StoredCredential>> {
        let row: Option<StoredCredential> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM provider_credentials WHERE org_id = $1 AND provider = $2"
            ))
            .bind(org)
            .bind(provider.as_str())
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// [`Store::credential`] through the hot-path cache (the proxy's lookup).
    pub async fn credential_cached(
        &self,
        org: OrgId,
        provider: Provider,
    ) -> Result<Option<std::sync::Arc<StoredCredential>>> {
        self.cache
            .credentials
            .get_or_load(&(org, provider), || async {
                Ok(self
                    .credential(org, provider)
                    .await?
                    .map(std::sync::Arc::new))
            })
            .await
    }

    pub async fn list_credentials(&self, org: OrgId) -> Result<Vec<StoredCredential>> {
        let rows: Vec<StoredCredential> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM provider_credentials WHERE org_id = $1 ORDER BY provider"
            ))
            .bind(org)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    pub async fn delete_credential(&self, org: OrgId, provider: Provider) -> Result<bool> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query("DELETE FROM provider_credentials WHERE org_id = $1 AND provider = $2")
                .bind(org)
                .bind(provider.as_str())
                .execute(pool)
                .await?
                .rows_affected()
        });
        self.cache.credentials.invalidate(&(org, provider));
        Ok(n > 0)
    }
}
