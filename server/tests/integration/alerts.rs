//! Budget alerts: thresholds fire once per window, the highest of several crossed at once is the
//! one delivered, deliveries are signed and retried with backoff until the receiver takes them,
//! and settings are validated. A local receiver stands in for Slack.

use std::sync::{Arc, Mutex};

use antix::Services;
use antix::domain::{KeyLimits, Membership, Role, User};
use antix::manage::Actor;
use antix::manage::alerts::AlertInput;
use antix::store::alerts::AlertEvent;
use axum::http::{HeaderMap, StatusCode};

use crate::common::test_env;

/// What the receiver saw: headers and body of each post.
type Seen = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A webhook receiver answering each post with the next status of `plan` (200 once it runs
/// out).
async fn receiver(plan: Vec<u16>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let plan = Arc::new(Mutex::new(std::collections::VecDeque::from(plan)));
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = s2.clone();
            let plan = plan.clone();
            async move {
                seen.lock().unwrap().push((headers, body.to_vec()));
                let code = plan.lock().unwrap().pop_front().unwrap_or(200);
                StatusCode::from_u16(code).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Services without the server's background loops (the test drives evaluation and delivery
/// with its own clock).
async fn services(dev_mode: bool) -> (Services, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path());
    if dev_mode {
        env.insert("ANTIX_DEV_MODE".into(), "true".into());
    }
    let settings = antix::config::Settings::from_sources(&env).unwrap();
    let (s, _) = Services::start(settings).await.unwrap();
    (s, dir)
}

async fn admin(s: &Services, email: &str, org: &str) -> Actor {
    let hash = antix::crypto::hash_password("a long enough password").unwrap();
    let user: User = s.store.create_user(email, "Admin", &hash).await.unwrap();
    s.store.create_organization(org, user.id).await.unwrap();
    let m: Membership = s.store.memberships(user.id).await.unwrap().remove(0);
    assert_eq!(m.role, Role::Admin);
    Actor::portal(user, m)
}

/// Records a call billed to `key` that cost `nanos` at `at`.
async fn spend(s: &Services, actor: &Actor, key: antix::domain::VirtualKeyId, nanos: i64, at: i64) {
    let ep = s
        .store
        .create_endpoint(&antix::store::endpoints::NewEndpoint {
            org: actor.org(),
            owner: actor.user.id,
            scope: antix::domain::Scope::OrgShared,
            name: "e",
        })
        .await
        .unwrap();
    let mut r = antix::store::testing::sample_record(actor.org(), ep.id, at);
    r.auth_mode = "virtual_key".into();
    r.virtual_key_id = Some(key);
    r.cost_nanos = Some(nanos);
    s.store.insert_traces(&[r]).await.unwrap();
}

fn events_of(seen: &Seen) -> Vec<(HeaderMap, serde_json::Value, Vec<u8>)> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(h, b)| (h.clone(), serde_json::from_slice(b).unwrap(), b.clone()))
        .collect()
}

async fn event(s: &Services, actor: &Actor, threshold: i64, subject: &str) -> AlertEvent {
    s.store
        .recent_alert_events(actor.org(), 100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.threshold == threshold && e.subject == subject)
        .unwrap_or_else(|| panic!("no {subject} alert at {threshold}%"))
}

const USD: i64 = 1_000_000_000;

#[tokio::test]
async fn thresholds_fire_once_and_deliveries_are_signed_and_retried() {
    let (s, _dir) = services(true).await;
    let acme = admin(&s, "ada@example.com", "Acme").await;
    let other = admin(&s, "eve@example.com", "Evil").await;
    let (url, seen) = receiver(vec![500, 503]).await;
    antix::manage::alerts::update(
        &s.store,
        &s.settings,
        &acme,
        &AlertInput {
            webhook_url: url.clone(),
            thresholds: "50, 80, 100".into(),
            org_monthly_budget_nanos: None,
        },
    )
    .await
    .unwrap();
    let view = antix::manage::alerts::get(&s.store, &s.keys, &acme)
        .await
        .unwrap();
    let secret = view.signing_secret.clone();
    assert!(secret.starts_with("whsec_"));
    let limits = KeyLimits {
        budget_monthly_nanos: Some(10 * USD),
        ..Default::default()
    };
    let key = antix::virtual_keys::issue(
        &s.store,
        &s.keys,
        acme.org(),
        acme.user.id,
        "ci",
        None,
        &limits,
    )
    .await
    .unwrap()
    .key;
    let client = antix::alerts::Sender::new(&s).unwrap();
    let now = antix::domain::now_ms();

    // $4 of $10: nothing yet.
    spend(&s, &acme, key.id, 4 * USD, now).await;
    assert_eq!(antix::alerts::evaluate(&s.store, now).await.unwrap(), 0);
    // $6: the 50 % threshold, once however often it is evaluated.
    spend(&s, &acme, key.id, 2 * USD, now).await;
    assert_eq!(antix::alerts::evaluate(&s.store, now).await.unwrap(), 1);
    assert_eq!(antix::alerts::evaluate(&s.store, now + 1).await.unwrap(), 0);

    // The receiver fails twice; each retry waits its delay, the third attempt gets through.
    let d = |n| antix::alerts::deliver_due(&s.store, &s.keys, &client, n);
    assert_eq!(d(now).await.unwrap(), 0);
    let e = event(&s, &acme, 50, "key").await;
    assert_eq!((e.attempts, e.last_status), (1, Some(500)));
    assert_eq!(e.next_attempt_at, Some(now + 30_000));
    assert_eq!(d(now + 29_000).await.unwrap(), 0, "not due yet");
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(d(now + 30_000).await.unwrap(), 0);
    let e = event(&s, &acme, 50, "key").await;
    assert_eq!((e.attempts, e.last_status), (2, Some(503)));
    assert_eq!(e.next_attempt_at, Some(now + 30_000 + 120_000));
    assert_eq!(d(now + 150_000).await.unwrap(), 1);
    let e = event(&s, &acme, 50, "key").await;
    assert!(e.delivered_at.is_some());
    assert_eq!((e.attempts, e.next_attempt_at), (3, None));
    assert_eq!(d(now + 10_000_000).await.unwrap(), 0, "delivered once");

    let posts = events_of(&seen);
    assert_eq!(posts.len(), 3);
    for (h, body, raw) in &posts {
        assert_eq!(h["x-antix-delivery"].to_str().unwrap(), e.id.to_string());
        assert_eq!(h["content-type"], "application/json");
        let sig = h["x-antix-signature"].to_str().unwrap();
        let t: i64 = sig
            .strip_prefix("t=")
            .and_then(|r| r.split(',').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!((t - now / 1000).abs() < 60);
        assert_eq!(
            sig,
            antix::alerts::signature(&secret, t, raw),
            "signed with the shown secret"
        );
        assert_eq!(body["alert"]["threshold_percent"], 50);
        assert_eq!(body["alert"]["subject_name"], "ci");
        assert_eq!(body["alert"]["period"], "month");
        assert_eq!(body["alert"]["spent_usd"], "6.000000000");
        assert_eq!(body["alert"]["test"], false);
        let text = body["text"].as_str().unwrap();
        assert!(
            text.contains("“ci”") && text.contains("60%") && text.contains("monthly"),
            "{text}"
        );
    }

    // A big call crosses 80 % and 100 % at once: one message, for 100 %.
    spend(&s, &acme, key.id, 5 * USD, now).await;
    assert_eq!(antix::alerts::evaluate(&s.store, now).await.unwrap(), 2);
    assert_eq!(d(now).await.unwrap(), 1);
    let passed = event(&s, &acme, 80, "key").await;
    assert_eq!((passed.attempts, passed.next_attempt_at), (0, None));
    assert!(passed.last_error.unwrap().contains("100%"));
    let posts = events_of(&seen);
    assert_eq!(posts.len(), 4);
    assert_eq!(posts[3].1["alert"]["threshold_percent"], 100);

    // The organization's monthly alert budget: $11 of $20 crosses 50 %.
    antix::manage::alerts::update(
        &s.store,
        &s.settings,
        &acme,
        &AlertInput {
            webhook_url: url.clone(),
            thresholds: "50,80,100".into(),
            org_monthly_budget_nanos: Some(20 * USD),
        },
    )
    .await
    .unwrap();
    assert_eq!(antix::alerts::evaluate(&s.store, now).await.unwrap(), 1);
    let org = event(&s, &acme, 50, "org").await;
    assert_eq!(
        (org.spent_nanos, org.subject_name.as_str()),
        (11 * USD, "Acme")
    );
    assert_eq!(d(now).await.unwrap(), 1);

    // Nothing of it shows in another organization.
    assert!(
        s.store
            .recent_alert_events(other.org(), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        antix::manage::alerts::get(&s.store, &s.keys, &other)
            .await
            .unwrap()
            .recent
            .is_empty()
    );

    // The test button's delivery is marked as a test and recorded nowhere.
    let before = s
        .store
        .recent_alert_events(acme.org(), 100)
        .await
        .unwrap()
        .len();
    let a = antix::manage::alerts::send_test(&s.store, &s.keys, &client, &acme)
        .await
        .unwrap();
    assert!(a.delivered(), "{a:?}");
    let posts = events_of(&seen);
    assert_eq!(posts.last().unwrap().1["alert"]["test"], true);
    assert_eq!(
        s.store
            .recent_alert_events(acme.org(), 100)
            .await
            .unwrap()
            .len(),
        before
    );

    // A new secret signs from then on.
    let rotated = antix::manage::alerts::rotate_secret(&s.store, &s.keys, &acme)
        .await
        .unwrap();
    assert_ne!(rotated, secret);
    antix::manage::alerts::send_test(&s.store, &s.keys, &client, &acme)
        .await
        .unwrap();
    let (h, _, raw) = events_of(&seen).pop().unwrap();
    let sig = h["x-antix-signature"].to_str().unwrap().to_owned();
    let t: i64 = sig[2..sig.find(',').unwrap()].parse().unwrap();
    assert_eq!(sig, antix::alerts::signature(&rotated, t, &raw));
}

#[tokio::test]
async fn a_webhook_that_never_answers_is_given_up_after_the_last_attempt() {
    let (s, _dir) = services(true).await;
    let acme = admin(&s, "ada@example.com", "Acme").await;
    let (url, seen) = receiver(vec![500; 20]).await;
    antix::manage::alerts::update(
        &s.store,
        &s.settings,
        &acme,
        &AlertInput {
            webhook_url: url,
            thresholds: "100".into(),
            org_monthly_budget_nanos: None,
        },
    )
    .await
    .unwrap();
    let limits = KeyLimits {
        budget_daily_nanos: Some(USD),
        ..Default::default()
    };
    let key = antix::virtual_keys::issue(
        &s.store,
        &s.keys,
        acme.org(),
        acme.user.id,
        "k",
        None,
        &limits,
    )
    .await
    .unwrap()
    .key;
    let client = antix::alerts::Sender::new(&s).unwrap();
    let mut now = antix::domain::now_ms();
    spend(&s, &acme, key.id, 2 * USD, now).await;
    assert_eq!(antix::alerts::evaluate(&s.store, now).await.unwrap(), 1);
    for _ in 0..antix::alerts::MAX_ATTEMPTS {
        antix::alerts::deliver_due(&s.store, &s.keys, &client, now)
            .await
            .unwrap();
        now += 7 * 3_600_000;
    }
    let e = event(&s, &acme, 100, "key").await;
    assert_eq!(e.attempts, antix::alerts::MAX_ATTEMPTS);
    assert_eq!(
        (e.next_attempt_at, e.delivered_at),
        (None, None),
        "given up"
    );
    assert_eq!(e.period, "day");
    assert_eq!(
        seen.lock().unwrap().len() as i64,
        antix::alerts::MAX_ATTEMPTS
    );
}

#[tokio::test]
async fn alert_settings_are_validated_and_admin_only() {
    let (s, _dir) = services(false).await;
    let acme = admin(&s, "ada@example.com", "Acme").await;
    let bad = antix::manage::alerts::update(
        &s.store,
        &s.settings,
        &acme,
        &AlertInput {
            webhook_url: "http://127.0.0.1:9/hook".into(),
            thresholds: "fifty".into(),
            org_monthly_budget_nanos: Some(0),
        },
    )
    .await;
    let Err(antix::manage::ManageError::Invalid(fields)) = bad else {
        panic!("{:?}", bad.err());
    };
    let mut names: Vec<&str> = fields.iter().map(|f| f.field).collect();
    names.sort_unstable();
    assert_eq!(names, ["org_monthly_budget", "thresholds", "webhook_url"]);
    // Nothing was saved: the defaults are still in force.
    let v = antix::manage::alerts::get(&s.store, &s.keys, &acme)
        .await
        .unwrap();
    assert_eq!(v.settings.thresholds, antix::alerts::DEFAULT_THRESHOLDS);
    assert_eq!(v.settings.webhook_url, None);
    for private in [
        "https://10.0.0.1/x",
        "https://localhost/x",
        "ftp://example.com/x",
    ] {
        let r = antix::manage::alerts::update(
            &s.store,
            &s.settings,
            &acme,
            &AlertInput {
                webhook_url: private.into(),
                thresholds: "80".into(),
                org_monthly_budget_nanos: None,
            },
        )
        .await;
        assert!(r.is_err(), "{private}");
    }
    antix::manage::alerts::update(
        &s.store,
        &s.settings,
        &acme,
        &AlertInput {
            webhook_url: "https://hooks.example.com/services/T0/B0/x?team=a".into(),
            thresholds: "90,75".into(),
            org_monthly_budget_nanos: Some(250 * USD),
        },
    )
    .await
    .unwrap();
    let v = antix::manage::alerts::get(&s.store, &s.keys, &acme)
        .await
        .unwrap();
    assert_eq!(v.settings.thresholds, [75, 90]);
    assert_eq!(v.settings.org_monthly_budget_nanos, Some(250 * USD));

    // A loopback webhook saved while in dev mode is not posted to once dev mode is off.
    let sender = antix::alerts::Sender::new(&s).unwrap();
    let sample = s.store.recent_alert_events(acme.org(), 1).await.unwrap();
    assert!(sample.is_empty());
    let e = antix::store::alerts::AlertEvent {
        id: uuid::Uuid::now_v7(),
        org_id: acme.org(),
        subject: "org".into(),
        subject_id: acme.org().0,
        subject_name: "Acme".into(),
        period: "month".into(),
        window_start: 0,
        threshold: 80,
        spent_nanos: 8,
        budget_nanos: 10,
        created_at: 0,
        attempts: 0,
        next_attempt_at: None,
        delivered_at: None,
        last_status: None,
        last_error: None,
    };
    let (url, seen) = receiver(vec![]).await;
    let a = sender.post(&url, "whsec_x", &e, true).await;
    assert!(a.error.unwrap().contains("not allowed"));
    assert!(seen.lock().unwrap().is_empty(), "nothing was sent");

    // A member sees and changes nothing.
    let hash = antix::crypto::hash_password("a long enough password").unwrap();
    let mia = s
        .store
        .create_user("mia@example.com", "Mia", &hash)
        .await
        .unwrap();
    s.store
        .add_membership(acme.org(), mia.id, Role::Member)
        .await
        .unwrap();
    let m = s.store.memberships(mia.id).await.unwrap().remove(0);
    let member = Actor::portal(mia, m);
    assert!(matches!(
        antix::manage::alerts::get(&s.store, &s.keys, &member).await,
        Err(antix::manage::ManageError::Forbidden(_))
    ));
    assert!(matches!(
        antix::manage::alerts::update(&s.store, &s.settings, &member, &AlertInput::default()).await,
        Err(antix::manage::ManageError::Forbidden(_))
    ));
}
