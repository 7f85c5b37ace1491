//! Agent sessions through the API: the Activity tab's list and one session's calls.

use reqwest::StatusCode;

use super::{Api, token, world};

#[tokio::test]
async fn sessions_are_listed_by_recent_activity_and_opened_by_key() {
    let w = world().await;
    let s = &w.app.services;
    let acme = w.ada.1.org.id;
    let ep = antix::domain::EndpointId(w.acme_shared);
    let base = antix::domain::now_ms() - 3_600_000;
    let mut records = Vec::new();
    for (i, (key, parent, calls, preview)) in [
        ("cc:run/1", Some("cc:run"), 3, "Refactor the parser"),
        ("cc:run/2", Some("cc:run"), 2, "Sub-agent: find usages"),
        ("fp:haiku", None, 2, "Write a haiku"),
    ]
    .into_iter()
    .enumerate()
    {
        for c in 0..calls {
            let mut r = antix::store::testing::sample_record(
                acme,
                ep,
                base + i as i64 * 60_000 + c * 1_000,
            );
            r.session_key = Some(key.into());
            r.session_parent = parent.map(Into::into);
            r.session_preview = Some(preview.into());
            records.push(r);
        }
    }
    s.store.insert_traces(&records).await.unwrap();
    let ada = Api {
        app: &w.app,
        token: token(&w, &w.ada, false).await,
    };
    let eve = Api {
        app: &w.app,
        token: token(&w, &w.eve, false).await,
    };
    let path = format!("/endpoints/{}/sessions", w.acme_shared);
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let (st, all) = ada.get(&path).await;
    assert_eq!(st, StatusCode::OK, "{all}");
    assert_eq!(keys(&all), ["fp:haiku", "cc:run/2", "cc:run/1"]);
    assert_eq!(all["data"][2]["calls"], 3);
    assert_eq!(all["data"][2]["parent"], "cc:run");
    assert_eq!(all["data"][2]["preview"], "Refactor the parser");

    let (_, first) = ada.get(&format!("{path}?limit=2")).await;
    assert_eq!(keys(&first), ["fp:haiku", "cc:run/2"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = ada
        .get(&format!("{path}?limit=2&cursor={}", enc(cursor)))
        .await;
    assert_eq!(keys(&second), ["cc:run/1"]);
    assert_eq!(second["next_cursor"], serde_json::Value::Null);
    let (_, found) = ada.get(&format!("{path}?q=HAIKU")).await;
    assert_eq!(keys(&found), ["fp:haiku"]);
    let (st, _) = ada.get(&format!("{path}?cursor=garbage")).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);

    // One session by its (percent-encoded) key: calls in time order, and its sibling.
    let (st, one) = ada.get(&format!("{path}/{}", enc("cc:run/1"))).await;
    assert_eq!(st, StatusCode::OK, "{one}");
    let calls = one["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 3);
    assert!(
        calls
            .windows(2)
            .all(|c| c[0]["started_at"].as_str() <= c[1]["started_at"].as_str())
    );
    assert_eq!(calls[0]["session"], "cc:run/1");
    assert_eq!(one["truncated"], false);
    let related: Vec<&str> = one["related"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(related, ["cc:run/1", "cc:run/2"]);
    let (st, _) = ada.get(&format!("{path}/nope")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Another organization sees neither the list nor a session.
    let (st, _) = eve.get(&path).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = eve.get(&format!("{path}/fp:haiku")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// Percent-encodes what a session key or cursor may hold that a URL would read otherwise.
fn enc(s: &str) -> String {
    s.replace('%', "%25")
        .replace('/', "%2F")
        .replace('?', "%3F")
        .replace('#', "%23")
        .replace('&', "%26")
}
