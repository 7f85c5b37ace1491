//! How long each endpoint keeps its traces: a setting per organization and per endpoint (NULL
//! inherits, 0 keeps forever), and the bounded deletes that apply it. The rule that combines
//! them with the instance's default is [`crate::housekeeping::effective_retention`].

use super::{BeginWrite, Result, Store, StoreError, dispatch, dispatch_write};
use crate::domain::{EndpointId, Millis, OrgId};

/// The retention settings that apply to one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionSettings {
    pub org_days: Option<u32>,
    pub endpoint_days: Option<u32>,
}

fn days(v: Option<i64>) -> Option<u32> {
    v.and_then(|d| u32::try_from(d).ok())
}

impl Store {
    /// Sets (or, with `None`, clears back to the instance default) an organization's retention.
    pub async fn set_org_retention(&self, org: OrgId, days: Option<u32>) -> Result<()> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query("UPDATE organizations SET trace_retention_days = $2 WHERE id = $1")
                .bind(org)
                .bind(days.map(i64::from))
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Sets (or, with `None`, clears back to its organization's) an endpoint's retention.
    pub async fn set_endpoint_retention(&self, id: EndpointId, days: Option<u32>) -> Result<()> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query("UPDATE endpoints SET trace_retention_days = $2 WHERE id = $1")
                .bind(id)
                .bind(days.map(i64::from))
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// An organization's own setting.
    pub async fn org_retention(&self, org: OrgId) -> Result<Option<u32>> {
        let row: Option<(Option<i64>,)> = dispatch!(self, |pool| {
            sqlx::query_as("SELECT trace_retention_days FROM organizations WHERE id = $1")
                .bind(org)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.and_then(|r| days(r.0)))
    }

    /// The settings that apply to an endpoint (its own and its organization's).
    pub async fn endpoint_retention(&self, id: EndpointId) -> Result<RetentionSettings> {
        let row: Option<(Option<i64>, Option<i64>)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT o.trace_retention_days, e.trace_retention_days FROM endpoints e \
                 JOIN organizations o ON o.id = e.org_id WHERE e.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        let (org, endpoint) = row.ok_or(StoreError::NotFound)?;
        Ok(RetentionSettings {
            org_days: days(org),
            endpoint_days: days(endpoint),
        })
    }

    /// Every endpoint with its retention settings (archived ones too: their traces age as well).
    pub async fn retention_plan(&self) -> Result<Vec<(EndpointId, RetentionSettings)>> {
        let rows: Vec<(EndpointId, Option<i64>, Option<i64>)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT e.id, o.trace_retention_days, e.trace_retention_days FROM endpoints e \
                 JOIN organizations o ON o.id = e.org_id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, org, endpoint)| {
                (
                    id,
                    RetentionSettings {
                        org_days: days(org),
                        endpoint_days: days(endpoint),
                    },
                )
            })
            .collect())
    }

    /// Deletes up to `limit` of an endpoint's traces started before `before`, oldest first, with
    /// their bodies and search text (one short write transaction; the caller loops). Daily
    /// totals stay. Returns how many went.
    pub async fn delete_endpoint_traces_before(
        &self,
        endpoint: EndpointId,
        before: Millis,
        limit: i64,
    ) -> Result<u64> {
        let sqlite = matches!(self.backend, super::Backend::Sqlite { .. });
        let n = dispatch_write!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let oldest = "SELECT id FROM traces WHERE endpoint_id = $1 AND started_at < $2 \
                          ORDER BY started_at, id LIMIT $3";
            if sqlite {
                sqlx::query(&format!(
                    "DELETE FROM trace_fts WHERE rowid IN \
                     (SELECT rowid FROM trace_search WHERE trace_id IN ({oldest}))"
                ))
                .bind(endpoint)
                .bind(before)
                .bind(limit)
                .execute(&mut *tx)
                .await?;
            }
            for table in ["trace_search", "trace_bodies"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE trace_id IN ({oldest})"))
                    .bind(endpoint)
                    .bind(before)
                    .bind(limit)
                    .execute(&mut *tx)
                    .await?;
            }
            let n = sqlx::query(&format!("DELETE FROM traces WHERE id IN ({oldest})"))
                .bind(endpoint)
                .bind(before)
                .bind(limit)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n)
    }

    /// Forgets an endpoint's agent sessions that ended before `before` (their traces are gone).
    pub async fn delete_endpoint_sessions_before(
        &self,
        endpoint: EndpointId,
        before: Millis,
    ) -> Result<u64> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query("DELETE FROM trace_sessions WHERE endpoint_id = $1 AND last_end_at < $2")
                .bind(endpoint)
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }
}
