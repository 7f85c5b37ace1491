//! Retention: the settings per organization and endpoint, and deletes that take one endpoint's
//! old traces (with bodies, search text and sessions) and nothing else, keeping daily totals.

use super::*;
use crate::domain::{DAY_MS, now_ms};
use crate::store::retention::RetentionSettings;

store_test!(retention_settings_round_trip, |db| {
    let s = &db.store;
    let (_, o, e) = org_and_endpoint(s).await;
    assert_eq!(
        s.endpoint_retention(e.id).await.unwrap(),
        RetentionSettings::default()
    );
    s.set_org_retention(o.id, Some(30)).await.unwrap();
    s.set_endpoint_retention(e.id, Some(0)).await.unwrap();
    assert_eq!(s.org_retention(o.id).await.unwrap(), Some(30));
    let want = RetentionSettings {
        org_days: Some(30),
        endpoint_days: Some(0),
    };
    assert_eq!(s.endpoint_retention(e.id).await.unwrap(), want);
    assert_eq!(s.retention_plan().await.unwrap(), vec![(e.id, want)]);
    s.set_endpoint_retention(e.id, None).await.unwrap();
    assert_eq!(
        s.endpoint_retention(e.id).await.unwrap().endpoint_days,
        None
    );
    assert!(matches!(
        s.set_endpoint_retention(crate::domain::EndpointId::new_v4(), Some(1))
            .await,
        Err(StoreError::NotFound)
    ));
});

store_test!(
    an_endpoints_old_traces_go_in_batches_and_its_daily_totals_stay,
    |db| {
        let s = &db.store;
        let (u, o, e) = org_and_endpoint(s).await;
        let other = s
            .create_endpoint(&NewEndpoint {
                org: o.id,
                owner: u.id,
                scope: Scope::OrgShared,
                name: "other",
            })
            .await
            .unwrap();
        let now = now_ms();
        let old = now - 10 * DAY_MS;
        let records: Vec<_> = [e.id, other.id]
            .iter()
            .flat_map(|ep| {
                (0..5)
                    .map(move |i| crate::store::testing::sample_record(o.id, *ep, old + i))
                    .chain(
                        (0..2)
                            .map(move |i| crate::store::testing::sample_record(o.id, *ep, now - i)),
                    )
            })
            .collect();
        s.insert_traces(&records).await.unwrap();
        let totals_before = s.daily_totals(e.id, 0).await.unwrap();

        let cut = now - 5 * DAY_MS;
        assert_eq!(
            s.delete_endpoint_traces_before(e.id, cut, 3).await.unwrap(),
            3
        );
        assert_eq!(
            s.delete_endpoint_traces_before(e.id, cut, 3).await.unwrap(),
            2
        );
        assert_eq!(
            s.delete_endpoint_traces_before(e.id, cut, 3).await.unwrap(),
            0
        );
        let left = s.recent_traces(e.id, 100).await.unwrap();
        assert_eq!(left.len(), 2);
        assert!(left.iter().all(|t| t.started_at >= cut));
        assert!(s.trace_bodies(records[0].id).await.unwrap().is_none());
        // The other endpoint is untouched; the daily totals of both are as they were.
        assert_eq!(s.recent_traces(other.id, 100).await.unwrap().len(), 7);
        assert_eq!(s.daily_totals(e.id, 0).await.unwrap(), totals_before);
    }
);
