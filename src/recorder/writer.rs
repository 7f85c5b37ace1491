//! The writer task: takes drafts off the queue in batches, finalizes them on the blocking pool,
//! and writes them in one transaction; spools what the database cannot take and replays it;
//! writes a refused batch row by row and quarantines the rows that still fail.

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

async fn replay(store: &Store, shared: &Shared, db_down_since: &mut Option<tokio::time::Instant>) {
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
