//! Virtual keys through the API: issued once, changed, revoked.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Api, ids, token, world};

#[tokio::test]
async fn keys_are_issued_once_changed_and_revoked_through_the_api() {
    let w = world().await;
    let api = Api {
        app: &w.app,
        token: token(&w, &w.ada, true).await,
    };
    let eve = Api {
        app: &w.app,
        token: token(&w, &w.eve, true).await,
    };
    let body = json!({
        "name": "batch jobs",
        "budget_daily_usd": "2.50",
        "rpm": 60,
        "allowed_models": ["gpt-4o*"],
        "allowed_endpoints": [w.acme_shared],
        "expires_at": "2099-01-31T23:59:59Z",
    });
    // Idempotency-Key: the retry gets the same key (and secret) back, marked as a replay.
    let first = api
        .send(
            reqwest::Method::POST,
            "/keys",
            Some(body.clone()),
            &[("idempotency-key", "job-1")],
        )
        .await;
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    let again = api
        .send(
            reqwest::Method::POST,
            "/keys",
            Some(body.clone()),
            &[("idempotency-key", "job-1")],
        )
        .await;
    assert_eq!(again.0, StatusCode::CREATED);
    assert_eq!(again.1, first.1);
    assert_eq!(again.2.get("idempotent-replayed").unwrap(), "true");
    assert!(first.2.get("idempotent-replayed").is_none());
    let other = api
        .send(
            reqwest::Method::POST,
            "/keys",
            Some(json!({"name": "different"})),
            &[("idempotency-key", "job-1")],
        )
        .await;
    assert_eq!(other.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.1["error"]["fields"][0]["field"], "Idempotency-Key");
    // The kept answer holds the secret: it is stored encrypted, never in clear.
    let secret = first.1["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk-vk-"));
    let db_url = match &w.app.services.settings.database_url {
        antix::config::DatabaseUrl::Sqlite(u) => u.clone(),
        antix::config::DatabaseUrl::Postgres(_) => unreachable!(),
    };
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db_url)
        .await
        .unwrap();
    let stored: Vec<(String,)> = sqlx::query_as("SELECT response FROM api_idempotency")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert!(!stored.is_empty() && stored.iter().all(|(r,)| !r.contains(&secret[6..])));
    assert_eq!(
        ids(&api.get("/keys").await.1).len(),
        1,
        "the retry issued nothing"
    );

    let key = &first.1["key"];
    let id = key["id"].as_str().unwrap();
    assert_eq!(key["limits"]["budget_daily_usd"], "2.500000000");
    assert_eq!(key["limits"]["rpm"], 60);
    assert_eq!(key["limits"]["budget_total_usd"], Value::Null);
    assert!(key["display"].as_str().unwrap().contains('…'));

    // PATCH: a missing field keeps its value, null clears it.
    let (st, k) = api
        .patch(
            &format!("/keys/{id}"),
            json!({"rpm": null, "budget_total_usd": "100"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{k}");
    assert_eq!(k["limits"]["rpm"], Value::Null);
    assert_eq!(k["limits"]["budget_total_usd"], "100.000000000");
    assert_eq!(k["limits"]["budget_daily_usd"], "2.500000000");
    assert_eq!(k["name"], "batch jobs");
    // The limit is enforced by the proxy as set: the stored key has it.
    let stored = w
        .app
        .services
        .store
        .virtual_key(antix::domain::VirtualKeyId(id.parse().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.limits.budget_total_nanos, Some(100_000_000_000));
    assert_eq!(stored.limits.rpm, None);

    // Field errors in the API's names; another organization's endpoint is not a choice.
    let (st, bad) = api
        .post(
            "/keys",
            json!({"name": "x", "budget_daily_usd": "lots", "tpm": 0, "allowed_endpoints": [w.evil_shared]}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let fields: Vec<&str> = bad["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"budget_daily_usd"), "{fields:?}");
    let (st, bad) = api
        .post(
            "/keys",
            json!({"name": "x", "tpm": 0, "allowed_endpoints": [w.evil_shared]}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = bad["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"tpm") && fields.contains(&"allowed_endpoints"),
        "{fields:?}"
    );

    // Another organization's key: not found, to read, change or revoke.
    assert_eq!(
        eve.get(&format!("/keys/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        eve.patch(&format!("/keys/{id}"), json!({"name": "mine"}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (st, _, _) = eve
        .send(reqwest::Method::DELETE, &format!("/keys/{id}"), None, &[])
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Revoke: the key stops working at the proxy.
    let (st, revoked, _) = api
        .send(reqwest::Method::DELETE, &format!("/keys/{id}"), None, &[])
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let res = w
        .app
        .client
        .post(
            w.app
                .url(&format!("/v1/{}/openai/chat/completions", w.acme_shared)),
        )
        .bearer_auth(&secret)
        .json(&json!({"model": "gpt-4o-mini", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
