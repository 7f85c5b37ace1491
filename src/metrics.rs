//! Prometheus metrics: what the gateway did (requests, errors, latency, tokens, cost, upstream
//! tries), counted from each trace as the recorder writes it, so the request path pays nothing,
//! plus the state of the recorder, the spool, the memory budget and the database pools, read at
//! scrape time.
//!
//! Label sets are bounded: providers, auth modes, outcomes and status classes are closed lists;
//! endpoints and models are the ones callers used, capped (past the cap, or for a model name
//! the price catalog does not know and that came with a request the gateway refused, the value
//! is `other`), because a label value a client chooses must not grow the scrape without end.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use prometheus::{
    CounterVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::domain::Outcome;
use crate::store::traces::TraceRecord;

/// Distinct endpoints labelled by id; further ones share `other`.
const MAX_ENDPOINTS: usize = 1000;
/// Distinct model names the price catalog does not know; further ones share `other`.
const MAX_UNKNOWN_MODELS: usize = 100;
/// A longer label value is cut (model names are short; anything longer is not a model).
const MAX_LABEL_LEN: usize = 80;

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
const TTFT_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
];

/// The gateway's metrics, one set per recorder (tests run several gateways in one process, so
/// nothing here is global).
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
    ttft: HistogramVec,
    tokens: IntCounterVec,
    cost: CounterVec,
    attempts: IntCounterVec,
    /// Mirrors of the recorder's own counters, brought up to date at each scrape.
    mirrored: Vec<(IntCounter, ReadStat)>,
    queue_depth: IntGauge,
    queue_bytes: IntGauge,
    spool_bytes: IntGauge,
    memory_used: IntGauge,
    memory_budget: IntGauge,
    memory_refusals: IntCounter,
    pool: IntGaugeVec,
    labels: Mutex<Seen>,
    /// One scrape at a time: mirrored counters are advanced by difference.
    scrape: Mutex<()>,
}

/// Reads one of the recorder's counters.
type ReadStat = fn(&RecorderReadings) -> u64;

#[derive(Default)]
struct Seen {
    endpoints: HashSet<String>,
    models: HashSet<String>,
}

/// What the scrape reads off the running process besides the counters.
pub struct Readings<'a> {
    pub recorder: RecorderReadings,
    pub memory: &'a crate::memory::MemoryBudget,
    pub pools: Vec<crate::store::PoolUse>,
}

/// The trace recorder's counters at scrape time (the recorder reads them off itself, see
/// [`crate::recorder::Recorder::readings`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct RecorderReadings {
    pub submitted: u64,
    pub written: u64,
    pub spooled: u64,
    pub replayed: u64,
    pub quarantined: u64,
    pub lost: u64,
    pub dropped_bodies: u64,
    pub write_errors: u64,
    pub throttled: u64,
    pub queued: u64,
    pub queued_bytes: u64,
    pub spool_bytes: u64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| bad(name, &e));
    register(r, Box::new(c.clone()), name);
    c
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| bad(name, &e));
    register(r, Box::new(h.clone()), name);
    h
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| bad(name, &e));
    register(r, Box::new(g.clone()), name);
    g
}

fn plain_counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| bad(name, &e));
    register(r, Box::new(c.clone()), name);
    c
}

fn register(r: &Registry, c: Box<dyn prometheus::core::Collector>, name: &str) {
    if let Err(e) = r.register(c) {
        bad(name, &e);
    }
}

/// The definitions above are constants of this file: a bad one is a bug caught by every test.
#[expect(
    clippy::panic,
    reason = "metric definitions are static; tests exercise every one"
)]
fn bad(name: &str, e: &prometheus::Error) -> ! {
    panic!("metric {name}: {e}")
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new_custom(Some("antix".into()), None)
            .unwrap_or_else(|e| bad("registry", &e));
        let info = IntGaugeVec::new(
            Opts::new("build_info", "The running Antix version (always 1)."),
            &["version"],
        )
        .unwrap_or_else(|e| bad("build_info", &e));
        register(&r, Box::new(info.clone()), "build_info");
        info.with_label_values(&[crate::VERSION]).set(1);
        let mirror = |name: &str, help: &str, read: ReadStat| (plain_counter(&r, name, help), read);
        let mirrored = vec![
            mirror(
                "traces_submitted_total",
                "Traces handed to the recorder.",
                |s| s.submitted,
            ),
            mirror(
                "traces_written_total",
                "Traces written to the database.",
                |s| s.written,
            ),
            mirror(
                "traces_spooled_total",
                "Traces kept in the on-disk spool because the database did not take them.",
                |s| s.spooled,
            ),
            mirror(
                "traces_replayed_total",
                "Spooled traces written later.",
                |s| s.replayed,
            ),
            mirror(
                "traces_quarantined_total",
                "Traces the database refused for good, kept aside with their error.",
                |s| s.quarantined,
            ),
            mirror(
                "traces_lost_total",
                "Traces that could be kept nowhere (database down and the disk failing).",
                |s| s.lost,
            ),
            mirror(
                "trace_bodies_dropped_total",
                "Traces kept without their bodies (queue or spool over their caps).",
                |s| s.dropped_bodies,
            ),
            mirror(
                "trace_write_errors_total",
                "Failed database writes of trace batches (retried from the spool).",
                |s| s.write_errors,
            ),
            mirror(
                "requests_throttled_total",
                "Requests that waited for the trace writer to catch up (backpressure).",
                |s| s.throttled,
            ),
        ];
        Metrics {
            requests: counter(
                &r,
                "requests_total",
                "Proxied requests by endpoint, provider, auth mode, outcome and status class.",
                &[
                    "endpoint",
                    "provider",
                    "auth_mode",
                    "outcome",
                    "status_class",
                ],
            ),
            errors: counter(
                &r,
                "errors_total",
                "Failed proxied requests by provider and class (rejected by the gateway, \
                 upstream 4xx/5xx, upstream unreachable or cut, timeout, client gone, shutdown).",
                &["provider", "class"],
            ),
            latency: histogram(
                &r,
                "request_duration_seconds",
                "Time from the request's arrival to the response's last byte.",
                LATENCY_BUCKETS,
                &["provider", "stream"],
            ),
            ttft: histogram(
                &r,
                "time_to_first_token_seconds",
                "Streamed responses: time from the request's arrival to the first token.",
                TTFT_BUCKETS,
                &["provider"],
            ),
            tokens: counter(
                &r,
                "tokens_total",
                "Tokens by endpoint, provider, model, auth mode and kind (input counts every \
                 prompt token; cache_read and cache_write are the cached part of it).",
                &["endpoint", "provider", "model", "auth_mode", "kind"],
            ),
            cost: {
                let c = CounterVec::new(
                    Opts::new(
                        "cost_dollars_total",
                        "Cost in US dollars by endpoint, provider, model and auth mode; \
                         estimated=true for passthrough (BYOK, OAuth) traffic.",
                    ),
                    &["endpoint", "provider", "model", "auth_mode", "estimated"],
                )
                .unwrap_or_else(|e| bad("cost_dollars_total", &e));
                register(&r, Box::new(c.clone()), "cost_dollars_total");
                c
            },
            attempts: counter(
                &r,
                "upstream_attempts_total",
                "Tries at the upstream (retries and fallbacks each count) by provider, status \
                 class (none: no answer) and whether the target was a fallback.",
                &["provider", "status_class", "fallback"],
            ),
            mirrored,
            queue_depth: gauge(&r, "trace_queue_depth", "Traces waiting to be written."),
            queue_bytes: gauge(
                &r,
                "trace_queue_bytes",
                "Body bytes held by traces waiting to be written.",
            ),
            spool_bytes: gauge(&r, "trace_spool_bytes", "Size of the on-disk trace spool."),
            memory_used: gauge(
                &r,
                "body_memory_bytes",
                "Request and response body bytes held in memory.",
            ),
            memory_budget: gauge(
                &r,
                "body_memory_budget_bytes",
                "The cap on body bytes held in memory (ANTIX_MEMORY_BUDGET_BYTES).",
            ),
            memory_refusals: plain_counter(
                &r,
                "body_memory_refusals_total",
                "Requests refused or captures cut short because the memory budget was spent.",
            ),
            pool: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "db_pool_connections",
                        "Database connections by pool and state (in_use, idle, max).",
                    ),
                    &["pool", "state"],
                )
                .unwrap_or_else(|e| bad("db_pool_connections", &e));
                register(&r, Box::new(g.clone()), "db_pool_connections");
                g
            },
            labels: Mutex::new(Seen::default()),
            scrape: Mutex::new(()),
            registry: r,
        }
    }

    /// Counts one written trace.
    pub fn observe(&self, t: &TraceRecord) {
        let provider = t.provider.as_deref().unwrap_or("none");
        let provider = bounded_provider(provider);
        let auth = match t.auth_mode.as_str() {
            "virtual_key" | "byok" | "oauth" => t.auth_mode.as_str(),
            _ => "none",
        };
        let (endpoint, model) = self.bounded(t);
        let class = status_class(t.status_code);
        self.requests
            .with_label_values(&[&endpoint, provider, auth, t.outcome.as_str(), class])
            .inc();
        if let Some(error_class) = error_class(t.outcome, t.status_code) {
            self.errors
                .with_label_values(&[provider, error_class])
                .inc();
        }
        self.latency
            .with_label_values(&[provider, if t.is_stream { "true" } else { "false" }])
            .observe(t.latency_us as f64 / 1e6);
        // Only streams: for a whole answer the first byte is most of the latency, not a token.
        if let Some(ttft) = t.ttft_us.filter(|_| t.is_stream) {
            self.ttft
                .with_label_values(&[provider])
                .observe(ttft as f64 / 1e6);
        }
        let u = &t.usage;
        for (kind, n) in [
            ("input", u.input_tokens),
            ("output", u.output_tokens),
            ("cache_read", u.cache_read_tokens),
            ("cache_write", u.cache_write_tokens),
            ("reasoning", u.reasoning_tokens),
        ] {
            if let Some(n) = n.filter(|n| *n > 0) {
                self.tokens
                    .with_label_values(&[&endpoint, provider, &model, auth, kind])
                    .inc_by(n);
            }
        }
        if let Some(nanos) = t.cost_nanos.filter(|n| *n > 0) {
            let estimated = if t.cost_estimated { "true" } else { "false" };
            self.cost
                .with_label_values(&[&endpoint, provider, &model, auth, estimated])
                .inc_by(nanos as f64 / 1e9);
        }
        if t.attempts.is_empty() {
            // One try, described by the trace itself (when it reached the provider at all).
            if t.outcome != Outcome::Rejected && t.provider.is_some() {
                self.attempts
                    .with_label_values(&[provider, class, "false"])
                    .inc();
            }
        } else {
            for a in t.attempts.iter().filter(|a| !a.skipped) {
                self.attempts
                    .with_label_values(&[
                        bounded_provider(&a.provider),
                        status_class(a.status),
                        if a.fallback { "true" } else { "false" },
                    ])
                    .inc();
            }
        }
    }

    /// The endpoint and model label values for a trace, within their caps.
    fn bounded(&self, t: &TraceRecord) -> (String, String) {
        let mut seen = self
            .labels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let endpoint = t.endpoint_id.to_string();
        let endpoint = if seen.endpoints.contains(&endpoint) || seen.endpoints.len() < MAX_ENDPOINTS
        {
            seen.endpoints.insert(endpoint.clone());
            endpoint
        } else {
            "other".to_owned()
        };
        let model = match t.model.as_deref().filter(|m| !m.is_empty()) {
            None => "none".to_owned(),
            Some(m) => match crate::pricing::Catalog::builtin().resolve(m) {
                Some(known) => cut(known),
                // A name the catalog does not know counts only when the call went through,
                // and only the first so many of them.
                None if t.outcome != Outcome::Rejected
                    && (seen.models.contains(m) || seen.models.len() < MAX_UNKNOWN_MODELS) =>
                {
                    let m = cut(m);
                    seen.models.insert(m.clone());
                    m
                }
                None => "other".to_owned(),
            },
        };
        (endpoint, model)
    }

    /// The text exposition (Prometheus format 0.0.4).
    pub fn render(&self, now: &Readings<'_>) -> String {
        let _one = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stats = &now.recorder;
        for (counter, read) in &self.mirrored {
            let value = read(stats);
            let shown = counter.get();
            if value > shown {
                counter.inc_by(value - shown);
            }
        }
        self.queue_depth.set(gauge_value(stats.queued));
        self.queue_bytes.set(gauge_value(stats.queued_bytes));
        self.spool_bytes.set(gauge_value(stats.spool_bytes));
        self.memory_used.set(gauge_value(now.memory.used() as u64));
        self.memory_budget
            .set(gauge_value(now.memory.limit() as u64));
        let refused = now.memory.refused.load(Ordering::Relaxed);
        if refused > self.memory_refusals.get() {
            self.memory_refusals
                .inc_by(refused - self.memory_refusals.get());
        }
        for p in &now.pools {
            for (state, n) in [("in_use", p.in_use), ("idle", p.idle), ("max", p.max)] {
                self.pool
                    .with_label_values(&[p.name, state])
                    .set(gauge_value(n as u64));
            }
        }
        let mut out = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn bounded_provider(p: &str) -> &str {
    match p {
        "openai" | "anthropic" | "gemini" => p,
        "none" => "none",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}

/// The class of a failed request, none for a success.
fn error_class(outcome: Outcome, status: u16) -> Option<&'static str> {
    match outcome {
        Outcome::Ok => match status {
            400..=499 => Some("upstream_4xx"),
            500..=599 => Some("upstream_5xx"),
            _ => None,
        },
        Outcome::Rejected => Some("rejected"),
        Outcome::UpstreamError => Some("upstream_error"),
        Outcome::UpstreamCut => Some("upstream_cut"),
        Outcome::Timeout => Some("timeout"),
        Outcome::ClientDisconnected => Some("client_disconnected"),
        Outcome::ShutdownAborted => Some("shutdown_aborted"),
    }
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_LABEL_LEN) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests;
