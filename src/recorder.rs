//! Trace recording, off the request path. The proxy hands each finished request to
//! [`Recorder::submit`], which never blocks and never fails; a background task turns drafts into
//! rows (usage, cost, session, compression) and writes them in batches.
//!
//! Nothing is lost: when the database is down or slow, batches go to an append-only spool in the
//! data folder and are replayed when it answers again; writes are idempotent by trace id, so a
//! replay or a retry never duplicates. A row the database refuses for good is quarantined with
//! its error rather than dropping its batch. On shutdown the queue is drained to the database,
//! or to the spool when the database cannot take it in time.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::domain::{AuthMode, EndpointId, Millis, OrgId, Provider, TraceId, VirtualKeyId};
use crate::gateway::body::CapturedBytes;
use crate::providers::Wire;
use crate::store::Store;
use crate::store::traces::{Outcome, TraceRecord};

pub mod finalize;
pub mod spool;

/// A request as the proxy saw it, before usage, cost and session are worked out.
#[derive(Debug, Clone)]
pub struct TraceDraft {
    pub id: TraceId,
    pub org_id: OrgId,
    pub endpoint_id: EndpointId,
    pub started_at: Millis,
    pub started: Instant,
    pub auth_mode: Option<AuthMode>,
    pub virtual_key_id: Option<VirtualKeyId>,
    pub provider: Option<Provider>,
    pub wire: Option<Wire>,
    pub requested_model: Option<String>,
    pub method: String,
    /// Native path plus the redacted query string.
    pub path: String,
    /// Redacted only when finalized, off the request path.
    pub request_headers: http::HeaderMap,
    pub request_body: CapturedBytes,
    /// While a non-JSON request body is still streaming upstream, its copy fills here.
    pub request_stream_capture: Option<Arc<std::sync::Mutex<crate::gateway::body::Capture>>>,
    pub status: u16,
    pub response_headers: http::HeaderMap,
    pub response_body: CapturedBytes,
    pub is_stream: bool,
    pub ttft: Option<Duration>,
    pub latency: Duration,
    pub outcome: Outcome,
    pub error: Option<String>,
    /// Passthrough traffic (BYOK, OAuth): its cost is an estimate, not a bill.
    pub passthrough: bool,
    /// A client-supplied session id (Claude Code's `x-claude-code-session-id`).
    pub session_hint: Option<String>,
    /// Credential values seen on the request: scrubbed from anything stored, never persisted.
    pub secrets: Vec<String>,
    /// The budget reservation held for this call, settled when its trace is written.
    pub reservation: Option<crate::limits::Reservation>,
}

impl TraceDraft {
    fn body_bytes(&self) -> usize {
        self.request_body.bytes.len() + self.response_body.bytes.len()
    }
}

/// Counters exposed for operators and tests.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub submitted: AtomicU64,
    pub written: AtomicU64,
    pub spooled: AtomicU64,
    pub replayed: AtomicU64,
    pub quarantined: AtomicU64,
    pub dropped_bodies: AtomicU64,
    pub queued: AtomicUsize,
    pub queued_bytes: AtomicUsize,
    pub write_errors: AtomicU64,
}

#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub spool_dir: PathBuf,
    /// Bodies waiting to be written may hold at most this many bytes; beyond it new traces keep
    /// their usage and metadata but drop their bodies (counted in `dropped_bodies`).
    pub max_queued_bytes: usize,
    pub batch_size: usize,
    pub batch_interval: Duration,
}

impl RecorderConfig {
    pub fn new(data_dir: &std::path::Path) -> Self {
        RecorderConfig {
            spool_dir: data_dir.join("spool"),
            max_queued_bytes: 256 * 1024 * 1024,
            batch_size: 500,
            batch_interval: Duration::from_millis(50),
        }
    }
}

struct Shared {
    tx: mpsc::UnboundedSender<TraceDraft>,
    stats: Stats,
    closed: AtomicBool,
    config: RecorderConfig,
    spool: spool::Spool,
}

/// Handle to the recorder. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

impl Recorder {
    /// Starts the writer task.
    pub fn start(store: Store, config: RecorderConfig) -> (Recorder, RecorderTask) {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            tx,
            stats: Stats::default(),
            closed: AtomicBool::new(false),
            spool: spool::Spool::new(config.spool_dir.clone()),
            config,
        });
        let task = tokio::spawn(writer::run(store, rx, shared.clone()));
        (
            Recorder {
                shared: shared.clone(),
            },
            RecorderTask { shared, task },
        )
    }

    /// Queues a finished request. Never blocks the caller on I/O except in the last resort
    /// (the writer has already shut down), when the trace is appended to the spool directly.
    pub fn submit(&self, mut draft: TraceDraft) {
        let s = &self.shared;
        s.stats.submitted.fetch_add(1, Ordering::Relaxed);
        let bytes = draft.body_bytes();
        if s.stats.queued_bytes.load(Ordering::Relaxed) + bytes > s.config.max_queued_bytes {
            // Overloaded: keep the usage (worked out now, while the response is still here)
            // and let the bodies go.
            finalize::keep_usage_drop_bodies(&mut draft);
            s.stats.dropped_bodies.fetch_add(1, Ordering::Relaxed);
        }
        let bytes = draft.body_bytes();
        if s.closed.load(Ordering::Acquire) {
            let record = finalize::finalize(draft);
            if s.spool.append(&[record]).is_ok() {
                s.stats.spooled.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        s.stats.queued.fetch_add(1, Ordering::Relaxed);
        s.stats.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Err(mpsc::error::SendError(draft)) = s.tx.send(draft) {
            s.stats.queued.fetch_sub(1, Ordering::Relaxed);
            s.stats.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            let record = finalize::finalize(draft);
            if s.spool.append(&[record]).is_ok() {
                s.stats.spooled.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Traces accepted but not yet written or spooled.
    pub fn in_queue(&self) -> usize {
        self.shared.stats.queued.load(Ordering::Relaxed)
    }
}

/// The running writer, to be shut down once the server has stopped taking requests.
pub struct RecorderTask {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl RecorderTask {
    /// Stops taking new drafts, writes everything queued (to the database, or to the spool when
    /// the database does not take it within `deadline`) and returns.
    pub async fn shutdown(self, deadline: Duration) {
        self.shared.closed.store(true, Ordering::Release);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(deadline, self.task).await.is_err() {
            abort.abort();
        }
    }
}

mod writer {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::{Shared, TraceDraft, finalize};
    use crate::store::traces::TraceRecord;
    use crate::store::{Store, StoreError};

    /// How long the writer waits before trying the database again after it failed.
    const RETRY_AFTER: Duration = Duration::from_secs(2);
    /// Drafts finalized per blocking task.
    const FINALIZE_SLICE: usize = 32;

    pub(super) async fn run(
        store: Store,
        mut rx: mpsc::UnboundedReceiver<TraceDraft>,
        shared: std::sync::Arc<Shared>,
    ) {
        let cfg = shared.config.clone();
        let mut db_down_since: Option<tokio::time::Instant> = None;
        let mut replay_tick = tokio::time::interval(RETRY_AFTER);
        replay_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut drafts = Vec::with_capacity(cfg.batch_size);
            let closing = shared.closed.load(Ordering::Acquire);
            if closing {
                while let Ok(d) = rx.try_recv() {
                    drafts.push(d);
                }
            } else {
                tokio::select! {
                    n = rx.recv_many(&mut drafts, cfg.batch_size) => {
                        if n == 0 {
                            break;
                        }
                        // Let a batch fill for a moment under load; a lone trace goes at once.
                        if n < cfg.batch_size {
                            let until = tokio::time::Instant::now() + cfg.batch_interval;
                            while drafts.len() < cfg.batch_size {
                                let room = cfg.batch_size - drafts.len();
                                match tokio::time::timeout_at(until, rx.recv_many(&mut drafts, room)).await {
                                    Ok(0) | Err(_) => break,
                                    Ok(_) => {}
                                }
                            }
                        }
                    }
                    _ = replay_tick.tick() => {
                        if shared.spool.has_pending() {
                            replay(&store, &shared, &mut db_down_since).await;
                        }
                        continue;
                    }
                }
            }
            if !drafts.is_empty() {
                let bytes: usize = drafts.iter().map(|d| d.body_bytes()).sum();
                let n = drafts.len();
                let records = finalize_batch(&store, drafts).await;
                shared.stats.queued.fetch_sub(n, Ordering::Relaxed);
                shared
                    .stats
                    .queued_bytes
                    .fetch_sub(bytes, Ordering::Relaxed);
                write(&store, &shared, records, &mut db_down_since).await;
            }
            if closing {
                break;
            }
        }
        // Last chance for anything spooled during the run.
        if shared.spool.has_pending() {
            replay(&store, &shared, &mut db_down_since).await;
        }
    }

    /// Works out usage, cost and sessions on the blocking pool (parsing and compression are
    /// CPU work that must not stall request handling on the async workers).
    async fn finalize_batch(store: &Store, drafts: Vec<TraceDraft>) -> Vec<TraceRecord> {
        let mut chains = finalize::resolve_chains(store, &drafts).await;
        // In slices of a few dozen: each slice is a short burst of CPU, so request handling on
        // a busy (or single) core waits behind at most one slice, not a whole batch.
        let mut out = Vec::with_capacity(drafts.len());
        let mut drafts = drafts.into_iter();
        loop {
            let slice: Vec<TraceDraft> = drafts.by_ref().take(FINALIZE_SLICE).collect();
            if slice.is_empty() {
                break;
            }
            let (records, next) = tokio::task::spawn_blocking(move || {
                let records = finalize::finalize_all_with(slice, &mut chains);
                (records, chains)
            })
            .await
            .unwrap_or_default();
            chains = next;
            out.extend(records);
        }
        out
    }

    async fn write(
        store: &Store,
        shared: &Shared,
        records: Vec<TraceRecord>,
        db_down_since: &mut Option<tokio::time::Instant>,
    ) {
        if let Some(since) = db_down_since
            && since.elapsed() < RETRY_AFTER
        {
            spool(shared, &records);
            return;
        }
        match store.insert_traces(&records).await {
            Ok(_) => {
                *db_down_since = None;
                shared
                    .stats
                    .written
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                touch_keys(store, &records).await;
            }
            Err(e) if e.is_unavailable() => {
                shared.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, traces = records.len(), "database unavailable; spooling traces");
                *db_down_since = Some(tokio::time::Instant::now());
                spool(shared, &records);
            }
            Err(e) => {
                shared.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, traces = records.len(), "batch refused; writing traces one by one");
                one_by_one(store, shared, records, db_down_since).await;
            }
        }
    }

    /// A batch the database refused: write each row alone so one bad row cannot sink the rest,
    /// and quarantine the rows that still fail.
    async fn one_by_one(
        store: &Store,
        shared: &Shared,
        records: Vec<TraceRecord>,
        db_down_since: &mut Option<tokio::time::Instant>,
    ) {
        for r in records {
            match store.insert_traces(std::slice::from_ref(&r)).await {
                Ok(_) => {
                    shared.stats.written.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.is_unavailable() => {
                    *db_down_since = Some(tokio::time::Instant::now());
                    spool(shared, std::slice::from_ref(&r));
                }
                Err(e) => {
                    let msg = e.to_string();
                    tracing::error!(trace_id = %r.id, error = %msg, "trace quarantined");
                    if store.quarantine_trace(&r, &msg).await.is_ok() {
                        shared.stats.quarantined.fetch_add(1, Ordering::Relaxed);
                    } else {
                        spool(shared, std::slice::from_ref(&r));
                    }
                }
            }
        }
    }

    fn spool(shared: &Shared, records: &[TraceRecord]) {
        match shared.spool.append(records) {
            Ok(()) => {
                shared
                    .stats
                    .spooled
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                // The disk is failing too: nothing else can hold them.
                tracing::error!(error = %e, traces = records.len(), "cannot spool traces; they are lost");
            }
        }
    }

    async fn replay(
        store: &Store,
        shared: &Shared,
        db_down_since: &mut Option<tokio::time::Instant>,
    ) {
        for segment in shared.spool.segments() {
            let records = match shared.spool.read(&segment) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, file = %segment.display(), "unreadable spool segment kept aside");
                    shared.spool.set_aside(&segment);
                    continue;
                }
            };
            let mut ok = true;
            for chunk in records.chunks(500) {
                match store.insert_traces(chunk).await {
                    Ok(_) => {}
                    Err(StoreError::Unavailable(_)) => {
                        ok = false;
                        break;
                    }
                    Err(_) => {
                        let mut none = None;
                        one_by_one_quiet(store, shared, chunk, &mut none).await;
                    }
                }
            }
            if !ok {
                *db_down_since = Some(tokio::time::Instant::now());
                return;
            }
            *db_down_since = None;
            shared
                .stats
                .replayed
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            shared.spool.remove(&segment);
            tracing::info!(traces = records.len(), "replayed spooled traces");
        }
    }

    async fn one_by_one_quiet(
        store: &Store,
        shared: &Shared,
        records: &[TraceRecord],
        db_down_since: &mut Option<tokio::time::Instant>,
    ) {
        Box::pin(one_by_one(store, shared, records.to_vec(), db_down_since)).await;
    }

    async fn touch_keys(store: &Store, records: &[TraceRecord]) {
        let mut latest: std::collections::HashMap<_, i64> = std::collections::HashMap::new();
        for r in records {
            if let Some(k) = r.virtual_key_id {
                let e = latest.entry(k).or_insert(r.started_at);
                *e = (*e).max(r.started_at);
            }
        }
        let uses: Vec<_> = latest.into_iter().collect();
        let _ = store.touch_virtual_keys(&uses).await;
    }
}

/// Writes a batch straight away (tests and the trace generator).
pub async fn write_now(store: &Store, drafts: Vec<TraceDraft>) -> crate::store::Result<u64> {
    let records: Vec<TraceRecord> = finalize::finalize_all(drafts, Default::default());
    store.insert_traces(&records).await
}

#[cfg(test)]
mod cost_tests {
    /// Not a test of behaviour: prints where recording time goes (`cargo test --release -p antix
    /// recorder::cost_tests -- --ignored --nocapture`).
    #[tokio::test]
    #[ignore = "measurement"]
    async fn measure_finalize_and_insert() {
        let db = crate::store::testing::TestDb::sqlite().await.unwrap();
        let org = crate::domain::OrgId::new_v4();
        let ep = crate::domain::EndpointId::new_v4();
        let sse: String = (0..20)
            .map(|i| format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"finish_reason\":null}}],\"usage\":null}}\n\n"))
            .collect::<String>()
            + "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":20}}\n\ndata: [DONE]\n\n";
        let drafts: Vec<_> = (0..2000)
            .map(|_| {
                let mut d = crate::store::testing::sample_draft(org, ep);
                d.is_stream = true;
                d.response_body =
                    crate::gateway::body::Capture::of(&bytes::Bytes::from(sse.clone()), 1 << 20);
                d
            })
            .collect();
        let t = std::time::Instant::now();
        let records = super::finalize::finalize_all(drafts, Default::default());
        let fin = t.elapsed();
        let t = std::time::Instant::now();
        for chunk in records.chunks(500) {
            db.store.insert_traces(chunk).await.unwrap();
        }
        let ins = t.elapsed();
        println!(
            "finalize: {:.1} µs/trace, insert: {:.1} µs/trace",
            fin.as_secs_f64() * 1e6 / 2000.0,
            ins.as_secs_f64() * 1e6 / 2000.0
        );
    }
}

#[cfg(test)]
mod cost_parts {
    #[test]
    #[ignore = "measurement"]
    fn parts() {
        let sse: String = (0..20)
            .map(|i| format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"finish_reason\":null}}],\"usage\":null}}\n\n"))
            .collect::<String>()
            + "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":20}}\n\ndata: [DONE]\n\n";
        let n = 2000;
        let time = |name: &str, f: &dyn Fn()| {
            let t = std::time::Instant::now();
            for _ in 0..n {
                f();
            }
            println!(
                "{name}: {:.1} µs",
                t.elapsed().as_secs_f64() * 1e6 / n as f64
            );
        };
        time("sse events", &|| {
            std::hint::black_box(crate::providers::sse::events(sse.as_bytes()));
        });
        time("parse chat stream", &|| {
            std::hint::black_box(crate::providers::parse_response(
                crate::providers::Wire::OpenAiChat,
                true,
                sse.as_bytes(),
            ));
        });
        for level in [1, 3] {
            time(&format!("zstd {level}"), &|| {
                std::hint::black_box(zstd::bulk::compress(sse.as_bytes(), level).unwrap());
            });
        }
    }
}
