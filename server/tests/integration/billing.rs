//! Billing integrity (K1): every path of every provider × a key without limits, a key with a
//! budget, a key with a model allow-list. Each call is metered (a cost is charged, or a batch's
//! estimate held until its results are read back and charged), free by nature, or refused
//! before it reaches the provider: never forwarded at $0 on the organization's credential for a
//! key with limits.

use antix::domain::{KeyLimits, TraceId};
use antix::store::traces::TraceRow;
use serde_json::{Value, json};

use crate::common::{Fixture, fixture};

async fn key_with(f: &Fixture, limits: KeyLimits) -> String {
    use secrecy::ExposeSecret;
    let s = &f.app.services;
    antix::virtual_keys::issue(&s.store, &s.keys, f.org.id, f.admin.id, "k", None, &limits)
        .await
        .unwrap()
        .secret
        .expose_secret()
        .to_owned()
}

/// Waits for a trace by id (written off the request path).
async fn trace(f: &Fixture, id: TraceId) -> TraceRow {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Some(t) = f.app.services.store.trace(id).await.unwrap() {
            return t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "trace {id} never written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Plain,
    Budget,
    AllowList,
}

/// What a call must come to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Forwarded, and charged a cost above zero.
    Metered,
    /// Forwarded; costs nothing by nature.
    Free,
    /// Forwarded for a key without limits; its cost is unknown to the gateway.
    Unpriced,
    /// Refused by the gateway with this status; the provider never saw it.
    Refused(u16),
}

struct Req {
    method: reqwest::Method,
    provider: &'static str,
    path: String,
    body: Body,
}

enum Body {
    None,
    Json(Value),
    Form(Vec<(&'static str, String)>, Option<(&'static str, Vec<u8>)>),
}

fn post(provider: &'static str, path: &str, body: Value) -> Req {
    Req {
        method: reqwest::Method::POST,
        provider,
        path: path.into(),
        body: Body::Json(body),
    }
}

fn get(provider: &'static str, path: &str) -> Req {
    Req {
        method: reqwest::Method::GET,
        provider,
        path: path.into(),
        body: Body::None,
    }
}

fn form(
    provider: &'static str,
    path: &str,
    fields: Vec<(&'static str, String)>,
    file: Option<(&'static str, Vec<u8>)>,
) -> Req {
    Req {
        method: reqwest::Method::POST,
        provider,
        path: path.into(),
        body: Body::Form(fields, file),
    }
}

/// Sends a request with a key; the status, the JSON body (if any) and the trace id.
async fn send(f: &Fixture, key: &str, r: &Req) -> (u16, Value, Option<TraceId>) {
    let url = format!("{}{}", f.base(r.provider), r.path);
    let mut req = f.app.client.request(r.method.clone(), url);
    req = match r.provider {
        "anthropic" => req
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01"),
        "gemini" => req.header("x-goog-api-key", key),
        _ => req.bearer_auth(key),
    };
    req = match &r.body {
        Body::None => req,
        Body::Json(v) => req.json(v),
        Body::Form(fields, file) => {
            let mut form = reqwest::multipart::Form::new();
            for (k, v) in fields {
                form = form.text(*k, v.clone());
            }
            if let Some((name, data)) = file {
                form = form.part(
                    *name,
                    reqwest::multipart::Part::bytes(data.clone()).file_name("upload.bin"),
                );
            }
            req.multipart(form)
        }
    };
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let id = res
        .headers()
        .get(antix::gateway::TRACE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let bytes = res.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        id,
    )
}

fn chat(model: &str) -> Value {
    json!({"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": "hello there"}]})
}

fn batch_file(model: &str) -> Vec<u8> {
    (1..=3)
        .map(|i| {
            json!({"custom_id": format!("r{i}"), "method": "POST", "url": "/v1/chat/completions",
                   "body": {"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}})
            .to_string()
                + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

#[tokio::test]
async fn every_path_is_metered_free_or_refused() {
    let f = fixture().await;
    let plain = f.vk.clone();
    let budget = key_with(
        &f,
        KeyLimits {
            budget_total_nanos: Some(50_000_000_000),
            ..Default::default()
        },
    )
    .await;
    let allow = key_with(
        &f,
        KeyLimits {
            allowed_models: vec![
                "gpt-4o-mini".into(),
                "claude-haiku-4-5".into(),
                "gemini-2.5-flash".into(),
            ],
            ..Default::default()
        },
    )
    .await;
    use Expect::*;
    let audio = vec![7u8; 64_000];
    // (request, expectation without limits, with a budget, with an allow-list)
    let table: Vec<(Req, Expect, Expect, Expect)> = vec![
        (
            post("openai", "/v1/chat/completions", chat("gpt-4o-mini")),
            Metered,
            Metered,
            Metered,
        ),
        (
            post("openai", "/v1/chat/completions", chat("gpt-4o")),
            Metered,
            Metered,
            Refused(403),
        ),
        (
            post(
                "openai",
                "/v1/chat/completions",
                json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": false}, "messages": [{"role": "user", "content": "hi"}]}),
            ),
            Metered,
            Metered,
            Refused(403),
        ),
        (
            post(
                "openai",
                "/v1/responses",
                json!({"model": "gpt-4o-mini", "input": "hi", "background": true}),
            ),
            Metered,
            Metered,
            Metered,
        ),
        (get("openai", "/v1/responses/resp_123"), Free, Free, Free),
        // Searches are priced per use; a tool the provider bills at prices Antix does not
        // have, or priority processing, is refused for keys with limits.
        (
            post(
                "openai",
                "/v1/responses",
                json!({"model": "gpt-4o-mini", "input": "hi", "tools": [{"type": "web_search"}]}),
            ),
            Metered,
            Metered,
            Metered,
        ),
        (
            post(
                "openai",
                "/v1/responses",
                json!({"model": "gpt-4o-mini", "input": "hi", "tools": [{"type": "image_generation"}]}),
            ),
            Metered,
            Refused(403),
            Refused(403),
        ),
        (
            post(
                "openai",
                "/v1/chat/completions",
                json!({"model": "gpt-4o-mini", "service_tier": "priority", "messages": [{"role": "user", "content": "hi"}]}),
            ),
            Metered,
            Refused(403),
            Refused(403),
        ),
        (
            post(
                "openai",
                "/v1/embeddings",
                json!({"model": "text-embedding-3-small", "input": "hello"}),
            ),
            Metered,
            Metered,
            Refused(403),
        ),
        (
            post(
                "openai",
                "/v1/images/generations",
                json!({"model": "gpt-image-1", "prompt": "a cat", "n": 2, "size": "1024x1024", "quality": "low"}),
            ),
            Metered,
            Metered,
            Refused(403),
        ),
        (
            post(
                "openai",
                "/v1/audio/speech",
                json!({"model": "tts-1", "input": "Hello from the test.", "voice": "alloy"}),
            ),
            Metered,
            Metered,
            Refused(403),
        ),
        (
            form(
                "openai",
                "/v1/audio/transcriptions",
                vec![("model", "whisper-1".into())],
                Some(("file", audio.clone())),
            ),
            Metered,
            Metered,
            Refused(403),
        ),
        (
            post(
                "openai",
                "/v1/fine_tuning/jobs",
                json!({"model": "gpt-4o-mini", "training_file": "file-x"}),
            ),
            Unpriced,
            Refused(403),
            Refused(403),
        ),
        (
            post("openai", "/v1/realtime/client_secrets", json!({})),
            Unpriced,
            Refused(403),
            Refused(403),
        ),
        (get("openai", "/v1/models"), Free, Free, Free),
        (
            form(
                "openai",
                "/v1/files",
                vec![("purpose", "assistants".into())],
                Some(("file", b"notes".to_vec())),
            ),
            Free,
            Free,
            Free,
        ),
        (
            post(
                "anthropic",
                "/v1/messages",
                json!({"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}),
            ),
            Metered,
            Metered,
            Metered,
        ),
        (
            post(
                "anthropic",
                "/v1/messages/count_tokens",
                json!({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]}),
            ),
            Free,
            Free,
            Free,
        ),
        (
            post(
                "anthropic",
                "/v1/complete",
                json!({"model": "claude-2", "prompt": "hi"}),
            ),
            Unpriced,
            Refused(403),
            Refused(403),
        ),
        (
            post(
                "gemini",
                "/v1beta/models/gemini-2.5-flash:generateContent",
                json!({"contents": [{"parts": [{"text": "hi"}]}]}),
            ),
            Metered,
            Metered,
            Metered,
        ),
        (
            post(
                "gemini",
                "/v1beta/models/gemini-2.5-pro%3AgenerateContent",
                json!({"contents": [{"parts": [{"text": "hi"}]}]}),
            ),
            Metered,
            Metered,
            Refused(403),
        ),
        (
            post(
                "gemini",
                "/v1beta/models/gemini-embedding-001:embedContent",
                json!({"content": {"parts": [{"text": "hi"}]}}),
            ),
            Metered,
            Metered,
            Refused(403),
        ),
        (
            post(
                "gemini",
                "/v1beta/models/imagen-3.0-generate-001:predict",
                json!({"instances": [{"prompt": "a cat"}], "parameters": {"sampleCount": 2}}),
            ),
            Metered,
            Metered,
            Refused(403),
        ),
        (
            post(
                "gemini",
                "/v1beta/cachedContents",
                json!({"model": "models/gemini-2.5-flash"}),
            ),
            Unpriced,
            Refused(403),
            Refused(403),
        ),
    ];
    for (req, e_plain, e_budget, e_allow) in &table {
        for (kind, key, expect) in [
            (Key::Plain, &plain, *e_plain),
            (Key::Budget, &budget, *e_budget),
            (Key::AllowList, &allow, *e_allow),
        ] {
            let before = f.mock.seen_count();
            let (status, body, id) = send(&f, key, req).await;
            let what = format!(
                "{:?} {} {} {kind:?}: {status} {body}",
                req.method, req.provider, req.path
            );
            match expect {
                Refused(code) => {
                    assert_eq!(status, code, "{what}");
                    assert_eq!(f.mock.seen_count(), before, "reached the provider: {what}");
                    continue;
                }
                Unpriced if status == 404 => {} // the mock has no such route: fine, it was forwarded
                _ => assert!(status < 400, "{what}"),
            }
            assert_eq!(f.mock.seen_count(), before + 1, "{what}");
            let t = trace(&f, id.unwrap()).await;
            match expect {
                Metered => assert!(
                    t.cost_nanos.unwrap_or(0) > 0,
                    "charged nothing: {what} {t:?}"
                ),
                Free => assert_eq!(t.cost_nanos, Some(0), "{what}"),
                Unpriced => assert_eq!(t.cost_nanos, None, "{what}"),
                Refused(_) => {}
            }
        }
    }
}

/// Batches on all three APIs: the estimate is reserved when the batch is created, held while it
/// runs, and replaced by what its results say (at the batch price) when they are read back:
/// once, however often they are read.
#[tokio::test]
async fn batches_are_charged_their_results_once() {
    let f = fixture().await;
    let budget = key_with(
        &f,
        KeyLimits {
            budget_total_nanos: Some(50_000_000_000),
            allowed_models: vec![
                "gpt-4o-mini".into(),
                "claude-haiku-4-5".into(),
                "gemini-2.5-flash".into(),
            ],
            ..Default::default()
        },
    )
    .await;
    let key_id = f
        .app
        .services
        .store
        .virtual_key_by_hash(&f.app.services.keys.token_hash(&budget))
        .await
        .unwrap()
        .unwrap()
        .id;
    let spent = || async {
        f.app
            .services
            .store
            .key_spend(key_id, antix::domain::now_ms())
            .await
            .unwrap()
            .total_nanos
    };

    // OpenAI: the input file is read on upload; a file with a model the key may not use fails
    // at batch creation, and a file the gateway never saw is refused.
    let up = |model: &str| {
        form(
            "openai",
            "/v1/files",
            vec![("purpose", "batch".into())],
            Some(("file", batch_file(model))),
        )
    };
    let (status, file, _) = send(&f, &budget, &up("gpt-4o-mini")).await;
    assert_eq!(status, 200, "{file}");
    let (status, body, id) = send(&f, &budget, &post("openai", "/v1/batches", json!({"input_file_id": file["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}))).await;
    assert_eq!(status, 200, "{body}");
    let created = trace(&f, id.unwrap()).await;
    assert_eq!(
        created.cost_nanos,
        Some(0),
        "the estimate is held, not charged"
    );
    let (_, unseen, _) = send(&f, &f.vk, &up("gpt-4o-mini")).await; // uploaded with a key without limits
    let _ = unseen;
    let (status, _, _) = send(&f, &budget, &post("openai", "/v1/batches", json!({"input_file_id": "file-never-seen", "endpoint": "/v1/chat/completions", "completion_window": "24h"}))).await;
    assert_eq!(status, 403);
    let (status, _, _) = send(&f, &budget, &up("gpt-4o")).await;
    assert_eq!(
        status, 403,
        "a batch file naming a model the key may not use"
    );
    let (_, done, _) = send(
        &f,
        &budget,
        &get(
            "openai",
            &format!("/v1/batches/{}", body["id"].as_str().unwrap()),
        ),
    )
    .await;
    let output = done["output_file_id"].as_str().unwrap().to_owned();
    let before = spent().await;
    let (status, _, id) = send(
        &f,
        &budget,
        &get("openai", &format!("/v1/files/{output}/content")),
    )
    .await;
    assert_eq!(status, 200);
    let results = trace(&f, id.unwrap()).await;
    // Three requests of the mock's usage at gpt-4o-mini's batch price.
    assert!(results.cost_nanos.unwrap() > 0, "{results:?}");
    assert_eq!(spent().await - before, results.cost_nanos.unwrap());
    // Read again: costs nothing more.
    let (_, _, id) = send(
        &f,
        &budget,
        &get("openai", &format!("/v1/files/{output}/content")),
    )
    .await;
    assert_eq!(trace(&f, id.unwrap()).await.cost_nanos, Some(0));

    // Anthropic: every request of the batch must be allowed.
    let batch = |models: &[&str]| {
        post(
            "anthropic",
            "/v1/messages/batches",
            json!({"requests": models.iter().enumerate().map(|(i, m)| json!({"custom_id": format!("r{i}"), "params": {"model": m, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}})).collect::<Vec<_>>()}),
        )
    };
    let (status, _, _) = send(
        &f,
        &budget,
        &batch(&["claude-haiku-4-5", "claude-opus-4-8"]),
    )
    .await;
    assert_eq!(
        status, 403,
        "a batch request naming a model the key may not use"
    );
    let (status, b, _) = send(
        &f,
        &budget,
        &batch(&["claude-haiku-4-5", "claude-haiku-4-5"]),
    )
    .await;
    assert_eq!(status, 200, "{b}");
    let (status, _, id) = send(
        &f,
        &budget,
        &get(
            "anthropic",
            &format!("/v1/messages/batches/{}/results", b["id"].as_str().unwrap()),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert!(trace(&f, id.unwrap()).await.cost_nanos.unwrap() > 0);

    // Gemini: inline requests; results when the batch is done.
    let (status, g, _) = send(&f, &budget, &post("gemini", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", json!({"batch": {"display_name": "t", "input_config": {"requests": {"requests": [{"request": {"contents": [{"parts": [{"text": "hi"}]}]}}]}}}}))).await;
    assert_eq!(status, 200, "{g}");
    let name = g["name"].as_str().unwrap();
    let (status, _, id) = send(&f, &budget, &get("gemini", &format!("/v1beta/{name}"))).await;
    assert_eq!(status, 200);
    assert!(trace(&f, id.unwrap()).await.cost_nanos.unwrap() > 0);
    // A batch of requests in a file the gateway cannot see is refused to a key with limits.
    let (status, _, _) = send(
        &f,
        &budget,
        &post(
            "gemini",
            "/v1beta/models/gemini-2.5-flash:batchGenerateContent",
            json!({"batch": {"input_config": {"file_name": "files/abc"}}}),
        ),
    )
    .await;
    assert_eq!(status, 403);
}

/// Bodies a key with limits cannot be sure of are refused; the same bodies pass through for a
/// key without limits (and for BYOK) as the provider would take them.
#[tokio::test]
async fn uncertain_bodies_are_refused_for_limited_keys_only() {
    let f = fixture().await;
    let allow = key_with(
        &f,
        KeyLimits {
            allowed_models: vec!["gpt-4o-mini".into()],
            ..Default::default()
        },
    )
    .await;
    for body in [
        r#"{"model":"gpt-4o-mini","model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":"gpt-4o-mini","n":"two","messages":[{"role":"user","content":"hi"}]}"#,
        r#""just a string""#,
    ] {
        let before = f.mock.seen_count();
        let res = f
            .app
            .client
            .post(format!("{}/v1/chat/completions", f.base("openai")))
            .bearer_auth(&allow)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body}");
        let err: Value = res.json().await.unwrap();
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cannot be read")
        );
        assert_eq!(f.mock.seen_count(), before, "{body}");
        // Passthrough and keys without limits: forwarded as the provider would take them.
        for key in [&f.vk, &"sk-proj-byok".to_owned()] {
            let before = f.mock.seen_count();
            let _ = f
                .app
                .client
                .post(format!("{}/v1/chat/completions", f.base("openai")))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(f.mock.seen_count(), before + 1, "{body}");
        }
    }
}

/// A call that reached the provider and got no answer (the client hung up while waiting, or the
/// first-byte timeout fired) may still be billed by the provider: it is charged its estimate,
/// visible as estimated, and the budget sees it. A call that never connected costs nothing.
#[tokio::test]
async fn hang_ups_and_timeouts_are_charged_their_estimate() {
    let f = crate::common::fixture_with(|env| {
        env.insert("ANTIX_FIRST_BYTE_TIMEOUT_MS".into(), "400".into());
    })
    .await;
    let budget = key_with(
        &f,
        KeyLimits {
            budget_total_nanos: Some(10_000_000_000),
            ..Default::default()
        },
    )
    .await;
    let url = format!("{}/v1/chat/completions", f.base("openai"));
    // The client gives up before the answer's head.
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(150))
        .build()
        .unwrap();
    let err = impatient
        .post(&url)
        .bearer_auth(&budget)
        .header("x-mock", "ttft_ms=300")
        .json(&chat("gpt-4o"))
        .send()
        .await;
    assert!(err.is_err());
    let t = f.trace().await;
    assert_eq!(t.outcome, "client_disconnected");
    assert_eq!(t.usage_source, "estimated");
    // 4 bytes a token in, the request's 20 output tokens: at gpt-4o's prices.
    assert!(t.cost_nanos.unwrap() > 20 * 10_000, "{t:?}");
    assert!(t.cost_estimated);
    // The provider never answers in time.
    let res = f
        .app
        .client
        .post(&url)
        .bearer_auth(&budget)
        .header("x-mock", "hang")
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 504);
    let traces = f.traces(2).await;
    let timeout = traces.iter().find(|t| t.outcome == "timeout").unwrap();
    assert!(timeout.cost_nanos.unwrap() > 0);
    let key_id = timeout.virtual_key_id.unwrap();
    let spent = f
        .app
        .services
        .store
        .key_spend(key_id, antix::domain::now_ms())
        .await
        .unwrap()
        .total_nanos;
    assert_eq!(
        spent,
        traces.iter().map(|t| t.cost_nanos.unwrap()).sum::<i64>()
    );
}

/// An endpoint an admin set to virtual keys only refuses the client's own keys and OAuth
/// tokens in the provider's shape, and still serves virtual keys.
#[tokio::test]
async fn endpoints_can_take_virtual_keys_only() {
    let f = fixture().await;
    f.app
        .services
        .store
        .set_endpoint_passthrough(f.endpoint.id, false)
        .await
        .unwrap();
    let url = format!("{}/v1/messages", f.base("anthropic"));
    let body = json!({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    for (name, value) in [
        ("x-api-key", "sk-ant-api03-own-key".to_owned()),
        (
            "authorization",
            "Bearer sk-ant-oat01-subscription".to_owned(),
        ),
    ] {
        let before = f.mock.seen_count();
        let res = f
            .app
            .client
            .post(&url)
            .header(name, value)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["type"], "error");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("virtual keys only")
        );
        assert_eq!(f.mock.seen_count(), before);
    }
    let res = f
        .app
        .client
        .post(&url)
        .header("x-api-key", &f.vk)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
