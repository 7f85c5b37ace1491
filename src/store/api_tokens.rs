//! Organization API tokens (stored by keyed hash, like virtual keys) and the `Idempotency-Key`
//! records of the management API's creates.

use sqlx::FromRow;

use super::{Result, Store, StoreError, dispatch, dispatch_write};
use crate::crypto::TokenHash;
use crate::domain::{ApiToken, ApiTokenId, DAY_MS, Millis, OrgId, UserId};

#[derive(FromRow)]
struct TokenRow {
    id: ApiTokenId,
    org_id: OrgId,
    created_by: UserId,
    name: String,
    display: String,
    can_write: bool,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<TokenRow> for ApiToken {
    fn from(r: TokenRow) -> Self {
        ApiToken {
            id: r.id,
            org_id: r.org_id,
            created_by: r.created_by,
            name: r.name,
            display: r.display,
            can_write: r.can_write,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

const COLUMNS: &str =
    "id, org_id, created_by, name, display, can_write, created_at, last_used_at, revoked_at";

pub struct NewApiToken<'a> {
    pub org: OrgId,
    pub created_by: UserId,
    pub name: &'a str,
    pub token_hash: &'a TokenHash,
    pub display: &'a str,
    pub can_write: bool,
}

/// What an `Idempotency-Key` finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotent {
    /// First use of the key: it is now reserved for this request.
    Reserved,
    /// The same request ran before: its answer, to replay.
    Replay { status: u16, response: String },
    /// A request with this key is still running.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

/// How long an idempotency record is kept (and a retry replayed).
pub const IDEMPOTENCY_TTL_MS: Millis = DAY_MS;

impl Store {
    pub async fn create_api_token(&self, new: &NewApiToken<'_>) -> Result<ApiToken> {
        let id = ApiTokenId::new_v4();
        let now = crate::domain::now_ms();
        dispatch_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO api_tokens (id, org_id, created_by, name, token_hash, display, \
                 can_write, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(new.org)
            .bind(new.created_by)
            .bind(new.name)
            .bind(&new.token_hash[..])
            .bind(new.display)
            .bind(new.can_write)
            .bind(now)
            .execute(pool)
            .await?;
        });
        self.api_token(id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn api_token(&self, id: ApiTokenId) -> Result<Option<ApiToken>> {
        let row: Option<TokenRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(ApiToken::from))
    }

    /// The token with this hash, revoked ones included (the caller decides).
    pub async fn api_token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>> {
        let row: Option<TokenRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1"
            ))
            .bind(&hash[..])
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(ApiToken::from))
    }

    /// The organization's tokens, newest first, revoked ones included.
    pub async fn list_api_tokens(&self, org: OrgId) -> Result<Vec<ApiToken>> {
        let rows: Vec<TokenRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM api_tokens WHERE org_id = $1 ORDER BY created_at DESC, id"
            ))
            .bind(org)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(ApiToken::from).collect())
    }

    /// Revokes a token of `org`. Revoking twice keeps the first time; another organization's
    /// token is `NotFound`.
    pub async fn revoke_api_token(&self, org: OrgId, id: ApiTokenId, at: Millis) -> Result<()> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $3) \
                 WHERE id = $1 AND org_id = $2",
            )
            .bind(id)
            .bind(org)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Records a use, at most once a minute per token (a busy script must not turn every read
    /// into a write).
    pub async fn touch_api_token(&self, id: ApiTokenId, at: Millis) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query(
                "UPDATE api_tokens SET last_used_at = $2 \
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(id)
            .bind(at)
            .bind(at - crate::domain::MINUTE_MS)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Looks up, or reserves, an `Idempotency-Key` of a token for the request with this hash.
    /// Records older than [`IDEMPOTENCY_TTL_MS`] are gone (a reservation whose request died
    /// with its process is freed the same way).
    pub async fn reserve_idempotency_key(
        &self,
        token: ApiTokenId,
        key: &str,
        request_hash: &[u8],
        now: Millis,
    ) -> Result<Idempotent> {
        let cutoff = now - IDEMPOTENCY_TTL_MS;
        let inserted = dispatch_write!(self, |pool| {
            sqlx::query("DELETE FROM api_idempotency WHERE created_at < $1")
                .bind(cutoff)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO api_idempotency (token_id, idem_key, request_hash, status, response, \
                 created_at) VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT DO NOTHING",
            )
            .bind(token)
            .bind(key)
            .bind(request_hash)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if inserted == 1 {
            return Ok(Idempotent::Reserved);
        }
        let row: Option<(Vec<u8>, i64, String)> = dispatch_write!(self, |pool| {
            sqlx::query_as(
                "SELECT request_hash, status, response FROM api_idempotency \
                 WHERE token_id = $1 AND idem_key = $2",
            )
            .bind(token)
            .bind(key)
            .fetch_optional(pool)
            .await?
        });
        Ok(match row {
            // Deleted between the insert and the read: the next try reserves it.
            None => Idempotent::InProgress,
            Some((hash, _, _)) if hash != request_hash => Idempotent::Mismatch,
            Some((_, 0, _)) => Idempotent::InProgress,
            Some((_, status, response)) => Idempotent::Replay {
                status: u16::try_from(status).unwrap_or(500),
                response,
            },
        })
    }

    /// Keeps the answer of a reserved key for replay.
    pub async fn complete_idempotency_key(
        &self,
        token: ApiTokenId,
        key: &str,
        status: u16,
        response: &str,
    ) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query(
                "UPDATE api_idempotency SET status = $3, response = $4 \
                 WHERE token_id = $1 AND idem_key = $2",
            )
            .bind(token)
            .bind(key)
            .bind(i64::from(status))
            .bind(response)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Frees a reserved key whose request failed before it changed anything, so a retry runs.
    pub async fn release_idempotency_key(&self, token: ApiTokenId, key: &str) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query("DELETE FROM api_idempotency WHERE token_id = $1 AND idem_key = $2")
                .bind(token)
                .bind(key)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
