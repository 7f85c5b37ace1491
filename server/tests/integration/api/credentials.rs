//! Provider credentials through the API: write-only secrets, admins with a write token.

use reqwest::StatusCode;
use serde_json::json;

use super::{Api, ids, token, world};

#[tokio::test]
async fn credentials_are_write_only_and_managed_with_a_write_token_in_its_org_only() {
    let w = world().await;
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
    let secret = "sk-org-secret-key-4242";

    // Bad input: every field at once, nothing stored.
    let (st, body) = write
        .post(
            "/credentials",
            json!({"provider": "anthropic", "api_key": "short", "weight": 5000,
                   "base_url": "https://example.com/v1", "rpm": 0}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let mut fields: Vec<&str> = body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["api_key", "base_url", "rpm", "weight"]);
    let (st, _) = write
        .post(
            "/credentials",
            json!({"provider": "cohere", "api_key": secret}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(ids(&read.get("/credentials").await.1).is_empty());

    // A read-only token may not set one.
    let (st, _) = read
        .post(
            "/credentials",
            json!({"provider": "openai", "api_key": secret}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Set: the key never comes back, only its last four characters.
    let (st, c) = write
        .post(
            "/credentials",
            json!({"provider": "openai", "name": "primary", "api_key": secret, "weight": 3}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    assert_eq!(
        (
            c["provider"].as_str(),
            c["name"].as_str(),
            c["last4"].as_str()
        ),
        (Some("openai"), Some("primary"), Some("4242"))
    );
    assert_eq!(c["weight"], 3);
    assert!(!c.to_string().contains(secret));
    let id = c["id"].as_str().unwrap().to_owned();
    // Setting the same name again replaces it, keeping the id.
    let (st, again) = write
        .post(
            "/credentials",
            json!({"provider": "openai", "name": "primary", "api_key": "sk-rotated-9999"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (again["id"].as_str(), again["last4"].as_str()),
        (Some(id.as_str()), Some("9999"))
    );
    let (st, list) = read.get("/credentials").await;
    assert_eq!((st, ids(&list)), (StatusCode::OK, vec![id.clone()]));
    assert!(!list.to_string().contains("sk-rotated"));

    // Another organization's token sees nothing of it.
    assert!(ids(&eve.get("/credentials").await.1).is_empty());
    for (method, path) in [
        (reqwest::Method::GET, format!("/credentials/{id}")),
        (reqwest::Method::POST, format!("/credentials/{id}/test")),
        (reqwest::Method::DELETE, format!("/credentials/{id}")),
    ] {
        let res = w
            .app
            .client
            .request(method, w.app.url(&format!("/api/v1{path}")))
            .bearer_auth(&eve.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }

    // Off and on; a test call reports what the provider said.
    let (st, off) = write
        .patch(&format!("/credentials/{id}"), json!({"enabled": false}))
        .await;
    assert_eq!(
        (st, off["enabled"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    let (st, _) = read
        .patch(&format!("/credentials/{id}"), json!({"enabled": true}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, t) = write
        .post(&format!("/credentials/{id}/test"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert!(t["ok"].is_boolean() && t["message"].is_string(), "{t}");

    // Delete: gone for good.
    let res = w
        .app
        .client
        .delete(w.app.url(&format!("/api/v1/credentials/{id}")))
        .bearer_auth(&write.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (st, _) = read.get(&format!("/credentials/{id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
