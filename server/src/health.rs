//! `/healthz`: version and database status as JSON; 503 when the database does not answer.

use std::time::{Duration, Instant};

use antix::Services;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

/// A health probe must answer even when the database hangs.
const DB_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct HealthState {
    pub services: Services,
    pub recorder: antix::recorder::Recorder,
    /// Cancelled when shutdown begins: from then on the instance reports itself not ready.
    pub stopping: tokio_util::sync::CancellationToken,
}

pub async fn healthz(State(state): State<HealthState>) -> (StatusCode, Json<serde_json::Value>) {
    let services = &state.services;
    if state.stopping.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining", "version": antix::VERSION})),
        );
    }
    let started = Instant::now();
    let db = tokio::time::timeout(DB_PROBE_TIMEOUT, services.store.ping()).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (code, db_status) = match db {
        Ok(Ok(())) => (StatusCode::OK, "ok"),
        Ok(Err(_)) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
    };
    let traces = state.recorder.health();
    // Full spool: still serving, but traces are being kept without their bodies.
    let degraded = code != StatusCode::OK || traces.spool_full;
    let body = json!({
        "status": if degraded { "degraded" } else { "ok" },
        "version": antix::VERSION,
        "database": {
            "backend": services.store.kind().as_str(),
            "status": db_status,
            "latency_ms": (latency_ms * 100.0).round() / 100.0,
        },
        "traces": traces,
        "memory": {
            "held_bytes": services.memory.used(),
            "budget_bytes": services.memory.limit(),
            "refusals": services.memory.refused.load(std::sync::atomic::Ordering::Relaxed),
        },
    });
    (code, Json(body))
}
