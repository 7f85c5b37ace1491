//! The store suite, written once and run on both backends: always on SQLite, and on Postgres when
//! `TEST_POSTGRES_URL` is set (each test in a fresh schema). `scripts/test.sh` reports how many
//! ran on each.

use super::testing::{TestDb, postgres_required};
use super::{Store, StoreError};
use crate::domain::{Role, Scope};
use crate::store::accounts::{FirstRunError, NewAdmin};
use crate::store::endpoints::{CreateEndpointError, NewEndpoint};

mod observe;
use observe::{
    overview_totals_match_traces, search_finds_substrings_in_bodies,
    search_results_page_without_gaps, sessions_group_agent_calls, slow_queries_are_cut_off,
    trace_list_filters_and_pages,
};

/// Declares each listed async fn `name(&TestDb)` as a test under `sqlite::name` and
/// `postgres::name`.
macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::TestDb::sqlite().await.unwrap();
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = super::TestDb::postgres().await.unwrap() else {
                        assert!(
                            !super::postgres_required(),
                            "ANTIX_REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set"
                        );
                        eprintln!("SKIPPED postgres::{}: TEST_POSTGRES_URL is not set", stringify!($name));
                        return;
                    };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

store_suite!(
    first_admin_is_created_once,
    first_admin_race_has_one_winner,
    duplicate_email_is_a_conflict,
    sessions_expire_and_end,
    memberships_and_roles,
    endpoints_are_scoped_to_their_viewers,
    personal_endpoint_limit_is_enforced,
    personal_endpoint_limit_holds_under_concurrency,
    endpoints_rename_and_archive,
    login_failures_are_counted,
    unreachable_database_is_unavailable_not_missing,
    trace_inserts_are_idempotent,
    virtual_keys_are_found_by_hash_only,
    credentials_are_sealed_to_their_row,
    recorder_spools_when_down_and_replays_once,
    recorder_quarantines_a_poison_row,
    budget_holds_under_concurrency_across_stores,
    rate_limits_count_requests_and_tokens,
    settlement_is_exactly_once_and_sweeps_release,
    search_finds_substrings_in_bodies,
    search_results_page_without_gaps,
    trace_list_filters_and_pages,
    overview_totals_match_traces,
    sessions_group_agent_calls,
    slow_queries_are_cut_off,
);

async fn admin(store: &Store) -> (crate::domain::User, crate::domain::Organization) {
    store
        .create_first_admin(&NewAdmin {
            email: "ada@example.com",
            name: "Ada",
            password_hash: "$argon2id$fake",
            org_name: "Acme",
        })
        .await
        .unwrap()
}

async fn first_admin_is_created_once(db: &TestDb) {
    let s = &db.store;
    assert!(!s.is_initialized().await.unwrap());
    let (user, org) = admin(s).await;
    assert!(s.is_initialized().await.unwrap());
    assert_eq!(user.email, "ada@example.com");
    assert_eq!(org.name, "Acme");
    assert_eq!(org.max_personal_endpoints, 10);
    assert_eq!(s.role_in(user.id, org.id).await.unwrap(), Some(Role::Admin));
    let again = s
        .create_first_admin(&NewAdmin {
            email: "eve@example.com",
            name: "Eve",
            password_hash: "x",
            org_name: "Evil",
        })
        .await;
    assert!(matches!(again, Err(FirstRunError::AlreadyInitialized)));
    // Nothing of the refused attempt was written.
    assert!(s.user_for_login("eve@example.com").await.unwrap().is_none());
}

async fn first_admin_race_has_one_winner(db: &TestDb) {
    let other = db.reopen().await.unwrap();
    let mk = |s: Store, i: usize| async move {
        let email = format!("a{i}@example.com");
        s.create_first_admin(&NewAdmin {
            email: &email,
            name: "A",
            password_hash: "x",
            org_name: "Org",
        })
        .await
    };
    let futs: Vec<_> = (0..8)
        .map(|i| {
            let s = if i % 2 == 0 {
                db.store.clone()
            } else {
                other.clone()
            };
            tokio::spawn(mk(s, i))
        })
        .collect();
    let mut wins = 0;
    for f in futs {
        match f.await.unwrap() {
            Ok(_) => wins += 1,
            Err(FirstRunError::AlreadyInitialized) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(wins, 1);
    other.close().await;
}

async fn duplicate_email_is_a_conflict(db: &TestDb) {
    let s = &db.store;
    admin(s).await;
    let err = s
        .create_user("ada@example.com", "Other Ada", "x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

async fn sessions_expire_and_end(db: &TestDb) {
    let s = &db.store;
    let (user, _) = admin(s).await;
    let now = crate::domain::now_ms();
    let live = [1u8; 32];
    let stale = [2u8; 32];
    s.create_session(&live, user.id, now + 60_000)
        .await
        .unwrap();
    s.create_session(&stale, user.id, now - 1).await.unwrap();
    assert_eq!(
        s.session_user(&live, now).await.unwrap().unwrap().id,
        user.id
    );
    assert!(s.session_user(&stale, now).await.unwrap().is_none());
    assert!(s.session_user(&[3u8; 32], now).await.unwrap().is_none());
    assert_eq!(s.purge_expired_sessions(now).await.unwrap(), 1);
    s.delete_session(&live).await.unwrap();
    assert!(s.session_user(&live, now).await.unwrap().is_none());
    s.create_session(&live, user.id, now + 60_000)
        .await
        .unwrap();
    s.create_session(&stale, user.id, now + 60_000)
        .await
        .unwrap();
    assert_eq!(s.delete_user_sessions(user.id).await.unwrap(), 2);
}

async fn memberships_and_roles(db: &TestDb) {
    let s = &db.store;
    let (ada, acme) = admin(s).await;
    let bob = s.create_user("bob@example.com", "Bob", "x").await.unwrap();
    assert_eq!(s.role_in(bob.id, acme.id).await.unwrap(), None);
    s.add_membership(acme.id, bob.id, Role::Member)
        .await
        .unwrap();
    assert_eq!(
        s.role_in(bob.id, acme.id).await.unwrap(),
        Some(Role::Member)
    );
    assert!(matches!(
        s.add_membership(acme.id, bob.id, Role::Admin).await,
        Err(StoreError::Conflict(_))
    ));
    let beta = s.create_organization("Beta", bob.id).await.unwrap();
    let ms = s.memberships(bob.id).await.unwrap();
    assert_eq!(ms.len(), 2);
    assert_eq!((ms[0].org.id, ms[0].role), (acme.id, Role::Member));
    assert_eq!((ms[1].org.id, ms[1].role), (beta.id, Role::Admin));
    assert_eq!(s.role_in(ada.id, beta.id).await.unwrap(), None);
    let org = s.organization(beta.id).await.unwrap().unwrap();
    assert_eq!(org.name, "Beta");
}

async fn endpoints_are_scoped_to_their_viewers(db: &TestDb) {
    let s = &db.store;
    let (ada, acme) = admin(s).await;
    let bob = s.create_user("bob@example.com", "Bob", "x").await.unwrap();
    s.add_membership(acme.id, bob.id, Role::Member)
        .await
        .unwrap();
    let ada_personal = s
        .create_endpoint(&NewEndpoint {
            org: acme.id,
            owner: ada.id,
            scope: Scope::Personal,
            name: "ada's",
        })
        .await
        .unwrap();
    let shared = s
        .create_endpoint(&NewEndpoint {
            org: acme.id,
            owner: ada.id,
            scope: Scope::OrgShared,
            name: "shared",
        })
        .await
        .unwrap();
    let bob_personal = s
        .create_endpoint(&NewEndpoint {
            org: acme.id,
            owner: bob.id,
            scope: Scope::Personal,
            name: "bob's",
        })
        .await
        .unwrap();
    assert_eq!(ada_personal.id.0.get_version_num(), 4);
    let ids = |v: Vec<crate::domain::Endpoint>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let for_bob = ids(s.visible_endpoints(acme.id, bob.id).await.unwrap());
    assert!(for_bob.contains(&shared.id) && for_bob.contains(&bob_personal.id));
    assert!(!for_bob.contains(&ada_personal.id));
    // Admins do not see other users' personal endpoints either.
    let for_ada = ids(s.visible_endpoints(acme.id, ada.id).await.unwrap());
    assert!(!for_ada.contains(&bob_personal.id));
    assert_eq!(for_ada.len(), 2);
    let fetched = s.endpoint(shared.id).await.unwrap().unwrap();
    assert_eq!(fetched, shared);
    // Not a member: no endpoint can be created there.
    let beta = s.create_organization("Beta", bob.id).await.unwrap();
    let err = s
        .create_endpoint(&NewEndpoint {
            org: beta.id,
            owner: ada.id,
            scope: Scope::Personal,
            name: "x",
        })
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CreateEndpointError::Store(StoreError::NotFound)
    ));
}

async fn personal_endpoint_limit_is_enforced(db: &TestDb) {
    let s = &db.store;
    let (ada, acme) = admin(s).await;
    let mut first = None;
    for i in 0..10 {
        let e = s
            .create_endpoint(&NewEndpoint {
                org: acme.id,
                owner: ada.id,
                scope: Scope::Personal,
                name: &format!("p{i}"),
            })
            .await
            .unwrap();
        first.get_or_insert(e.id);
    }
    let err = s
        .create_endpoint(&NewEndpoint {
            org: acme.id,
            owner: ada.id,
            scope: Scope::Personal,
            name: "eleven",
        })
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CreateEndpointError::PersonalLimit { limit: 10 }
    ));
    // Org-shared endpoints do not count against the personal limit.
    s.create_endpoint(&NewEndpoint {
        org: acme.id,
        owner: ada.id,
        scope: Scope::OrgShared,
        name: "shared",
    })
    .await
    .unwrap();
    // Archiving frees a slot.
    s.archive_endpoint(first.unwrap(), crate::domain::now_ms())
        .await
        .unwrap();
    s.create_endpoint(&NewEndpoint {
        org: acme.id,
        owner: ada.id,
        scope: Scope::Personal,
        name: "after archive",
    })
    .await
    .unwrap();
}

async fn personal_endpoint_limit_holds_under_concurrency(db: &TestDb) {
    let (ada, acme) = admin(&db.store).await;
    let other = db.reopen().await.unwrap();
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let s = if i % 2 == 0 {
                db.store.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                s.create_endpoint(&NewEndpoint {
                    org: acme.id,
                    owner: ada.id,
                    scope: Scope::Personal,
                    name: "race",
                })
                .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(CreateEndpointError::PersonalLimit { .. }) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(ok, 10);
    other.close().await;
}

async fn endpoints_rename_and_archive(db: &TestDb) {
    let s = &db.store;
    let (ada, acme) = admin(s).await;
    let e = s
        .create_endpoint(&NewEndpoint {
            org: acme.id,
            owner: ada.id,
            scope: Scope::Personal,
            name: "old",
        })
        .await
        .unwrap();
    s.rename_endpoint(e.id, "new").await.unwrap();
    s.archive_endpoint(e.id, 1000).await.unwrap();
    s.archive_endpoint(e.id, 2000).await.unwrap();
    let got = s.endpoint(e.id).await.unwrap().unwrap();
    assert_eq!(got.name, "new");
    assert_eq!(got.archived_at, Some(1000));
    let missing = crate::domain::EndpointId::new_v4();
    assert!(matches!(
        s.rename_endpoint(missing, "x").await,
        Err(StoreError::NotFound)
    ));
    assert!(s.endpoint(missing).await.unwrap().is_none());
}

async fn login_failures_are_counted(db: &TestDb) {
    let s = &db.store;
    for t in [100, 200, 300] {
        s.record_login_failure("acct:ada@example.com", t)
            .await
            .unwrap();
    }
    s.record_login_failure("ip:10.0.0.1", 300).await.unwrap();
    assert_eq!(
        s.login_failures_since("acct:ada@example.com", 150)
            .await
            .unwrap(),
        2
    );
    s.clear_login_failures("acct:ada@example.com")
        .await
        .unwrap();
    assert_eq!(
        s.login_failures_since("acct:ada@example.com", 0)
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.purge_login_failures(1000).await.unwrap(), 1);
}

async fn unreachable_database_is_unavailable_not_missing(db: &TestDb) {
    let s = db.reopen().await.unwrap();
    s.close().await;
    let err = s.is_initialized().await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

async fn org_and_endpoint(
    s: &Store,
) -> (
    crate::domain::User,
    crate::domain::Organization,
    crate::domain::Endpoint,
) {
    let (u, o) = admin(s).await;
    let e = s
        .create_endpoint(&NewEndpoint {
            org: o.id,
            owner: u.id,
            scope: Scope::OrgShared,
            name: "e",
        })
        .await
        .unwrap();
    (u, o, e)
}

async fn trace_inserts_are_idempotent(db: &TestDb) {
    let s = &db.store;
    let (_, o, e) = org_and_endpoint(s).await;
    let records: Vec<_> = (0..250)
        .map(|i| super::testing::sample_record(o.id, e.id, 1_000 + i))
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
    let req = crate::recorder::finalize::decompress(bodies.request_body.as_ref().unwrap(), 1 << 20)
        .unwrap();
    assert_eq!(req, b"{\"model\":\"gpt-4o\"}");
    assert_eq!(s.delete_traces_before(1_100, 1000).await.unwrap(), 100);
    assert_eq!(s.count_traces().await.unwrap(), 150);
    assert!(s.trace_bodies(records[0].id).await.unwrap().is_none());
}

async fn virtual_keys_are_found_by_hash_only(db: &TestDb) {
    let s = &db.store;
    let (u, o, e) = org_and_endpoint(s).await;
    let keys = crate::crypto::MasterKey::generate().keys();
    let limits = crate::domain::KeyLimits {
        rpm: Some(60),
        allowed_models: vec!["gpt-*".into()],
        allowed_endpoints: vec![e.id],
        ..Default::default()
    };
    let issued = crate::virtual_keys::issue(s, &keys, o.id, u.id, "ci", Some(5_000), &limits)
        .await
        .unwrap();
    use secrecy::ExposeSecret;
    let secret = issued.secret.expose_secret();
    let found = s
        .virtual_key_by_hash(&keys.token_hash(secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, issued.key.id);
    assert_eq!(found.limits, limits);
    assert_eq!(found.expires_at, Some(5_000));
    assert_eq!(found.unusable_reason(4_000), None);
    assert_eq!(found.unusable_reason(5_000), Some("expired"));
    assert!(found.display.starts_with("sk-vk-") && !found.display.contains(&secret[10..30]));
    // Another pepper, another hash: nothing found.
    let other = crate::crypto::MasterKey::generate().keys();
    assert!(
        s.virtual_key_by_hash(&other.token_hash(secret))
            .await
            .unwrap()
            .is_none()
    );
    s.revoke_virtual_key(o.id, found.id, 7).await.unwrap();
    s.revoke_virtual_key(o.id, found.id, 9).await.unwrap();
    let k = s.virtual_key(found.id).await.unwrap().unwrap();
    assert_eq!(k.revoked_at, Some(7));
    // Not revocable through another organization.
    let beta = s.create_organization("Beta", u.id).await.unwrap();
    assert!(matches!(
        s.revoke_virtual_key(beta.id, found.id, 1).await,
        Err(StoreError::NotFound)
    ));
    s.touch_virtual_keys(&[(found.id, 100), (found.id, 50)])
        .await
        .unwrap();
    assert_eq!(
        s.virtual_key(found.id).await.unwrap().unwrap().last_used_at,
        Some(100)
    );
    assert_eq!(s.list_virtual_keys(o.id).await.unwrap().len(), 1);
}

async fn credentials_are_sealed_to_their_row(db: &TestDb) {
    use crate::domain::Provider;
    use secrecy::{ExposeSecret, SecretString};
    let s = &db.store;
    let (u, o, _) = org_and_endpoint(s).await;
    let beta = s.create_organization("Beta", u.id).await.unwrap();
    let keys = crate::crypto::MasterKey::generate().keys();
    crate::credentials::set(
        s,
        &keys,
        &crate::credentials::CredentialInput {
            org: o.id,
            provider: Provider::OpenAi,
            secret: &SecretString::from("sk-acme-1234"),
            base_url: None,
            by: u.id,
            at: 1,
        },
    )
    .await
    .unwrap();
    crate::credentials::set(
        s,
        &keys,
        &crate::credentials::CredentialInput {
            org: beta.id,
            provider: Provider::OpenAi,
            secret: &SecretString::from("sk-beta-9876"),
            base_url: Some("https://llm.example.com"),
            by: u.id,
            at: 1,
        },
    )
    .await
    .unwrap();
    let c = crate::credentials::get(s, &keys, o.id, Provider::OpenAi)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.secret.expose_secret(), "sk-acme-1234");
    let row = s.credential(o.id, Provider::OpenAi).await.unwrap().unwrap();
    assert_eq!(row.last4, "1234");
    assert!(!String::from_utf8_lossy(&row.ciphertext).contains("sk-acme"));
    // Swap the ciphertexts between tenants: neither decrypts.
    let theirs = s
        .credential(beta.id, Provider::OpenAi)
        .await
        .unwrap()
        .unwrap();
    s.put_credential(&crate::store::credentials::NewCredential {
        org: o.id,
        provider: Provider::OpenAi,
        ciphertext: &theirs.ciphertext,
        last4: "9876",
        base_url: None,
        updated_by: u.id,
        at: 2,
    })
    .await
    .unwrap();
    assert!(
        crate::credentials::get(s, &keys, o.id, Provider::OpenAi)
            .await
            .is_err()
    );
    assert!(
        crate::credentials::get(s, &keys, o.id, Provider::Gemini)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.delete_credential(o.id, Provider::OpenAi).await.unwrap());
    assert_eq!(s.list_credentials(beta.id).await.unwrap().len(), 1);
}

async fn recorder_spools_when_down_and_replays_once(db: &TestDb) {
    use crate::recorder::{Recorder, RecorderConfig};
    let (_, o, e) = org_and_endpoint(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RecorderConfig::new(dir.path());
    cfg.batch_interval = std::time::Duration::from_millis(5);
    // A store that cannot be reached.
    let down = db.reopen().await.unwrap();
    down.close().await;
    let (rec, task) = Recorder::start(down, cfg.clone());
    let drafts: Vec<_> = (0..40)
        .map(|_| super::testing::sample_draft(o.id, e.id))
        .collect();
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
    rec2.submit(super::testing::sample_draft(o.id, e.id));
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
}

async fn recorder_quarantines_a_poison_row(db: &TestDb) {
    use crate::recorder::{Recorder, RecorderConfig};
    let (_, o, e) = org_and_endpoint(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let (rec, task) = Recorder::start(db.store.clone(), RecorderConfig::new(dir.path()));
    for i in 0..500 {
        let mut d = super::testing::sample_draft(o.id, e.id);
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
}

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
    let mut r = super::testing::sample_record(o.id, e.id, now);
    if let Some(res) = &reservation {
        r.id = res.id;
    }
    r.virtual_key_id = Some(key.id);
    r.cost_nanos = Some(cost);
    r.reservation = reservation;
    r
}

async fn budget_holds_under_concurrency_across_stores(db: &TestDb) {
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
}

async fn rate_limits_count_requests_and_tokens(db: &TestDb) {
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
}

async fn settlement_is_exactly_once_and_sweeps_release(db: &TestDb) {
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
    assert_eq!(db.store.sweep_limits(now + 1, 0).await.unwrap(), 1);
    assert_eq!(db.store.sweep_limits(now + 1, 0).await.unwrap(), 0);
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
    // Nothing is still held: 750,000 of budget left admits calls until it is spent.
    for _ in 0..3 {
        let a = key
            .admission(crate::domain::TraceId::new_v7(), now, 300_000)
            .unwrap();
        assert!(db.store.admit(&a).await.unwrap().is_ok());
    }
    let a = key
        .admission(crate::domain::TraceId::new_v7(), now, 300_000)
        .unwrap();
    assert!(db.store.admit(&a).await.unwrap().is_err());
}
