//! Batches created through the gateway, so each is billed once at the batch price: the input
//! files of OpenAI batches (their requests, read on upload), and a hold per batch that keeps a
//! virtual key's estimate reserved until the batch's results are read back (then the results'
//! cost is charged, once) or the hold expires (then the estimate is charged: never $0). The
//! events that create, complete and settle holds travel with traces ([`BatchEvent`]) and are
//! applied by [`Store::insert_traces`] in the trace's own transaction, so a replayed trace
//! never applies one twice.

use serde::{Deserialize, Serialize};

use super::{Result, Store, dispatch, dispatch_write};
use crate::domain::{EndpointId, Millis, OrgId, VirtualKeyId};
use crate::metering::BatchItem;

/// How long a batch's estimate stays held waiting for its results to be read back. Batches
/// finish within a day (OpenAI, Anthropic) or two (Gemini); results stay readable for weeks, but
/// a budget must not stay blocked that long.
pub const HOLD_MS: Millis = 3 * crate::domain::DAY_MS;

/// What a trace did to a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchEvent {
    /// A batch was created: its estimate (the call's reservation) is held until it settles.
    Created {
        provider: String,
        batch_id: String,
        estimate_nanos: i64,
    },
    /// A finished batch named its results file (OpenAI).
    Output {
        provider: String,
        batch_id: String,
        file_id: String,
    },
    /// A batch's results were read (by batch id, or by results file): the trace's cost is the
    /// batch's, charged once; a later reading of the same results costs nothing.
    Results {
        provider: String,
        batch_id: Option<String>,
        file_id: Option<String>,
    },
}

/// A hold that expired unsettled, to be charged its estimate.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExpiredHold {
    pub org_id: OrgId,
    pub provider: String,
    pub batch_id: String,
    pub endpoint_id: EndpointId,
    pub key_id: Option<VirtualKeyId>,
    pub estimate_nanos: i64,
    pub created_at: Millis,
}

impl Store {
    /// Records the requests of a batch input file uploaded through the gateway.
    pub async fn put_batch_input(
        &self,
        org: OrgId,
        file_id: &str,
        key: Option<VirtualKeyId>,
        items: &[BatchItem],
        at: Millis,
    ) -> Result<()> {
        let items = serde_json::to_string(items).unwrap_or_else(|_| "[]".into());
        dispatch_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO batch_inputs (org_id, file_id, key_id, items, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, file_id) DO NOTHING",
            )
            .bind(org)
            .bind(file_id)
            .bind(key)
            .bind(items)
            .bind(at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The requests of a batch input file this organization uploaded through the gateway.
    pub async fn batch_input(&self, org: OrgId, file_id: &str) -> Result<Option<Vec<BatchItem>>> {
        let row: Option<String> = dispatch!(self, |pool| {
            sqlx::query_scalar("SELECT items FROM batch_inputs WHERE org_id = $1 AND file_id = $2")
                .bind(org)
                .bind(file_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|r| serde_json::from_str(&r).unwrap_or_default()))
    }

    /// Holds past their expiry that no results reading settled.
    pub async fn expired_batch_holds(&self, now: Millis, limit: i64) -> Result<Vec<ExpiredHold>> {
        let rows: Vec<ExpiredHold> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT org_id, provider, batch_id, endpoint_id, key_id, estimate_nanos, created_at \
                 FROM batch_holds WHERE settled_at IS NULL AND expires_at < $1 \
                 ORDER BY expires_at LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}

/// Applies the batch events of freshly inserted traces, and decides which results readings
/// are charged. Runs first in [`Store::insert_traces`]'s transaction; returns the ids of traces
/// whose results reading must cost nothing (their batch was settled before), and the
/// reservations the settled holds release.
macro_rules! apply_batch_events {
    ($tx:expr, $records:expr, $now:expr) => {{
        let mut free: Vec<$crate::domain::TraceId> = Vec::new();
        let mut releases: Vec<$crate::domain::TraceId> = Vec::new();
        for r in $records {
            let Some(ev) = &r.batch else { continue };
            match ev {
                $crate::store::batches::BatchEvent::Created {
                    provider,
                    batch_id,
                    estimate_nanos,
                } => {
                    let reservation = r.reservation.as_ref().map(|res| res.id);
                    let expires = r.started_at + $crate::store::batches::HOLD_MS;
                    sqlx::query(
                        "INSERT INTO batch_holds (org_id, provider, batch_id, endpoint_id, key_id, \
                         reservation_id, estimate_nanos, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (org_id, provider, batch_id) DO NOTHING",
                    )
                    .bind(r.org_id)
                    .bind(provider)
                    .bind(batch_id)
                    .bind(r.endpoint_id)
                    .bind(r.virtual_key_id)
                    .bind(reservation)
                    .bind(estimate_nanos)
                    .bind(r.started_at)
                    .bind(expires)
                    .execute(&mut **$tx)
                    .await?;
                    if let Some(id) = reservation {
                        // Kept past the usual sweep: the hold releases it.
                        sqlx::query("UPDATE key_reservations SET expires_at = $2 WHERE id = $1")
                            .bind(id)
                            .bind(expires + $crate::domain::DAY_MS)
                            .execute(&mut **$tx)
                            .await?;
                    }
                }
                $crate::store::batches::BatchEvent::Output {
                    provider,
                    batch_id,
                    file_id,
                } => {
                    sqlx::query(
                        "UPDATE batch_holds SET output_file = $4 \
                         WHERE org_id = $1 AND provider = $2 AND batch_id = $3",
                    )
                    .bind(r.org_id)
                    .bind(provider)
                    .bind(batch_id)
                    .bind(file_id)
                    .execute(&mut **$tx)
                    .await?;
                }
                $crate::store::batches::BatchEvent::Results {
                    provider,
                    batch_id,
                    file_id,
                } => {
                    let batch = batch_id.as_deref().unwrap_or("");
                    let file = file_id.as_deref().unwrap_or("");
                    // Claimed once, by the caller that holds it (the key that created the batch,
                    // or no key for one created without): reading another key's results must not
                    // release that key's hold. A replay of the claiming trace claims again,
                    // harmlessly.
                    let claimed: Option<(Option<$crate::domain::TraceId>,)> = sqlx::query_as(
                        "UPDATE batch_holds SET settled_at = $5, settled_by = $6 \
                         WHERE org_id = $1 AND provider = $2 \
                         AND (batch_id = $3 OR (output_file IS NOT NULL AND output_file = $4)) \
                         AND key_id IS NOT DISTINCT FROM $7 \
                         AND (settled_at IS NULL OR settled_by = $6) \
                         RETURNING reservation_id",
                    )
                    .bind(r.org_id)
                    .bind(provider)
                    .bind(batch)
                    .bind(file)
                    .bind($now)
                    .bind(r.id)
                    .bind(r.virtual_key_id)
                    .fetch_optional(&mut **$tx)
                    .await?;
                    match claimed {
                        Some((reservation,)) => releases.extend(reservation),
                        None => {
                            let known: Option<i64> = sqlx::query_scalar(
                                "SELECT CAST(1 AS BIGINT) FROM batch_holds WHERE org_id = $1 AND provider = $2 \
                                 AND (batch_id = $3 OR (output_file IS NOT NULL AND output_file = $4))",
                            )
                            .bind(r.org_id)
                            .bind(provider)
                            .bind(batch)
                            .bind(file)
                            .fetch_optional(&mut **$tx)
                            .await?;
                            if known.is_some() {
                                // Settled already, or held by another caller (who settles it, or
                                // is charged its estimate when the hold expires): no charge here.
                                free.push(r.id);
                            } else {
                                // A batch the gateway did not see created: this reading is charged,
                                // and recorded as settled so that reading it again is not.
                                let id = if batch.is_empty() {
                                    format!("file:{file}")
                                } else {
                                    batch.to_owned()
                                };
                                sqlx::query(
                                    "INSERT INTO batch_holds (org_id, provider, batch_id, endpoint_id, \
                                     key_id, estimate_nanos, output_file, created_at, expires_at, \
                                     settled_at, settled_by) \
                                     VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $7, $7, $8) \
                                     ON CONFLICT (org_id, provider, batch_id) DO NOTHING",
                                )
                                .bind(r.org_id)
                                .bind(provider)
                                .bind(id)
                                .bind(r.endpoint_id)
                                .bind(r.virtual_key_id)
                                .bind(file_id.as_deref())
                                .bind($now)
                                .bind(r.id)
                                .execute(&mut **$tx)
                                .await?;
                            }
                        }
                    }
                }
            }
        }
        (free, releases)
    }};
}

pub(crate) use apply_batch_events;
