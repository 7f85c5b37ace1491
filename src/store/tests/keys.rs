//! Virtual keys: found by their keyed hash only.

use super::*;

store_test!(virtual_keys_are_found_by_hash_only, |db| {
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
});
