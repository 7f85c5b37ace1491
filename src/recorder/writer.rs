//! The writer task: takes drafts off the queue in batches, finalizes them on the blocking pool,
//! spools each batch ahead of the database and writes it in one transaction; leaves in the spool
//! what the database cannot take, and replays it; writes a refused batch row by row and
//! quarantines the rows that still fail.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

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
    shared: Arc<Shared>,
) {
    let cfg = shared.config.clone();
    let mut db_down_since: Option<Instant> = None;
    let mut replay_tick = tokio::time::interval(RETRY_AFTER);
    replay_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let batch_size = if store.writes_contended() {
            cfg.contended_batch_size.min(cfg.batch_size)
        } else {
            cfg.batch_size
        };
        // Grown as drafts come: a lone trace does not allocate room for a whole batch.
        let mut drafts = Vec::with_capacity(batch_size.min(64));
        let closing = shared.closed.load(Ordering::Acquire);
        if closing {
            while let Ok(d) = rx.try_recv() {
                drafts.push(d);
            }
        } else {
            tokio::select! {
                n = rx.recv_many(&mut drafts, batch_size) => {
                    if n == 0 {
                        break;
                    }
                    // Let a batch fill for a moment under load; a lone trace goes at once.
                    if n < batch_size {
                        let until = Instant::now() + cfg.batch_interval;
                        while drafts.len() < batch_size {
                            let room = batch_size - drafts.len();
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
                () = shared.wake.notified() => continue,
            }
        }
        if !drafts.is_empty() {
            let bytes: usize = drafts.iter().map(|d| d.body_bytes()).sum();
            let n = drafts.len();
            let (records, panicked) = finalize_batch(&store, drafts).await;
            shared.stats.queued.fetch_sub(n, Ordering::Relaxed);
            shared
                .stats
                .queued_bytes
                .fetch_sub(bytes, Ordering::Relaxed);
            shared.drained.notify_waiters();
            for r in records.iter().chain(panicked.iter().map(|(r, _)| r)) {
                shared.metrics.observe(r);
                if let Some(otel) = &cfg.otel {
                    otel.export(r);
                }
            }
            for (record, message) in panicked {
                quarantine(&store, &shared, &record, &message).await;
            }
            let mut records = records;
            split_sessions(&store, &mut records, cfg.session_gap).await;
            // Write-ahead: on disk before the database sees it, so a crash from here on loses
            // nothing (a replay is idempotent).
            let (records, ahead) = if cfg.write_ahead || closing {
                spool_batch(&shared, records).await
            } else {
                (records, None)
            };
            if closing
                && ahead.is_some()
                && drain_deadline(&shared).is_some_and(|d| d <= Instant::now())
            {
                // Out of time: it is safe in the spool.
                shared
                    .stats
                    .spooled
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
            } else {
                write(&store, &shared, records, &mut db_down_since, ahead).await;
            }
        }
        if closing {
            break;
        }
    }
    // Spans still queued go out now (on the blocking pool: the SDK waits for its exporter).
    if let Some(otel) = cfg.otel.clone() {
        let _ = tokio::task::spawn_blocking(move || otel.shutdown()).await;
    }
    // Last chance for anything spooled during the run, within the shutdown deadline.
    if shared.spool.has_pending() {
        match drain_deadline(&shared) {
            Some(until) => {
                let _ = tokio::time::timeout_at(until, replay(&store, &shared, &mut db_down_since))
                    .await;
            }
            None => replay(&store, &shared, &mut db_down_since).await,
        }
    }
}

fn drain_deadline(shared: &Shared) -> Option<Instant> {
    *shared
        .drain_until
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Spools a batch on the blocking pool (serialization and fsync are not for async workers);
/// hands the records back with the segment's path.
async fn spool_batch(
    shared: &Arc<Shared>,
    records: Vec<TraceRecord>,
) -> (Vec<TraceRecord>, Option<PathBuf>) {
    let s = shared.clone();
    tokio::task::spawn_blocking(move || {
        let path = s.spool(&records);
        (records, path)
    })
    .await
    .unwrap_or_default()
}

async fn spool_ahead(shared: &Arc<Shared>, records: Vec<TraceRecord>) -> Option<PathBuf> {
    spool_batch(shared, records).await.1
}

/// Gives each fingerprinted call its session: the latest one of its key, unless it starts a
/// conversation after the idle gap (then a new one). Calls of one batch see each other. A
/// database that does not answer leaves the keys as they are (a late split is only cosmetic).
async fn split_sessions(store: &Store, records: &mut [TraceRecord], gap: Duration) {
    let gap_ms = i64::try_from(gap.as_millis()).unwrap_or(i64::MAX);
    let mut latest: HashMap<(crate::domain::EndpointId, String), Option<(String, i64)>> =
        HashMap::new();
    for r in records.iter_mut() {
        let (Some(starts), Some(base)) = (r.session_starts.take(), r.session_key.clone()) else {
            continue;
        };
        let slot = (r.endpoint_id, base.clone());
        if !latest.contains_key(&slot) {
            let found = store
                .latest_session_like(r.endpoint_id, &base)
                .await
                .ok()
                .flatten();
            latest.insert(slot.clone(), found);
        }
        let known = latest.get(&slot).cloned().flatten();
        let key = crate::sessions::split_after_gap(
            &base,
            starts,
            r.started_at,
            known.as_ref().map(|(k, t)| (k.as_str(), *t)),
            gap_ms,
        );
        let end = r.started_at + r.latency_us / 1000;
        let last = known.map_or(end, |(_, t)| t.max(end));
        latest.insert(slot, Some((key.clone(), last)));
        r.session_key = Some(key);
    }
}

/// Finalizes one draft; a panic (a bug in parsing some odd body) gives a skeleton record and
/// the panic's message, so the trace is quarantined instead of lost.
pub(super) fn finalize_guarded(
    draft: TraceDraft,
    chains: &mut HashMap<String, String>,
) -> (TraceRecord, Option<String>) {
    let skeleton = finalize::skeleton(&draft);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        finalize::finalize_chained(draft, chains)
    }));
    match result {
        Ok(r) => (r, None),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            (skeleton, Some(format!("finalization panicked: {message}")))
        }
    }
}

/// Works out usage, cost and sessions on the blocking pool (parsing and compression are
/// CPU work that must not stall request handling on the async workers). Returns the records,
/// and the skeletons of drafts whose finalization panicked, with the panic message.
async fn finalize_batch(
    store: &Store,
    drafts: Vec<TraceDraft>,
) -> (Vec<TraceRecord>, Vec<(TraceRecord, String)>) {
    let mut chains = finalize::resolve_chains(store, &drafts).await;
    // In slices of a few dozen: each slice is a short burst of CPU, so request handling on
    // a busy (or single) core waits behind at most one slice, not a whole batch.
    let mut out = Vec::with_capacity(drafts.len());
    let mut panicked = Vec::new();
    let mut drafts = drafts.into_iter();
    loop {
        let slice: Vec<TraceDraft> = drafts.by_ref().take(FINALIZE_SLICE).collect();
        if slice.is_empty() {
            break;
        }
        let joined = tokio::task::spawn_blocking(move || {
            let results: Vec<_> = slice
                .into_iter()
                .map(|d| finalize_guarded(d, &mut chains))
                .collect();
            (results, chains)
        })
        .await;
        let Ok((results, next)) = joined else {
            // The blocking pool is gone (runtime shutting down): nothing more can be done here.
            break;
        };
        chains = next;
        for (record, panic) in results {
            match panic {
                None => out.push(record),
                Some(message) => panicked.push((record, message)),
            }
        }
    }
    (out, panicked)
}

async fn quarantine(store: &Store, shared: &Arc<Shared>, record: &TraceRecord, message: &str) {
    tracing::error!(trace_id = %record.id, error = %message, "trace quarantined");
    if store.quarantine_trace(record, message).await.is_ok() {
        shared.stats.quarantined.fetch_add(1, Ordering::Relaxed);
    } else if spool_ahead(shared, vec![record.clone()]).await.is_some() {
        shared.stats.spooled.fetch_add(1, Ordering::Relaxed);
    } else {
        shared.stats.lost.fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes a batch (already in the spool as `ahead`, when write-ahead is on): the segment is
/// removed once the database has it, kept when the database is down.
async fn write(
    store: &Store,
    shared: &Arc<Shared>,
    records: Vec<TraceRecord>,
    db_down_since: &mut Option<Instant>,
    ahead: Option<PathBuf>,
) {
    let n = records.len() as u64;
    let keep_spooled = |shared: &Arc<Shared>, records: Vec<TraceRecord>, ahead: Option<PathBuf>| {
        let shared = shared.clone();
        async move {
            if ahead.is_some() || spool_ahead(&shared, records).await.is_some() {
                shared.stats.spooled.fetch_add(n, Ordering::Relaxed);
            } else {
                // The disk is failing too: nothing else can hold them.
                shared.stats.lost.fetch_add(n, Ordering::Relaxed);
            }
        }
    };
    if let Some(since) = db_down_since
        && since.elapsed() < RETRY_AFTER
    {
        keep_spooled(shared, records, ahead).await;
        return;
    }
    let insert = store.insert_traces(&records);
    let result = match drain_deadline(shared) {
        Some(until) => match tokio::time::timeout_at(until, insert).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(
                    traces = n,
                    "shutdown deadline reached; traces left in the spool"
                );
                keep_spooled(shared, records, ahead).await;
                return;
            }
        },
        None => insert.await,
    };
    match result {
        Ok(_) => {
            *db_down_since = None;
            shared.stats.written.fetch_add(n, Ordering::Relaxed);
            if let Some(p) = &ahead {
                shared.spool.remove(p);
            }
            touch_keys(store, &records).await;
        }
        Err(e) if e.is_unavailable() => {
            shared.stats.write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, traces = n, "database unavailable; traces kept in the spool");
            *db_down_since = Some(Instant::now());
            keep_spooled(shared, records, ahead).await;
        }
        Err(e) => {
            shared.stats.write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, traces = n, "batch refused; writing traces one by one");
            one_by_one(store, shared, records, db_down_since).await;
            // Every row is now written, quarantined or spooled on its own.
            if let Some(p) = &ahead {
                shared.spool.remove(p);
            }
        }
    }
}

/// A batch the database refused: write each row alone so one bad row cannot sink the rest,
/// and quarantine the rows that still fail.
async fn one_by_one(
    store: &Store,
    shared: &Arc<Shared>,
    records: Vec<TraceRecord>,
    db_down_since: &mut Option<Instant>,
) {
    for r in records {
        match store.insert_traces(std::slice::from_ref(&r)).await {
            Ok(_) => {
                shared.stats.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if e.is_unavailable() => {
                *db_down_since = Some(Instant::now());
                if spool_ahead(shared, vec![r]).await.is_some() {
                    shared.stats.spooled.fetch_add(1, Ordering::Relaxed);
                } else {
                    shared.stats.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => quarantine(store, shared, &r, &e.to_string()).await,
        }
    }
}

async fn replay(store: &Store, shared: &Arc<Shared>, db_down_since: &mut Option<Instant>) {
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
                    Box::pin(one_by_one(store, shared, chunk.to_vec(), &mut none)).await;
                }
            }
        }
        if !ok {
            *db_down_since = Some(Instant::now());
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

async fn touch_keys(store: &Store, records: &[TraceRecord]) {
    let mut latest: HashMap<_, i64> = HashMap::new();
    for r in records {
        if let Some(k) = r.virtual_key_id {
            let e = latest.entry(k).or_insert(r.started_at);
            *e = (*e).max(r.started_at);
        }
    }
    let uses: Vec<_> = latest.into_iter().collect();
    let _ = store.touch_virtual_keys(&uses).await;
}
