//! Virtual-key limits: budgets under concurrency across two stores (replicas), rate limits,
//! settlement exactly once and the sweep of abandoned reservations.

use super::*;

async fn budgeted_key(
    s: &Store,
    limits: crate::domain::KeyLimits,
) -> (
    crate::domain::Organization,
    crate::domain::Endpoint,
    crate::domain::VirtualKey,
) {
    let (u, o, e) = org_and_endpoint(s).await;
    let keys = crate::crypto::MasterKey::generate().keys();
    let issued = crate::virtual_keys::issue(s, &keys, o.id, u.id, "budget", None, &limits)
        .await
        .unwrap();
    (o, e, issued.key)
}

/// A trace of `key` settling `reservation` at cost `cost`.
fn charged(
    o: &crate::domain::Organization,
    e: &crate::domain::Endpoint,
    key: &crate::domain::VirtualKey,
    reservation: Option<crate::limits::Reservation>,
    cost: i64,
    now: i64,
) -> crate::store::traces::TraceRecord {
    let mut r = crate::store::testing::sample_record(o.id, e.id, now);
    if let Some(res) = &reservation {
        r.id = res.id;
    }
    r.virtual_key_id = Some(key.id);
    r.cost_nanos = Some(cost);
    r.reservation = reservation;
    r
}

store_test!(budget_holds_under_concurrency_across_stores, |db| {
    const COST: i64 = 1_000_000; // $0.001 per call, estimated exactly
    let limits = crate::domain::KeyLimits {
        budget_total_nanos: Some(10 * COST),
        ..Default::default()
    };
    let (o, e, key) = budgeted_key(&db.store, limits).await;
    let other = db.reopen().await.unwrap();
    let now = crate::domain::now_ms();
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let s = if i % 2 == 0 {
                db.store.clone()
            } else {
                other.clone()
            };
            let key = key.clone();
            tokio::spawn(async move {
                let a = key
                    .admission(crate::domain::TraceId::new_v7(), now, COST)
                    .unwrap();
                s.admit(&a).await.unwrap()
            })
        })
        .collect();
    let mut admitted = Vec::new();
    let mut denied = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(res) => admitted.push(res.unwrap()),
            Err(d) => {
                assert!(d.is_budget(), "{d:?}");
                denied += 1;
            }
        }
    }
    // Exactly the calls the budget can pay for: no overshoot from the race.
    assert_eq!(
        admitted.len(),
        10,
        "admitted {} denied {denied}",
        admitted.len()
    );
    let records: Vec<_> = admitted
        .into_iter()
        .map(|res| charged(&o, &e, &key, Some(res), COST, now))
        .collect();
    db.store.insert_traces(&records).await.unwrap();
    let spend = db.store.key_spend(key.id, now).await.unwrap();
    assert_eq!(spend.total_nanos, 10 * COST);
    assert_eq!(spend.day_nanos, 10 * COST);
    // Spent, nothing held: the next call is refused, naming the budget.
    let a = key
        .admission(crate::domain::TraceId::new_v7(), now, COST)
        .unwrap();
    let d = db.store.admit(&a).await.unwrap().unwrap_err();
    assert!(
        d.message().contains("Lifetime budget of $0.01"),
        "{}",
        d.message()
    );
    other.close().await;
});

store_test!(rate_limits_count_requests_and_tokens, |db| {
    let limits = crate::domain::KeyLimits {
        rpm: Some(5),
        tpm: Some(100),
        ..Default::default()
    };
    let (o, e, key) = budgeted_key(&db.store, limits).await;
    let now = crate::domain::now_ms();
    for _ in 0..5 {
        let a = key
            .admission(crate::domain::TraceId::new_v7(), now, 0)
            .unwrap();
        assert_eq!(db.store.admit(&a).await.unwrap(), Ok(None));
    }
    let a = key
        .admission(crate::domain::TraceId::new_v7(), now, 0)
        .unwrap();
    let d = db.store.admit(&a).await.unwrap().unwrap_err();
    assert!(
        matches!(d, crate::limits::Denied::Rpm { limit: 5, .. }),
        "{d:?}"
    );
    assert_eq!(
        d.retry_after_secs(now),
        ((crate::limits::windows(now).next_minute - now) as u64).div_ceil(1000)
    );
    // Tokens: a recorded call of 15 tokens per sample record; 7 of them pass the 100 limit.
    let admin_id = db
        .store
        .user_for_login("ada@example.com")
        .await
        .unwrap()
        .unwrap()
        .0
        .id;
    let keys = crate::crypto::MasterKey::generate().keys();
    let tpm_only = crate::domain::KeyLimits {
        tpm: Some(100),
        ..Default::default()
    };
    let key2 = crate::virtual_keys::issue(&db.store, &keys, o.id, admin_id, "tpm", None, &tpm_only)
        .await
        .unwrap()
        .key;
    let records: Vec<_> = (0..7)
        .map(|_| charged(&o, &e, &key2, None, 1, now))
        .collect();
    db.store.insert_traces(&records).await.unwrap();
    let a = key2
        .admission(crate::domain::TraceId::new_v7(), now, 0)
        .unwrap();
    let d = db.store.admit(&a).await.unwrap().unwrap_err();
    assert!(
        matches!(
            d,
            crate::limits::Denied::Tpm {
                limit: 100,
                used: 105,
                ..
            }
        ),
        "{d:?}"
    );
});

store_test!(settlement_is_exactly_once_and_sweeps_release, |db| {
    let limits = crate::domain::KeyLimits {
        budget_daily_nanos: Some(1_000_000),
        ..Default::default()
    };
    let (o, e, key) = budgeted_key(&db.store, limits).await;
    let now = crate::domain::now_ms();
    let a = key
        .admission(crate::domain::TraceId::new_v7(), now, 400_000)
        .unwrap();
    let res = db.store.admit(&a).await.unwrap().unwrap().unwrap();
    // A call that never finished: the sweep gives its reservation back, once.
    assert_eq!(db.store.sweep_limits(now + 1, now + 1, 0).await.unwrap(), 1);
    assert_eq!(db.store.sweep_limits(now + 1, now + 1, 0).await.unwrap(), 0);
    // Its trace arrives late after all (a spool replay): charged, but not released twice.
    let r = charged(&o, &e, &key, Some(res), 250_000, now);
    assert_eq!(
        db.store
            .insert_traces(std::slice::from_ref(&r))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        db.store
            .insert_traces(std::slice::from_ref(&r))
            .await
            .unwrap(),
        0
    );
    let spend = db.store.key_spend(key.id, now).await.unwrap();
    assert_eq!(spend.day_nanos, 250_000);
    // Nothing is still held: the 750,000 left admit two calls estimated at 300,000; a third
    // would not fit (a call is admitted only when its estimate fits beside what is held).
    for _ in 0..2 {
        let a = key
            .admission(crate::domain::TraceId::new_v7(), now, 300_000)
            .unwrap();
        assert!(db.store.admit(&a).await.unwrap().is_ok());
    }
    let a = key
        .admission(crate::domain::TraceId::new_v7(), now, 300_000)
        .unwrap();
    let d = db.store.admit(&a).await.unwrap().unwrap_err();
    assert!(
        d.message().contains("more than the $0.00015 left"),
        "{}",
        d.message()
    );
    // An estimate larger than the whole budget is refused outright, even near i64::MAX.
    for estimate in [1_000_001, i64::MAX] {
        let a = key
            .admission(crate::domain::TraceId::new_v7(), now, estimate)
            .unwrap();
        let d = db.store.admit(&a).await.unwrap().unwrap_err();
        assert!(
            d.message().contains("whole daily budget of $0.001"),
            "{}",
            d.message()
        );
    }
});

store_test!(
    a_restarted_gateway_releases_what_its_crash_left_held,
    |db| {
        let limits = crate::domain::KeyLimits {
            budget_daily_nanos: Some(1_000_000),
            ..Default::default()
        };
        let (_, _, key) = budgeted_key(&db.store, limits).await;
        let now = crate::domain::now_ms();
        let admit = |owner: &str, amount: i64| {
            let mut a = key
                .admission(crate::domain::TraceId::new_v7(), now, amount)
                .unwrap();
            a.owner = Some(std::sync::Arc::from(owner));
            a
        };
        // Two gateways hold 400,000 each; the first one dies.
        for owner in ["dead", "alive"] {
            db.store
                .admit(&admit(owner, 400_000))
                .await
                .unwrap()
                .unwrap();
        }
        assert!(
            db.store
                .admit(&admit("alive", 350_000))
                .await
                .unwrap()
                .is_err()
        );
        // Restarted, it gives back its own reservation only.
        assert_eq!(
            db.store
                .release_reservations_of("dead", now + 1)
                .await
                .unwrap(),
            1
        );
        assert!(
            db.store
                .admit(&admit("alive", 350_000))
                .await
                .unwrap()
                .is_ok()
        );
        assert!(
            db.store
                .admit(&admit("alive", 350_000))
                .await
                .unwrap()
                .is_err()
        );
    }
);

store_test!(budget_admissions_mark_the_sqlite_writer_contended, |db| {
    // Nothing has waited on the write lock yet: the recorder may write large batches.
    assert!(!db.store.writes_contended());
    let limits = crate::domain::KeyLimits {
        rpm: Some(5),
        ..Default::default()
    };
    let (_, _, key) = budgeted_key(&db.store, limits).await;
    let a = key
        .admission(crate::domain::TraceId::new_v7(), crate::domain::now_ms(), 0)
        .unwrap();
    assert_eq!(db.store.admit(&a).await.unwrap(), Ok(None));
    // SQLite has one writer, so trace batches now stay short; Postgres locks only the key's rows.
    assert_eq!(
        db.store.writes_contended(),
        db.store.kind() == crate::store::BackendKind::Sqlite
    );
});
