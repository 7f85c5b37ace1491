//! Budget alerts on both backends: spend read against key and organization budgets, each
//! threshold recorded once, and deliveries claimed by one replica at a time.

use super::*;
use crate::store::alerts::AlertSettings;

store_test!(
    budget_alerts_fire_once_per_window_and_are_claimed_once,
    |db| {
        let s = &db.store;
        let (u, o, e) = org_and_endpoint(s).await;
        let keys = crate::crypto::MasterKey::generate().keys();
        const USD: i64 = 1_000_000_000;
        let limits = crate::domain::KeyLimits {
            budget_daily_nanos: Some(2 * USD),
            budget_total_nanos: Some(100 * USD),
            ..Default::default()
        };
        let key = crate::virtual_keys::issue(s, &keys, o.id, u.id, "ci", None, &limits)
            .await
            .unwrap()
            .key;
        let now = crate::domain::now_ms();
        let mut r = crate::store::testing::sample_record(o.id, e.id, now);
        r.auth_mode = "virtual_key".into();
        r.virtual_key_id = Some(key.id);
        r.cost_nanos = Some(3 * USD / 2);
        s.insert_traces(&[r]).await.unwrap();

        let w = crate::limits::windows(now);
        let spends = s.key_budget_spends(w.day, w.month).await.unwrap();
        let mut periods: Vec<(&str, i64, i64)> = spends
            .iter()
            .map(|b| (b.period.as_str(), b.spent_nanos, b.budget_nanos))
            .collect();
        periods.sort_unstable();
        assert_eq!(
            periods,
            [
                ("day", 3 * USD / 2, 2 * USD),
                ("total", 3 * USD / 2, 100 * USD)
            ]
        );
        assert!(s.org_budget_spends(w.month).await.unwrap().is_empty());
        s.set_alert_settings(&AlertSettings {
            org_id: o.id,
            webhook_url: Some("https://hooks.example.com/x".into()),
            secret_nonce: "n".into(),
            thresholds: vec![50, 75],
            org_monthly_budget_nanos: Some(2 * USD),
            updated_at: now,
        })
        .await
        .unwrap();
        let org = s.org_budget_spends(w.month).await.unwrap();
        assert_eq!(org.len(), 1);
        assert_eq!(
            (org[0].spent_nanos, org[0].window_start, org[0].subject_id),
            (3 * USD / 2, w.month, o.id.0)
        );

        // 75 % of the daily key budget and of the organization's: two subjects, 50 % passed over
        // for each.
        assert_eq!(crate::alerts::evaluate(s, now).await.unwrap(), 4);
        assert_eq!(crate::alerts::evaluate(s, now).await.unwrap(), 0);
        assert_eq!(s.fired_alerts(w.day, w.month).await.unwrap().len(), 4);
        let due = s.due_alert_events(now, 10).await.unwrap();
        assert_eq!(due.len(), 2);
        assert!(due.iter().all(|d| d.threshold == 75));
        // Two replicas see the same due alert: one claim wins.
        assert!(s.claim_alert_event(&due[0], now + 1000).await.unwrap());
        assert!(!s.claim_alert_event(&due[0], now + 1000).await.unwrap());
        s.finish_alert_attempt(due[0].id, Some(now), None, Some(200), None)
            .await
            .unwrap();
        assert_eq!(s.due_alert_events(now + 5000, 10).await.unwrap().len(), 1);
        let recent = s.recent_alert_events(o.id, 10).await.unwrap();
        assert_eq!(recent.len(), 4);
        assert!(recent.iter().any(|r| r.delivered_at == Some(now)));
        // Old day and month alerts are forgotten; all-time ones stay (or they would fire again).
        assert_eq!(s.purge_alert_events(now + 1).await.unwrap(), 3);
        assert_eq!(s.recent_alert_events(o.id, 10).await.unwrap().len(), 1);
    }
);
