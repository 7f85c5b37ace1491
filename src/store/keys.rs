//! Virtual keys: stored by the keyed hash of the key (for lookup) and a display form; the key
//! itself is shown once at creation and never stored.

use sqlx::FromRow;

use super::{Result, Store, StoreError, dispatch, dispatch_write};
use crate::crypto::TokenHash;
use crate::domain::{EndpointId, KeyLimits, Millis, OrgId, UserId, VirtualKey, VirtualKeyId};

#[derive(FromRow)]
struct KeyRow {
    id: VirtualKeyId,
    org_id: OrgId,
    created_by: UserId,
    name: String,
    display: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
    budget_daily_nanos: Option<i64>,
    budget_monthly_nanos: Option<i64>,
    budget_total_nanos: Option<i64>,
    rpm_limit: Option<i64>,
    tpm_limit: Option<i64>,
    allowed_models: String,
    allowed_endpoints: String,
    allow_unmetered: bool,
}

impl TryFrom<KeyRow> for VirtualKey {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> Result<Self> {
        let allowed_models: Vec<String> = serde_json::from_str(&r.allowed_models)
            .map_err(|e| StoreError::Corrupt(format!("allowed_models: {e}")))?;
        let allowed_endpoints: Vec<EndpointId> = serde_json::from_str(&r.allowed_endpoints)
            .map_err(|e| StoreError::Corrupt(format!("allowed_endpoints: {e}")))?;
        Ok(VirtualKey {
            id: r.id,
            org_id: r.org_id,
            created_by: r.created_by,
            name: r.name,
            display: r.display,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
            limits: KeyLimits {
                budget_daily_nanos: r.budget_daily_nanos,
                budget_monthly_nanos: r.budget_monthly_nanos,
                budget_total_nanos: r.budget_total_nanos,
                rpm: r.rpm_limit,
                tpm: r.tpm_limit,
                allowed_models,
                allowed_endpoints,
                allow_unmetered: r.allow_unmetered,
            },
        })
    }
}

const COLUMNS: &str = "id, org_id, created_by, name, display, created_at, expires_at, revoked_at, \
    last_used_at, budget_daily_nanos, budget_monthly_nanos, budget_total_nanos, rpm_limit, \
    tpm_limit, allowed_models, allowed_endpoints, allow_unmetered";

pub struct NewVirtualKey<'a> {
    pub org: OrgId,
    pub created_by: UserId,
    pub name: &'a str,
    pub key_hash: &'a TokenHash,
    pub display: &'a str,
    pub expires_at: Option<Millis>,
    pub limits: &'a KeyLimits,
}

fn json_list<T: serde::Serialize>(v: &[T]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl Store {
    pub async fn create_virtual_key(&self, new: &NewVirtualKey<'_>) -> Result<VirtualKey> {
        let id = VirtualKeyId::new_v4();
        let now = crate::domain::now_ms();
        dispatch_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO virtual_keys (id, org_id, created_by, name, key_hash, display, created_at, \
                 expires_at, budget_daily_nanos, budget_monthly_nanos, budget_total_nanos, rpm_limit, \
                 tpm_limit, allowed_models, allowed_endpoints, allow_unmetered) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(id)
            .bind(new.org)
            .bind(new.created_by)
            .bind(new.name)
            .bind(&new.key_hash[..])
            .bind(new.display)
            .bind(now)
            .bind(new.expires_at)
            .bind(new.limits.budget_daily_nanos)
            .bind(new.limits.budget_monthly_nanos)
            .bind(new.limits.budget_total_nanos)
            .bind(new.limits.rpm)
            .bind(new.limits.tpm)
            .bind(json_list(&new.limits.allowed_models))
            .bind(json_list(&new.limits.allowed_endpoints))
            .bind(new.limits.allow_unmetered)
            .execute(pool)
            .await?;
        });
        self.virtual_key(id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn virtual_key(&self, id: VirtualKeyId) -> Result<Option<VirtualKey>> {
        let row: Option<KeyRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM virtual_keys WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(VirtualKey::try_from).transpose()
    }

    /// The key with this hash, revoked and expired ones included (the caller decides).
    pub async fn virtual_key_by_hash(&self, hash: &TokenHash) -> Result<Option<VirtualKey>> {
        let row: Option<KeyRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM virtual_keys WHERE key_hash = $1"
            ))
            .bind(&hash[..])
            .fetch_optional(pool)
            .await?
        });
        row.map(VirtualKey::try_from).transpose()
    }

    /// [`Store::virtual_key_by_hash`] through the hot-path cache (the proxy's lookup).
    pub async fn virtual_key_cached(&self, hash: &TokenHash) -> Result<Option<VirtualKey>> {
        self.cache
            .keys
            .get_or_load(hash, || {
                let (store, hash) = (self.clone(), *hash);
                async move {
                    let key = store.virtual_key_by_hash(&hash).await?;
                    if let Some(k) = &key {
                        store.cache.remember_key(k, &hash);
                    }
                    Ok(key)
                }
            })
            .await
    }

    pub async fn list_virtual_keys(&self, org: OrgId) -> Result<Vec<VirtualKey>> {
        let rows: Vec<KeyRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM virtual_keys WHERE org_id = $1 ORDER BY created_at DESC"
            ))
            .bind(org)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(VirtualKey::try_from).collect()
    }

    /// Changes a key's name, expiry and limits (never its spend, never its organization).
    pub async fn update_virtual_key(
        &self,
        org: OrgId,
        id: VirtualKeyId,
        name: &str,
        expires_at: Option<Millis>,
        limits: &KeyLimits,
    ) -> Result<()> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query(
                "UPDATE virtual_keys SET name = $3, expires_at = $4, budget_daily_nanos = $5, \
                 budget_monthly_nanos = $6, budget_total_nanos = $7, rpm_limit = $8, tpm_limit = $9, \
                 allowed_models = $10, allowed_endpoints = $11, allow_unmetered = $12 \
                 WHERE id = $1 AND org_id = $2",
            )
            .bind(id)
            .bind(org)
            .bind(name)
            .bind(expires_at)
            .bind(limits.budget_daily_nanos)
            .bind(limits.budget_monthly_nanos)
            .bind(limits.budget_total_nanos)
            .bind(limits.rpm)
            .bind(limits.tpm)
            .bind(json_list(&limits.allowed_models))
            .bind(json_list(&limits.allowed_endpoints))
            .bind(limits.allow_unmetered)
            .execute(pool)
            .await?
            .rows_affected()
        });
        self.cache.forget_key(id);
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Revokes a key of `org`. Revoking twice keeps the first time.
    pub async fn revoke_virtual_key(&self, org: OrgId, id: VirtualKeyId, at: Millis) -> Result<()> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query(
                "UPDATE virtual_keys SET revoked_at = COALESCE(revoked_at, $3) \
                 WHERE id = $1 AND org_id = $2",
            )
            .bind(id)
            .bind(org)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        self.cache.forget_key(id);
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Records when keys were last used (batched by the recorder; never moves backwards).
    pub async fn touch_virtual_keys(&self, uses: &[(VirtualKeyId, Millis)]) -> Result<()> {
        if uses.is_empty() {
            return Ok(());
        }
        dispatch_write!(self, |pool| {
            for (id, at) in uses {
                sqlx::query(
                    "UPDATE virtual_keys SET last_used_at = $2 \
                     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
                )
                .bind(id)
                .bind(at)
                .execute(pool)
                .await?;
            }
        });
        Ok(())
    }
}
