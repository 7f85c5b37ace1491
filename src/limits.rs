//! Limits on virtual keys, enforced by the proxy: budgets in USD per day, month and lifetime,
//! requests and tokens per minute. Model and endpoint allow-lists are checked by the gateway.
//!
//! How budgets hold under concurrency, including several replicas on one Postgres: before a
//! call is forwarded, an estimate of its cost is *reserved* with one atomic conditional update
//! per window (`spent + reserved < budget`); when its trace is written, the reservation is
//! released and the recorded cost is charged, in the same transaction as the trace (so a
//! replayed trace is never charged twice). A call is admitted only while the budget is not yet
//! used up by spend plus the reservations of calls in flight, so the overshoot is bounded by
//! one call's cost beyond its estimate. Rate limits count requests (and recorded tokens) per
//! UTC minute the same way. If the database cannot be reached, budgeted calls are refused with
//! 503: limits fail closed.
//!
//! A reservation of a call that never finished (a replica killed mid-call) is released by the
//! housekeeping sweep after [`RESERVATION_TTL_MS`].

use chrono::{Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{DAY_MS, MINUTE_MS, Millis, TraceId, VirtualKey, VirtualKeyId, day_start};

/// Reservations older than this are released by the sweep (no call runs this long).
pub const RESERVATION_TTL_MS: Millis = 30 * MINUTE_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Day,
    Month,
    Total,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
            Period::Total => "total",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Period::Day => "Daily",
            Period::Month => "Monthly",
            Period::Total => "Lifetime",
        }
    }
}

/// The UTC windows a moment falls in: minute, day and month starts, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub minute: Millis,
    pub day: Millis,
    pub month: Millis,
    pub next_minute: Millis,
    pub next_day: Millis,
    pub next_month: Millis,
}

pub fn windows(now: Millis) -> Windows {
    let t = Utc.timestamp_millis_opt(now).single().unwrap_or_default();
    let minute = now - now.rem_euclid(MINUTE_MS);
    let day = day_start(now);
    let month_start = Utc
        .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .map_or(day, |m| m.timestamp_millis());
    let (ny, nm) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    let next_month = Utc
        .with_ymd_and_hms(ny, nm, 1, 0, 0, 0)
        .single()
        .map_or(day + 31 * DAY_MS, |m| m.timestamp_millis());
    Windows {
        minute,
        day,
        month: month_start,
        next_minute: minute + MINUTE_MS,
        next_day: day + DAY_MS,
        next_month,
    }
}

/// Cost held for one call in flight; travels with its trace to be settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: TraceId,
    pub key_id: VirtualKeyId,
    pub amount_nanos: i64,
    pub day_start: Millis,
    pub month_start: Millis,
}

/// What an admission check needs from the store.
#[derive(Debug, Clone)]
pub struct Admission {
    pub key_id: VirtualKeyId,
    pub trace_id: TraceId,
    pub now: Millis,
    pub windows: Windows,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    /// Budgets that apply, with their limits.
    pub budgets: Vec<(Period, i64)>,
    pub reserve_nanos: i64,
    /// The gateway process reserving (released at its restart if it crashed holding it).
    pub owner: Option<std::sync::Arc<str>>,
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Rpm {
        limit: i64,
        resets_at: Millis,
    },
    Tpm {
        limit: i64,
        used: i64,
        resets_at: Millis,
    },
    Budget {
        period: Period,
        budget_nanos: i64,
        spent_nanos: i64,
        /// The refused call's own estimate.
        needed_nanos: i64,
        resets_at: Option<Millis>,
    },
}

impl Denied {
    pub fn message(&self) -> String {
        let when = |ms: Millis| {
            Utc.timestamp_millis_opt(ms)
                .single()
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default()
        };
        match self {
            Denied::Rpm { limit, resets_at } => format!(
                "Rate limit of {limit} requests per minute reached for this virtual key; it resets at {}.",
                when(*resets_at)
            ),
            Denied::Tpm {
                limit,
                used,
                resets_at,
            } => format!(
                "Rate limit of {limit} tokens per minute reached for this virtual key ({used} used); it resets at {}.",
                when(*resets_at)
            ),
            Denied::Budget {
                period,
                budget_nanos,
                spent_nanos,
                needed_nanos,
                resets_at,
            } => {
                let reset = match resets_at {
                    Some(t) => format!("it resets at {}", when(*t)),
                    None => "an admin can raise it in the Antix portal".to_owned(),
                };
                let left = budget_nanos.saturating_sub(*spent_nanos);
                if *needed_nanos > *budget_nanos {
                    return format!(
                        "This call may cost up to {} (its estimate), more than this virtual key's whole {} budget of {}; send a smaller request or a lower max_tokens, or an admin can raise the budget in the Antix portal.",
                        crate::pricing::format_usd(*needed_nanos),
                        period.label().to_lowercase(),
                        crate::pricing::format_usd(*budget_nanos),
                    );
                }
                if *needed_nanos > 0 && left > 0 {
                    return format!(
                        "This call may cost up to {} (its estimate), more than the {} left of this virtual key's {} budget of {}; send a smaller request or a lower max_tokens, or {reset}.",
                        crate::pricing::format_usd(*needed_nanos),
                        crate::pricing::format_usd(left),
                        period.label().to_lowercase(),
                        crate::pricing::format_usd(*budget_nanos),
                    );
                }
                format!(
                    "{} budget of {} for this virtual key is used up ({} spent or held by calls in flight); {reset}.",
                    period.label(),
                    crate::pricing::format_usd(*budget_nanos),
                    crate::pricing::format_usd(*spent_nanos),
                )
            }
        }
    }

    pub fn retry_after_secs(&self, now: Millis) -> u64 {
        let until = match self {
            Denied::Rpm { resets_at, .. } | Denied::Tpm { resets_at, .. } => Some(*resets_at),
            Denied::Budget { resets_at, .. } => *resets_at,
        };
        until.map_or(0, |t| ((t - now).max(0) as u64).div_ceil(1000).max(1))
    }

    pub fn is_budget(&self) -> bool {
        matches!(self, Denied::Budget { .. })
    }
}

impl VirtualKey {
    pub fn has_budget(&self) -> bool {
        let l = &self.limits;
        l.budget_daily_nanos.is_some()
            || l.budget_monthly_nanos.is_some()
            || l.budget_total_nanos.is_some()
    }

    pub fn has_rate_limit(&self) -> bool {
        self.limits.rpm.is_some() || self.limits.tpm.is_some()
    }

    /// The admission check for a call on this key, or `None` when it has no budget or rate limit.
    pub fn admission(
        &self,
        trace_id: TraceId,
        now: Millis,
        reserve_nanos: i64,
    ) -> Option<Admission> {
        if !self.has_budget() && !self.has_rate_limit() {
            return None;
        }
        let l = &self.limits;
        let budgets = [
            (Period::Day, l.budget_daily_nanos),
            (Period::Month, l.budget_monthly_nanos),
            (Period::Total, l.budget_total_nanos),
        ]
        .into_iter()
        .filter_map(|(p, b)| b.map(|b| (p, b)))
        .collect();
        Some(Admission {
            key_id: self.id,
            trace_id,
            now,
            windows: windows(now),
            rpm: l.rpm,
            tpm: l.tpm,
            budgets,
            reserve_nanos,
            owner: None,
        })
    }
}

/// The reservation of a single-choice chat call on `model` (see [`crate::metering::estimate`]
/// for every API). `None` when the model has no price.
pub fn estimate_cost(model: &str, request_bytes: usize, max_output: Option<u64>) -> Option<i64> {
    let facts = crate::metering::Facts {
        models: vec![model.to_owned()],
        request_bytes: request_bytes as u64,
        max_output,
        n: 1,
        ..Default::default()
    };
    crate::metering::estimate(crate::providers::Wire::OpenAiChat, &facts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_windows() {
        // 2026-11-28 23:59:30.5 UTC
        let t = Utc
            .with_ymd_and_hms(2026, 11, 28, 23, 59, 30)
            .unwrap()
            .timestamp_millis()
            + 500;
        let w = windows(t);
        assert_eq!(w.minute, t - 30_500);
        assert_eq!(
            w.day,
            Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(
            w.month,
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(
            w.next_month,
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        let dec = windows(
            Utc.with_ymd_and_hms(2026, 12, 31, 12, 0, 0)
                .unwrap()
                .timestamp_millis(),
        );
        assert_eq!(
            dec.next_month,
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
    }

    #[test]
    fn messages_name_the_limit_and_the_reset() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 28, 10, 0, 0)
            .unwrap()
            .timestamp_millis();
        let w = windows(now);
        let d = Denied::Budget {
            period: Period::Day,
            budget_nanos: 5_000_000_000,
            spent_nanos: 5_010_000_000,
            needed_nanos: 0,
            resets_at: Some(w.next_day),
        };
        let m = d.message();
        assert!(
            m.contains("Daily budget of $5") && m.contains("2026-11-29 00:00 UTC"),
            "{m}"
        );
        assert_eq!(d.retry_after_secs(now), 14 * 3600);
        let r = Denied::Rpm {
            limit: 60,
            resets_at: w.next_minute,
        };
        assert!(r.message().contains("60 requests per minute"));
        assert_eq!(r.retry_after_secs(now), 60);
    }

    #[test]
    fn estimates_use_max_tokens_or_the_default() {
        let small = estimate_cost("gpt-4o", 400, Some(100)).unwrap();
        let big = estimate_cost("gpt-4o", 400, None).unwrap();
        assert!(big > small);
        assert_eq!(small, 100 * 2500 + 100 * 10_000);
        assert_eq!(estimate_cost("no-such-model", 400, None), None);
    }
}
