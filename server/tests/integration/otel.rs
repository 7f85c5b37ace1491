//! OpenTelemetry export against a real OTLP/HTTP receiver built on the official protobuf
//! definitions (`opentelemetry-proto`): each proxied call arrives as one span with the GenAI
//! semantic conventions' attributes, its trace id the Antix trace id, bodies as events only
//! when asked for, and no secret anywhere.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

use crate::common::fixture_with;

type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

/// An OTLP/HTTP receiver: decodes each export and answers as a collector does.
async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let g = g.clone();
                async move {
                    assert_eq!(headers["content-type"], "application/x-protobuf");
                    assert_eq!(headers["x-collector-key"], "k-123");
                    let req = ExportTraceServiceRequest::decode(body).unwrap();
                    g.lock().unwrap().push(req);
                    (
                        [("content-type", "application/x-protobuf")],
                        ExportTraceServiceResponse::default().encode_to_vec(),
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text(span: &Span, key: &str) -> String {
    match attr(span, key) {
        Some(Any::StringValue(s)) => s.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

fn int(span: &Span, key: &str) -> i64 {
    match attr(span, key) {
        Some(Any::IntValue(n)) => *n,
        other => panic!("{key}: {other:?}"),
    }
}

async fn spans(got: &Received, n: usize) -> Vec<(Vec<String>, Span)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let all: Vec<(Vec<String>, Span)> = got
            .lock()
            .unwrap()
            .iter()
            .flat_map(|req| req.resource_spans.iter())
            .flat_map(|rs| {
                let resource: Vec<String> = rs
                    .resource
                    .iter()
                    .flat_map(|r| r.attributes.iter())
                    .map(|kv| format!("{}={:?}", kv.key, kv.value))
                    .collect();
                rs.scope_spans
                    .iter()
                    .flat_map(|ss| ss.spans.iter())
                    .map(move |s| (resource.clone(), s.clone()))
            })
            .collect();
        if all.len() >= n || std::time::Instant::now() > deadline {
            assert_eq!(all.len(), n, "spans received");
            return all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn each_call_is_exported_as_a_gen_ai_span() {
    let (url, got) = receiver().await;
    let f = fixture_with(|env| {
        env.insert("ANTIX_OTEL_ENDPOINT".into(), url.clone());
        env.insert("ANTIX_OTEL_HEADERS".into(), "x-collector-key=k-123".into());
        env.insert("ANTIX_OTEL_CAPTURE_BODIES".into(), "true".into());
        env.insert("ANTIX_OTEL_SERVICE_NAME".into(), "gateway-ci".into());
    })
    .await;
    let res = f
        .app
        .client
        .post(format!("{}/chat/completions", f.base("openai")))
        .bearer_auth("sk-proj-otel-canary-0001")
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Trace me, please"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = f
        .app
        .client
        .post(format!("{}/messages", f.base("anthropic")))
        .header("x-api-key", &f.vk)
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": true,
            "messages": [{"role": "user", "content": "Stream to me"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let _ = res.bytes().await.unwrap();
    let traces = f.traces(2).await;
    let spans = spans(&got, 2).await;

    let chat = traces
        .iter()
        .find(|t| t.provider.as_deref() == Some("openai"))
        .unwrap();
    let (resource, span) = spans
        .iter()
        .find(|(_, s)| s.trace_id == chat.id.0.as_bytes().to_vec())
        .expect("the span's trace id is the Antix trace id");
    assert!(
        resource
            .iter()
            .any(|r| r.contains("service.name") && r.contains("gateway-ci")),
        "{resource:?}"
    );
    assert_eq!(span.name, "chat gpt-4o");
    assert_eq!(span.kind, 3, "SPAN_KIND_CLIENT");
    assert_eq!(text(span, "gen_ai.operation.name"), "chat");
    assert_eq!(text(span, "gen_ai.provider.name"), "openai");
    assert_eq!(text(span, "gen_ai.system"), "openai");
    assert_eq!(text(span, "gen_ai.request.model"), "gpt-4o");
    assert_eq!(
        text(span, "gen_ai.response.model"),
        chat.model.clone().unwrap()
    );
    assert_eq!(
        int(span, "gen_ai.usage.input_tokens"),
        chat.input_tokens.unwrap()
    );
    assert_eq!(
        int(span, "gen_ai.usage.output_tokens"),
        chat.output_tokens.unwrap()
    );
    assert_eq!(int(span, "http.response.status_code"), 200);
    assert_eq!(text(span, "antix.auth_mode"), "byok");
    assert_eq!(text(span, "antix.endpoint_id"), f.endpoint.id.to_string());
    let duration_us = (span.end_time_unix_nano - span.start_time_unix_nano) / 1000;
    assert_eq!(duration_us as i64, chat.latency_us);
    let names: Vec<&str> = span.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["gen_ai.content.prompt", "gen_ai.content.completion"]
    );
    let prompt = format!("{:?}", span.events[0].attributes);
    assert!(prompt.contains("Trace me, please"), "{prompt}");

    let stream = traces
        .iter()
        .find(|t| t.provider.as_deref() == Some("anthropic"))
        .unwrap();
    let (_, span) = spans
        .iter()
        .find(|(_, s)| s.trace_id == stream.id.0.as_bytes().to_vec())
        .unwrap();
    assert_eq!(text(span, "gen_ai.operation.name"), "chat");
    assert_eq!(text(span, "gen_ai.provider.name"), "anthropic");
    assert_eq!(text(span, "gen_ai.request.model"), "claude-sonnet-4-5");
    assert_eq!(text(span, "antix.auth_mode"), "virtual_key");
    assert_eq!(
        int(span, "gen_ai.usage.output_tokens"),
        stream.output_tokens.unwrap()
    );
    assert!(matches!(attr(span, "antix.ttft_ms"), Some(Any::DoubleValue(t)) if *t > 0.0));

    // Neither the client's key nor the virtual key went out.
    let everything = format!("{:?}", got.lock().unwrap());
    assert!(!everything.contains("otel-canary"));
    assert!(!everything.contains(&f.vk));
}

#[tokio::test]
async fn bodies_stay_home_unless_asked_for() {
    let (url, got) = receiver().await;
    let f = fixture_with(|env| {
        env.insert("ANTIX_OTEL_ENDPOINT".into(), format!("{url}/v1/traces"));
        env.insert("ANTIX_OTEL_HEADERS".into(), "x-collector-key=k-123".into());
    })
    .await;
    let res = f
        .app
        .client
        .post(format!("{}/chat/completions", f.base("openai")))
        .bearer_auth(&f.vk)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "A private prompt"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let spans = spans(&got, 1).await;
    let (_, span) = &spans[0];
    assert!(span.events.is_empty());
    assert!(!format!("{:?}", got.lock().unwrap()).contains("A private prompt"));
}
