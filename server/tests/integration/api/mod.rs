//! The management REST API (`/api/v1`): tokens (who they act as, read-only vs read-write,
//! revoked, their creator demoted), every resource against another organization's ids, the
//! error shape, cursor pages, `Idempotency-Key`, and the OpenAPI document.

use antix::domain::{Membership, Role, User};
use antix::manage::Actor;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::common::{TestApp, two_orgs};

mod credentials;
mod keys;
mod members;
mod sessions;

struct World {
    app: TestApp,
    ada: (User, Membership),
    bob: (User, Membership),
    eve: (User, Membership),
    acme_shared: uuid::Uuid,
    ada_personal: uuid::Uuid,
    evil_shared: uuid::Uuid,
}

async fn membership(app: &TestApp, user: &User) -> Membership {
    app.services
        .store
        .memberships(user.id)
        .await
        .unwrap()
        .remove(0)
}

async fn world() -> World {
    let t = two_orgs(Role::Admin).await;
    let (ma, mb, me) = (
        membership(&t.app, &t.ada).await,
        membership(&t.app, &t.bob).await,
        membership(&t.app, &t.eve).await,
    );
    World {
        ada: (t.ada, ma),
        bob: (t.bob, mb),
        eve: (t.eve, me),
        acme_shared: t.acme_shared,
        ada_personal: t.ada_personal,
        evil_shared: t.evil_shared,
        app: t.app,
    }
}

async fn token(w: &World, who: &(User, Membership), write: bool) -> String {
    let actor = Actor::portal(who.0.clone(), who.1.clone());
    antix::manage::tokens::issue(
        &w.app.services.store,
        &w.app.services.keys,
        &actor,
        "ci",
        write,
    )
    .await
    .unwrap()
    .secret
    .expose_secret()
    .to_owned()
}

struct Api<'a> {
    app: &'a TestApp,
    token: String,
}

impl Api<'_> {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(&format!("/api/v1{path}")))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let h = res.headers().clone();
        let text = res.text().await.unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{path}: not JSON ({status}): {text}"));
        (status, v, h)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.send(reqwest::Method::GET, path, None, &[]).await;
        (s, v)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .send(reqwest::Method::POST, path, Some(body), &[])
            .await;
        (s, v)
    }

    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .send(reqwest::Method::PATCH, path, Some(body), &[])
            .await;
        (s, v)
    }
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn tokens_authenticate_and_act_with_their_creators_rights_in_their_org_only() {
    let w = world().await;
    // No token, a made-up one, a cookie instead: 401 in the one error shape.
    for auth in [None, Some("Bearer antix_api_nope"), Some("Basic YTpi")] {
        let mut req = w.app.client.get(w.app.url("/api/v1/endpoints"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(res.headers().contains_key("www-authenticate"));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["type"], "unauthenticated");
    }

    let read = Api {
        app: &w.app,
        token: token(&w, &w.ada, false).await,
    };
    let write = Api {
        app: &w.app,
        token: token(&w, &w.ada, true).await,
    };
    let eve = Api {
        app: &w.app,
        token: token(&w, &w.eve, true).await,
    };

    // A token sees what its creator sees in its organization, nothing of another's.
    let (st, list) = read.get("/endpoints").await;
    assert_eq!(st, StatusCode::OK);
    let mut seen = ids(&list);
    seen.sort();
    let mut want = vec![w.acme_shared.to_string(), w.ada_personal.to_string()];
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(
        list["data"][0]["urls"]["openai"],
        format!(
            "http://127.0.0.1:3000/v1/{}/openai",
            list["data"][0]["id"].as_str().unwrap()
        )
    );
    let (st, body) = eve.get(&format!("/endpoints/{}", w.acme_shared)).await;
    assert_eq!(
        (st, body["error"]["type"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (st, _) = read.get(&format!("/endpoints/{}", w.evil_shared)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    for path in [
        format!("/endpoints/{}/traces", w.evil_shared),
        format!("/endpoints/{}/usage", w.evil_shared),
        format!(
            "/endpoints/{}/traces/{}",
            w.acme_shared,
            uuid::Uuid::new_v4()
        ),
        "/endpoints/not-a-uuid".into(),
        "/no-such-thing".into(),
    ] {
        let (st, body) = read.get(&path).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {body}");
    }

    // Read-only: every change is refused, nothing is created.
    let (st, body) = read.post("/endpoints", json!({"name": "x"})).await;
    assert_eq!(
        (st, body["error"]["type"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (st, _) = read
        .patch(
            &format!("/endpoints/{}", w.acme_shared),
            json!({"name": "y"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = read.post("/keys", json!({"name": "k"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(ids(&read.get("/endpoints").await.1).len(), 2);

    // Read-write: create (org-shared by default), rename, duplicate the personal one, archive.
    let (st, created) = write
        .post("/endpoints", json!({"name": "  from ci "}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    assert_eq!(created["scope"], "org_shared");
    assert_eq!(created["name"], "from ci");
    let id = created["id"].as_str().unwrap().to_owned();
    let (st, renamed) = write
        .patch(&format!("/endpoints/{id}"), json!({"name": "renamed"}))
        .await;
    assert_eq!(
        (st, renamed["name"].as_str()),
        (StatusCode::OK, Some("renamed"))
    );
    let (st, copy) = write
        .post(
            &format!("/endpoints/{}/duplicate", w.ada_personal),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{copy}");
    assert_eq!(copy["scope"], "org_shared");
    assert_ne!(copy["id"], json!(w.ada_personal.to_string()));
    let (st, _) = write
        .post(
            &format!("/endpoints/{}/duplicate", w.acme_shared),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, archived) = write
        .post(&format!("/endpoints/{id}/archive"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(archived["archived_at"].is_string());
    let (st, body) = write
        .patch(&format!("/endpoints/{id}"), json!({"name": "again"}))
        .await;
    assert_eq!(
        (st, body["error"]["type"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    // The archived endpoint's URL is gone for the proxy too.
    let res = w
        .app
        .client
        .post(w.app.url(&format!("/v1/{id}/openai/chat/completions")))
        .bearer_auth("sk-test")
        .json(&json!({"model": "gpt-4o-mini", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GONE);
    // Eve's token cannot touch Acme's endpoints.
    let (st, _) = eve
        .post(&format!("/endpoints/{}/archive", w.acme_shared), json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Bad input: field messages, never a 5xx.
    let (st, body) = write.post("/endpoints", json!({"name": ""})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["type"], "invalid_request");
    assert_eq!(body["error"]["fields"][0]["field"], "name");
    let (st, body) = write
        .post("/endpoints", json!({"name": "x", "scope": "galactic"}))
        .await;
    assert_eq!(
        (st, body["error"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("scope"))
    );
    let (st, _) = write
        .post("/endpoints", json!({"name": "x", "owner": "me"}))
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );
    let res = w
        .app
        .client
        .post(w.app.url("/api/v1/endpoints"))
        .bearer_auth(&write.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = write.get("/endpoints?limit=0").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = write
        .get(&format!(
            "/endpoints/{}/traces?range=forever",
            w.acme_shared
        ))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn revoked_tokens_and_demoted_creators_open_nothing() {
    let w = world().await;
    let bobs = token(&w, &w.bob, true).await;
    let api = Api {
        app: &w.app,
        token: bobs.clone(),
    };
    assert_eq!(api.get("/endpoints").await.0, StatusCode::OK);
    // Bob stops being an admin: his token stops with it.
    w.app
        .services
        .store
        .set_role(w.bob.1.org.id, w.bob.0.id, Role::Member)
        .await
        .unwrap();
    assert_eq!(api.get("/endpoints").await.0, StatusCode::UNAUTHORIZED);

    let adas = token(&w, &w.ada, false).await;
    let api = Api {
        app: &w.app,
        token: adas.clone(),
    };
    assert_eq!(api.get("/keys").await.0, StatusCode::OK);
    let ada = Actor::portal(w.ada.0.clone(), w.ada.1.clone());
    let listed = antix::manage::tokens::list(&w.app.services.store, &ada)
        .await
        .unwrap();
    let mine = listed.iter().find(|t| !t.can_write).unwrap();
    assert!(mine.last_used_at.is_some(), "a use is recorded");
    assert!(adas.starts_with(&mine.display[..14]));
    antix::manage::tokens::revoke(&w.app.services.store, &ada, mine.id)
        .await
        .unwrap();
    assert_eq!(api.get("/keys").await.0, StatusCode::UNAUTHORIZED);
    // Another organization's token id is not found; a member may not list or issue tokens.
    let eve = Actor::portal(w.eve.0.clone(), w.eve.1.clone());
    assert!(matches!(
        antix::manage::tokens::revoke(&w.app.services.store, &eve, mine.id).await,
        Err(antix::manage::ManageError::NotFound)
    ));
    let bob = Actor::portal(w.bob.0.clone(), membership(&w.app, &w.bob.0).await);
    assert!(matches!(
        antix::manage::tokens::issue(&w.app.services.store, &w.app.services.keys, &bob, "x", true)
            .await,
        Err(antix::manage::ManageError::Forbidden(_))
    ));
}

#[tokio::test]
async fn lists_page_by_cursor_and_the_document_describes_the_api() {
    let w = world().await;
    let api = Api {
        app: &w.app,
        token: token(&w, &w.ada, true).await,
    };
    for i in 0..5 {
        let (st, _) = api
            .post("/endpoints", json!({"name": format!("e{i}")}))
            .await;
        assert_eq!(st, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/endpoints?limit=3&cursor={c}"),
            None => "/endpoints?limit=3".into(),
        };
        let (st, page) = api.get(&path).await;
        assert_eq!(st, StatusCode::OK);
        seen.extend(ids(&page));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(
        (seen.len(), unique.len()),
        (7, 7),
        "every endpoint exactly once"
    );

    let (st, usage) = api
        .get(&format!("/endpoints/{}/usage", w.acme_shared))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(usage["days"].as_array().unwrap().len(), 30);
    assert_eq!(usage["totals"]["requests"], 0);
    let (st, traces) = api
        .get(&format!("/endpoints/{}/traces", w.acme_shared))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(traces["data"], json!([]));

    // The document: OpenAPI 3.1, every route, bearer auth; the docs page renders it.
    let doc: Value = w
        .app
        .client
        .get(w.app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/endpoints",
        "/api/v1/endpoints/{id}",
        "/api/v1/endpoints/{id}/duplicate",
        "/api/v1/endpoints/{id}/archive",
        "/api/v1/endpoints/{id}/traces",
        "/api/v1/endpoints/{id}/traces/{trace_id}",
        "/api/v1/endpoints/{id}/usage",
        "/api/v1/keys",
        "/api/v1/keys/{id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let page = w
        .app
        .client
        .get(w.app.url("/api/v1/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("/api/v1/keys/{id}") && html.contains("Idempotency-Key"));
}
