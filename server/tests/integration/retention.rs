//! Retention end to end through the housekeeping round the server runs every minute: the
//! instance default, an organization's own setting, an endpoint's own (including "forever"),
//! each endpoint losing exactly its old traces, the daily totals kept.

use antix::domain::{DAY_MS, Scope, now_ms};
use antix::store::endpoints::NewEndpoint;

use crate::common::{org_with_endpoint, spawn_app_with};

#[tokio::test]
async fn each_endpoint_keeps_its_traces_for_its_own_retention() {
    let app = spawn_app_with(|env| {
        env.insert("ANTIX_TRACE_RETENTION_DAYS".into(), "7".into());
    })
    .await;
    let s = &app.services;
    let store = &s.store;
    let (ada, acme, inherits) = org_with_endpoint(s, "inherits").await;
    let endpoint = |org, name: &'static str| {
        let store = store.clone();
        async move {
            store
                .create_endpoint(&NewEndpoint {
                    org,
                    owner: ada.id,
                    scope: Scope::OrgShared,
                    name,
                })
                .await
                .unwrap()
        }
    };
    let forever = endpoint(acme.id, "forever").await;
    let short = endpoint(acme.id, "short").await;
    let other_org = store.create_organization("Globex", ada.id).await.unwrap();
    let monthly = endpoint(other_org.id, "monthly").await;
    store
        .set_endpoint_retention(forever.id, Some(0))
        .await
        .unwrap();
    store
        .set_endpoint_retention(short.id, Some(2))
        .await
        .unwrap();
    store
        .set_org_retention(other_org.id, Some(30))
        .await
        .unwrap();

    let now = now_ms();
    let ages = [1, 3, 10, 40];
    let mut records = Vec::new();
    for (org, e) in [
        (acme.id, &inherits),
        (acme.id, &forever),
        (acme.id, &short),
        (other_org.id, &monthly),
    ] {
        for age in ages {
            records.push(antix::store::testing::sample_record(
                org,
                e.id,
                now - age * DAY_MS,
            ));
        }
    }
    store.insert_traces(&records).await.unwrap();
    let totals_before = store.daily_totals(inherits.id, 0).await.unwrap();
    assert_eq!(totals_before.len(), 4);

    antix::housekeeping::once(s, now, &tokio_util::sync::CancellationToken::new()).await;

    let ages_left = |e: antix::domain::EndpointId| {
        let store = store.clone();
        async move {
            let mut left: Vec<i64> = store
                .recent_traces(e, 100)
                .await
                .unwrap()
                .iter()
                .map(|t| (now - t.started_at) / DAY_MS)
                .collect();
            left.sort_unstable();
            left
        }
    };
    assert_eq!(
        ages_left(inherits.id).await,
        vec![1, 3],
        "the instance's 7 days"
    );
    assert_eq!(
        ages_left(forever.id).await,
        vec![1, 3, 10, 40],
        "0: forever"
    );
    assert_eq!(ages_left(short.id).await, vec![1], "its own 2 days");
    assert_eq!(
        ages_left(monthly.id).await,
        vec![1, 3, 10],
        "its organization's 30 days"
    );
    // The Overview's history is untouched.
    assert_eq!(
        store.daily_totals(inherits.id, 0).await.unwrap(),
        totals_before
    );
}
