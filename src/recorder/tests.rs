//! The recorder against real stores (both backends): spooling while the database is down and
//! replaying once, quarantine of a row the database refuses; and two ignored measurements of
//! where recording time goes.

use super::{Recorder, RecorderConfig};
use crate::recorder::testing::sample_draft;
use crate::store::Store;
use crate::store_test;

/// An organization with one endpoint, for traces to belong to.
async fn org_and_endpoint(s: &Store) -> (crate::domain::OrgId, crate::domain::EndpointId) {
    let (_, o, e) = crate::store::tests::org_and_endpoint(s).await;
    (o.id, e.id)
}

store_test!(spools_when_the_database_is_down_and_replays_once, |db| {
    let (o, e) = org_and_endpoint(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RecorderConfig::new(dir.path());
    cfg.batch_interval = std::time::Duration::from_millis(5);
    // A store that cannot be reached.
    let down = db.reopen().await.unwrap();
    down.close().await;
    let (rec, task) = Recorder::start(down, cfg.clone());
    let drafts: Vec<_> = (0..40).map(|_| sample_draft(o, e)).collect();
    for d in drafts.iter().cloned() {
        rec.submit(d);
    }
    task.shutdown(std::time::Duration::from_secs(10)).await;
    assert_eq!(
        rec.stats()
            .written
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(
        rec.stats()
            .spooled
            .load(std::sync::atomic::Ordering::Relaxed),
        40
    );
    assert_eq!(db.store.count_traces().await.unwrap(), 0);
    // The database is back: a new recorder replays the spool, all of it, once.
    let (rec2, task2) = Recorder::start(db.store.clone(), cfg.clone());
    rec2.submit(sample_draft(o, e));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while db.store.count_traces().await.unwrap() < 41 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    task2.shutdown(std::time::Duration::from_secs(10)).await;
    assert_eq!(db.store.count_traces().await.unwrap(), 41);
    assert_eq!(
        rec2.stats()
            .replayed
            .load(std::sync::atomic::Ordering::Relaxed),
        40
    );
    let spool = crate::recorder::spool::Spool::new(cfg.spool_dir.clone());
    assert!(spool.segments().is_empty(), "spool not emptied");
    // Replaying the same traces again changes nothing.
    let ids: Vec<_> = drafts.iter().map(|d| d.id).collect();
    for id in ids {
        assert!(db.store.trace(id).await.unwrap().is_some());
    }
});

store_test!(quarantines_a_poison_row, |db| {
    let (o, e) = org_and_endpoint(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let (rec, task) = Recorder::start(db.store.clone(), RecorderConfig::new(dir.path()));
    for i in 0..500 {
        let mut d = sample_draft(o, e);
        if i == 250 {
            // A status no HTTP response can have: the table's CHECK refuses it.
            d.status = 1234;
        }
        rec.submit(d);
    }
    task.shutdown(std::time::Duration::from_secs(20)).await;
    assert_eq!(db.store.count_traces().await.unwrap(), 499);
    assert_eq!(db.store.quarantined_count().await.unwrap(), 1);
    assert_eq!(
        rec.stats()
            .quarantined
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
});

store_test!(a_panic_while_finalizing_quarantines_the_trace, |db| {
    let (o, e) = org_and_endpoint(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let (rec, task) = Recorder::start(db.store.clone(), RecorderConfig::new(dir.path()));
    for i in 0..40 {
        let mut d = sample_draft(o, e);
        if i == 7 {
            d.path = "/__finalize_panics".into();
        }
        rec.submit(d);
    }
    task.shutdown(std::time::Duration::from_secs(20)).await;
    assert_eq!(db.store.count_traces().await.unwrap(), 39);
    assert_eq!(db.store.quarantined_count().await.unwrap(), 1);
});

store_test!(every_batch_is_on_disk_before_the_database_sees_it, |db| {
    let (o, e) = org_and_endpoint(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = RecorderConfig::new(dir.path());
    // A database that never answers: what the writer took is in the spool all the same, which
    // is what a crash at that moment would leave behind.
    let down = db.reopen().await.unwrap();
    down.close().await;
    let (rec, task) = Recorder::start(down, cfg.clone());
    let drafts: Vec<_> = (0..25).map(|_| sample_draft(o, e)).collect();
    for d in drafts.iter().cloned() {
        rec.submit(d);
    }
    let spool = crate::recorder::spool::Spool::new(cfg.spool_dir.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let spooled = || -> usize {
        spool
            .segments()
            .iter()
            .map(|s| spool.read(s).unwrap().len())
            .sum()
    };
    while spooled() < 25 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(spooled(), 25);
    assert!(rec.health().spool_bytes > 0);
    task.shutdown(std::time::Duration::from_secs(1)).await;
    // Written once the database is back, and the spool emptied.
    let (rec2, task2) = Recorder::start(db.store.clone(), cfg);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while db.store.count_traces().await.unwrap() < 25 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    task2.shutdown(std::time::Duration::from_secs(5)).await;
    assert_eq!(db.store.count_traces().await.unwrap(), 25);
    assert_eq!(rec2.health().spool_bytes, 0);
    assert!(spool.segments().is_empty());
});

/// Shutdown while the database hangs: the queue goes to the spool and shutdown returns by its
/// deadline; nothing is lost.
#[tokio::test]
async fn shutdown_is_bounded_when_the_database_hangs() {
    let db = crate::store::testing::TestDb::sqlite().await.unwrap();
    let (o, e) = org_and_endpoint(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = RecorderConfig::new(dir.path());
    // Another connection holds the write lock: inserts wait (the busy timeout is 10 s).
    let mut blocker = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let (rec, task) = Recorder::start(db.store.clone(), cfg.clone());
    for _ in 0..30 {
        rec.submit(sample_draft(o, e));
    }
    let started = std::time::Instant::now();
    task.shutdown(std::time::Duration::from_millis(500)).await;
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(5),
        "shutdown took {took:?}"
    );
    let spool = crate::recorder::spool::Spool::new(cfg.spool_dir.clone());
    let spooled: usize = spool
        .segments()
        .iter()
        .map(|s| spool.read(s).unwrap().len())
        .sum();
    assert_eq!(spooled, 30);
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
}

store_test!(
    the_same_first_prompt_after_an_idle_gap_is_a_new_session,
    |db| {
        let (o, e) = org_and_endpoint(&db.store).await;
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = RecorderConfig::new(dir.path());
        cfg.batch_interval = std::time::Duration::from_millis(5);
        let (rec, task) = Recorder::start(db.store.clone(), cfg);
        let t0 = crate::domain::now_ms() - 10 * 3600 * 1000;
        let minute = 60 * 1000;
        let continued = bytes::Bytes::from_static(
        br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"more"}]}"#,
    );
        // (start, is a first turn): the first "hi"; another "hi" 10 minutes later (joins: within
        // the gap); a "hi" after 40 idle minutes (new); a continuation of it 2 hours later (joins
        // the newest).
        let calls = [(0, true), (10, true), (50, true), (170, false)];
        let mut ids = Vec::new();
        for (at, first) in calls {
            let mut d = sample_draft(o, e);
            d.started_at = t0 + at * minute;
            if !first {
                d.request_body = crate::capture::Capture::of(&continued, 1 << 20);
            }
            ids.push(d.id);
            rec.submit(d);
            // One at a time, as a conversation goes.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while db
                .store
                .trace(*ids.last().unwrap())
                .await
                .unwrap()
                .is_none()
                && std::time::Instant::now() < deadline
            {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        task.shutdown(std::time::Duration::from_secs(10)).await;
        let mut keys = Vec::new();
        for id in ids {
            keys.push(
                db.store
                    .trace(id)
                    .await
                    .unwrap()
                    .unwrap()
                    .session_key
                    .unwrap(),
            );
        }
        assert!(keys[0].starts_with("fp:openai:"), "{keys:?}");
        assert_eq!(keys[1], keys[0]);
        assert_eq!(keys[2], format!("{}~{}", keys[0], t0 + 50 * minute));
        assert_eq!(keys[3], keys[2]);
    }
);

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
                let mut d = crate::recorder::testing::sample_draft(org, ep);
                d.is_stream = true;
                d.response_body =
                    crate::capture::Capture::of(&bytes::Bytes::from(sse.clone()), 1 << 20);
                d
            })
            .collect();
        let t = std::time::Instant::now();
        let records = crate::recorder::finalize::finalize_all(drafts, Default::default());
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

store_test!(
    a_full_queue_holds_requests_back_until_the_writer_catches_up,
    |db| {
        use std::sync::atomic::Ordering::Relaxed;
        let (o, e) = org_and_endpoint(&db.store).await;
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = RecorderConfig::new(dir.path());
        cfg.pause_above = 3;
        cfg.batch_size = 2;
        cfg.batch_interval = std::time::Duration::from_millis(5);
        let (rec, task) = Recorder::start(db.store.clone(), cfg);
        // As the proxy does: wait for room, then hand the trace over.
        for _ in 0..40 {
            rec.room().await;
            rec.submit(sample_draft(o, e));
            assert!(
                rec.in_queue() <= 4,
                "queue past its mark: {}",
                rec.in_queue()
            );
        }
        assert!(rec.stats().throttled.load(Relaxed) > 0);
        task.shutdown(std::time::Duration::from_secs(10)).await;
        assert_eq!(rec.stats().written.load(Relaxed), 40);
        assert_eq!(rec.stats().dropped_bodies.load(Relaxed), 0);
        assert_eq!(db.store.count_traces().await.unwrap(), 40);
    }
);
