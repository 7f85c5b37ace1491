//! Organization API tokens and `Idempotency-Key` records.

use super::*;
use crate::store::api_tokens::{IDEMPOTENCY_TTL_MS, Idempotent, NewApiToken};

store_test!(api_tokens_are_found_by_hash_and_revoked_per_org, |db| {
    let s = &db.store;
    let (u, o, _) = org_and_endpoint(s).await;
    let keys = crate::crypto::MasterKey::generate().keys();
    let secret = crate::crypto::generate_api_token();
    let t = s
        .create_api_token(&NewApiToken {
            org: o.id,
            created_by: u.id,
            name: "terraform",
            token_hash: &keys.token_hash(&secret),
            display: &crate::crypto::api_token_display(&secret),
            can_write: true,
        })
        .await
        .unwrap();
    let found = s
        .api_token_by_hash(&keys.token_hash(&secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, t);
    assert!(found.can_write && found.revoked_at.is_none() && found.last_used_at.is_none());
    s.touch_api_token(t.id, 1_000_000).await.unwrap();
    // Within the minute: not written again.
    s.touch_api_token(t.id, 1_010_000).await.unwrap();
    assert_eq!(
        s.api_token(t.id).await.unwrap().unwrap().last_used_at,
        Some(1_000_000)
    );
    let beta = s.create_organization("Beta", u.id).await.unwrap();
    assert!(matches!(
        s.revoke_api_token(beta.id, t.id, 5).await,
        Err(StoreError::NotFound)
    ));
    s.revoke_api_token(o.id, t.id, 7).await.unwrap();
    s.revoke_api_token(o.id, t.id, 9).await.unwrap();
    assert_eq!(
        s.api_token(t.id).await.unwrap().unwrap().revoked_at,
        Some(7)
    );
    assert_eq!(s.list_api_tokens(o.id).await.unwrap().len(), 1);
    assert!(s.list_api_tokens(beta.id).await.unwrap().is_empty());
});

store_test!(idempotency_keys_reserve_replay_and_expire, |db| {
    let s = &db.store;
    let (u, o, _) = org_and_endpoint(s).await;
    let t = s
        .create_api_token(&NewApiToken {
            org: o.id,
            created_by: u.id,
            name: "ci",
            token_hash: &[7u8; 32],
            display: "antix_api_x…y",
            can_write: true,
        })
        .await
        .unwrap();
    let now = 10 * IDEMPOTENCY_TTL_MS;
    let r =
        |key: &'static str, hash: &'static [u8], at| s.reserve_idempotency_key(t.id, key, hash, at);
    assert_eq!(r("a", b"h1", now).await.unwrap(), Idempotent::Reserved);
    assert_eq!(r("a", b"h1", now).await.unwrap(), Idempotent::InProgress);
    assert_eq!(r("a", b"h2", now).await.unwrap(), Idempotent::Mismatch);
    s.complete_idempotency_key(t.id, "a", 201, "sealed")
        .await
        .unwrap();
    assert_eq!(
        r("a", b"h1", now + 1).await.unwrap(),
        Idempotent::Replay {
            status: 201,
            response: "sealed".into()
        }
    );
    // A failed request frees its key; a day later every key is free again.
    assert_eq!(r("b", b"h1", now).await.unwrap(), Idempotent::Reserved);
    s.release_idempotency_key(t.id, "b").await.unwrap();
    assert_eq!(r("b", b"h1", now).await.unwrap(), Idempotent::Reserved);
    assert_eq!(
        r("a", b"h9", now + IDEMPOTENCY_TTL_MS + 1).await.unwrap(),
        Idempotent::Reserved
    );
});
