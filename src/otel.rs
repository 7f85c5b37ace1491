//! OpenTelemetry export (optional, off by default): each recorded call becomes one OTLP span
//! following the GenAI semantic conventions (`gen_ai.*`: provider, operation, request and
//! response model, response id, token usage), with Antix's own facts under `antix.*` (endpoint,
//! organization, auth mode, cost, time to first token, session). Request and response bodies
//! go along as span events only when `ANTIX_OTEL_CAPTURE_BODIES` is on, redacted as recorded.
//!
//! Spans are made by the recorder's writer, off the request path, and sent in batches by the
//! SDK's batch processor on its own thread (OTLP over HTTP, protobuf). Its queue is bounded: a
//! collector that is down costs dropped spans, never memory or proxy latency. The span's trace
//! id is the Antix trace id, so a span and its trace in the portal name each other.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{Event, Span as _, SpanBuilder, SpanId, SpanKind, Status, TraceId};
use opentelemetry::{KeyValue, Value};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};
use secrecy::ExposeSecret;

pub use crate::config::OtelSettings;

use crate::domain::Outcome;
use crate::store::traces::TraceRecord;

/// The most body bytes one span event carries.
pub const MAX_EVENT_BODY: usize = 64 * 1024;
/// Spans waiting to be sent; beyond it new ones are dropped (and counted by the SDK).
const MAX_QUEUE: usize = 8192;
/// How long a finished span may wait for its batch.
const SCHEDULED_DELAY: Duration = Duration::from_millis(1000);

/// The running exporter. Cheap to share (`Arc`).
pub struct Exporter {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    capture_bodies: bool,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("capture_bodies", &self.capture_bodies)
            .finish_non_exhaustive()
    }
}

impl Exporter {
    pub fn start(s: &OtelSettings) -> Result<Self, String> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(s.traces_url.clone())
            .with_timeout(Duration::from_secs(10))
            .with_headers(
                s.headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.expose_secret().to_owned()))
                    .collect::<HashMap<_, _>>(),
            )
            .build()
            .map_err(|e| e.to_string())?;
        let batch = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(MAX_QUEUE)
                    .with_scheduled_delay(SCHEDULED_DELAY)
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(batch)
            .with_resource(
                Resource::builder()
                    .with_service_name(s.service_name.clone())
                    .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                    .build(),
            )
            .build();
        let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "antix");
        Ok(Exporter {
            provider,
            tracer,
            capture_bodies: s.capture_bodies,
        })
    }

    /// Queues one call's span (never blocks: a full queue drops it).
    pub fn export(&self, r: &TraceRecord) {
        let start = at(r.started_at);
        let end = start + Duration::from_micros(u64::try_from(r.latency_us).unwrap_or(0));
        let operation = operation(r.wire.as_deref());
        let name = match &r.model {
            Some(m) => format!("{operation} {m}"),
            None => operation.to_owned(),
        };
        let id = r.id.0.into_bytes();
        let mut span_id = [0u8; 8];
        span_id.copy_from_slice(&id[8..]);
        let mut builder = SpanBuilder::from_name(name)
            .with_kind(SpanKind::Client)
            .with_trace_id(TraceId::from_bytes(id))
            .with_span_id(SpanId::from_bytes(span_id))
            .with_start_time(start)
            .with_attributes(attributes(r, operation));
        if r.outcome != Outcome::Ok || r.status_code >= 400 {
            builder = builder.with_status(Status::error(
                r.error
                    .clone()
                    .unwrap_or_else(|| format!("HTTP {}", r.status_code)),
            ));
        }
        if self.capture_bodies {
            builder = builder.with_events(body_events(r, end));
        }
        let mut span = builder.start(&self.tracer);
        span.end_with_timestamp(end);
    }

    /// Sends what is queued now (tests; shutdown).
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "OpenTelemetry export: flush failed");
        }
    }

    /// Sends what is queued and stops.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "OpenTelemetry export: shutdown failed");
        }
    }
}

fn at(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// `gen_ai.operation.name` of a call, from the API it used (the conventions' names where they
/// have one, else the API's own).
pub fn operation(wire: Option<&str>) -> &str {
    match wire.unwrap_or("") {
        "openai.chat" | "openai.responses" | "anthropic.messages" => "chat",
        "openai.embeddings" | "gemini.embed" => "embeddings",
        "openai.completions" => "text_completion",
        "gemini.generate" => "generate_content",
        "" => "request",
        w => w.split_once('.').map_or(w, |(_, op)| op),
    }
}

/// `gen_ai.provider.name` (and the older `gen_ai.system`) values of the conventions.
fn provider_name(p: &str) -> &str {
    match p {
        "gemini" => "gcp.gemini",
        other => other,
    }
}

fn attributes(r: &TraceRecord, operation: &str) -> Vec<KeyValue> {
    let mut a = vec![
        KeyValue::new("gen_ai.operation.name", operation.to_owned()),
        KeyValue::new("http.request.method", r.method.clone()),
        KeyValue::new("url.path", r.path.clone()),
        KeyValue::new("http.response.status_code", i64::from(r.status_code)),
        KeyValue::new("antix.trace_id", r.id.0.to_string()),
        KeyValue::new("antix.endpoint_id", r.endpoint_id.0.to_string()),
        KeyValue::new("antix.org_id", r.org_id.0.to_string()),
        KeyValue::new("antix.auth_mode", r.auth_mode.clone()),
        KeyValue::new("antix.outcome", r.outcome.as_str()),
        KeyValue::new("antix.stream", r.is_stream),
        KeyValue::new("antix.cost_estimated", r.cost_estimated),
    ];
    if let Some(p) = &r.provider {
        a.push(KeyValue::new(
            "gen_ai.provider.name",
            provider_name(p).to_owned(),
        ));
        a.push(KeyValue::new("gen_ai.system", provider_name(p).to_owned()));
    }
    // The recorded model is the one the provider says answered (else the one asked for).
    if let Some(m) = request_model(r).or_else(|| r.model.clone()) {
        a.push(KeyValue::new("gen_ai.request.model", m));
    }
    if let Some(m) = &r.model {
        a.push(KeyValue::new("gen_ai.response.model", m.clone()));
    }
    if let Some(id) = &r.response_id {
        a.push(KeyValue::new("gen_ai.response.id", id.clone()));
    }
    let u = &r.usage;
    for (key, v) in [
        ("gen_ai.usage.input_tokens", u.input_tokens),
        ("gen_ai.usage.output_tokens", u.output_tokens),
        ("gen_ai.usage.cache_read.input_tokens", u.cache_read_tokens),
        (
            "gen_ai.usage.cache_creation.input_tokens",
            u.cache_write_tokens,
        ),
        ("antix.usage.reasoning_tokens", u.reasoning_tokens),
    ] {
        if let Some(n) = v {
            a.push(KeyValue::new(key, i64::try_from(n).unwrap_or(i64::MAX)));
        }
    }
    if let Some(c) = r.cost_nanos {
        a.push(KeyValue::new("antix.cost_usd", Value::F64(c as f64 / 1e9)));
    }
    if let Some(t) = r.ttft_us {
        a.push(KeyValue::new(
            "antix.ttft_ms",
            Value::F64(t as f64 / 1000.0),
        ));
    }
    if let Some(k) = r.virtual_key_id {
        a.push(KeyValue::new("antix.virtual_key_id", k.0.to_string()));
    }
    if let Some(s) = &r.session_key {
        a.push(KeyValue::new("antix.session", s.clone()));
    }
    if r.outcome != Outcome::Ok {
        a.push(KeyValue::new("error.type", r.outcome.as_str()));
    }
    a
}

fn decompressed(z: Option<&Vec<u8>>) -> Option<Vec<u8>> {
    z.and_then(|z| crate::store::compression::decompress(z, 64 << 20))
}

/// The model the client asked for: the request body's `model`, or Gemini's path
/// (`…/models/<model>:generateContent`).
fn request_model(r: &TraceRecord) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Asked {
        model: Option<String>,
    }
    let from_path = r
        .path
        .split_once("/models/")
        .and_then(|(_, rest)| rest.split([':', '/', '?']).next())
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    from_path
        .or_else(|| {
            let body = decompressed(r.bodies.request_body.as_ref())?;
            serde_json::from_slice::<Asked>(&body).ok()?.model
        })
        .filter(|m| !m.is_empty() && m.len() <= 200)
}

fn capped(bytes: Vec<u8>) -> String {
    let mut s = String::from_utf8_lossy(&bytes).into_owned();
    if s.len() > MAX_EVENT_BODY {
        let mut cut = MAX_EVENT_BODY;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn body_events(r: &TraceRecord, end: SystemTime) -> Vec<Event> {
    let start = at(r.started_at);
    let mut events = Vec::new();
    if let Some(b) = decompressed(r.bodies.request_body.as_ref()) {
        events.push(Event::new(
            "gen_ai.content.prompt",
            start,
            vec![KeyValue::new("gen_ai.prompt", capped(b))],
            0,
        ));
    }
    let answer = decompressed(r.bodies.response_assembled.as_ref())
        .or_else(|| decompressed(r.bodies.response_body.as_ref()));
    if let Some(b) = answer {
        events.push(Event::new(
            "gen_ai.content.completion",
            end,
            vec![KeyValue::new("gen_ai.completion", capped(b))],
            0,
        ));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_follow_the_api() {
        assert_eq!(operation(Some("openai.chat")), "chat");
        assert_eq!(operation(Some("openai.embeddings")), "embeddings");
        assert_eq!(operation(Some("anthropic.messages")), "chat");
        assert_eq!(operation(Some("gemini.generate")), "generate_content");
        assert_eq!(operation(Some("openai.images")), "images");
        assert_eq!(operation(None), "request");
    }
}
