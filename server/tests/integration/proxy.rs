//! The proxy end to end over real sockets: gateway on a port, mock provider on another.
//! Each test checks what the client gets and what the trace says.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::{ORG_SECRET, fixture, fixture_with};

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "Say hello to the gateway"}]})
}

#[tokio::test]
async fn byok_chat_is_forwarded_and_traced_with_an_estimate() {
    let f = fixture().await;
    let res = f
        .app
        .client
        .post(format!("{}/chat/completions", f.base("openai")))
        .bearer_auth("sk-proj-byok-canary-0001")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let trace_id = res.headers()[antix::gateway::TRACE_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = res.json().await.unwrap();
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("Mock answer")
    );
    let t = f.trace().await;
    assert_eq!(t.id.to_string(), trace_id);
    assert_eq!(t.auth_mode, "byok");
    assert_eq!(t.provider.as_deref(), Some("openai"));
    assert_eq!(t.wire.as_deref(), Some("openai.chat"));
    assert_eq!(t.model.as_deref(), Some("gpt-4o"));
    assert_eq!(t.status_code, 200);
    assert_eq!(t.outcome, "ok");
    assert_eq!(t.usage_source, "provider");
    assert_eq!(t.input_tokens, body["usage"]["prompt_tokens"].as_i64());
    assert_eq!(t.output_tokens, body["usage"]["completion_tokens"].as_i64());
    // gpt-4o at $2.50/M in, $10/M out.
    let expected = t.input_tokens.unwrap() * 2500 + t.output_tokens.unwrap() * 10_000;
    assert_eq!(t.cost_nanos, Some(expected));
    assert!(t.cost_estimated, "BYOK costs are estimates");
    assert!(t.latency_us > 0 && t.ttft_us.is_some());
    let stored = f.stored_text(t.id).await;
    assert!(
        !stored.contains("byok-canary"),
        "the client's key was stored"
    );
    assert!(stored.contains("Say hello to the gateway"));
}

#[tokio::test]
async fn virtual_key_uses_the_org_credential_and_hides_injected_usage() {
    let f = fixture().await;
    let res = f
        .app
        .client
        .post(format!("{}/v1/chat/completions", f.base("openai")))
        .bearer_auth(&f.vk)
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let text = res.text().await.unwrap();
    // The client did not ask for usage, so it sees none (not even `"usage":null`).
    assert!(!text.contains("usage"), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"));
    let t = f.trace().await;
    assert_eq!(t.auth_mode, "virtual_key");
    assert!(t.virtual_key_id.is_some());
    assert!(t.is_stream);
    assert_eq!(t.usage_source, "provider");
    assert!(t.input_tokens.unwrap() > 0 && t.output_tokens.unwrap() > 0);
    assert!(!t.cost_estimated, "virtual-key traffic is billed");
    let stored = f.stored_text(t.id).await;
    assert!(!stored.contains(&f.vk) && !stored.contains(ORG_SECRET));

    // The org credential, not the virtual key, is what reached the provider: the mock echoes it.
    let res = f
        .app
        .client
        .post(format!("{}/v1/chat/completions", f.base("openai")))
        .bearer_auth(&f.vk)
        .header("x-mock", "fail=401;echo_key")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body = res.text().await.unwrap();
    assert!(body.contains(ORG_SECRET) && !body.contains(&f.vk), "{body}");
    let traces = f.traces(2).await;
    let stored = f.stored_text(traces[0].id).await;
    assert!(
        !stored.contains(ORG_SECRET),
        "an echoed credential was stored"
    );
}

#[tokio::test]
async fn anthropic_stream_usage_and_session() {
    let f = fixture().await;
    let req = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "Refactor the parser"}]});
    let res = f
        .app
        .client
        .post(format!("{}/v1/messages", f.base("anthropic")))
        .header("x-api-key", &f.vk)
        .header("anthropic-version", "2023-06-01")
        .header("x-mock", "cache_read=1000;cache_write=200")
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains("message_stop"));
    let t = f.trace().await;
    assert_eq!(t.wire.as_deref(), Some("anthropic.messages"));
    assert_eq!(t.cache_read_tokens, Some(1000));
    assert_eq!(t.cache_write_tokens, Some(200));
    // Normalized input includes the cache reads and writes.
    assert!(t.input_tokens.unwrap() > 1200);
    assert!(t.session_key.as_deref().unwrap().starts_with("fp:"));
    assert!(t.cost_nanos.unwrap() > 0);
}

#[tokio::test]
async fn gemini_key_in_the_query_is_never_stored() {
    let f = fixture().await;
    let res = f
        .app
        .client
        .post(format!(
            "{}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=AIza-canary-42",
            f.base("gemini")
        ))
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let _ = res.text().await.unwrap();
    let t = f.trace().await;
    assert_eq!(t.auth_mode, "byok");
    assert_eq!(t.model.as_deref(), Some("gemini-2.5-flash"));
    assert!(t.path.contains("key=<redacted>"), "{}", t.path);
    assert_eq!(t.usage_source, "provider");
    let stored = f.stored_text(t.id).await;
    assert!(!stored.contains("AIza-canary-42"));
}

#[tokio::test]
async fn refusals_are_provider_shaped_and_never_reach_the_provider() {
    let f = fixture().await;
    let c = &f.app.client;
    let other_org = f
        .app
        .services
        .store
        .create_organization("Other", f.admin.id)
        .await
        .unwrap();
    let foreign = antix::virtual_keys::issue(
        &f.app.services.store,
        &f.app.services.keys,
        other_org.id,
        f.admin.id,
        "foreign",
        None,
        &Default::default(),
    )
    .await
    .unwrap();
    use secrecy::ExposeSecret;
    let foreign = foreign.secret.expose_secret().to_owned();
    let bogus = antix::crypto::generate_virtual_key();
    type Case<'a> = (String, Vec<(&'a str, String)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            format!("{}/v1/messages", f.base("anthropic")),
            vec![],
            401,
            "No API key",
        ),
        (
            format!("{}/v1/messages", f.base("anthropic")),
            vec![("x-api-key", bogus.clone())],
            401,
            "Invalid virtual key",
        ),
        (
            format!("{}/v1/messages", f.base("anthropic")),
            vec![("x-api-key", "sk-vk-garbage".into())],
            401,
            "Invalid virtual key",
        ),
        (
            format!("{}/v1/messages", f.base("anthropic")),
            vec![("x-api-key", foreign.clone())],
            403,
            "another organization",
        ),
        (
            f.app.url(&format!(
                "/v1/{}/anthropic/v1/messages",
                uuid::Uuid::new_v4()
            )),
            vec![("x-api-key", f.vk.clone())],
            404,
            "Unknown endpoint",
        ),
    ];
    for (url, headers, status, needle) in cases {
        let mut req = c
            .post(&url)
            .json(&json!({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": []}));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), status, "{url}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["type"], "error", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(needle),
            "{body}"
        );
    }
    assert_eq!(
        f.mock.stat("requests"),
        0,
        "a refused request reached the provider"
    );
    // Every refusal on a known endpoint is traced; the unknown endpoint has no tenant.
    let traces = f.traces(4).await;
    assert!(traces.iter().all(|t| t.outcome == "rejected"));
    for t in &traces {
        let stored = f.stored_text(t.id).await;
        assert!(!stored.contains(&foreign) && !stored.contains(&bogus));
    }
}

#[tokio::test]
async fn revoked_keys_and_archived_endpoints() {
    let f = fixture().await;
    let s = &f.app.services;
    let url = format!("{}/chat/completions", f.base("openai"));
    let ok = f
        .app
        .client
        .post(&url)
        .bearer_auth(&f.vk)
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let key = s
        .store
        .virtual_key_by_hash(&s.keys.token_hash(&f.vk))
        .await
        .unwrap()
        .unwrap();
    s.store
        .revoke_virtual_key(f.org.id, key.id, antix::domain::now_ms())
        .await
        .unwrap();
    let res = f
        .app
        .client
        .post(&url)
        .bearer_auth(&f.vk)
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );

    s.store
        .archive_endpoint(f.endpoint.id, antix::domain::now_ms())
        .await
        .unwrap();
    let res = f
        .app
        .client
        .post(&url)
        .bearer_auth("sk-proj-x")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("archived")
    );
    assert_eq!(f.mock.stat("requests"), 1);
}

#[tokio::test]
async fn upstream_errors_are_relayed_or_reshaped() {
    let f = fixture().await;
    let url = format!("{}/v1/messages", f.base("anthropic"));
    let req = json!({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]});
    for (mock, status, retry_after, json_passthrough) in [
        ("fail=429;retry_after=7", 429, Some("7"), true),
        ("fail=529", 529, None, true),
        ("html=502", 502, None, false),
        ("malformed=500", 502, None, false),
        ("empty=503", 502, None, false),
        ("empty=429;retry_after=3", 429, None, false),
    ] {
        let res = f
            .app
            .client
            .post(&url)
            .header("x-api-key", "sk-ant-byok")
            .header("x-mock", mock)
            .json(&req)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{mock}");
        if let Some(ra) = retry_after {
            assert_eq!(res.headers()["retry-after"], ra, "{mock}");
        }
        let body: Value = res
            .json()
            .await
            .unwrap_or_else(|_| panic!("{mock}: not JSON"));
        assert_eq!(body["type"], "error", "{mock}: {body}");
        if !json_passthrough {
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("not a JSON error"),
                "{body}"
            );
        }
    }
    let traces = f.traces(6).await;
    assert!(
        traces
            .iter()
            .all(|t| t.status_code >= 400 && t.error.is_some()),
        "{traces:?}"
    );
}

#[tokio::test]
async fn unreachable_and_silent_upstreams_time_out_cleanly() {
    let f = fixture_with(|env| {
        env.insert("ANTIX_FIRST_BYTE_TIMEOUT_MS".into(), "300".into());
    })
    .await;
    let res = f
        .app
        .client
        .post(format!("{}/chat/completions", f.base("openai")))
        .bearer_auth("sk-x")
        .header("x-mock", "hang")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 504);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "timeout");
    let t = f.trace().await;
    assert_eq!(t.outcome, "timeout");

    // Nothing listening upstream at all.
    let dead = fixture_with(|env| {
        env.insert("ANTIX_UPSTREAM_OPENAI".into(), "http://127.0.0.1:9".into());
    })
    .await;
    let res = dead
        .app
        .client
        .post(format!("{}/chat/completions", dead.base("openai")))
        .bearer_auth("sk-x")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Could not reach")
    );
    assert!(
        !body.to_string().contains("127.0.0.1:9"),
        "upstream URL leaked: {body}"
    );
    assert_eq!(dead.trace().await.outcome, "upstream_error");
}

#[tokio::test]
async fn a_cut_stream_ends_with_an_error_event_and_an_estimated_trace() {
    let f = fixture().await;
    let res = f
        .app
        .client
        .post(format!("{}/v1/messages", f.base("anthropic")))
        .header("x-api-key", "sk-ant-byok")
        .header("x-mock", "cut_after=2;chunks=6")
        .json(
            &json!({"model": "claude-haiku-4-5", "max_tokens": 50, "stream": true,
            "messages": [{"role": "user", "content": "Tell a story"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = String::new();
    let mut stream = res.bytes_stream();
    let mut ended_badly = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => body.push_str(&String::from_utf8_lossy(&c)),
            Err(_) => {
                ended_badly = true;
                break;
            }
        }
    }
    assert!(ended_badly, "a cut stream must not end like a complete one");
    assert!(body.contains("event: error"), "{body}");
    assert!(!body.contains("message_stop"));
    let t = f.trace().await;
    assert_eq!(t.outcome, "upstream_cut");
    assert_eq!(t.usage_source, "estimated");
    assert!(t.output_tokens.unwrap() > 0);
    assert!(t.cost_estimated);
}

#[tokio::test]
async fn a_stalled_stream_hits_the_idle_timeout() {
    let f = fixture_with(|env| {
        env.insert("ANTIX_IDLE_TIMEOUT_MS".into(), "400".into());
    })
    .await;
    let started = std::time::Instant::now();
    let res = f
        .app
        .client
        .post(format!("{}/chat/completions", f.base("openai")))
        .bearer_auth("sk-x")
        .header("x-mock", "stall_after=2")
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&collect_lossy(res).await).into_owned();
    assert!(text.contains("idle timeout"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let t = f.trace().await;
    assert_eq!(t.outcome, "timeout");
}

async fn collect_lossy(res: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = res.bytes_stream();
    while let Some(Ok(c)) = s.next().await {
        out.extend_from_slice(&c);
    }
    out
}

#[tokio::test]
async fn client_disconnect_cancels_upstream_and_keeps_the_partial_trace() {
    let f = fixture().await;
    let res = f
        .app
        .client
        .post(format!("{}/chat/completions", f.base("openai")))
        .bearer_auth("sk-x")
        .header("x-mock", "chunks=200;delay_ms=50")
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    let mut stream = res.bytes_stream();
    let mut got = 0;
    while got < 3 {
        if stream.next().await.is_some() {
            got += 1;
        }
    }
    drop(stream);
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while f.mock.stat("cancelled") == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        f.mock.stat("cancelled"),
        1,
        "the upstream stream was not closed within 1 s"
    );
    let t = f.trace().await;
    assert_eq!(t.outcome, "client_disconnected");
    assert_eq!(t.usage_source, "estimated");
    assert!(t.output_tokens.unwrap() > 0);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let f = fixture_with(|env| {
        env.insert("ANTIX_MAX_REQUEST_BODY_BYTES".into(), "2048".into());
    })
    .await;
    let big =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x".repeat(5000)}]});
    let res = f
        .app
        .client
        .post(format!("{}/chat/completions", f.base("openai")))
        .bearer_auth("sk-x")
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(f.mock.stat("requests"), 0);

    // A streamed (chunked) non-JSON body is capped on the stream.
    let chunks =
        futures_util::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 1024])));
    let res = f
        .app
        .client
        .post(format!("{}/v1/audio/transcriptions", f.base("openai")))
        .bearer_auth("sk-x")
        .header("content-type", "multipart/form-data; boundary=x")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn multi_routes_by_model_and_header() {
    let f = fixture().await;
    let url = format!("{}/chat/completions", f.base("multi"));
    for (model, header, expected_provider, expected_wire) in [
        // Another provider's model: translated into its own API.
        ("claude-haiku-4-5", None, "anthropic", "anthropic.messages"),
        ("gemini-2.5-flash", None, "gemini", "gemini.generate"),
        ("gpt-4.1", None, "openai", "openai.chat"),
        (
            "my-custom-model",
            Some("anthropic"),
            "anthropic",
            "anthropic.messages",
        ),
    ] {
        let mut req = f
            .app
            .client
            .post(&url)
            .bearer_auth(&f.vk)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}));
        if let Some(h) = header {
            req = req.header("x-antix-provider", h);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{model}");
        let row = loop {
            let id: antix::domain::TraceId = res.headers()[antix::gateway::TRACE_HEADER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            if let Some(r) = f.app.services.store.trace(id).await.unwrap() {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(row.provider.as_deref(), Some(expected_provider), "{model}");
        assert_eq!(row.wire.as_deref(), Some(expected_wire));
    }
    let res = f
        .app
        .client
        .post(&url)
        .bearer_auth(&f.vk)
        .json(&json!({"model": "llama-3-70b", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Cannot route model")
    );
}

#[tokio::test]
async fn path_escapes_are_refused() {
    let f = fixture().await;
    for path in ["../../admin", "%2e%2e/admin", "v1%2Fchat", "@evil.com/x"] {
        let res = f
            .app
            .client
            .get(format!("{}/{path}", f.base("openai")))
            .bearer_auth("sk-x")
            .send()
            .await
            .unwrap();
        assert!(
            res.status() == 400 || res.status() == 404,
            "{path}: {}",
            res.status()
        );
    }
    assert_eq!(f.mock.stat("requests"), 0);
}

#[tokio::test]
async fn models_and_count_tokens_are_free() {
    let f = fixture().await;
    let res = f
        .app
        .client
        .get(format!("{}/models", f.base("openai")))
        .bearer_auth("sk-x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let t = f.trace().await;
    assert_eq!(t.usage_source, "not_applicable");
    assert_eq!(t.cost_nanos, Some(0));
}

/// K2: the fixture's virtual key in every credential position, scheme and casing reaches the
/// provider as the organization's credential, never as itself; refused keys in the same places
/// are refused, never passed through as BYOK.
#[tokio::test]
async fn a_virtual_key_never_leaves_whatever_wraps_it() {
    use base64::Engine as _;
    let f = fixture().await;
    let c = &f.app.client;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("user:{}", f.vk));
    let body = json!({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let valid: Vec<(&str, String)> = vec![
        ("authorization", format!("Token {}", f.vk)),
        ("authorization", format!("bearer   {}", f.vk)),
        ("authorization", format!("Basic {basic}")),
        ("x-api-key", format!("Bearer {}", f.vk)),
        ("x-goog-api-key", f.vk.clone()),
        ("x-some-other-header", f.vk.clone()),
    ];
    for (name, value) in &valid {
        let res = c
            .post(format!("{}/v1/messages", f.base("anthropic")))
            .header(*name, value)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}: {value}");
    }
    let bogus = format!("{}x", f.vk);
    for (name, value) in [
        ("authorization", format!("Token {bogus}")),
        ("x-api-key", format!("Bearer {bogus}")),
        ("x-api-key", bogus.to_uppercase()),
        ("x-whatever", bogus.clone()),
    ] {
        let res = c
            .post(format!("{}/v1/messages", f.base("anthropic")))
            .header("x-api-key-2", "sk-ant-api03-real-looking")
            .header(name, &value)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{name}: {value}");
    }
    let res = c
        .post(format!(
            "{}/v1beta/models/gemini-2.5-flash:generateContent?alt=json&api_key={bogus}",
            f.base("gemini")
        ))
        .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let seen = f.mock.state.seen();
    assert_eq!(f.mock.stat("requests"), valid.len() as u64, "{seen}");
    assert!(!seen.to_ascii_lowercase().contains("sk-vk-"), "{seen}");
    assert!(seen.contains(crate::common::ORG_SECRET));
}

/// An unknown virtual key is traced as a virtual-key attempt with its visible prefix (never
/// the key), and the filter strip finds such attempts.
#[tokio::test]
async fn refused_virtual_keys_are_traced_as_attempts() {
    let f = fixture().await;
    let bogus = antix::crypto::generate_virtual_key();
    let res = f
        .app
        .client
        .post(format!("{}/v1/chat/completions", f.base("openai")))
        .bearer_auth(&bogus)
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let t = f.trace().await;
    assert_eq!(t.auth_mode, "virtual_key");
    assert_eq!(t.virtual_key_id, None);
    let hint = t.key_hint.clone().unwrap();
    assert!(hint.starts_with("sk-vk-") && hint.ends_with('…') && hint.len() < 20);
    assert!(!f.stored_text(t.id).await.contains(&bogus));
    let filter = antix::store::observe::TraceFilter {
        unknown_key: true,
        ..Default::default()
    };
    let page = f
        .app
        .services
        .store
        .list_traces(f.endpoint.id, &filter, None, 50)
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
}

/// Claude Code's start-up probe (`HEAD` at the base URL, no credential) is answered and not
/// recorded as a model call.
#[tokio::test]
async fn a_credentialless_head_probe_is_answered_without_a_trace() {
    let f = fixture().await;
    for path in ["", "/", "/v1/", "/api/hello"] {
        let res = f
            .app
            .client
            .head(format!("{}{path}", f.base("anthropic")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    // A real call afterwards is the only trace.
    let res = f
        .app
        .client
        .post(format!("{}/v1/chat/completions", f.base("openai")))
        .bearer_auth("sk-proj-byok")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(f.trace().await.method, "POST");
    assert_eq!(f.mock.stat("requests"), 1);
}
