//! Batch holds: a batch's estimate stays reserved on the key that created it until that key
//! reads the results back (then the results' cost is charged, once); results of a batch the
//! gateway did not see created are charged once, however often they are read.

use super::*;
use crate::domain::{KeyLimits, TraceId, VirtualKey, now_ms};
use crate::store::batches::BatchEvent;
use crate::store::testing::sample_record;
use crate::store::traces::TraceRecord;

fn reading(
    o: &crate::domain::Organization,
    e: &crate::domain::Endpoint,
    key: Option<&VirtualKey>,
    batch: BatchEvent,
    cost: i64,
) -> TraceRecord {
    let mut r = sample_record(o.id, e.id, now_ms());
    r.virtual_key_id = key.map(|k| k.id);
    r.cost_nanos = Some(cost);
    r.batch = Some(batch);
    r
}

async fn cost_of(s: &Store, r: &TraceRecord) -> Option<i64> {
    s.trace(r.id).await.unwrap().unwrap().cost_nanos
}

/// Whether `key` could now start a call estimated at `nanos` (a refused check changes nothing).
async fn fits(s: &Store, key: &VirtualKey, nanos: i64) -> bool {
    let a = key.admission(TraceId::new_v7(), now_ms(), nanos).unwrap();
    s.admit(&a).await.unwrap().is_ok()
}

store_test!(
    a_batch_hold_is_released_only_by_the_key_that_holds_it,
    |db| {
        let (u, o, e) = org_and_endpoint(&db.store).await;
        let keys = crate::crypto::MasterKey::generate().keys();
        let limits = KeyLimits {
            budget_total_nanos: Some(1_000_000),
            ..Default::default()
        };
        let issue = |name: &'static str| {
            crate::virtual_keys::issue(&db.store, &keys, o.id, u.id, name, None, &limits)
        };
        let a = issue("a").await.unwrap().key;
        let b = issue("b").await.unwrap().key;
        let now = now_ms();
        // Key a creates a batch: its estimate of 600,000 is held.
        let adm = a.admission(TraceId::new_v7(), now, 600_000).unwrap();
        let res = db.store.admit(&adm).await.unwrap().unwrap().unwrap();
        let mut create = sample_record(o.id, e.id, now);
        create.id = res.id;
        create.virtual_key_id = Some(a.id);
        create.cost_nanos = Some(0);
        create.reservation = Some(res);
        create.batch = Some(BatchEvent::Created {
            provider: "anthropic".into(),
            batch_id: "msgbatch_1".into(),
            estimate_nanos: 600_000,
        });
        db.store.insert_traces(&[create]).await.unwrap();
        assert!(!fits(&db.store, &a, 500_000).await);
        let results = BatchEvent::Results {
            provider: "anthropic".into(),
            batch_id: Some("msgbatch_1".into()),
            file_id: None,
        };
        // Another key (or a BYOK caller) reading the results is not charged, and does not release
        // a's hold: a cannot escape its budget by reading its results some other way.
        for other in [Some(&b), None] {
            let r = reading(&o, &e, other, results.clone(), 300_000);
            db.store
                .insert_traces(std::slice::from_ref(&r))
                .await
                .unwrap();
            assert_eq!(cost_of(&db.store, &r).await, Some(0));
            assert!(!fits(&db.store, &a, 500_000).await);
        }
        // a reads them: charged the results' cost; the hold is released.
        let r = reading(&o, &e, Some(&a), results.clone(), 300_000);
        db.store
            .insert_traces(std::slice::from_ref(&r))
            .await
            .unwrap();
        assert_eq!(cost_of(&db.store, &r).await, Some(300_000));
        assert_eq!(
            db.store.key_spend(a.id, now).await.unwrap().total_nanos,
            300_000
        );
        // Reading them again costs nothing.
        let again = reading(&o, &e, Some(&a), results, 300_000);
        db.store
            .insert_traces(std::slice::from_ref(&again))
            .await
            .unwrap();
        assert_eq!(cost_of(&db.store, &again).await, Some(0));
        assert!(fits(&db.store, &a, 700_000).await);
    }
);

store_test!(results_of_a_batch_made_elsewhere_are_charged_once, |db| {
    let (_, o, e) = org_and_endpoint(&db.store).await;
    let results = BatchEvent::Results {
        provider: "openai".into(),
        batch_id: None,
        file_id: Some("file-out-1".into()),
    };
    let first = reading(&o, &e, None, results.clone(), 250_000);
    assert_eq!(
        db.store
            .insert_traces(std::slice::from_ref(&first))
            .await
            .unwrap(),
        1
    );
    assert_eq!(cost_of(&db.store, &first).await, Some(250_000));
    // A replay of the same trace (from the spool) changes nothing.
    assert_eq!(
        db.store
            .insert_traces(std::slice::from_ref(&first))
            .await
            .unwrap(),
        0
    );
    assert_eq!(cost_of(&db.store, &first).await, Some(250_000));
    let second = reading(&o, &e, None, results, 250_000);
    db.store
        .insert_traces(std::slice::from_ref(&second))
        .await
        .unwrap();
    assert_eq!(cost_of(&db.store, &second).await, Some(0));
});
