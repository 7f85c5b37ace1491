//! Several credentials per provider: load balancing by weight, retries before the answer has
//! started, cooldowns shared across replicas. The mock provider takes its faults from the
//! credential itself (`sk-…#fail=429;retry_after=30`), so each credential misbehaves its own way.

use std::collections::BTreeMap;

use antix::domain::{OrgId, Provider, UserId};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::common::{
    Fixture, Mock, TestApp, fixture_with, gateway_env, org_with_endpoint, postgres_url,
    spawn_app_with, spawn_mock,
};

/// Sets the organization's OpenAI credential `name` (replacing one of that name).
async fn credential(app: &TestApp, org: OrgId, by: UserId, name: &str, secret: &str, weight: u32) {
    let s = &app.services;
    antix::credentials::set(
        &s.store,
        &s.keys,
        &antix::credentials::CredentialInput {
            name,
            weight,
            ..antix::credentials::CredentialInput::single(
                org,
                Provider::OpenAi,
                &SecretString::from(secret.to_owned()),
                None,
                by,
                0,
            )
        },
    )
    .await
    .unwrap();
}

/// A credential prefix of its own, so tests running side by side never share the mock's
/// per-credential counters.
fn unique(name: &str) -> String {
    format!("sk-{name}-{}", uuid::Uuid::new_v4().simple())
}

/// How many requests reached the mock with a credential starting with `prefix`.
fn calls_with(mock: &Mock, prefix: &str) -> usize {
    mock.state
        .seen()
        .lines()
        .filter(|l| l.contains(&format!("authorization: Bearer {prefix}")))
        .count()
}

fn chat() -> Value {
    json!({"model": "gpt-4o", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
}

async fn send(app: &TestApp, base: &str, key: &str, body: &Value, mock: &str) -> (u16, String) {
    let r = app
        .client
        .post(format!("{base}/chat/completions"))
        .bearer_auth(key)
        .header("x-mock", mock)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    // What arrived before the connection broke, for the streams the mock cuts.
    let mut text = Vec::new();
    let mut r = r;
    while let Ok(Some(chunk)) = r.chunk().await {
        text.extend_from_slice(&chunk);
    }
    (status, String::from_utf8_lossy(&text).into_owned())
}

async fn quick() -> Fixture {
    fixture_with(|e| {
        e.insert("ANTIX_RETRY_BACKOFF_MS".into(), "10".into());
    })
    .await
}

fn attempts(row: &antix::store::traces::TraceRow) -> Vec<Value> {
    row.attempts
        .as_deref()
        .map(|a| serde_json::from_str(a).unwrap())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_rate_limited_credential_is_served_by_another_and_rests() {
    let f = quick().await;
    let a = unique("a");
    let b = unique("b");
    credential(
        &f.app,
        f.org.id,
        f.admin.id,
        "default",
        &format!("{a}#fail=429;retry_after=30"),
        1000,
    )
    .await;
    credential(&f.app, f.org.id, f.admin.id, "backup", &b, 1).await;
    for _ in 0..6 {
        let (status, body) = send(&f.app, &f.base("openai"), &f.vk, &chat(), "").await;
        assert_eq!(status, 200, "{body}");
    }
    // A answered 429 once (it is picked first, weight 1000 to 1) and then rested for its
    // Retry-After: every other call went straight to B.
    assert_eq!(calls_with(&f.mock, &a), 1);
    assert_eq!(calls_with(&f.mock, &b), 6);
    let rows = f.traces(6).await;
    let retried: Vec<_> = rows.iter().filter(|r| r.attempt_count == 2).collect();
    assert_eq!(retried.len(), 1, "one call needed a second try");
    let tries = attempts(retried[0]);
    assert_eq!(tries[0]["credential"], "default");
    assert_eq!(tries[0]["status"], 429);
    assert_eq!(tries[1]["credential"], "backup");
    assert_eq!(tries[1]["status"], 200);
    // The Traces filter for calls that needed another try finds exactly that one.
    let page = f
        .app
        .services
        .store
        .list_traces(
            f.endpoint.id,
            &antix::store::observe::TraceFilter {
                retried: true,
                ..Default::default()
            },
            None,
            50,
        )
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
    assert_eq!(page.rows[0].id, retried[0].id);
    // The rest is in the database, for the other replicas.
    let ids: Vec<_> = f
        .app
        .services
        .store
        .credentials_for(f.org.id, Provider::OpenAi)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    let mut rests = Vec::new();
    for _ in 0..50 {
        rests = f.app.services.store.cooldowns(&ids).await.unwrap();
        if !rests.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(rests.len(), 1, "{rests:?}");
    assert!(rests[0].1 > antix::domain::now_ms() + 20_000, "rests ~30 s");
}

#[tokio::test]
async fn a_failing_provider_is_tried_again_after_a_backoff() {
    let f = quick().await;
    let x = unique("x");
    credential(
        &f.app,
        f.org.id,
        f.admin.id,
        "default",
        &format!("{x}#fail=503;fail_first=2"),
        1,
    )
    .await;
    let (status, body) = send(&f.app, &f.base("openai"), &f.vk, &chat(), "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(calls_with(&f.mock, &x), 3);
    let row = f.trace().await;
    assert_eq!(row.attempt_count, 3);
    let tries = attempts(&row);
    let statuses: Vec<_> = tries
        .iter()
        .map(|t| t["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
    assert_eq!(row.status_code, 200);
}

#[tokio::test]
async fn retries_end_at_the_attempts_allowed_with_the_providers_error() {
    let f = quick().await;
    let x = unique("down");
    credential(
        &f.app,
        f.org.id,
        f.admin.id,
        "default",
        &format!("{x}#fail=503"),
        1,
    )
    .await;
    let (status, body) = send(&f.app, &f.base("openai"), &f.vk, &chat(), "").await;
    assert_eq!(status, 503);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"]["message"].is_string(), "OpenAI-shaped: {body}");
    assert_eq!(
        calls_with(&f.mock, &x),
        3,
        "ANTIX_RETRY_ATTEMPTS defaults to 3"
    );
    assert_eq!(f.trace().await.attempt_count, 3);
}

#[tokio::test]
async fn client_errors_and_started_streams_are_never_tried_again() {
    let f = quick().await;
    let x = unique("ok");
    credential(&f.app, f.org.id, f.admin.id, "default", &x, 1).await;
    // A 400 says the request is wrong: sending it again would not help.
    let (status, _) = send(&f.app, &f.base("openai"), &f.vk, &chat(), "fail=400").await;
    assert_eq!(status, 400);
    assert_eq!(calls_with(&f.mock, &x), 1);
    // A stream that breaks after its first chunks reached the client is not sent again.
    let mut body = chat();
    body["stream"] = json!(true);
    let (status, text) = send(&f.app, &f.base("openai"), &f.vk, &body, "cut_after=2").await;
    assert_eq!(status, 200);
    assert!(text.contains("data:"), "{text}");
    assert_eq!(calls_with(&f.mock, &x), 2);
    for row in f.traces(2).await {
        assert_eq!(row.attempt_count, 1);
    }
}

#[tokio::test]
async fn weights_hold_over_a_thousand_calls() {
    use futures_util::StreamExt;
    let f = quick().await;
    let heavy = unique("heavy");
    let light = unique("light");
    credential(&f.app, f.org.id, f.admin.id, "default", &heavy, 3).await;
    credential(&f.app, f.org.id, f.admin.id, "light", &light, 1).await;
    let base = f.base("openai");
    let body = chat();
    let statuses: Vec<u16> = futures_util::stream::iter(0..1000)
        .map(|_| send(&f.app, &base, &f.vk, &body, ""))
        .buffer_unordered(16)
        .map(|(s, _)| s)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200));
    let h = calls_with(&f.mock, &heavy);
    let l = calls_with(&f.mock, &light);
    assert_eq!(h + l, 1000);
    // 3:1 is 750 expected; ±60 is over four standard deviations (σ ≈ 13.7).
    assert!((690..=810).contains(&h), "heavy {h}, light {l}");
}

#[tokio::test]
async fn a_cooldown_is_shared_by_two_gateways_on_postgres() {
    let Some(db) =
        antix::store::testing::postgres_or_skip("routing::a_cooldown_is_shared_by_two_gateways")
            .await
            .unwrap()
    else {
        return;
    };
    let pg_url = postgres_url(&db);
    let mock = spawn_mock().await;
    let env = |e: &mut BTreeMap<String, String>| {
        gateway_env(e, &pg_url, &mock.url());
        e.insert("ANTIX_RETRY_BACKOFF_MS".into(), "10".into());
    };
    let one = spawn_app_with(env).await;
    let two = spawn_app_with(env).await;
    let s = &one.services;
    let (admin, org, endpoint) = org_with_endpoint(s, "pg").await;
    let vk = {
        use secrecy::ExposeSecret;
        antix::virtual_keys::issue(
            &s.store,
            &s.keys,
            org.id,
            admin.id,
            "ci",
            None,
            &Default::default(),
        )
        .await
        .unwrap()
        .secret
        .expose_secret()
        .to_owned()
    };
    let a = unique("shared-a");
    let b = unique("shared-b");
    credential(
        &one,
        org.id,
        admin.id,
        "default",
        &format!("{a}#fail=429;retry_after=30"),
        1000,
    )
    .await;
    // Weight 0: only when the others fail, so the first call surely goes to A.
    credential(&one, org.id, admin.id, "backup", &b, 0).await;
    let base = |app: &TestApp| app.url(&format!("/v1/{}/openai", endpoint.id));
    // The first gateway meets the 429 and rests A.
    let (status, _) = send(&one, &base(&one), &vk, &chat(), "").await;
    assert_eq!(status, 200);
    assert_eq!(calls_with(&mock, &a), 1);
    // The rest reaches the database off the request path.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The second gateway never saw A fail, yet sends nothing to it.
    for _ in 0..20 {
        let (status, _) = send(&two, &base(&two), &vk, &chat(), "").await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        calls_with(&mock, &a),
        1,
        "the second gateway skipped the resting A"
    );
    assert_eq!(calls_with(&mock, &b), 21);
    drop(one);
    drop(two);
}

// ---- `multi` translates between the three chat shapes ----

/// Posts `body` to the endpoint's `multi` URL at `path` with the key as the client's SDK
/// sends it.
async fn multi(f: &Fixture, path: &str, key_header: &str, body: &Value) -> reqwest::Response {
    let mut req = f
        .app
        .client
        .post(format!("{}{path}", f.base("multi")))
        // The mock calls the first declared tool, when there is one.
        .header("x-mock", "tool_call")
        .json(body);
    req = match key_header {
        "x-api-key" => req
            .header("x-api-key", &f.vk)
            .header("anthropic-version", "2023-06-01"),
        "x-goog-api-key" => req.header("x-goog-api-key", &f.vk),
        _ => req.bearer_auth(&f.vk),
    };
    req.send().await.unwrap()
}

fn last_seen(mock: &Mock) -> String {
    mock.state
        .seen()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_anthropic_client_reaches_an_openai_model_in_its_own_shape() {
    let f = fixture_with(|_| {}).await;
    let body = json!({"model": "gpt-4o", "max_tokens": 64, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello"}]});
    let res = multi(&f, "/v1/messages", "x-api-key", &body).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["type"], "message", "{v}");
    assert_eq!(v["role"], "assistant");
    assert!(v["content"][0]["text"].as_str().unwrap().len() > 1, "{v}");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    // The provider got its own API, with the organization's key in its own header.
    let seen = last_seen(&f.mock);
    assert!(seen.starts_with("POST /v1/chat/completions"), "{seen}");
    assert!(
        seen.contains(&format!(
            "authorization: Bearer {}",
            crate::common::ORG_SECRET
        )),
        "{seen}"
    );
    assert!(!seen.contains("x-api-key"), "{seen}");
    let row = f.trace().await;
    assert_eq!(row.provider.as_deref(), Some("openai"));
    assert_eq!(row.wire.as_deref(), Some("openai.chat"));
    assert!(
        row.input_tokens.unwrap() > 0,
        "usage read from the provider's answer"
    );
    assert!(row.cost_nanos.unwrap() > 0);
    assert_eq!(attempts(&row)[0]["translated"], "anthropic→openai");
}

#[tokio::test]
async fn an_openai_stream_with_tools_reaches_claude_and_gemini() {
    let f = fixture_with(|_| {}).await;
    for (model, provider, upstream_path) in [
        ("claude-sonnet-4-5", "anthropic", "POST /v1/messages"),
        (
            "gemini-2.5-flash",
            "gemini",
            "POST /v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        ),
    ] {
        let body = json!({"model": model, "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]});
        let res = multi(&f, "/v1/chat/completions", "bearer", &body).await;
        assert_eq!(res.status(), 200, "{model}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let text = res.text().await.unwrap();
        assert!(text.contains("chat.completion.chunk"), "{model}: {text}");
        assert!(text.trim_end().ends_with("data: [DONE]"), "{model}: {text}");
        assert!(text.contains("\"usage\""), "{model}: usage chunk asked for");
        assert!(text.contains("\"tool_calls\""), "{model}: {text}");
        assert!(text.contains("get_weather"), "{model}: {text}");
        assert!(text.contains("Paris"), "{model}: the arguments: {text}");
        assert!(
            text.contains("\"finish_reason\":\"tool_calls\""),
            "{model}: {text}"
        );
        let seen = last_seen(&f.mock);
        assert!(seen.starts_with(upstream_path), "{seen}");
        let row = loop {
            let rows = f
                .app
                .services
                .store
                .recent_traces(f.endpoint.id, 10)
                .await
                .unwrap();
            if let Some(r) = rows
                .into_iter()
                .find(|r| r.provider.as_deref() == Some(provider))
            {
                break r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert!(row.is_stream);
        assert!(row.output_tokens.unwrap() > 0, "{model}");
        assert!(row.ttft_us.is_some());
    }
}

#[tokio::test]
async fn a_gemini_client_reaches_claude() {
    let f = fixture_with(|_| {}).await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}],
        "generationConfig": {"maxOutputTokens": 32}});
    let res = multi(
        &f,
        "/v1beta/models/claude-haiku-4-5:generateContent",
        "x-goog-api-key",
        &body,
    )
    .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert!(
        v["candidates"][0]["content"]["parts"][0]["text"].is_string(),
        "{v}"
    );
    assert!(v["usageMetadata"]["promptTokenCount"].as_u64().unwrap() > 0);
    let seen = last_seen(&f.mock);
    assert!(seen.starts_with("POST /v1/messages"), "{seen}");
    assert!(seen.contains("anthropic-version: 2023-06-01"), "{seen}");
    assert!(
        seen.contains(&format!("x-api-key: {}", crate::common::ORG_SECRET)),
        "{seen}"
    );
}

#[tokio::test]
async fn what_cannot_be_translated_is_refused_by_name_and_errors_come_back_in_shape() {
    let f = fixture_with(|_| {}).await;
    // OpenAI's `n` has no Anthropic equivalent: a 400 naming it, nothing sent.
    let before = f.mock.seen_count();
    let body = json!({"model": "claude-haiku-4-5", "n": 2,
        "messages": [{"role": "user", "content": "hi"}]});
    let res = multi(&f, "/v1/chat/completions", "bearer", &body).await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains('n') && message.contains("not supported"),
        "{v}"
    );
    assert_eq!(f.mock.seen_count(), before);
    // The provider's error, in the client's shape.
    let res = f
        .app
        .client
        .post(format!("{}/v1/messages", f.base("multi")))
        .header("x-api-key", &f.vk)
        .header("anthropic-version", "2023-06-01")
        .header("x-mock", "fail=429")
        .json(&json!({"model": "gpt-4o", "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["type"], "error", "Anthropic-shaped: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mock failure")
    );
    // A provider key cannot be carried to another provider.
    let res = f
        .app
        .client
        .post(format!("{}/v1/messages", f.base("multi")))
        .header("x-api-key", "sk-ant-api03-someone-elses-key")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "gpt-4o", "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("virtual key"),
        "{v}"
    );
}
