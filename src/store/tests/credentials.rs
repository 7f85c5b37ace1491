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
});
