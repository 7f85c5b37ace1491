//! Endpoints: the stable, secret URLs that SDKs use as their base URL.

use sqlx::FromRow;

use super::{Backend, BeginWrite, Result, Store, StoreError, dispatch, dispatch_write};
use crate::domain::{Endpoint, EndpointId, Millis, OrgId, Scope, UserId};

#[derive(FromRow)]
struct EndpointRow {
    id: EndpointId,
    org_id: OrgId,
    owner_id: UserId,
    scope: String,
    name: String,
    created_at: i64,
    archived_at: Option<i64>,
    passthrough: bool,
    fallbacks: Option<String>,
}

impl TryFrom<EndpointRow> for Endpoint {
    type Error = StoreError;
    fn try_from(r: EndpointRow) -> Result<Self> {
        Ok(Endpoint {
            id: r.id,
            org_id: r.org_id,
            owner_id: r.owner_id,
            scope: Scope::parse(&r.scope)
                .ok_or_else(|| StoreError::Corrupt(format!("scope {:?}", r.scope)))?,
            name: r.name,
            created_at: r.created_at,
            archived_at: r.archived_at,
            passthrough: r.passthrough,
            fallbacks: match r.fallbacks.as_deref() {
                None | Some("") => Vec::new(),
                Some(j) => serde_json::from_str(j)
                    .map_err(|e| StoreError::Corrupt(format!("endpoint fallbacks: {e}")))?,
            },
        })
    }
}

const COLUMNS: &str =
    "id, org_id, owner_id, scope, name, created_at, archived_at, passthrough, fallbacks";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    pub requests: i64,
    pub cost_billed_nanos: i64,
    pub cost_estimated_nanos: i64,
}

pub struct NewEndpoint<'a> {
    pub org: OrgId,
    pub owner: UserId,
    pub scope: Scope,
    pub name: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateEndpointError {
    /// The owner already has the organization's maximum of active personal endpoints.
    #[error("personal endpoint limit of {limit} reached")]
    PersonalLimit { limit: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CreateEndpointError {
    fn from(e: sqlx::Error) -> Self {
        CreateEndpointError::Store(e.into())
    }
}

impl Store {
    /// Creates an endpoint with a fresh v4 UUID. For personal endpoints the organization's
    /// per-user limit is checked and the row inserted under one lock, so two concurrent
    /// requests cannot both take the last slot (active endpoints count; archived ones do not).
    pub async fn create_endpoint(
        &self,
        new: &NewEndpoint<'_>,
    ) -> Result<Endpoint, CreateEndpointError> {
        let id = EndpointId::new_v4();
        let now = crate::domain::now_ms();
        // Postgres serializes concurrent creators of the same owner through the membership row;
        // SQLite has a single writer connection, so the transaction is already exclusive.
        let lock = match self.backend {
            Backend::Postgres(_) => {
                "SELECT o.max_personal_endpoints FROM organizations o JOIN memberships m \
                 ON m.org_id = o.id WHERE o.id = $1 AND m.user_id = $2 FOR UPDATE OF m"
            }
            Backend::Sqlite { .. } => {
                "SELECT o.max_personal_endpoints FROM organizations o JOIN memberships m \
                 ON m.org_id = o.id WHERE o.id = $1 AND m.user_id = $2"
            }
        };
        dispatch_write!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let limit: Option<i64> = sqlx::query_scalar(lock)
                .bind(new.org)
                .bind(new.owner)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(limit) = limit else {
                return Err(StoreError::NotFound.into());
            };
            if new.scope == Scope::Personal {
                let count: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM endpoints WHERE org_id = $1 AND owner_id = $2 \
                     AND scope = 'personal' AND archived_at IS NULL",
                )
                .bind(new.org)
                .bind(new.owner)
                .fetch_one(&mut *tx)
                .await?;
                if count >= limit {
                    return Err(CreateEndpointError::PersonalLimit { limit });
                }
            }
            sqlx::query(
                "INSERT INTO endpoints (id, org_id, owner_id, scope, name, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(new.org)
            .bind(new.owner)
            .bind(new.scope.as_str())
            .bind(new.name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(Endpoint {
            id,
            org_id: new.org,
            owner_id: new.owner,
            scope: new.scope,
            name: new.name.to_owned(),
            created_at: now,
            archived_at: None,
            passthrough: true,
            fallbacks: Vec::new(),
        })
    }

    /// Any endpoint by id, archived or not. Authorization is the caller's job.
    pub async fn endpoint(&self, id: EndpointId) -> Result<Option<Endpoint>> {
        let row: Option<EndpointRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM endpoints WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(Endpoint::try_from).transpose()
    }

    /// [`Store::endpoint`] through the hot-path cache (the proxy's lookup).
    pub async fn endpoint_cached(&self, id: EndpointId) -> Result<Option<Endpoint>> {
        self.cache
            .endpoints
            .get_or_load(&id, || {
                let store = self.clone();
                async move { store.endpoint(id).await }
            })
            .await
    }

    /// The endpoints `user` may see in `org`: their own personal ones and every org-shared one,
    /// never another user's personal endpoint (admins included). Newest first.
    pub async fn visible_endpoints(&self, org: OrgId, user: UserId) -> Result<Vec<Endpoint>> {
        let rows: Vec<EndpointRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM endpoints WHERE org_id = $1 \
                 AND (scope = 'org_shared' OR owner_id = $2) ORDER BY created_at DESC, id"
            ))
            .bind(org)
            .bind(user)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Endpoint::try_from).collect()
    }

    /// Requests and cost over the days since `since_day`, per endpoint of `org`, from the daily
    /// totals (never a scan of the traces).
    pub async fn endpoint_stats(
        &self,
        org: OrgId,
        since_day: Millis,
    ) -> Result<std::collections::HashMap<EndpointId, EndpointStats>> {
        let rows: Vec<(EndpointId, i64, i64, i64)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT d.endpoint_id, COALESCE(CAST(SUM(d.requests) AS BIGINT), 0), \
                 COALESCE(CAST(SUM(d.cost_billed_nanos) AS BIGINT), 0), \
                 COALESCE(CAST(SUM(d.cost_estimated_nanos) AS BIGINT), 0) \
                 FROM trace_daily d JOIN endpoints e ON e.id = d.endpoint_id \
                 WHERE e.org_id = $1 AND d.day >= $2 GROUP BY d.endpoint_id",
            )
            .bind(org)
            .bind(since_day)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, requests, billed, estimated)| {
                (
                    id,
                    EndpointStats {
                        requests,
                        cost_billed_nanos: billed,
                        cost_estimated_nanos: estimated,
                    },
                )
            })
            .collect())
    }

    pub async fn rename_endpoint(&self, id: EndpointId, name: &str) -> Result<()> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query("UPDATE endpoints SET name = $2 WHERE id = $1")
                .bind(id)
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected()
        });
        self.cache.endpoints.invalidate(&id);
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Whether the endpoint passes through the client's own keys and OAuth tokens, or takes
    /// Antix virtual keys only.
    pub async fn set_endpoint_passthrough(&self, id: EndpointId, passthrough: bool) -> Result<()> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query("UPDATE endpoints SET passthrough = $2 WHERE id = $1")
                .bind(id)
                .bind(passthrough)
                .execute(pool)
                .await?
                .rows_affected()
        });
        self.cache.endpoints.invalidate(&id);
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The endpoint's fallback targets, in order (an empty list: none).
    pub async fn set_endpoint_fallbacks(
        &self,
        id: EndpointId,
        fallbacks: &[crate::domain::Fallback],
    ) -> Result<()> {
        let json = (!fallbacks.is_empty())
            .then(|| {
                serde_json::to_string(fallbacks).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .transpose()?;
        let n = dispatch_write!(self, |pool| {
            sqlx::query("UPDATE endpoints SET fallbacks = $2 WHERE id = $1")
                .bind(id)
                .bind(json.as_deref())
                .execute(pool)
                .await?
                .rows_affected()
        });
        self.cache.endpoints.invalidate(&id);
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Copies an endpoint into a new org-shared one owned by `owner` (a new URL; the original is
    /// untouched), keeping who may call it and where its calls fall back. Who may do this is
    /// [`crate::access::can_duplicate_endpoint`].
    pub async fn duplicate_endpoint_as_shared(
        &self,
        e: &Endpoint,
        owner: UserId,
    ) -> Result<Endpoint, CreateEndpointError> {
        let mut copy = self
            .create_endpoint(&NewEndpoint {
                org: e.org_id,
                owner,
                scope: Scope::OrgShared,
                name: &e.name,
            })
            .await?;
        if !e.passthrough {
            self.set_endpoint_passthrough(copy.id, false).await?;
            copy.passthrough = false;
        }
        if !e.fallbacks.is_empty() {
            self.set_endpoint_fallbacks(copy.id, &e.fallbacks).await?;
            copy.fallbacks = e.fallbacks.clone();
        }
        Ok(copy)
    }

    /// Archives an endpoint. Irreversible; archiving twice keeps the first time.
    pub async fn archive_endpoint(&self, id: EndpointId, at: Millis) -> Result<()> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query(
                "UPDATE endpoints SET archived_at = COALESCE(archived_at, $2) WHERE id = $1",
            )
            .bind(id)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        self.cache.endpoints.invalidate(&id);
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
