//! Endpoints: who sees which, the per-member limit on personal endpoints (also under
//! concurrency), rename and archive.

use super::*;

store_test!(endpoints_are_scoped_to_their_viewers, |db| {
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
});

store_test!(personal_endpoint_limit_is_enforced, |db| {
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
});

store_test!(personal_endpoint_limit_holds_under_concurrency, |db| {
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
});

store_test!(endpoints_rename_and_archive, |db| {
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
});

store_test!(
    fallbacks_are_stored_in_order_and_seen_by_the_gateway_cache,
    |db| {
        let s = &db.store;
        let (ada, acme) = admin(s).await;
        let e = s
            .create_endpoint(&NewEndpoint {
                org: acme.id,
                owner: ada.id,
                scope: Scope::OrgShared,
                name: "routed",
            })
            .await
            .unwrap();
        assert!(e.fallbacks.is_empty());
        // Loaded into the gateway's cache before the change…
        assert!(
            s.endpoint_cached(e.id)
                .await
                .unwrap()
                .unwrap()
                .fallbacks
                .is_empty()
        );
        let list = crate::domain::Fallback::parse_list(
            "anthropic/claude-haiku-4-5#spare, gemini/gemini-2.5-flash",
        )
        .unwrap();
        s.set_endpoint_fallbacks(e.id, &list).await.unwrap();
        assert_eq!(s.endpoint(e.id).await.unwrap().unwrap().fallbacks, list);
        // …and the write itself refreshes it.
        assert_eq!(
            s.endpoint_cached(e.id).await.unwrap().unwrap().fallbacks,
            list
        );
        s.set_endpoint_fallbacks(e.id, &[]).await.unwrap();
        assert!(
            s.endpoint(e.id)
                .await
                .unwrap()
                .unwrap()
                .fallbacks
                .is_empty()
        );
        assert!(matches!(
            s.set_endpoint_fallbacks(crate::domain::EndpointId::new_v4(), &list)
                .await,
            Err(StoreError::NotFound)
        ));
    }
);

store_test!(
    a_duplicate_is_a_new_shared_endpoint_that_behaves_like_the_original,
    |db| {
        let s = &db.store;
        let (ada, acme) = admin(s).await;
        let personal = s
            .create_endpoint(&NewEndpoint {
                org: acme.id,
                owner: ada.id,
                scope: Scope::Personal,
                name: "ada's agent",
            })
            .await
            .unwrap();
        s.set_endpoint_passthrough(personal.id, false)
            .await
            .unwrap();
        let fallbacks = crate::domain::Fallback::parse_list("anthropic/claude-haiku-4-5").unwrap();
        s.set_endpoint_fallbacks(personal.id, &fallbacks)
            .await
            .unwrap();
        let original = s.endpoint(personal.id).await.unwrap().unwrap();
        let copy = s
            .duplicate_endpoint_as_shared(&original, ada.id)
            .await
            .unwrap();
        assert_ne!(copy.id, original.id);
        let stored = s.endpoint(copy.id).await.unwrap().unwrap();
        assert_eq!(stored, copy);
        assert_eq!(stored.scope, Scope::OrgShared);
        assert_eq!(stored.name, "ada's agent");
        assert!(!stored.passthrough);
        assert_eq!(stored.fallbacks, fallbacks);
        // The original is as it was.
        assert_eq!(s.endpoint(personal.id).await.unwrap().unwrap(), original);
    }
);
