//! Virtual-key limit counters: admission (rate-limit counts and budget reservations, all or
//! nothing in one transaction) and settlement (run by [`Store::insert_traces`] for the traces it
//! actually inserted). See [`crate::limits`] for the policy.

use super::{BeginWrite, Result, Store, dispatch, dispatch_admit, dispatch_write};
use crate::domain::{Millis, VirtualKeyId};
use crate::limits::{Admission, Denied, Period, Reservation, windows};

/// A key's spend in its current windows, and its use of the current minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySpend {
    pub day_nanos: i64,
    pub month_nanos: i64,
    pub total_nanos: i64,
    pub minute_requests: i64,
    pub minute_tokens: i64,
}

impl Store {
    /// Counts the call against the key's rate limits and reserves its estimated cost against
    /// its budgets. Nothing is changed when any limit refuses it.
    pub async fn admit(
        &self,
        a: &Admission,
    ) -> Result<std::result::Result<Option<Reservation>, Denied>> {
        let w = a.windows;
        // A call whose estimate alone exceeds a budget can never fit: refuse it without touching
        // the counters (and without sums near i64::MAX reaching the database).
        if let Some(&(period, budget)) = a.budgets.iter().find(|(_, b)| a.reserve_nanos > *b) {
            return Ok(Err(Denied::Budget {
                period,
                budget_nanos: budget,
                spent_nanos: 0,
                needed_nanos: a.reserve_nanos,
                resets_at: match period {
                    Period::Day => Some(w.next_day),
                    Period::Month => Some(w.next_month),
                    Period::Total => None,
                },
            }));
        }
        self.note_admission();
        dispatch_admit!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            if a.rpm.is_some() || a.tpm.is_some() {
                sqlx::query(
                    "INSERT INTO key_windows (key_id, kind, window_start) VALUES ($1, 'minute', $2) \
                     ON CONFLICT (key_id, kind, window_start) DO NOTHING",
                )
                .bind(a.key_id)
                .bind(w.minute)
                .execute(&mut *tx)
                .await?;
                let admitted = sqlx::query(
                    "UPDATE key_windows SET requests = requests + 1 \
                     WHERE key_id = $1 AND kind = 'minute' AND window_start = $2 \
                     AND requests < COALESCE($3, requests + 1) AND tokens < COALESCE($4, tokens + 1)",
                )
                .bind(a.key_id)
                .bind(w.minute)
                .bind(a.rpm)
                .bind(a.tpm)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if admitted == 0 {
                    let (requests, tokens): (i64, i64) = sqlx::query_as(
                        "SELECT requests, tokens FROM key_windows \
                         WHERE key_id = $1 AND kind = 'minute' AND window_start = $2",
                    )
                    .bind(a.key_id)
                    .bind(w.minute)
                    .fetch_one(&mut *tx)
                    .await?;
                    let denied = match (a.rpm, a.tpm) {
                        (Some(r), _) if requests >= r => Denied::Rpm {
                            limit: r,
                            resets_at: w.next_minute,
                        },
                        (_, Some(t)) => Denied::Tpm {
                            limit: t,
                            used: tokens,
                            resets_at: w.next_minute,
                        },
                        (Some(r), None) => Denied::Rpm {
                            limit: r,
                            resets_at: w.next_minute,
                        },
                        (None, None) => Denied::Rpm {
                            limit: 0,
                            resets_at: w.next_minute,
                        },
                    };
                    return Ok(Err(denied));
                }
            }
            if a.budgets.is_empty() {
                tx.commit().await?;
                return Ok(Ok(None));
            }
            for (period, start, resets_at) in [
                (Period::Day, w.day, Some(w.next_day)),
                (Period::Month, w.month, Some(w.next_month)),
                (Period::Total, 0, None),
            ] {
                sqlx::query(
                    "INSERT INTO key_windows (key_id, kind, window_start) VALUES ($1, $2, $3) \
                     ON CONFLICT (key_id, kind, window_start) DO NOTHING",
                )
                .bind(a.key_id)
                .bind(period.as_str())
                .bind(start)
                .execute(&mut *tx)
                .await?;
                let budget = a
                    .budgets
                    .iter()
                    .find(|(p, _)| *p == period)
                    .map(|(_, b)| *b);
                // Admitted while spend, what calls in flight hold and this call's own estimate
                // fit in the budget: concurrent calls cannot together go past it (only a call
                // that costs more than its estimate can).
                let admitted = sqlx::query(
                    "UPDATE key_windows SET reserved_nanos = reserved_nanos + $4 \
                     WHERE key_id = $1 AND kind = $2 AND window_start = $3 \
                     AND spent_nanos + reserved_nanos + $4 <= COALESCE($5, spent_nanos + reserved_nanos + $4)",
                )
                .bind(a.key_id)
                .bind(period.as_str())
                .bind(start)
                .bind(a.reserve_nanos)
                .bind(budget)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if admitted == 0 {
                    let used: i64 = sqlx::query_scalar(
                        "SELECT spent_nanos + reserved_nanos FROM key_windows \
                         WHERE key_id = $1 AND kind = $2 AND window_start = $3",
                    )
                    .bind(a.key_id)
                    .bind(period.as_str())
                    .bind(start)
                    .fetch_one(&mut *tx)
                    .await?;
                    return Ok(Err(Denied::Budget {
                        period,
                        budget_nanos: budget.unwrap_or(0),
                        spent_nanos: used,
                        needed_nanos: a.reserve_nanos,
                        resets_at,
                    }));
                }
            }
            sqlx::query(
                "INSERT INTO key_reservations (id, key_id, amount_nanos, day_start, month_start, created_at, owner) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(a.trace_id)
            .bind(a.key_id)
            .bind(a.reserve_nanos)
            .bind(w.day)
            .bind(w.month)
            .bind(a.now)
            .bind(a.owner.as_deref())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Ok(Some(Reservation {
                id: a.trace_id,
                key_id: a.key_id,
                amount_nanos: a.reserve_nanos,
                day_start: w.day,
                month_start: w.month,
            })))
        })
    }

    pub async fn key_spend(&self, key: VirtualKeyId, now: Millis) -> Result<KeySpend> {
        let w = windows(now);
        let rows: Vec<(String, i64, i64, i64, i64)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT kind, window_start, spent_nanos, requests, tokens FROM key_windows \
                 WHERE key_id = $1 AND ((kind = 'minute' AND window_start = $2) \
                 OR (kind = 'day' AND window_start = $3) OR (kind = 'month' AND window_start = $4) \
                 OR (kind = 'total' AND window_start = 0))",
            )
            .bind(key)
            .bind(w.minute)
            .bind(w.day)
            .bind(w.month)
            .fetch_all(pool)
            .await?
        });
        let mut s = KeySpend::default();
        for (kind, _, spent, requests, tokens) in rows {
            match kind.as_str() {
                "minute" => {
                    s.minute_requests = requests;
                    s.minute_tokens = tokens;
                }
                "day" => s.day_nanos = spent,
                "month" => s.month_nanos = spent,
                _ => s.total_nanos = spent,
            }
        }
        Ok(s)
    }

    /// Releases reservations of calls that never finished (their replica died), and of holds
    /// kept past their own expiry, and forgets minute counters no limit looks at any more.
    /// Returns the reservations released.
    pub async fn sweep_limits(
        &self,
        now: Millis,
        reservations_before: Millis,
        minutes_before: Millis,
    ) -> Result<u64> {
        let expired: Vec<(crate::domain::TraceId,)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT id FROM key_reservations WHERE (expires_at IS NULL AND created_at < $1)                  OR expires_at < $2 LIMIT 1000",
            )
            .bind(reservations_before)
            .bind(now)
            .fetch_all(pool)
            .await?
        });
        self.release_reservations(&expired, Some(minutes_before))
            .await
    }

    /// Releases the reservations a gateway process held when it stopped without settling them
    /// (it crashed): called by its next run at start. Batch holds are kept (their batches run
    /// at the provider whatever happened here).
    pub async fn release_reservations_of(&self, owner: &str, before: Millis) -> Result<u64> {
        let mut total = 0;
        loop {
            let ids: Vec<(crate::domain::TraceId,)> = dispatch!(self, |pool| {
                sqlx::query_as(
                    "SELECT id FROM key_reservations WHERE owner = $1 AND created_at < $2 \
                     AND expires_at IS NULL LIMIT 1000",
                )
                .bind(owner)
                .bind(before)
                .fetch_all(pool)
                .await?
            });
            if ids.is_empty() {
                return Ok(total);
            }
            let n = self.release_reservations(&ids, None).await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    async fn release_reservations(
        &self,
        expired: &[(crate::domain::TraceId,)],
        minutes_before: Option<Millis>,
    ) -> Result<u64> {
        let mut released = 0;
        dispatch_write!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut deltas = WindowDeltas::new();
            for (id,) in expired {
                if let Some(taken) = take_reservation!(&mut tx, *id) {
                    add_release(&mut deltas, taken);
                    released += 1;
                }
            }
            // Minute rows first: they come first in the lock order.
            if let Some(before) = minutes_before {
                sqlx::query("DELETE FROM key_windows WHERE kind = 'minute' AND window_start < $1")
                    .bind(before)
                    .execute(&mut *tx)
                    .await?;
            }
            let tx_ref = &mut tx;
            apply_windows!(tx_ref, deltas);
            tx.commit().await?;
        });
        Ok(released)
    }
}

/// Changes to key windows, ordered the way every transaction locks window rows: by key, then
/// kind in admission's order (minute, day, month, total), then window start. Admission,
/// settlement and the sweep all lock in this order, so on Postgres two replicas (or a replica's
/// admission and its recorder) may wait on each other but never deadlock.
pub(crate) type WindowDeltas =
    std::collections::BTreeMap<(VirtualKeyId, usize, Millis), WindowDelta>;

/// Window kinds in lock order (the index is the kind's rank in [`WindowDeltas`]).
pub(crate) const KINDS: [&str; 4] = ["minute", "day", "month", "total"];

#[derive(Debug, Default)]
pub(crate) struct WindowDelta {
    pub spent_nanos: i64,
    pub tokens: i64,
    pub released_nanos: i64,
}

/// Records that a reservation's amount goes back to the windows it was held in.
pub(crate) fn add_release(deltas: &mut WindowDeltas, taken: (VirtualKeyId, i64, Millis, Millis)) {
    let (key, amount, day, month) = taken;
    for (rank, start) in [(1, day), (2, month), (3, 0)] {
        deltas.entry((key, rank, start)).or_default().released_nanos += amount;
    }
}

/// Deletes one reservation; its key, amount and windows when it existed (so a reservation is
/// released exactly once, by settlement or by the sweep).
macro_rules! take_reservation {
    ($tx:expr, $id:expr) => {{
        let row: Option<(VirtualKeyId, i64, i64, i64)> = sqlx::query_as(
            "DELETE FROM key_reservations WHERE id = $1 RETURNING key_id, amount_nanos, day_start, month_start",
        )
        .bind($id)
        .fetch_optional(&mut **$tx)
        .await?;
        row
    }};
}

/// Applies window changes inside the caller's transaction, in lock order (one upsert per row).
macro_rules! apply_windows {
    ($tx:expr, $deltas:expr) => {{
        for ((key, rank, start), d) in $deltas {
            sqlx::query(
                "INSERT INTO key_windows (key_id, kind, window_start, spent_nanos, tokens) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id, kind, window_start) DO UPDATE SET \
                 spent_nanos = key_windows.spent_nanos + excluded.spent_nanos, \
                 tokens = key_windows.tokens + excluded.tokens, \
                 reserved_nanos = CASE WHEN key_windows.reserved_nanos >= $6 \
                 THEN key_windows.reserved_nanos - $6 ELSE 0 END",
            )
            .bind(key)
            .bind($crate::store::limits::KINDS[rank])
            .bind(start)
            .bind(d.spent_nanos)
            .bind(d.tokens)
            .bind(d.released_nanos)
            .execute(&mut **$tx)
            .await?;
        }
    }};
}

/// Settlement, inside the transaction that inserted `inserted` (and only those, so a replayed
/// trace is never charged twice): releases each call's reservation and charges its recorded
/// cost to its key's day, month and total windows, and its tokens to its minute. A macro, like
/// [`take_reservation!`], so it expands inside each backend's arm of the caller's dispatch.
macro_rules! settle_body {
    ($tx:expr, $inserted:expr, $releases:expr) => {{
        // Summed per key and window first: one upsert per window, not per call.
        let mut deltas = $crate::store::limits::WindowDeltas::new();
        // Reservations of batch holds that a results reading settled.
        for id in $releases {
            if let Some(taken) = $crate::store::limits::take_reservation!($tx, *id) {
                $crate::store::limits::add_release(&mut deltas, taken);
            }
        }
        for r in $inserted {
            let Some(key) = r.virtual_key_id else {
                continue;
            };
            // A created batch's reservation now belongs to its hold.
            let held = matches!(
                r.batch,
                Some($crate::store::batches::BatchEvent::Created { .. })
            );
            if let Some(res) = &r.reservation
                && !held
                && let Some(taken) = $crate::store::limits::take_reservation!($tx, res.id)
            {
                $crate::store::limits::add_release(&mut deltas, taken);
            }
            let w = $crate::limits::windows(r.started_at);
            let cost = r.cost_nanos.unwrap_or(0).max(0);
            let tokens = r
                .usage
                .input_tokens
                .unwrap_or(0)
                .saturating_add(r.usage.output_tokens.unwrap_or(0));
            let tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
            for (rank, start) in [(1, w.day), (2, w.month), (3, 0)] {
                deltas.entry((key, rank, start)).or_default().spent_nanos += cost;
            }
            deltas.entry((key, 0, w.minute)).or_default().tokens += tokens;
        }
        $crate::store::limits::apply_windows!($tx, deltas);
    }};
}

pub(crate) use {apply_windows, settle_body, take_reservation};
