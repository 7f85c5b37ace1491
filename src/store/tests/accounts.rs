//! Accounts: the first administrator, users, portal sessions, memberships and roles, login
//! throttling counters, and how an unreachable database is reported.

use super::*;

store_test!(first_admin_is_created_once, |db| {
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
});

store_test!(first_admin_race_has_one_winner, |db| {
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
});

store_test!(duplicate_email_is_a_conflict, |db| {
    let s = &db.store;
    admin(s).await;
    let err = s
        .create_user("ada@example.com", "Other Ada", "x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
});

store_test!(sessions_expire_and_end, |db| {
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
});

store_test!(memberships_and_roles, |db| {
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
});

store_test!(login_failures_are_counted, |db| {
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
});

store_test!(unreachable_database_is_unavailable_not_missing, |db| {
    let s = db.reopen().await.unwrap();
    s.close().await;
    let err = s.is_initialized().await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
});
