//! Overload and hostile input: the memory budget, responses made inert on the portal's origin,
//! deadlines toward slow clients and a slow database.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::fixture_with;

/// Bodies past the memory budget are refused up front with a provider-shaped 503 and
/// Retry-After; what is held is given back when the traces are written.
#[tokio::test]
async fn bodies_past_the_memory_budget_are_refused_and_given_back() {
    let f = fixture_with(|env| {
        env.insert("ANTIX_MEMORY_BUDGET_BYTES".into(), (2 << 20).to_string());
    })
    .await;
    let url = format!("{}/chat/completions", f.base("openai"));
    let big = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x".repeat(3 << 20)}]});
    let res = f
        .app
        .client
        .post(&url)
        .bearer_auth("sk-made-up")
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retry in a moment")
    );
    assert_eq!(f.mock.stat("requests"), 0);
    // Ordinary calls go through, and once their traces are written nothing is held.
    for _ in 0..5 {
        let res = f
            .app
            .client
            .post(&url)
            .bearer_auth("sk-made-up")
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let _ = res.bytes().await.unwrap();
    }
    let memory = &f.app.services.memory;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while memory.used() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(memory.used(), 0);
    assert!(memory.refused.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}
