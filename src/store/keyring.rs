//! The keyring's rows: master keys wrapped under other master keys (during a rotation), the
//! instance's lookup secrets wrapped under the current master key, and which master key each
//! credential was encrypted with. The rules are [`crate::keyring`]'s.

use super::credentials::StoredCredential;
use super::{Result, Store, dispatch, dispatch_write};
use crate::domain::{Millis, OrgId};

impl Store {
    /// A master key wrapped under another: `(wrapped, wrapped_by)`.
    pub async fn keyring_entries(&self) -> Result<Vec<(String, Vec<u8>, String)>> {
        let rows: Vec<(String, Vec<u8>, String)> = dispatch!(self, |pool| {
            sqlx::query_as("SELECT key_id, wrapped, wrapped_by FROM keyring")
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    pub async fn put_keyring_entry(
        &self,
        key_id: &str,
        wrapped: &[u8],
        wrapped_by: &str,
        at: Millis,
    ) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO keyring (key_id, wrapped, wrapped_by, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key_id) DO NOTHING",
            )
            .bind(key_id)
            .bind(wrapped)
            .bind(wrapped_by)
            .bind(at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Forgets every wrapped master key (once a rotation is done everywhere).
    pub async fn delete_keyring_entries(&self) -> Result<u64> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query("DELETE FROM keyring")
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }

    /// `(key_id, wrapped)` of an instance secret.
    pub async fn instance_secret(&self, purpose: &str) -> Result<Option<(String, Vec<u8>)>> {
        let row: Option<(String, Vec<u8>)> = dispatch!(self, |pool| {
            sqlx::query_as("SELECT key_id, wrapped FROM instance_secrets WHERE purpose = $1")
                .bind(purpose)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    /// Records an instance secret the first time (`replace`: re-wrapped by a rotation).
    pub async fn put_instance_secret(
        &self,
        purpose: &str,
        key_id: &str,
        wrapped: &[u8],
        replace: bool,
    ) -> Result<()> {
        let sql = if replace {
            "INSERT INTO instance_secrets (purpose, key_id, wrapped) VALUES ($1, $2, $3) \
             ON CONFLICT (purpose) DO UPDATE SET key_id = excluded.key_id, wrapped = excluded.wrapped"
        } else {
            "INSERT INTO instance_secrets (purpose, key_id, wrapped) VALUES ($1, $2, $3) \
             ON CONFLICT (purpose) DO NOTHING"
        };
        dispatch_write!(self, |pool| {
            sqlx::query(sql)
                .bind(purpose)
                .bind(key_id)
                .bind(wrapped)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Up to `limit` credentials not yet encrypted with master key `key_id`.
    pub async fn credentials_not_on(
        &self,
        key_id: &str,
        limit: i64,
    ) -> Result<Vec<StoredCredential>> {
        let rows: Vec<StoredCredential> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {} FROM provider_credentials \
                 WHERE key_id IS NULL OR key_id <> $1 ORDER BY org_id, provider, name LIMIT $2",
                super::credentials::COLUMNS
            ))
            .bind(key_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Replaces a credential's ciphertext with one made by another master key, if the row is
    /// still as it was read (`old_key_id`): a concurrent change wins, and is moved on a later
    /// pass. Returns whether the row was moved.
    #[expect(
        clippy::too_many_arguments,
        reason = "the row's identity and both versions of it, for a compare-and-swap"
    )]
    pub async fn reencrypt_credential(
        &self,
        org: OrgId,
        id: crate::domain::CredentialId,
        provider: &str,
        old_key_id: Option<&str>,
        old_ciphertext: &[u8],
        ciphertext: &[u8],
        key_id: &str,
    ) -> Result<bool> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query(
                "UPDATE provider_credentials SET ciphertext = $4, key_id = $5 \
                 WHERE org_id = $1 AND id = $2 AND ciphertext = $3 \
                 AND (key_id = $6 OR (key_id IS NULL AND $6 IS NULL))",
            )
            .bind(org)
            .bind(id)
            .bind(old_ciphertext)
            .bind(ciphertext)
            .bind(key_id)
            .bind(old_key_id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if let Some(p) = crate::domain::Provider::parse(provider) {
            self.cache.credentials.invalidate(&(org, p));
        }
        Ok(n > 0)
    }
}
