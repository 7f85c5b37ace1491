//! Virtual-key limits enforced by the proxy: allow-lists, rate limits, budgets — and budgets
//! holding under concurrency across two gateway processes sharing one Postgres.

use std::collections::BTreeMap;

use antix::domain::KeyLimits;
use serde_json::{Value, json};

use crate::common::{
    Fixture, TestApp, fixture_with, gateway_env, org_with_endpoint, postgres_url, spawn_app_with,
    spawn_mock,
};

async fn key_with(f: &Fixture, limits: KeyLimits) -> String {
    use secrecy::ExposeSecret;
    let s = &f.app.services;
    antix::virtual_keys::issue(
        &s.store, &s.keys, f.org.id, f.admin.id, "limited", None, &limits,
    )
    .await
    .unwrap()
    .secret
    .expose_secret()
    .to_owned()
}

fn chat(model: &str) -> Value {
    json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "count to three"}]})
}

#[tokio::test]
async fn allow_lists_and_rate_limits() {
    let f = fixture_with(|_| {}).await;
    let other_endpoint = f
        .app
        .services
        .store
        .create_endpoint(&antix::store::endpoints::NewEndpoint {
            org: f.org.id,
            owner: f.admin.id,
            scope: antix::domain::Scope::OrgShared,
            name: "other",
        })
        .await
        .unwrap();
    let key = key_with(
        &f,
        KeyLimits {
            rpm: Some(3),
            allowed_models: vec!["gpt-4o*".into()],
            allowed_endpoints: vec![f.endpoint.id],
            ..Default::default()
        },
    )
    .await;
    let url = format!("{}/chat/completions", f.base("openai"));
    let send = |url: String, body: Value| {
        let c = f.app.client.clone();
        let key = key.clone();
        async move {
            c.post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let res = send(url.clone(), chat("claude-haiku-4-5")).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not allowed to use model")
    );
    let other = f.app.url(&format!(
        "/v1/{}/openai/chat/completions",
        other_endpoint.id
    ));
    assert_eq!(send(other, chat("gpt-4o")).await.status(), 403);
    for _ in 0..3 {
        assert_eq!(send(url.clone(), chat("gpt-4o-mini")).await.status(), 200);
    }
    let res = send(url.clone(), chat("gpt-4o-mini")).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(res.headers()["x-should-retry"], "true");
    let body: Value = res.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("3 requests per minute") && msg.contains("resets at"),
        "{msg}"
    );
    // Refusals are traced, and never reached the provider.
    assert_eq!(f.mock.stat("requests"), 3);
    let traces = f.traces(5).await;
    assert_eq!(traces.iter().filter(|t| t.outcome == "rejected").count(), 2);
}

#[tokio::test]
async fn a_budget_refuses_with_the_reset_time_and_fails_closed() {
    let f = fixture_with(|_| {}).await;
    // Room for one call's estimate ($0.000215 here), not for a second once the first is spent.
    let key = key_with(
        &f,
        KeyLimits {
            budget_daily_nanos: Some(250_000),
            ..Default::default()
        },
    )
    .await;
    let url = format!("{}/chat/completions", f.base("openai"));
    let first = f
        .app
        .client
        .post(&url)
        .bearer_auth(&key)
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    // Charged when its trace is written (off the request path).
    f.trace().await;
    let res = f
        .app
        .client
        .post(&url)
        .bearer_auth(&key)
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["x-should-retry"], "false");
    let body: Value = res.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.to_lowercase().contains("daily budget of $0.00025") && msg.contains("00:00 UTC"),
        "{msg}"
    );
    // A model with no price cannot be metered against a budget.
    let res = f
        .app
        .client
        .post(&url)
        .bearer_auth(&key)
        .json(&chat("gpt-unknown-model"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // No database, no budgeted call: 503, not a free pass and not a 401.
    f.app.services.store.close().await;
    let res = f
        .app
        .client
        .post(&url)
        .bearer_auth(&key)
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
}

/// The issue's own test: several gateway processes on one Postgres, many concurrent calls on
/// one key, and the budget overshot by at most what calls in flight held.
#[tokio::test]
async fn budgets_hold_across_two_gateways_on_one_postgres() {
    let Some(db) = antix::store::testing::TestDb::postgres().await.unwrap() else {
        assert!(
            !antix::store::testing::postgres_required(),
            "ANTIX_REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set"
        );
        eprintln!(
            "SKIPPED limits::budgets_hold_across_two_gateways_on_one_postgres: TEST_POSTGRES_URL is not set"
        );
        return;
    };
    let pg_url = postgres_url(&db);
    let mock = spawn_mock().await;
    let env = |e: &mut BTreeMap<String, String>| gateway_env(e, &pg_url, &mock.url());
    let a = spawn_app_with(env).await;
    let b = spawn_app_with(env).await;
    let s = &a.services;
    let (admin, org, endpoint) = org_with_endpoint(s, "pg").await;
    antix::credentials::set(
        &s.store,
        &s.keys,
        &antix::credentials::CredentialInput::single(
            org.id,
            antix::domain::Provider::OpenAi,
            &secrecy::SecretString::from("sk-org-secret-0000"),
            None,
            admin.id,
            0,
        ),
    )
    .await
    .unwrap();
    // What one call costs and what its reservation holds, from a probe on an unlimited key.
    let path = format!("/v1/{}/openai/chat/completions", endpoint.id);
    let probe = a
        .client
        .post(a.url(&path))
        .bearer_auth("sk-byok-probe")
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    let trace_id: antix::domain::TraceId = probe.headers()[antix::gateway::TRACE_HEADER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let cost = loop {
        if let Some(t) = s.store.trace(trace_id).await.unwrap() {
            break t.cost_nanos.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let body = serde_json::to_vec(&chat("gpt-4o")).unwrap();
    let hold = antix::limits::estimate_cost("gpt-4o", body.len(), Some(16)).unwrap();
    assert!(hold >= cost);
    let budget = 10 * hold;
    use secrecy::ExposeSecret;
    let key = antix::virtual_keys::issue(
        &s.store,
        &s.keys,
        org.id,
        admin.id,
        "budget",
        None,
        &KeyLimits {
            budget_total_nanos: Some(budget),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .secret
    .expose_secret()
    .to_owned();
    let calls: Vec<_> = (0..60)
        .map(|i| {
            let app = if i % 2 == 0 { &a } else { &b };
            let req = app
                .client
                .post(app.url(&path))
                .bearer_auth(&key)
                .json(&chat("gpt-4o"));
            tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut ok = 0;
    let mut limited = 0;
    for c in calls {
        match c.await.unwrap() {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok + limited, 60);
    assert!(ok >= 10 && limited > 0, "ok {ok}, limited {limited}");
    // Wait for every admitted call's trace (and so its charge) on both replicas.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let key_id = s
        .store
        .virtual_key_by_hash(&s.keys.token_hash(&key))
        .await
        .unwrap()
        .unwrap()
        .id;
    let spend = loop {
        let spend = s
            .store
            .key_spend(key_id, antix::domain::now_ms())
            .await
            .unwrap()
            .total_nanos;
        if spend >= ok * cost || std::time::Instant::now() > deadline {
            break spend;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(spend, ok * cost, "every admitted call charged once");
    assert!(
        spend <= budget + hold,
        "spend {spend} overshot budget {budget} by more than one call's hold {hold}"
    );
    eprintln!(
        "two replicas on Postgres: {ok} admitted, {limited} refused; spend {spend} of budget {budget} (one call costs {cost}, holds {hold})"
    );
    drop(a);
    drop(b);
    db.cleanup().await;
}

/// Revocation and archival made through one replica reach another within the cache lifetime.
#[tokio::test]
async fn revocation_and_archival_reach_another_replica_within_seconds() {
    let f = fixture_with(|_| {}).await;
    let db_url = f.app.services.settings.database_url.as_str().to_owned();
    let mock_url = f.mock.url();
    let other = spawn_app_with(|e| {
        e.insert("DATABASE_URL".into(), db_url.clone());
        e.insert("ANTIX_UPSTREAM_OPENAI".into(), mock_url.clone());
    })
    .await;
    let path = format!("/v1/{}/openai/chat/completions", f.endpoint.id);
    let call = |key: String| {
        let req = other
            .client
            .post(other.url(&path))
            .bearer_auth(key)
            .json(&chat("gpt-4o"));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(call(f.vk.clone()).await, 200);
    let s = &f.app.services;
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
    let started = std::time::Instant::now();
    while call(f.vk.clone()).await != 401 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "revocation not seen in 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let revoke_seen = started.elapsed();
    s.store
        .archive_endpoint(f.endpoint.id, antix::domain::now_ms())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    while call("sk-byok-x".into()).await != 410 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "archival not seen in 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    eprintln!(
        "seen by the other replica after {} ms (revocation) and {} ms (archival)",
        revoke_seen.as_millis(),
        started.elapsed().as_millis()
    );
}

#[expect(clippy::print_stderr, reason = "the figures are the test's report")]
fn report(line: &str) {
    eprintln!("{line}");
}

/// One metered route for the budget races: provider, path, body, and how the gateway reads it.
struct Route {
    provider: &'static str,
    path: &'static str,
    wire: antix::providers::Wire,
    body: RouteBody,
}

enum RouteBody {
    Json(Value),
    Form(&'static str, Vec<u8>),
}

fn metered_routes() -> Vec<Route> {
    use antix::providers::Wire;
    let j = RouteBody::Json;
    vec![
        Route {
            provider: "openai",
            path: "/v1/chat/completions",
            wire: Wire::OpenAiChat,
            body: j(chat("gpt-4o")),
        },
        Route {
            provider: "openai",
            path: "/v1/responses",
            wire: Wire::OpenAiResponses,
            body: j(
                json!({"model": "gpt-4.1", "input": "count to three", "max_output_tokens": 16}),
            ),
        },
        Route {
            provider: "openai",
            path: "/v1/embeddings",
            wire: Wire::OpenAiEmbeddings,
            body: j(json!({"model": "text-embedding-3-large", "input": "a sentence to embed"})),
        },
        Route {
            provider: "openai",
            path: "/v1/images/generations",
            wire: Wire::OpenAiImages,
            body: j(
                json!({"model": "gpt-image-1", "prompt": "a cat", "size": "1024x1024", "quality": "low"}),
            ),
        },
        Route {
            provider: "openai",
            path: "/v1/audio/speech",
            wire: Wire::OpenAiSpeech,
            body: j(
                json!({"model": "tts-1", "voice": "alloy", "input": "Hello there, this is a test of speech."}),
            ),
        },
        Route {
            provider: "openai",
            path: "/v1/audio/transcriptions",
            wire: Wire::OpenAiTranscription,
            body: RouteBody::Form("whisper-1", vec![1u8; 48_000]),
        },
        Route {
            provider: "anthropic",
            path: "/v1/messages",
            wire: Wire::AnthropicMessages,
            body: j(
                json!({"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "count to three"}]}),
            ),
        },
        Route {
            provider: "gemini",
            path: "/v1beta/models/gemini-2.5-flash:generateContent",
            wire: Wire::GeminiGenerate,
            body: j(
                json!({"contents": [{"parts": [{"text": "count to three"}]}], "generationConfig": {"maxOutputTokens": 16}}),
            ),
        },
        Route {
            provider: "gemini",
            path: "/v1beta/models/imagen-3.0-generate-001:predict",
            wire: Wire::GeminiPredict,
            body: j(json!({"instances": [{"prompt": "a cat"}], "parameters": {"sampleCount": 1}})),
        },
    ]
}

fn send_route(
    app: &TestApp,
    endpoint: antix::domain::EndpointId,
    key: &str,
    r: &Route,
) -> reqwest::RequestBuilder {
    let url = app.url(&format!("/v1/{endpoint}/{}{}", r.provider, r.path));
    let req = match r.provider {
        "anthropic" => app.client.post(url).header("x-api-key", key),
        "gemini" => app.client.post(url).header("x-goog-api-key", key),
        _ => app.client.post(url).bearer_auth(key),
    };
    match &r.body {
        RouteBody::Json(v) => req.json(v),
        RouteBody::Form(model, file) => req.multipart(
            reqwest::multipart::Form::new()
                .text("model", model.to_string())
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(file.clone()).file_name("a.mp3"),
                ),
        ),
    }
}

/// The reservation the gateway holds for one call of `r` (read the way the gateway reads it).
async fn hold_of(r: &Route) -> i64 {
    use antix::metering::read;
    let path_model = antix::gateway::target::path_model(r.path);
    let facts = match &r.body {
        RouteBody::Json(v) => read::json(
            r.wire,
            &serde_json::to_vec(v).unwrap(),
            path_model.as_deref(),
            true,
        )
        .unwrap(),
        RouteBody::Form(model, file) => antix::metering::Facts {
            models: vec![model.to_string()],
            audio_bytes: Some(file.len() as u64),
            n: 1,
            ..Default::default()
        },
    };
    antix::metering::estimate(r.wire, &facts).unwrap()
}

/// Races on every metered route: many concurrent calls, half through each of two gateways on
/// one database, against a budget of three calls' reservations. Admitted calls are each charged
/// once, and the budget is overshot by at most one reservation.
async fn budgets_hold_on_every_route(
    a: &TestApp,
    b: &TestApp,
    org: antix::domain::OrgId,
    admin: antix::domain::UserId,
    endpoint: antix::domain::EndpointId,
) {
    use secrecy::ExposeSecret;
    let s = &a.services;
    for r in metered_routes() {
        let hold = hold_of(&r).await;
        let budget = 3 * hold;
        let key = antix::virtual_keys::issue(
            &s.store,
            &s.keys,
            org,
            admin,
            "race",
            None,
            &KeyLimits {
                budget_total_nanos: Some(budget),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let key_id = key.key.id;
        let secret = key.secret.expose_secret().to_owned();
        let calls: Vec<_> = (0..24)
            .map(|i| {
                let app = if i % 2 == 0 { a } else { b };
                let req = send_route(app, endpoint, &secret, &r);
                tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
            })
            .collect();
        let (mut ok, mut refused) = (0i64, 0);
        for c in calls {
            match c.await.unwrap() {
                200 => ok += 1,
                429 => refused += 1,
                other => panic!("{}: unexpected status {other}", r.path),
            }
        }
        assert!(
            ok >= 3 && refused > 0,
            "{}: ok {ok}, refused {refused}",
            r.path
        );
        // Every admitted call's trace written (on both gateways), its cost charged once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let (spend, charged) = loop {
            let rows = s
                .store
                .list_traces(
                    endpoint,
                    &antix::store::observe::TraceFilter {
                        key: Some(key_id),
                        errors: Some(false),
                        ..Default::default()
                    },
                    None,
                    500,
                )
                .await
                .unwrap()
                .rows;
            let charged: i64 = rows.iter().map(|t| t.cost_nanos.unwrap_or(0)).sum();
            let spend = s
                .store
                .key_spend(key_id, antix::domain::now_ms())
                .await
                .unwrap()
                .total_nanos;
            if (rows.len() as i64 == ok && spend == charged) || std::time::Instant::now() > deadline
            {
                assert_eq!(rows.len() as i64, ok, "{}", r.path);
                break (spend, charged);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(
            spend, charged,
            "{}: every admitted call charged once",
            r.path
        );
        assert!(charged > 0, "{}", r.path);
        assert!(
            spend <= budget + hold,
            "{}: spend {spend} overshot budget {budget} by more than one hold {hold}",
            r.path
        );
        report(&format!(
            "{}: {ok} admitted, {refused} refused; spend {spend} of budget {budget} (hold {hold})",
            r.path
        ));
    }
}

#[tokio::test]
async fn budgets_hold_on_every_metered_route_on_sqlite() {
    let f = fixture_with(|_| {}).await;
    let db_url = f.app.services.settings.database_url.as_str().to_owned();
    let mock_url = f.mock.url();
    let other = spawn_app_with(|e| {
        e.insert("DATABASE_URL".into(), db_url.clone());
        for var in [
            "ANTIX_UPSTREAM_OPENAI",
            "ANTIX_UPSTREAM_ANTHROPIC",
            "ANTIX_UPSTREAM_GEMINI",
        ] {
            e.insert(var.into(), mock_url.clone());
        }
    })
    .await;
    budgets_hold_on_every_route(&f.app, &other, f.org.id, f.admin.id, f.endpoint.id).await;
}

#[tokio::test]
async fn budgets_hold_on_every_metered_route_across_two_gateways_on_postgres() {
    let Some(db) = antix::store::testing::postgres_or_skip(
        "limits::budgets_hold_on_every_metered_route_across_two_gateways_on_postgres",
    )
    .await
    .unwrap() else {
        return;
    };
    let pg_url = postgres_url(&db);
    let mock = spawn_mock().await;
    let env = |e: &mut BTreeMap<String, String>| gateway_env(e, &pg_url, &mock.url());
    let a = spawn_app_with(env).await;
    let b = spawn_app_with(env).await;
    let s = &a.services;
    let (admin, org, endpoint) = org_with_endpoint(s, "pg").await;
    for p in antix::domain::Provider::ALL {
        antix::credentials::set(
            &s.store,
            &s.keys,
            &antix::credentials::CredentialInput::single(
                org.id,
                *p,
                &secrecy::SecretString::from("sk-org-secret-0000"),
                None,
                admin.id,
                0,
            ),
        )
        .await
        .unwrap();
    }
    budgets_hold_on_every_route(&a, &b, org.id, admin.id, endpoint.id).await;
    drop(a);
    drop(b);
    db.cleanup().await;
}
