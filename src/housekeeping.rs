//! Periodic chores, every minute and once at start: trace retention (whole days, in small
//! batches so it never holds the write lock for long), releasing the budget reservations of calls
//! that never finished, expired portal sessions, old login failures and old budget alerts. The
//! server only spawns [`run`]; the rules are here.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Services;
use crate::domain::{DAY_MS, HOUR_MS, Millis, Outcome, TraceId, day_start};
use crate::store::batches::{BatchEvent, ExpiredHold};
use crate::store::retention::RetentionSettings;
use crate::store::traces::{TraceBodies, TraceRecord};
use crate::usage::{Usage, UsageSource};

/// How often the chores run.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// Traces deleted per statement by retention.
const RETENTION_BATCH: i64 = 1000;
/// Minute windows of rate limits are kept this long (for the portal's spend view), then swept.
const MINUTE_WINDOWS_KEPT_MS: Millis = HOUR_MS;
/// Budget alerts of day and month windows are listed this long after they fired.
const ALERTS_KEPT_MS: Millis = 90 * DAY_MS;

/// Runs the chores until `stopping` is cancelled.
pub async fn run(services: Services, stopping: CancellationToken) {
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            () = stopping.cancelled() => return,
        }
        once(&services, crate::domain::now_ms(), &stopping).await;
    }
}

/// One round of chores at `now`.
pub async fn once(services: &Services, now: Millis, stopping: &CancellationToken) {
    let store = &services.store;
    apply_retention(services, now, stopping).await;
    settle_expired_batches(services, now).await;
    match store
        .sweep_limits(
            now,
            now - crate::limits::RESERVATION_TTL_MS,
            now - MINUTE_WINDOWS_KEPT_MS,
        )
        .await
    {
        Ok(n) if n > 0 => {
            tracing::warn!(
                released = n,
                "released reservations of calls that never finished"
            );
        }
        _ => {}
    }
    let _ = store.purge_expired_sessions(now).await;
    let _ = store.purge_alert_events(now - ALERTS_KEPT_MS).await;
    let _ = store
        .purge_login_failures(now - crate::accounts::guard::WINDOW_MS)
        .await;
}

/// The days an endpoint keeps its traces: its own setting, else its organization's, else the
/// instance's (`ANTIX_TRACE_RETENTION_DAYS`). 0 keeps them forever.
pub fn effective_retention(s: RetentionSettings, instance_days: u32) -> u32 {
    s.endpoint_days.or(s.org_days).unwrap_or(instance_days)
}

/// Deletes each endpoint's traces past its retention, whole days at a time, in batches of
/// [`RETENTION_BATCH`] (each a short write, so the proxy's trace writes and budget admissions
/// never wait long). Daily totals stay: the Overview keeps its history.
async fn apply_retention(services: &Services, now: Millis, stopping: &CancellationToken) {
    let store = &services.store;
    let Ok(plan) = store.retention_plan().await else {
        return;
    };
    let mut removed = 0u64;
    for (endpoint, settings) in plan {
        let days = effective_retention(settings, services.settings.trace_retention_days);
        if days == 0 {
            continue;
        }
        let before = day_start(now - i64::from(days) * DAY_MS);
        while let Ok(n) = store
            .delete_endpoint_traces_before(endpoint, before, RETENTION_BATCH)
            .await
        {
            removed += n;
            if n < RETENTION_BATCH as u64 || stopping.is_cancelled() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let _ = store
            .delete_endpoint_sessions_before(endpoint, before)
            .await;
        if stopping.is_cancelled() {
            break;
        }
    }
    if removed > 0 {
        tracing::info!(removed, "deleted traces past retention");
    }
}

/// Batches whose results were never read back through the gateway are charged their estimate
/// when their hold expires (a batch is never free), by a trace of their own.
async fn settle_expired_batches(services: &Services, now: Millis) {
    let store = &services.store;
    let Ok(expired) = store.expired_batch_holds(now, 100).await else {
        return;
    };
    if expired.is_empty() {
        return;
    }
    let records: Vec<_> = expired.iter().map(|h| expiry_trace(h, now)).collect();
    match store.insert_traces(&records).await {
        Ok(n) => tracing::warn!(
            batches = n,
            "charged batches their estimate: their results were never read back"
        ),
        Err(e) => tracing::error!(error = %e, "could not settle expired batch holds"),
    }
}

/// The trace that charges an expired hold its estimate.
fn expiry_trace(h: &ExpiredHold, now: Millis) -> TraceRecord {
    TraceRecord {
        id: TraceId::at(now),
        org_id: h.org_id,
        endpoint_id: h.endpoint_id,
        started_at: now,
        auth_mode: if h.key_id.is_some() {
            "virtual_key"
        } else {
            "byok"
        }
        .into(),
        virtual_key_id: h.key_id,
        key_hint: None,
        provider: Some(h.provider.clone()),
        wire: None,
        model: None,
        method: "BATCH".into(),
        path: format!("batch {} (results never read back)", h.batch_id),
        status_code: 200,
        outcome: Outcome::Ok,
        error: None,
        is_stream: false,
        usage: Usage::default(),
        usage_source: UsageSource::Estimated,
        cost_nanos: Some(h.estimate_nanos),
        cost_estimated: true,
        cost_detail: None,
        catalog_version: None,
        ttft_us: None,
        latency_us: 0,
        session_key: None,
        session_parent: None,
        response_id: None,
        request_bytes: 0,
        response_bytes: 0,
        bodies: TraceBodies {
            request_headers: "{}".into(),
            response_headers: "{}".into(),
            ..Default::default()
        },
        reservation: None,
        search_text: String::new(),
        session_preview: None,
        session_starts: None,
        tool_calls: None,
        attempts: Vec::new(),
        batch: Some(BatchEvent::Results {
            provider: h.provider.clone(),
            batch_id: Some(h.batch_id.clone()),
            file_id: None,
        }),
    }
}
