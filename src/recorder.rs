//! Trace recording, off the request path. The proxy hands each finished request to
//! [`Recorder::submit`], which never blocks and never fails; a background task turns drafts into
//! rows (usage, cost, session, compression) and writes them in batches.
//!
//! Nothing is lost: every batch is written to an append-only spool in the data folder before
//! the database sees it (a crash loses at most the traces still being finalized, a few hundred
//! milliseconds' worth), and stays there while the database is down or slow, to be replayed
//! when it answers again; writes are idempotent by trace id, so a replay or a retry never
//! duplicates. A row the database refuses for good, or a trace whose finalization panicked, is
//! quarantined with its error rather than dropping its batch. On shutdown the queue is drained
//! to the spool and then, within the deadline, to the database.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::capture::CapturedBytes;
use crate::domain::{
    AuthMode, EndpointId, Millis, OrgId, Outcome, Provider, TraceId, VirtualKeyId,
};
use crate::providers::Wire;
use crate::store::Store;
use crate::store::traces::TraceRecord;

pub mod finalize;
mod pending;
pub mod spool;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod writer;

pub use pending::{PendingTrace, Recordable};

/// A request as the proxy saw it, before usage, cost and session are worked out.
#[derive(Debug, Clone)]
pub struct TraceDraft {
    pub id: TraceId,
    pub org_id: OrgId,
    pub endpoint_id: EndpointId,
    pub started_at: Millis,
    pub auth_mode: Option<AuthMode>,
    pub virtual_key_id: Option<VirtualKeyId>,
    /// The visible prefix of a virtual key presented but not accepted.
    pub key_hint: Option<String>,
    pub provider: Option<Provider>,
    pub wire: Option<Wire>,
    pub requested_model: Option<String>,
    pub method: String,
    /// Native path plus the redacted query string.
    pub path: String,
    /// Redacted only when finalized, off the request path.
    pub request_headers: http::HeaderMap,
    pub request_body: CapturedBytes,
    /// What the request said its cost depends on (model, output limit, choices, units).
    pub facts: Option<Box<crate::metering::Facts>>,
    /// The request reached the provider but no answer came back (a client that hung up, a
    /// timeout): the provider may bill it, so it is charged its estimate.
    pub sent_unanswered: bool,
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
    /// Conversation ids agent clients sent (Claude Code's, Codex's).
    pub client_ids: crate::sessions::ClientIds,
    /// Credential values seen on the request: scrubbed from anything stored, never persisted.
    pub secrets: Vec<String>,
    /// The budget reservation held for this call, settled when its trace is written.
    pub reservation: Option<crate::limits::Reservation>,
    /// The memory budget the bodies hold until the trace is written.
    pub memory: crate::memory::Held,
    /// The tries at the upstream, when there was more than one.
    pub attempts: Vec<crate::domain::Attempt>,
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
    /// Traces that could not be kept anywhere (the disk failed while the database was down).
    pub lost: AtomicU64,
    /// Requests that waited for the writer to catch up before going on (see
    /// [`Recorder::room`]).
    pub throttled: AtomicU64,
}

/// What the health check shows of the recorder.
#[derive(Debug, Serialize)]
pub struct Health<'a> {
    #[serde(flatten)]
    pub stats: &'a Stats,
    pub spool_bytes: u64,
    /// The spool reached its cap: traces are being kept without their bodies.
    pub spool_full: bool,
}

#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub spool_dir: PathBuf,
    /// Bodies waiting to be written may hold at most this many bytes; beyond it new traces keep
    /// their usage and metadata but drop their bodies (counted in `dropped_bodies`).
    pub max_queued_bytes: usize,
    /// Past this many traces (or [`RecorderConfig::pause_above_bytes`] of bodies) waiting to
    /// be written, new requests wait for the writer before going on: under a load the writer
    /// cannot keep up with, the proxy slows to its pace instead of piling traces up in memory.
    pub pause_above: usize,
    pub pause_above_bytes: usize,
    /// Traces per database transaction.
    pub batch_size: usize,
    /// Traces per transaction while requests wait on the same write lock
    /// ([`crate::store::Store::writes_contended`]: SQLite with budget admissions going on).
    pub contended_batch_size: usize,
    pub batch_interval: Duration,
    /// The spool's cap; past it traces are spooled without bodies.
    pub max_spool_bytes: u64,
    /// Write each batch to the spool before the database (crash safety; costs one fsync per
    /// batch).
    pub write_ahead: bool,
    /// A fingerprinted session that starts again after this much silence is a new session.
    pub session_gap: Duration,
    /// Exports each finalized trace as an OpenTelemetry span; `None`: off.
    pub otel: Option<Arc<crate::otel::Exporter>>,
}

impl RecorderConfig {
    pub fn new(data_dir: &std::path::Path) -> Self {
        RecorderConfig {
            spool_dir: data_dir.join("spool"),
            max_queued_bytes: 256 * 1024 * 1024,
            // 500 rather than 1,000: with transactions of 500, the same CPU per trace and 7 MiB
            // less peak RSS under the benchmark's load (README, Benchmark).
            pause_above: 500,
            pause_above_bytes: 16 * 1024 * 1024,
            batch_size: 500,
            contended_batch_size: 100,
            batch_interval: Duration::from_millis(50),
            max_spool_bytes: 1 << 30,
            write_ahead: true,
            session_gap: Duration::from_secs(30 * 60),
            otel: None,
        }
    }
}

struct Shared {
    tx: mpsc::UnboundedSender<TraceDraft>,
    stats: Stats,
    closed: AtomicBool,
    /// When closing: the moment by which the database must have taken what is queued (what it
    /// has not is left in the spool).
    drain_until: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// Wakes the writer when shutdown begins.
    wake: tokio::sync::Notify,
    /// Wakes requests waiting for room in the queue, each time the writer takes a batch.
    pub(crate) drained: tokio::sync::Notify,
    config: RecorderConfig,
    spool: spool::Spool,
    metrics: crate::metrics::Metrics,
}

/// The longest a request waits for room in the trace queue.
pub const MAX_PAUSE: Duration = Duration::from_secs(2);

impl Shared {
    fn crowded(&self) -> bool {
        self.stats.queued.load(Ordering::Relaxed) > self.config.pause_above
            || self.stats.queued_bytes.load(Ordering::Relaxed) > self.config.pause_above_bytes
    }

    /// Spools records (without their bodies when the spool is full); false when the disk
    /// refused them too.
    fn spool(&self, records: &[TraceRecord]) -> Option<std::path::PathBuf> {
        let stripped;
        let records = if self.spool.full() {
            stripped = records.iter().map(without_bodies).collect::<Vec<_>>();
            self.stats
                .dropped_bodies
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            &stripped[..]
        } else {
            records
        };
        match self.spool.append(records) {
            Ok(path) => Some(path),
            Err(e) => {
                tracing::error!(error = %e, traces = records.len(), "cannot write the spool");
                None
            }
        }
    }
}

/// A record with its bodies dropped (usage, cost and metadata kept).
fn without_bodies(r: &TraceRecord) -> TraceRecord {
    let mut r = r.clone();
    r.bodies.request_body = None;
    r.bodies.response_body = None;
    r.bodies.response_assembled = None;
    r.bodies.request_truncated = true;
    r.bodies.response_truncated = true;
    r
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
            drain_until: std::sync::Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            drained: tokio::sync::Notify::new(),
            spool: spool::Spool::with_cap(config.spool_dir.clone(), config.max_spool_bytes),
            config,
            metrics: crate::metrics::Metrics::new(),
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
            self.spool_now(draft);
            return;
        }
        s.stats.queued.fetch_add(1, Ordering::Relaxed);
        s.stats.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Err(mpsc::error::SendError(draft)) = s.tx.send(draft) {
            s.stats.queued.fetch_sub(1, Ordering::Relaxed);
            s.stats.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.spool_now(draft);
        }
    }

    /// Waits, at most [`MAX_PAUSE`], while the queue is past its high-water mark: the
    /// backpressure that keeps memory bounded when requests come faster than traces can be
    /// written. Returns at once in the usual case (two atomic loads). A writer that makes no
    /// progress at all does not stall the proxy: after the pause the request goes on, and the
    /// queue's byte cap (`max_queued_bytes`) still holds.
    pub async fn room(&self) {
        let s = &self.shared;
        if !s.crowded() {
            return;
        }
        s.stats.throttled.fetch_add(1, Ordering::Relaxed);
        let until = tokio::time::Instant::now() + MAX_PAUSE;
        loop {
            let drained = s.drained.notified();
            tokio::pin!(drained);
            // Registered before the check, so a batch taken in between is not missed.
            drained.as_mut().enable();
            if !s.crowded() || s.closed.load(Ordering::Acquire) {
                return;
            }
            if tokio::time::timeout_at(until, drained).await.is_err() {
                return;
            }
        }
    }

    /// The writer is gone (shutdown): finalize here and spool.
    fn spool_now(&self, draft: TraceDraft) {
        let s = &self.shared;
        let records = writer::finalize_guarded(draft, &mut Default::default());
        match s.spool(&[records.0]) {
            Some(_) => s.stats.spooled.fetch_add(1, Ordering::Relaxed),
            None => s.stats.lost.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// What the recorded traces counted, for Prometheus.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.shared.metrics
    }

    /// The counters and queue state, for a metrics scrape.
    pub fn readings(&self) -> crate::metrics::RecorderReadings {
        let s = &self.shared.stats;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        crate::metrics::RecorderReadings {
            submitted: n(&s.submitted),
            written: n(&s.written),
            spooled: n(&s.spooled),
            replayed: n(&s.replayed),
            quarantined: n(&s.quarantined),
            lost: n(&s.lost),
            dropped_bodies: n(&s.dropped_bodies),
            write_errors: n(&s.write_errors),
            throttled: n(&s.throttled),
            queued: s.queued.load(Ordering::Relaxed) as u64,
            queued_bytes: s.queued_bytes.load(Ordering::Relaxed) as u64,
            spool_bytes: self.shared.spool.bytes(),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    pub fn health(&self) -> Health<'_> {
        Health {
            stats: &self.shared.stats,
            spool_bytes: self.shared.spool.bytes(),
            spool_full: self.shared.spool.full(),
        }
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
    /// Stops taking new drafts and writes everything queued: to the spool first, then to the
    /// database until `deadline` (what it has not taken by then stays in the spool, replayed at
    /// the next start). Returns once the queue is on disk, whatever the database does.
    pub async fn shutdown(self, deadline: Duration) {
        *self
            .shared
            .drain_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(tokio::time::Instant::now() + deadline);
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        // Finalizing and spooling a very long queue takes its time; the database part is
        // bounded by `deadline` inside the writer. The extra minute only guards against a hang.
        let abort = self.task.abort_handle();
        if tokio::time::timeout(deadline + Duration::from_secs(60), self.task)
            .await
            .is_err()
        {
            tracing::error!("trace writer did not finish; aborting it");
            abort.abort();
        }
    }
}

/// Writes a batch straight away (tests and the trace generator).
pub async fn write_now(store: &Store, drafts: Vec<TraceDraft>) -> crate::store::Result<u64> {
    let records: Vec<TraceRecord> = finalize::finalize_all(drafts, Default::default());
    store.insert_traces(&records).await
}
