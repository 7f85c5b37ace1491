//! Members and invitations through the API: everyone in the organization is listed, only a
//! write token changes anything, an organization always keeps an admin, and nothing of another
//! organization can be seen or touched.

use antix::domain::Role;
use antix::manage::{Actor, ManageError};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Api, ids, token, world};

#[tokio::test]
async fn members_and_invitations_keep_an_admin_and_stay_in_their_org() {
    let w = world().await;
    let s = &w.app.services;
    let acme = w.ada.1.org.id;
    let hash = antix::crypto::hash_password("a long enough password").unwrap();
    let mia = s
        .store
        .create_user("mia@example.com", "Mia", &hash)
        .await
        .unwrap();
    s.store
        .add_membership(acme, mia.id, Role::Member)
        .await
        .unwrap();
    let ada = Api {
        app: &w.app,
        token: token(&w, &w.ada, true).await,
    };
    let ada_ro = Api {
        app: &w.app,
        token: token(&w, &w.ada, false).await,
    };
    let eve = Api {
        app: &w.app,
        token: token(&w, &w.eve, true).await,
    };

    // Everyone of the organization, in the order they joined; nobody of another.
    let (st, list) = ada_ro.get("/members").await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let emails: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["ada@example.com", "bob@example.com", "mia@example.com"]
    );
    assert_eq!(list["data"][2]["role"], "member");
    let (_, page) = ada_ro.get("/members?limit=2").await;
    assert_eq!(ids(&page).len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = ada_ro
        .get(&format!("/members?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(ids(&rest), [mia.id.0.to_string()]);
    assert_eq!(rest["next_cursor"], serde_json::Value::Null);
    let (_, theirs) = eve.get("/members").await;
    assert_eq!(ids(&theirs), [w.eve.0.id.0.to_string()]);
    let mia_path = format!("/members/{}", mia.id);
    let (st, _) = eve.get(&mia_path).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, one) = ada_ro.get(&mia_path).await;
    assert_eq!((st, one["name"].as_str()), (StatusCode::OK, Some("Mia")));

    // A read-only token changes nothing.
    let (st, e) = ada_ro.patch(&mia_path, json!({"role": "admin"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
    let (st, _) = ada_ro
        .post("/invitations", json!({"email": "zoe@example.com"}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Roles: validated, applied, and never the last admin away.
    let (st, e) = ada.patch(&mia_path, json!({"role": "owner"})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["fields"][0]["field"], "role");
    let (st, m) = ada.patch(&mia_path, json!({"role": "admin"})).await;
    assert_eq!((st, m["role"].as_str()), (StatusCode::OK, Some("admin")));
    let (st, _) = eve.patch(&mia_path, json!({"role": "member"})).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "another organization's member");
    let (st, _) = eve
        .patch(
            &format!("/members/{}", w.eve.0.id),
            json!({"role": "member"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "the last admin stays an admin");
    let (st, _, _) = eve
        .send(
            Method::DELETE,
            &format!("/members/{}", w.eve.0.id),
            None,
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "the last admin stays");

    // Invitations: the link works once made, shows in the list, and can be revoked.
    let (st, e) = ada
        .post(
            "/invitations",
            json!({"email": "not an email", "role": "boss"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let mut fields: Vec<&str> = e["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["email", "role"], "every bad field at once");
    let (st, e) = ada
        .post("/invitations", json!({"email": "BOB@example.com"}))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["fields"][0]["field"], "email");
    let (st, inv) = ada
        .post(
            "/invitations",
            json!({"email": "Zoe@Example.com", "role": "admin"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{inv}");
    assert_eq!(inv["invitation"]["email"], "zoe@example.com");
    assert_eq!(inv["invitation"]["role"], "admin");
    let url = inv["url"].as_str().unwrap();
    let secret = url.rsplit_once("/invite/").unwrap().1;
    let stored = s
        .store
        .invite_by_hash(&s.keys.token_hash(secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.email, "zoe@example.com");
    let inv_id = inv["invitation"]["id"].as_str().unwrap().to_owned();
    let (_, pending) = ada_ro.get("/invitations").await;
    assert_eq!(ids(&pending), std::slice::from_ref(&inv_id));
    let (_, none) = eve.get("/invitations").await;
    assert!(ids(&none).is_empty());
    let inv_path = format!("/invitations/{inv_id}");
    let (st, _, _) = eve.send(Method::DELETE, &inv_path, None, &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let res = w
        .app
        .client
        .delete(w.app.url(&format!("/api/v1{inv_path}")))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(
        s.store
            .invite_by_hash(&s.keys.token_hash(secret))
            .await
            .unwrap()
            .is_none(),
        "a revoked link opens nothing"
    );
    let (st, _, _) = ada.send(Method::DELETE, &inv_path, None, &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Removing a member revokes the keys they made here.
    let key = antix::virtual_keys::issue(
        &s.store,
        &s.keys,
        acme,
        mia.id,
        "mia's",
        None,
        &antix::domain::KeyLimits::default(),
    )
    .await
    .unwrap();
    let res = w
        .app
        .client
        .delete(w.app.url(&format!("/api/v1{mia_path}")))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (st, _) = ada.get(&mia_path).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let k = s.store.virtual_key(key.key.id).await.unwrap().unwrap();
    assert!(
        k.revoked_at.is_some(),
        "a removed member's keys are revoked"
    );

    // The same rules hold for a member acting in the portal.
    let bob_m = s.store.memberships(w.bob.0.id).await.unwrap().remove(0);
    s.store
        .set_role(acme, w.bob.0.id, Role::Member)
        .await
        .unwrap();
    let bob_member = Actor::portal(
        w.bob.0.clone(),
        antix::domain::Membership {
            role: Role::Member,
            ..bob_m
        },
    );
    let r =
        antix::manage::members::invite(&s.store, &s.keys, &bob_member, "x@example.com", "member")
            .await;
    assert!(matches!(r, Err(ManageError::Forbidden(_))), "{:?}", r.err());
    assert!(
        antix::manage::members::list(&s.store, &bob_member)
            .await
            .unwrap()
            .len()
            == 2,
        "members see who is in their organization"
    );
}
