//! Fallbacks: when the first target cannot serve a call (down after its retries, or the model
//! unknown), the endpoint's fallback targets are tried in order, across providers with the
//! call translated, within what the caller's credential and key allow.

use antix::domain::{Fallback, Provider};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::common::{Fixture, fixture_with};

async fn quick(fallbacks: &str) -> Fixture {
    let f = fixture_with(|e| {
        e.insert("ANTIX_RETRY_BACKOFF_MS".into(), "10".into());
    })
    .await;
    f.app
        .services
        .store
        .set_endpoint_fallbacks(f.endpoint.id, &Fallback::parse_list(fallbacks).unwrap())
        .await
        .unwrap();
    f
}

/// Replaces the organization's credential for `provider` with one the mock treats as `faults`.
async fn faulty(f: &Fixture, provider: Provider, faults: &str) {
    let s = &f.app.services;
    let secret = format!("sk-{}#{faults}", uuid::Uuid::new_v4().simple());
    antix::credentials::set(
        &s.store,
        &s.keys,
        &antix::credentials::CredentialInput::single(
            f.org.id,
            provider,
            &SecretString::from(secret),
            None,
            f.admin.id,
            0,
        ),
    )
    .await
    .unwrap();
}

fn chat(model: &str) -> Value {
    json!({"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
}

async fn post(f: &Fixture, key: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = f
        .app
        .client
        .post(format!("{}/chat/completions", f.base("openai")))
        .bearer_auth(key)
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

fn attempts(row: &antix::store::traces::TraceRow) -> Vec<Value> {
    row.attempts
        .as_deref()
        .map(|a| serde_json::from_str(a).unwrap())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_provider_outage_falls_back_to_another_providers_model_in_the_clients_shape() {
    let f = quick("anthropic/claude-haiku-4-5").await;
    faulty(&f, Provider::OpenAi, "fail=503").await;
    let (status, body) = post(&f, &f.vk, &chat("gpt-4o"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "chat.completion", "OpenAI-shaped: {body}");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("Mock answer")
    );
    let row = f.trace().await;
    assert!(row.fallback);
    assert_eq!(row.provider.as_deref(), Some("anthropic"));
    assert_eq!(row.model.as_deref(), Some("claude-haiku-4-5"));
    assert_eq!(row.status_code, 200);
    assert!(
        row.cost_nanos.unwrap_or(0) > 0,
        "priced as the model that served it"
    );
    let tries = attempts(&row);
    let summary: Vec<(String, u64, bool)> = tries
        .iter()
        .map(|t| {
            (
                t["provider"].as_str().unwrap().to_owned(),
                t["status"].as_u64().unwrap(),
                t["fallback"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("openai".into(), 503, false),
            ("openai".into(), 503, false),
            ("openai".into(), 503, false),
            ("anthropic".into(), 200, true),
        ],
        "the first target's retries, then the fallback"
    );
    assert_eq!(tries[3]["translated"], "openai→anthropic");
}

#[tokio::test]
async fn a_stream_falls_back_before_its_first_byte() {
    let f = quick("anthropic/claude-haiku-4-5").await;
    faulty(&f, Provider::OpenAi, "fail=429").await;
    let mut body = chat("gpt-4o");
    body["stream"] = json!(true);
    let (status, text) = post(&f, &f.vk, &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("chat.completion.chunk"), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let row = f.trace().await;
    assert!(row.fallback && row.is_stream);
    assert_eq!(row.provider.as_deref(), Some("anthropic"));
    assert!(row.output_tokens.unwrap_or(0) > 0);
}

#[tokio::test]
async fn an_unknown_model_falls_back_at_once_unless_the_request_says_none() {
    let f = quick("openai/gpt-4o-mini").await;
    let (status, body) = post(&f, &f.vk, &chat("gpt-missing"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let row = f.trace().await;
    let tries = attempts(&row);
    assert_eq!(
        tries.len(),
        2,
        "no retry of a model that does not exist: {tries:?}"
    );
    assert_eq!(tries[0]["status"], 404);
    assert_eq!(tries[1]["model"], "gpt-4o-mini");
    assert_eq!(row.model.as_deref(), Some("gpt-4o-mini"));
    // The header overrides the endpoint's list for one call: with none, the provider's own
    // answer comes back untouched.
    let (status, body) = post(
        &f,
        &f.vk,
        &chat("gpt-missing"),
        &[("X-Antix-Fallbacks", "none")],
    )
    .await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "model_not_found", "{body}");
    // And may name its own.
    let (status, _) = post(
        &f,
        &f.vk,
        &chat("gpt-missing"),
        &[("x-antix-fallbacks", "gemini/gemini-2.5-flash")],
    )
    .await;
    assert_eq!(status, 200);
    let rows = f.traces(3).await;
    assert!(
        rows.iter()
            .any(|r| r.provider.as_deref() == Some("gemini") && r.fallback)
    );
    // A header that does not parse is the client's mistake, said in its shape.
    let (status, body) = post(
        &f,
        &f.vk,
        &chat("gpt-4o"),
        &[("X-Antix-Fallbacks", "mistral/large")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("X-Antix-Fallbacks"), "{body}");
}

#[tokio::test]
async fn a_callers_own_key_falls_back_within_its_provider_only() {
    let f = quick("anthropic/claude-haiku-4-5, openai/gpt-4o-mini").await;
    let (status, body) = post(&f, "sk-proj-byok-caller-1234", &chat("gpt-missing"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let row = f.trace().await;
    assert_eq!(row.auth_mode, "byok");
    let tries = attempts(&row);
    assert_eq!(tries.len(), 3, "{tries:?}");
    assert!(
        tries[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("skipped: another provider"),
        "{tries:?}"
    );
    assert_eq!(tries[2]["model"], "gpt-4o-mini");
    assert_eq!(tries[2]["status"], 200);
    // The caller's key, not the organization's, went to the provider for the fallback.
    let seen = f.mock.state.seen();
    assert!(!seen.contains(crate::common::ORG_SECRET));
}

#[tokio::test]
async fn a_keys_model_allow_list_holds_for_fallbacks() {
    let f = quick("anthropic/claude-haiku-4-5").await;
    faulty(&f, Provider::OpenAi, "fail=503").await;
    use secrecy::ExposeSecret;
    let s = &f.app.services;
    let limits = antix::domain::KeyLimits {
        allowed_models: vec!["gpt-*".into()],
        ..Default::default()
    };
    let key =
        antix::virtual_keys::issue(&s.store, &s.keys, f.org.id, f.admin.id, "k", None, &limits)
            .await
            .unwrap()
            .secret
            .expose_secret()
            .to_owned();
    let (status, _) = post(&f, &key, &chat("gpt-4o"), &[]).await;
    assert_eq!(status, 503, "the provider's own error: no allowed fallback");
    let row = f.trace().await;
    let tries = attempts(&row);
    assert!(!row.fallback);
    assert!(
        tries.last().unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("may not use model claude-haiku-4-5"),
        "{tries:?}"
    );
}

#[tokio::test]
async fn a_named_credential_is_used_or_the_fallback_skipped() {
    let f = quick("anthropic/claude-haiku-4-5#spare").await;
    faulty(&f, Provider::OpenAi, "fail=503").await;
    let (status, _) = post(&f, &f.vk, &chat("gpt-4o"), &[]).await;
    assert_eq!(
        status, 503,
        "the organization has no credential named spare"
    );
    let tries = attempts(&f.trace().await);
    assert!(
        tries.last().unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("named spare"),
        "{tries:?}"
    );
}
