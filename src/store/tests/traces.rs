//! Trace rows: idempotent batch inserts.

use super::*;

store_test!(trace_inserts_are_idempotent, |db| {
    let s = &db.store;
    let (_, o, e) = org_and_endpoint(s).await;
    let records: Vec<_> = (0..250)
        .map(|i| crate::store::testing::sample_record(o.id, e.id, 1_000 + i))
        .collect();
    assert_eq!(s.insert_traces(&records).await.unwrap(), 250);
    // A replayed batch (spool, retry) adds nothing.
    assert_eq!(s.insert_traces(&records).await.unwrap(), 0);
    assert_eq!(s.count_traces().await.unwrap(), 250);
    let newest = s.recent_traces(e.id, 5).await.unwrap();
    assert_eq!(newest[0].started_at, 1_249);
    let row = s.trace(records[3].id).await.unwrap().unwrap();
    assert_eq!(row.input_tokens, Some(10));
    assert_eq!(row.cost_nanos, Some(75_000));
    let bodies = s.trace_bodies(records[3].id).await.unwrap().unwrap();
    let req = crate::store::compression::decompress(bodies.request_body.as_ref().unwrap(), 1 << 20)
        .unwrap();
    assert_eq!(req, b"{\"model\":\"gpt-4o\"}");
    assert_eq!(s.delete_traces_before(1_100, 1000).await.unwrap(), 100);
    assert_eq!(s.count_traces().await.unwrap(), 150);
    assert!(s.trace_bodies(records[0].id).await.unwrap().is_none());
});
