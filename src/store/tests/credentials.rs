//! Provider credentials: sealed to their row and organization.

use super::*;

store_test!(credentials_are_sealed_to_their_row, |db| {
    use crate::domain::Provider;
    use secrecy::{ExposeSecret, SecretString};
    let s = &db.store;
    let (u, o, _) = org_and_endpoint(s).await;
    let beta = s.create_organization("Beta", u.id).await.unwrap();
    let keys = crate::crypto::MasterKey::generate().keys();
    crate::credentials::set(
        s,
        &keys,
        &crate::credentials::CredentialInput::single(
            o.id,
            Provider::OpenAi,
            &SecretString::from("sk-acme-1234"),
            None,
            u.id,
            1,
        ),
    )
    .await
    .unwrap();
    crate::credentials::set(
        s,
        &keys,
        &crate::credentials::CredentialInput::single(
            beta.id,
            Provider::OpenAi,
            &SecretString::from("sk-beta-9876"),
            Some("https://llm.example.com"),
            u.id,
            1,
        ),
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
    let mine = s.credential(o.id, Provider::OpenAi).await.unwrap().unwrap();
    s.put_credential(&crate::store::credentials::NewCredential {
        id: mine.id,
        org: o.id,
        provider: Provider::OpenAi,
        name: "default",
        ciphertext: &theirs.ciphertext,
        key_version: 2,
        last4: "9876",
        base_url: None,
        updated_by: u.id,
        at: 2,
        key_id: keys.key_id(),
        weight: 1,
        rpm: None,
        tpm: None,
        enabled: true,
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
    assert!(s.delete_credential(o.id, mine.id).await.unwrap());
    // Another organization's credential cannot be deleted by id from here.
    assert!(!s.delete_credential(o.id, theirs.id).await.unwrap());
    assert_eq!(s.list_credentials(beta.id).await.unwrap().len(), 1);
});

store_test!(
    several_credentials_per_provider_each_sealed_to_its_own_id,
    |db| {
        use crate::domain::Provider;
        use secrecy::{ExposeSecret, SecretString};
        let s = &db.store;
        let (u, o, _) = org_and_endpoint(s).await;
        let keys = crate::crypto::MasterKey::generate().keys();
        let add = |name: &'static str, secret: &'static str, weight: u32| {
            let keys = &keys;
            async move {
                let secret = SecretString::from(secret);
                let mut input = crate::credentials::CredentialInput::single(
                    o.id,
                    Provider::OpenAi,
                    &secret,
                    None,
                    u.id,
                    1,
                );
                input.name = name;
                input.weight = weight;
                crate::credentials::set(s, keys, &input).await.unwrap()
            }
        };
        let a = add("primary", "sk-primary-aaaa", 3).await;
        let b = add("backup", "sk-backup-bbbb", 1).await;
        assert_ne!(a, b);
        // Replacing by name keeps the id.
        assert_eq!(add("primary", "sk-primary-cccc", 5).await, a);
        let all = crate::credentials::all_cached(s, &keys, o.id, Provider::OpenAi)
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
        let primary = all.iter().find(|c| c.name == "primary").unwrap();
        assert_eq!(
            (primary.secret.expose_secret(), primary.weight),
            ("sk-primary-cccc", 5)
        );
        // Swapping ciphertexts between two credentials of one organization and provider: neither
        // decrypts (each is sealed to its id).
        let rows = s.credentials_for(o.id, Provider::OpenAi).await.unwrap();
        let (ra, rb) = (&rows[0], &rows[1]);
        let swapped = crate::store::credentials::NewCredential {
            id: ra.id,
            org: o.id,
            provider: Provider::OpenAi,
            name: &ra.name,
            ciphertext: &rb.ciphertext,
            key_version: 2,
            last4: "x",
            base_url: None,
            updated_by: u.id,
            at: 3,
            key_id: keys.key_id(),
            weight: 1,
            rpm: None,
            tpm: None,
            enabled: true,
        };
        s.put_credential(&swapped).await.unwrap();
        assert!(
            crate::credentials::all_cached(s, &keys, o.id, Provider::OpenAi)
                .await
                .is_err()
        );
        // Off is kept but not used.
        assert!(s.set_credential_enabled(o.id, b, false).await.unwrap());
        let rows = s.credentials_for(o.id, Provider::OpenAi).await.unwrap();
        assert!(!rows.iter().find(|r| r.id == b).unwrap().enabled);
        // Rests are recorded and cleared.
        s.set_cooldown(b, 5_000, 2, 1_000).await.unwrap();
        assert_eq!(s.cooldowns(&[a, b]).await.unwrap(), vec![(b, 5_000, 2)]);
        s.clear_cooldown(b).await.unwrap();
        assert!(s.cooldowns(&[a, b]).await.unwrap().is_empty());
        // A credential saved again (its key replaced) is no longer resting.
        s.set_cooldown(a, 60_000, 3, 2_000).await.unwrap();
        s.set_cooldown(b, 60_000, 1, 2_000).await.unwrap();
        assert_eq!(add("primary", "sk-primary-dddd", 5).await, a);
        assert_eq!(s.cooldowns(&[a, b]).await.unwrap(), vec![(b, 60_000, 1)]);
    }
);

store_test!(
    master_key_rotation_moves_every_credential_and_keeps_lookups,
    |db| {
        use crate::crypto::MasterKey;
        use crate::domain::Provider;
        use secrecy::SecretString;
        let s = &db.store;
        let (u, o) = admin(s).await;
        let a = MasterKey::generate();
        let keys_a = crate::keyring::load(s, &a).await.unwrap();
        let mut orgs = vec![o.id];
        for i in 0..4 {
            orgs.push(
                s.create_organization(&format!("org {i}"), u.id)
                    .await
                    .unwrap()
                    .id,
            );
        }
        for (i, org) in orgs.iter().enumerate() {
            crate::credentials::set(
                s,
                &keys_a,
                &crate::credentials::CredentialInput::single(
                    *org,
                    Provider::OpenAi,
                    &SecretString::from(format!("sk-secret-{i}-canary")),
                    None,
                    u.id,
                    1,
                ),
            )
            .await
            .unwrap();
        }
        let issued =
            crate::virtual_keys::issue(s, &keys_a, o.id, u.id, "k", None, &Default::default())
                .await
                .unwrap();
        use secrecy::ExposeSecret;
        let vk = issued.secret.expose_secret().to_owned();
        let read_all = |keys: std::sync::Arc<crate::crypto::Keys>| {
            let orgs = orgs.clone();
            async move {
                let mut out = Vec::new();
                for org in orgs {
                    let c = crate::credentials::get(s, &keys, org, Provider::OpenAi)
                        .await
                        .unwrap()
                        .unwrap();
                    out.push(c.secret.expose_secret().to_owned());
                }
                out
            }
        };
        let before = read_all(std::sync::Arc::new(
            crate::keyring::load(s, &a).await.unwrap(),
        ))
        .await;

        // Interrupted after two rows.
        let b = MasterKey::generate();
        let r = crate::keyring::rotate(s, &keys_a, &b, Some(2))
            .await
            .unwrap();
        assert_eq!((r.moved, r.remaining), (2, 3));
        // A server still on the old key reads everything (it learns the new key from the store).
        let still_a = std::sync::Arc::new(crate::keyring::load(s, &a).await.unwrap());
        assert_eq!(read_all(still_a.clone()).await, before);
        // A server started with the new key before the rotation is done is told so.
        let early = crate::keyring::load(s, &b).await.unwrap_err();
        assert!(early.to_string().contains("rotate-master-key"), "{early}");

        // Resumed: the rest moves, and the lookup secrets follow.
        let r = crate::keyring::rotate(s, &keys_a, &b, None).await.unwrap();
        assert_eq!((r.moved, r.remaining), (3, 0));
        assert!(
            s.credentials_not_on(b.keys().key_id(), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let keys_b = std::sync::Arc::new(crate::keyring::load(s, &b).await.unwrap());
        assert_eq!(read_all(keys_b.clone()).await, before);
        // Virtual keys, hashed under the instance's pepper, are still found.
        assert_eq!(keys_b.token_hash(&vk), keys_a.token_hash(&vk));
        assert!(
            s.virtual_key_by_hash(&keys_b.token_hash(&vk))
                .await
                .unwrap()
                .is_some()
        );
        // The old key alone no longer decrypts anything, but a server still on it keeps working.
        let moved = s.credential(o.id, Provider::OpenAi).await.unwrap().unwrap();
        let aad = crate::keyring::aad_of(&moved).unwrap();
        assert!(keys_a.decrypt(&moved.ciphertext, &aad).is_err());
        let late_a = std::sync::Arc::new(crate::keyring::load(s, &a).await.unwrap());
        assert_eq!(read_all(late_a).await, before);
        // Running it again changes nothing.
        let r = crate::keyring::rotate(s, &keys_a, &b, None).await.unwrap();
        assert_eq!((r.moved, r.remaining), (0, 0));

        // A credential saved on a server still on the old key is encrypted with the new one,
        // so the servers already on it read it.
        crate::credentials::set(
            s,
            &still_a,
            &crate::credentials::CredentialInput::single(
                o.id,
                Provider::Anthropic,
                &SecretString::from("sk-ant-late-canary".to_owned()),
                None,
                u.id,
                2,
            ),
        )
        .await
        .unwrap();
        let late = s
            .credential(o.id, Provider::Anthropic)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(late.key_id.as_deref(), Some(keys_b.key_id()));
        let read = crate::credentials::get(s, &keys_b, o.id, Provider::Anthropic)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.secret.expose_secret(), "sk-ant-late-canary");

        // Rotations chain: a server on the first key follows A to B to C.
        let c = MasterKey::generate();
        let r = crate::keyring::rotate(s, &keys_b, &c, Some(1))
            .await
            .unwrap();
        assert_eq!(r.moved, 1);
        let on_a = std::sync::Arc::new(crate::keyring::load(s, &a).await.unwrap());
        assert_eq!(read_all(on_a).await, before);
        // Nothing is forgotten while the rotation is unfinished.
        assert_eq!(crate::keyring::forget_retired(s, &keys_b).await.unwrap(), 0);
        crate::keyring::rotate(s, &keys_b, &c, None).await.unwrap();
        let keys_c = std::sync::Arc::new(crate::keyring::load(s, &c).await.unwrap());
        assert_eq!(read_all(keys_c.clone()).await, before);
        // Done everywhere: the wrapped copies go, and the old keys open nothing any more.
        assert_eq!(crate::keyring::forget_retired(s, &keys_b).await.unwrap(), 0);
        assert_eq!(crate::keyring::forget_retired(s, &keys_c).await.unwrap(), 2);
        assert!(s.keyring_entries().await.unwrap().is_empty());
        assert!(crate::keyring::load(s, &a).await.is_err());
        assert!(crate::keyring::load(s, &b).await.is_err());
        assert_eq!(read_all(keys_c).await, before);
    }
);
