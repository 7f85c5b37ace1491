//! The store suite, written once and run on both backends: always on SQLite, and on Postgres when
//! `TEST_POSTGRES_URL` is set (each test in a fresh schema). `scripts/test.sh` reports how many
//! ran on each.

use super::testing::{TestDb, postgres_required};
use super::{Store, StoreError};
use crate::domain::{Role, Scope};
use crate::store::accounts::{FirstRunError, NewAdmin};
use crate::store::endpoints::{CreateEndpointError, NewEndpoint};

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

// ---- Observability reads: search, filters, pages, totals, sessions ----

use crate::store::observe::{Cursor, SearchError, TraceFilter};

async fn second_endpoint(
    s: &Store,
    o: &crate::domain::Organization,
    u: &crate::domain::User,
) -> crate::domain::Endpoint {
    s.create_endpoint(&NewEndpoint {
        org: o.id,
        owner: u.id,
        scope: Scope::OrgShared,
        name: "other",
    })
    .await
    .unwrap()
}

fn draft_with(
    o: crate::domain::OrgId,
    e: crate::domain::EndpointId,
    request: &str,
    response: &str,
) -> crate::recorder::TraceDraft {
    let mut d = super::testing::sample_draft(o, e);
    d.request_body =
        crate::gateway::body::Capture::of(&bytes::Bytes::from(request.to_owned()), 4 << 20);
    d.response_body =
        crate::gateway::body::Capture::of(&bytes::Bytes::from(response.to_owned()), 4 << 20);
    d
}

fn chat(text: &str) -> String {
    serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
        .to_string()
}

fn reply(text: &str) -> String {
    serde_json::json!({"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3}}).to_string()
}

async fn search_ids(
    s: &Store,
    e: crate::domain::EndpointId,
    q: &str,
) -> Vec<crate::domain::TraceId> {
    let f = TraceFilter {
        search: Some(q.into()),
        ..Default::default()
    };
    s.list_traces(e, &f, None, 100)
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|r| r.id)
        .collect()
}

async fn search_finds_substrings_in_bodies(db: &TestDb) {
    let s = &db.store;
    let (u, o, e) = org_and_endpoint(s).await;
    let other = second_endpoint(s, &o, &u).await;
    // A 200 KB agent transcript with the needle near its end, in a JSON-escaped string.
    let filler: String = (0..9000)
        .map(|i| format!("turn {i} reads a file. "))
        .collect();
    assert!(filler.len() > 200_000);
    let big = chat(&format!(
        "{filler} then \"Zebra-Quokka\" said: 50% of a_b\nOK"
    ));
    let drafts = vec![
        draft_with(o.id, e.id, &big, &reply("done")),
        draft_with(
            o.id,
            e.id,
            &chat("plain question"),
            &reply("the answer is Marmalade"),
        ),
        draft_with(o.id, e.id, &chat("nothing here"), &reply("nothing")),
        draft_with(o.id, other.id, &chat("zebra-quokka elsewhere"), &reply("x")),
        draft_with(
            o.id,
            e.id,
            &serde_json::json!({"model": "gpt-4o", "api_key": "sk-secretvalue123", "messages": []})
                .to_string(),
            &reply("y"),
        ),
    ];
    let ids: Vec<_> = drafts.iter().map(|d| d.id).collect();
    assert_eq!(crate::recorder::write_now(s, drafts).await.unwrap(), 5);

    // Case-insensitive, through JSON escaping, scoped to the endpoint.
    assert_eq!(search_ids(s, e.id, "zebra-QUOKKA").await, vec![ids[0]]);
    assert_eq!(
        search_ids(s, e.id, "\"Zebra-Quokka\" said").await,
        vec![ids[0]]
    );
    assert_eq!(search_ids(s, other.id, "Zebra-Quokka").await, vec![ids[3]]);
    // Response text is searched too.
    assert_eq!(search_ids(s, e.id, "marmalade").await, vec![ids[1]]);
    // Query syntax is literal text: LIKE wildcards, FTS operators, quotes.
    assert_eq!(search_ids(s, e.id, "50% of a_b").await, vec![ids[0]]);
    assert!(search_ids(s, e.id, "5_%").await.is_empty());
    assert!(search_ids(s, e.id, "zebra OR nothing").await.is_empty());
    assert!(search_ids(s, e.id, "NEAR(zebra quokka)").await.is_empty());
    // Punctuation alone: matched literally on SQLite; refused at once on Postgres, whose
    // trigram index has nothing to look up (it would scan every body).
    let f = TraceFilter {
        search: Some("\"\"\"".into()),
        ..Default::default()
    };
    match s.list_traces(e.id, &f, None, 100).await {
        Ok(page) => {
            assert!(db.schema.is_none());
            assert!(page.rows.is_empty());
        }
        Err(err) => {
            assert!(db.schema.is_some());
            assert!(matches!(err, SearchError::NoWord), "{err}");
        }
    }
    // Credential fields are redacted in storage, so not searchable either.
    assert!(search_ids(s, e.id, "secretvalue").await.is_empty());
    // Fewer than three characters cannot use the trigram index: a clear error, not a scan.
    let short = TraceFilter {
        search: Some("ab".into()),
        ..Default::default()
    };
    assert!(matches!(
        s.list_traces(e.id, &short, None, 10).await,
        Err(SearchError::TooShort)
    ));
    // Search combines with filters.
    let f = TraceFilter {
        search: Some("zebra".into()),
        model: Some("claude".into()),
        ..Default::default()
    };
    assert!(
        s.list_traces(e.id, &f, None, 10)
            .await
            .unwrap()
            .rows
            .is_empty()
    );

    // Retention removes traces from the index too.
    assert_eq!(
        s.delete_traces_before(crate::domain::now_ms() + 1000, 100)
            .await
            .unwrap(),
        5
    );
    assert!(search_ids(s, e.id, "zebra").await.is_empty());
}

async fn search_results_page_without_gaps(db: &TestDb) {
    let s = &db.store;
    let (_, o, e) = org_and_endpoint(s).await;
    let mut all = Vec::new();
    for batch in 0..3 {
        let drafts: Vec<_> = (0..40)
            .map(|i| {
                let word = if i % 2 == 0 { "needle" } else { "hay" };
                draft_with(
                    o.id,
                    e.id,
                    &chat(&format!("{word} {batch} {i}")),
                    &reply("ok"),
                )
            })
            .collect();
        all.extend(
            drafts
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == 0)
                .map(|(_, d)| d.id),
        );
        crate::recorder::write_now(s, drafts).await.unwrap();
    }
    let f = TraceFilter {
        search: Some("needle".into()),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.list_traces(e.id, &f, after, 7).await.unwrap();
        assert!(page.rows.len() <= 7);
        seen.extend(page.rows.iter().map(|r| r.id));
        match page.next {
            Some(c) => after = Some(Cursor::decode(&c.encode()).unwrap()),
            None => break,
        }
    }
    let mut want = all.clone();
    want.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(got, want, "every match exactly once");
    assert_eq!(seen.len(), 60);
}

async fn trace_list_filters_and_pages(db: &TestDb) {
    let s = &db.store;
    let (u, o, e) = org_and_endpoint(s).await;
    let other = second_endpoint(s, &o, &u).await;
    let key = crate::domain::VirtualKeyId::new_v4();
    let base = 1_700_000_000_000;
    let mut records = Vec::new();
    for i in 0..300i64 {
        let mut r = super::testing::sample_record(o.id, e.id, base + (i / 3) * 1000);
        r.model = Some(["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro"][(i % 3) as usize].into());
        if i % 5 == 0 {
            r.auth_mode = "virtual_key".into();
            r.virtual_key_id = Some(key);
        }
        if i % 7 == 0 {
            r.status_code = 429;
        }
        if i % 11 == 0 {
            r.outcome = crate::store::traces::Outcome::ClientDisconnected;
        }
        records.push(r);
    }
    records.push(super::testing::sample_record(o.id, other.id, base + 5));
    s.insert_traces(&records).await.unwrap();
    let mine: Vec<_> = records.iter().filter(|r| r.endpoint_id == e.id).collect();

    type Keep = Box<dyn Fn(&&crate::store::traces::TraceRecord) -> bool>;
    let cases: Vec<(TraceFilter, Keep)> = vec![
        (TraceFilter::default(), Box::new(|_| true)),
        (
            TraceFilter {
                model: Some("claude-sonnet-4-5".into()),
                ..Default::default()
            },
            Box::new(|r| r.model.as_deref() == Some("claude-sonnet-4-5")),
        ),
        (
            TraceFilter {
                auth_mode: Some("virtual_key".into()),
                ..Default::default()
            },
            Box::new(|r| r.auth_mode == "virtual_key"),
        ),
        (
            TraceFilter {
                key: Some(key),
                ..Default::default()
            },
            Box::new(move |r| r.virtual_key_id == Some(key)),
        ),
        (
            TraceFilter {
                errors: Some(true),
                ..Default::default()
            },
            Box::new(|r| r.status_code >= 400 || r.outcome != crate::store::traces::Outcome::Ok),
        ),
        (
            TraceFilter {
                errors: Some(false),
                ..Default::default()
            },
            Box::new(|r| r.status_code < 400 && r.outcome == crate::store::traces::Outcome::Ok),
        ),
        (
            TraceFilter {
                from: Some(base + 10_000),
                to: Some(base + 20_000),
                model: Some("gpt-4o".into()),
                ..Default::default()
            },
            Box::new(move |r| {
                r.started_at >= base + 10_000
                    && r.started_at < base + 20_000
                    && r.model.as_deref() == Some("gpt-4o")
            }),
        ),
    ];
    for (filter, keep) in cases {
        let mut want: Vec<_> = mine
            .iter()
            .filter(|r| keep(r))
            .map(|r| (r.started_at, r.id))
            .collect();
        want.sort_by(|a, b| b.cmp(a));
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = s.list_traces(e.id, &filter, after, 13).await.unwrap();
            got.extend(page.rows.iter().map(|r| (r.started_at, r.id)));
            match page.next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(got, want, "{filter:?}");
    }
}

async fn overview_totals_match_traces(db: &TestDb) {
    let s = &db.store;
    let (_, o, e) = org_and_endpoint(s).await;
    let day = 86_400_000;
    let base = 1_700_006_400_000 / day * day;
    let key = crate::domain::VirtualKeyId::new_v4();
    let mut records = Vec::new();
    for i in 0..90i64 {
        let mut r = super::testing::sample_record(o.id, e.id, base + (i % 3) * day + i);
        r.usage.input_tokens = Some(100 + i as u64);
        r.usage.output_tokens = Some(i as u64);
        r.cost_nanos = Some(1000 * i);
        r.cost_estimated = i % 2 == 0;
        r.model = Some(if i % 4 == 0 { "gpt-4o-mini" } else { "gpt-4o" }.into());
        if i % 3 == 0 {
            r.virtual_key_id = Some(key);
        }
        records.push(r);
    }
    s.insert_traces(&records).await.unwrap();
    let days = s.daily_totals(e.id, base).await.unwrap();
    assert_eq!(days.len(), 3);
    assert_eq!(
        days.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
        vec![base, base + day, base + 2 * day]
    );
    let sum = |f: &dyn Fn(&crate::store::traces::DailyTotals) -> i64| {
        days.iter().map(|(_, t)| f(t)).sum::<i64>()
    };
    assert_eq!(sum(&|t| t.requests), 90);
    assert_eq!(
        sum(&|t| t.input_tokens),
        records
            .iter()
            .map(|r| r.usage.input_tokens.unwrap() as i64)
            .sum::<i64>()
    );
    assert_eq!(sum(&|t| t.output_tokens), (0..90).sum::<i64>());
    assert_eq!(
        sum(&|t| t.cost_billed_nanos + t.cost_estimated_nanos),
        records.iter().map(|r| r.cost_nanos.unwrap()).sum::<i64>()
    );
    assert_eq!(
        sum(&|t| t.cost_estimated_nanos),
        (0..90)
            .filter(|i| i % 2 == 0)
            .map(|i| 1000 * i)
            .sum::<i64>()
    );
    // Later days only.
    assert_eq!(s.daily_totals(e.id, base + day).await.unwrap().len(), 2);

    let models = s
        .breakdown(e.id, base, crate::store::observe::Dimension::Model)
        .await
        .unwrap();
    assert_eq!(models[0].label, "gpt-4o");
    assert_eq!(models[0].totals.requests, 67);
    assert_eq!(models[1].totals.requests, 23);
    let keys = s
        .breakdown(e.id, base, crate::store::observe::Dimension::Key)
        .await
        .unwrap();
    let by_key = keys
        .iter()
        .find(|b| b.label == key.0.simple().to_string())
        .expect("key row");
    assert_eq!(by_key.totals.requests, 30);
    let modes = s
        .breakdown(e.id, base, crate::store::observe::Dimension::AuthMode)
        .await
        .unwrap();
    assert_eq!(modes.len(), 1);
    assert_eq!(
        (modes[0].label.as_str(), modes[0].totals.requests),
        ("byok", 90)
    );
    assert_eq!(
        s.endpoint_models(e.id).await.unwrap(),
        vec!["gpt-4o".to_string(), "gpt-4o-mini".to_string()]
    );
}

async fn sessions_group_agent_calls(db: &TestDb) {
    let s = &db.store;
    let (_, o, e) = org_and_endpoint(s).await;
    assert!(!s.has_sessions(e.id).await.unwrap());
    let base = 1_700_000_000_000;
    let offset = |key: &str| match key {
        "cc:abc:222" => 20,
        _ => key.len() as i64,
    };
    let mut records = Vec::new();
    for (key, parent, n, preview) in [
        ("cc:abc:111", Some("cc:abc"), 5, "Refactor the parser"),
        // The sub-agent starts later than its parent session (the
        // related list is in start order).
        ("cc:abc:222", Some("cc:abc"), 2, "Sub-agent: find usages"),
        ("fp:333", None, 3, "Write a haiku about Rust"),
    ] {
        for i in 0..n {
            let mut r = super::testing::sample_record(o.id, e.id, base + i * 10_000 + offset(key));
            r.session_key = Some(key.into());
            r.session_parent = parent.map(Into::into);
            r.session_preview = Some(preview.into());
            r.latency_us = 3_000_000;
            if i == 1 {
                r.status_code = 500;
            }
            records.push(r);
        }
    }
    // Two batches, as the recorder would write them: totals accumulate.
    s.insert_traces(&records[..4]).await.unwrap();
    s.insert_traces(&records[4..]).await.unwrap();
    assert!(s.has_sessions(e.id).await.unwrap());
    let all = s.list_sessions(e.id, None, None, 50).await.unwrap();
    assert_eq!(all.len(), 3);
    let main = all.iter().find(|r| r.session_key == "cc:abc:111").unwrap();
    assert_eq!(main.calls, 5);
    assert_eq!(main.errors, 1);
    assert_eq!(main.parent.as_deref(), Some("cc:abc"));
    assert_eq!(main.first_at, base + 10);
    assert_eq!(main.last_end_at, base + 40_000 + 10 + 3_000);
    assert_eq!(main.input_tokens, 50);
    assert_eq!(main.preview, "Refactor the parser");
    assert_eq!(
        all[0].session_key, "cc:abc:111",
        "most recently active first"
    );
    let found = s
        .list_sessions(e.id, Some("HAIKU"), None, 50)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].session_key, "fp:333");
    assert!(
        s.list_sessions(e.id, Some("100%"), None, 50)
            .await
            .unwrap()
            .is_empty()
    );
    let calls = s.session_traces(e.id, "cc:abc:111", 100).await.unwrap();
    assert_eq!(calls.len(), 5);
    assert!(calls.windows(2).all(|w| w[0].started_at <= w[1].started_at));
    assert_eq!(s.session(e.id, "fp:333").await.unwrap().unwrap().calls, 3);
    assert!(s.session(e.id, "nope").await.unwrap().is_none());
    let related = s.related_sessions(e.id, "cc:abc", 10).await.unwrap();
    assert_eq!(
        related
            .iter()
            .map(|r| r.session_key.as_str())
            .collect::<Vec<_>>(),
        vec!["cc:abc:111", "cc:abc:222"]
    );
}

async fn slow_queries_are_cut_off(db: &TestDb) {
    let s = &db.store;
    let t = std::time::Instant::now();
    let r = s
        .slow_query_within(std::time::Duration::from_millis(100))
        .await;
    assert!(matches!(r, Err(SearchError::TooSlow)), "{r:?}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        t.elapsed()
    );
    // The connections went back to the pool without the budget: later queries run normally.
    for _ in 0..20 {
        s.is_initialized().await.unwrap();
    }
}
