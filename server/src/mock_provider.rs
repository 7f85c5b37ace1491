//! A mock LLM provider speaking the OpenAI, Anthropic and Gemini APIs, streaming or not, with
//! realistic usage blocks: for tests, benchmarks and offline demos (`antix mock-provider`).
//!
//! Behaviour is chosen per request with an `x-mock` header of `;`-separated directives, so
//! concurrent tests never interfere (SDKs can send it as a default header):
//!
//! | Directive | Effect |
//! |---|---|
//! | `fail=STATUS` | answer with a provider-shaped JSON error of that status |
//! | `retry_after=SECS` | with `fail`, add `Retry-After` |
//! | `html=STATUS` / `malformed=STATUS` / `empty=STATUS` | error with an HTML page, broken JSON, or no body |
//! | `hang` | never answer (not even headers) |
//! | `ttft_ms=N` | wait before the first byte (before headers for non-streams) |
//! | `delay_ms=N` | wait between stream events |
//! | `chunks=N` | number of content chunks (default 5) |
//! | `cut_after=N` | break the connection after N content chunks |
//! | `stall_after=N` | stop sending (but keep the connection) after N content chunks |
//! | `no_usage` | omit usage from the response |
//! | `cache_read=N` / `cache_write=N` / `reasoning=N` | report cache and reasoning tokens |
//! | `echo_key` | put the credential the mock received in an error message |
//! | `tool_call` | when the request declares tools, also call the first one (`{"city": "Paris"}`) |
//! | `fail_first=N` | with `fail`, fail only the first N requests carrying this credential |
//!
//! A chat model whose name contains `missing` does not exist: the answer is the provider's
//! 404 for an unknown model (to test fallbacks).
//!
//! The same directives can ride on the credential itself, after a `#`
//! (`sk-a#fail=429;retry_after=1`, `sk-b#fail=503;fail_first=2`, `sk-c#hang`): an
//! organization's provider credential then behaves that way for every request sent with it,
//! which is how tests give each of several credentials its own fault.
//!
//! `GET /_mock/stats` reports streams open, finished and cancelled (a client that went away).
//! Every request's target and headers are kept (the last [`SEEN_MAX`]) so tests can check what
//! reached the provider, credentials included.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream};
use serde_json::{Value, json};

mod anthropic;
mod apis;
mod gemini;
mod openai;

#[derive(Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub streams_open: AtomicU64,
    pub streams_finished: AtomicU64,
    pub streams_cancelled: AtomicU64,
    /// `METHOD /path?query` and every header of the requests received, newest last.
    pub seen: std::sync::Mutex<std::collections::VecDeque<String>>,
}

/// How many requests [`Stats::seen`] keeps.
pub const SEEN_MAX: usize = 10_000;

#[derive(Clone, Default)]
pub struct MockState {
    pub stats: Arc<Stats>,
    /// Files and batches, kept between calls.
    apis: Arc<apis::Store>,
}

impl MockState {
    /// Everything the mock received (targets and headers), one request per line.
    pub fn seen(&self) -> String {
        let seen = self
            .stats
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

async fn record(
    State(s): State<MockState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut line = format!("{} {}", req.method(), req.uri());
    for (k, v) in req.headers() {
        line.push_str(&format!(
            " | {k}: {}",
            String::from_utf8_lossy(v.as_bytes())
        ));
    }
    {
        let mut seen = s
            .stats
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= SEEN_MAX {
            seen.pop_front();
        }
        seen.push_back(line);
    }
    next.run(req).await
}

pub fn router(state: MockState) -> Router {
    Router::new()
        .route("/_mock/stats", get(stats))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1beta/openai/chat/completions", post(openai::chat))
        .route(
            "/v1/responses",
            post(openai::responses).get(openai::responses_websocket),
        )
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(models))
        .route("/v1/images/generations", post(apis::images))
        .route("/v1/images/edits", post(apis::images))
        .route("/v1/images/variations", post(apis::images))
        .route("/v1/audio/speech", post(apis::speech))
        .route("/v1/audio/transcriptions", post(apis::transcription))
        .route("/v1/audio/translations", post(apis::transcription))
        .route("/v1/files", post(apis::upload_file))
        .route("/v1/files/{file}/content", get(apis::file_content))
        .route("/v1/batches", post(apis::create_batch))
        .route("/v1/batches/{batch}", get(apis::get_batch))
        .route("/v1/responses/{id}", get(apis::get_response))
        .route("/v1/fine_tuning/jobs", post(apis::fine_tuning))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count))
        .route("/v1/messages/batches", post(apis::anthropic_batch))
        .route(
            "/v1/messages/batches/{batch}/results",
            get(apis::anthropic_batch_results),
        )
        .route("/v1beta/batches/{batch}", get(apis::gemini_get_batch))
        .route("/v1beta/models", get(gemini::models))
        .route("/v1beta/models/{call}", post(gemini::call))
        .route("/v1/models/{call}", post(gemini::call))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// Serves the mock on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router(MockState::default())).await
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

async fn stats(State(s): State<MockState>) -> impl IntoResponse {
    axum::Json(json!({
        "requests": s.stats.requests.load(Ordering::Relaxed),
        "streams_open": s.stats.streams_open.load(Ordering::Relaxed),
        "streams_finished": s.stats.streams_finished.load(Ordering::Relaxed),
        "streams_cancelled": s.stats.streams_cancelled.load(Ordering::Relaxed),
    }))
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            json!({"error": {"message": "mock: no such route", "type": "invalid_request_error"}}),
        ),
    )
}

async fn models(headers: HeaderMap) -> Response {
    let b = Behavior::from(&headers);
    if let Some(r) = b.failure(&headers, Family::OpenAi).await {
        return r;
    }
    if headers.contains_key("x-goog-api-client") || headers.contains_key("x-goog-api-key") {
        return gemini::models(headers).await;
    }
    if headers.contains_key("anthropic-version") {
        return axum::Json(json!({
            "data": [{"type": "model", "id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"}],
            "has_more": false, "first_id": "claude-sonnet-4-5-20250929", "last_id": "claude-sonnet-4-5-20250929"
        }))
        .into_response();
    }
    axum::Json(json!({"object": "list", "data": [
        {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
        {"id": "gpt-4.1", "object": "model", "created": 1744316542, "owned_by": "system"}
    ]}))
    .into_response()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    OpenAi,
    Anthropic,
    Gemini,
}

/// The directives of one request's `x-mock` header.
#[derive(Debug, Clone, Default)]
pub struct Behavior {
    pub fail: Option<u16>,
    pub retry_after: Option<u64>,
    pub html: Option<u16>,
    pub malformed: Option<u16>,
    pub empty: Option<u16>,
    pub hang: bool,
    pub ttft: Duration,
    pub delay: Duration,
    pub chunks: usize,
    pub cut_after: Option<usize>,
    pub stall_after: Option<usize>,
    pub no_usage: bool,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
    pub echo_key: bool,
    /// Refuse WebSocket upgrades (an upstream that only speaks HTTP).
    pub no_websocket: bool,
    /// With `fail`: only the first N requests with this credential fail.
    pub fail_first: Option<u64>,
    /// Call the first declared tool.
    pub tool_call: bool,
    /// The credential the request carried, when it named directives.
    credential: Option<String>,
}

/// Requests seen per credential, for `fail_first`.
static CREDENTIAL_CALLS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, u64>>,
> = std::sync::LazyLock::new(Default::default);

/// The credential a request carries, in whichever header its API uses.
fn credential_of(headers: &HeaderMap) -> Option<&str> {
    ["authorization", "x-api-key", "x-goog-api-key"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v))
}

impl Behavior {
    pub fn from(headers: &HeaderMap) -> Self {
        let mut b = Behavior {
            chunks: 5,
            ..Default::default()
        };
        let spec = headers
            .get("x-mock")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let from_key = credential_of(headers).and_then(|k| k.split_once('#'));
        if let Some((_, d)) = from_key {
            b.credential = credential_of(headers).map(str::to_owned);
            b.apply(d);
        }
        b.apply(spec);
        b
    }

    fn apply(&mut self, spec: &str) {
        let b = self;
        for d in spec.split(';').map(str::trim).filter(|d| !d.is_empty()) {
            let (k, v) = d.split_once('=').unwrap_or((d, ""));
            let n = v.trim().parse::<u64>().ok();
            match k.trim() {
                "fail" => b.fail = n.map(|n| n as u16),
                "retry_after" => b.retry_after = n,
                "html" => b.html = n.map(|n| n as u16),
                "malformed" => b.malformed = n.map(|n| n as u16),
                "empty" => b.empty = n.map(|n| n as u16),
                "hang" => b.hang = true,
                "ttft_ms" => b.ttft = Duration::from_millis(n.unwrap_or(0)),
                "delay_ms" => b.delay = Duration::from_millis(n.unwrap_or(0)),
                "chunks" => b.chunks = n.unwrap_or(5) as usize,
                "cut_after" => b.cut_after = n.map(|n| n as usize),
                "stall_after" => b.stall_after = n.map(|n| n as usize),
                "no_usage" => b.no_usage = true,
                "cache_read" => b.cache_read = n.unwrap_or(0),
                "cache_write" => b.cache_write = n.unwrap_or(0),
                "reasoning" => b.reasoning = n.unwrap_or(0),
                "echo_key" => b.echo_key = true,
                "no_websocket" => b.no_websocket = true,
                "fail_first" => b.fail_first = n,
                "tool_call" => b.tool_call = true,
                _ => {}
            }
        }
    }

    /// The error answer this behaviour calls for, after any `hang` or first-byte wait.
    pub async fn failure(&self, headers: &HeaderMap, family: Family) -> Option<Response> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        if let Some(status) = self.html {
            return Some(
                (
                    code(status),
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>",
                )
                    .into_response(),
            );
        }
        if let Some(status) = self.malformed {
            return Some(
                (
                    code(status),
                    [(header::CONTENT_TYPE, "application/json")],
                    "{\"error\": {\"message\": \"trunc",
                )
                    .into_response(),
            );
        }
        if let Some(status) = self.empty {
            return Some(code(status).into_response());
        }
        let status = self.fail?;
        if let Some(first) = self.fail_first {
            let key = self.credential.clone().unwrap_or_default();
            let mut calls = CREDENTIAL_CALLS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = calls.entry(key).or_default();
            *n += 1;
            if *n > first {
                return None;
            }
        }
        let mut message = format!("mock failure {status}");
        if self.echo_key {
            let key = ["authorization", "x-api-key", "x-goog-api-key"]
                .iter()
                .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
                .unwrap_or("");
            message = format!("Incorrect API key provided: {key}");
        }
        let body = match family {
            Family::OpenAi => {
                json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})
            }
            Family::Anthropic => {
                let kind = match status {
                    429 => "rate_limit_error",
                    529 => "overloaded_error",
                    _ => "api_error",
                };
                json!({"type": "error", "error": {"type": kind, "message": message}})
            }
            Family::Gemini => {
                json!({"error": {"code": status, "message": message, "status": "INTERNAL"}})
            }
        };
        let mut res = (code(status), axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        res.headers_mut()
            .insert("x-request-id", "req_mock_error".parse().ok()?);
        Some(res)
    }
}

/// The provider's answer for a model it does not have: any model named `…missing…`.
pub fn unknown_model(model: &str, family: Family) -> Option<Response> {
    if !model.contains("missing") {
        return None;
    }
    let body = match family {
        Family::OpenAi => json!({"error": {
            "message": format!("The model `{model}` does not exist or you do not have access to it."),
            "type": "invalid_request_error", "param": null, "code": "model_not_found"}}),
        Family::Anthropic => json!({"type": "error", "error": {
            "type": "not_found_error", "message": format!("model: {model}")}}),
        Family::Gemini => json!({"error": {"code": 404,
            "message": format!("models/{model} is not found for API version v1beta, or is not supported for generateContent."),
            "status": "NOT_FOUND"}}),
    };
    Some((StatusCode::NOT_FOUND, axum::Json(body)).into_response())
}

fn code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// About four characters per token, as the gateway's own estimate assumes.
pub fn count_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

/// Words of the mock's answer: deterministic, so tests can check reassembly.
pub fn answer_words(prompt: &str, chunks: usize) -> Vec<String> {
    let topic: String = prompt
        .split_whitespace()
        .take(6)
        .collect::<Vec<_>>()
        .join(" ");
    let mut words = vec![format!("Mock answer about \"{topic}\":")];
    for i in 1..chunks.max(1) {
        words.push(format!(" part{i}"));
    }
    words
}

/// The text of a JSON value's string leaves (prompt size estimates).
pub fn all_text(v: &Value) -> String {
    let mut out = String::new();
    collect_text(v, &mut out);
    out
}

fn collect_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push(' ');
        }
        Value::Array(a) => a.iter().for_each(|x| collect_text(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_text(x, out)),
        _ => {}
    }
}

/// The last user text in an OpenAI/Anthropic-style `messages` list (or a Responses `input`).
pub fn last_user_text(v: &Value) -> String {
    if let Some(s) = v.get("input").and_then(Value::as_str) {
        return s.to_owned();
    }
    let list = v
        .get("messages")
        .or_else(|| v.get("input"))
        .or_else(|| v.get("contents"))
        .and_then(Value::as_array);
    list.and_then(|l| {
        l.iter().rev().find(|m| {
            m.get("role")
                .and_then(Value::as_str)
                .is_none_or(|r| r == "user")
        })
    })
    .map(all_text)
    .unwrap_or_default()
}

/// Counts a stream open while it is alive; how it ends says whether the client stayed.
struct StreamGuard {
    stats: Arc<Stats>,
    finished: bool,
}

impl StreamGuard {
    fn new(stats: Arc<Stats>) -> Self {
        stats.streams_open.fetch_add(1, Ordering::Relaxed);
        StreamGuard {
            stats,
            finished: false,
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.stats.streams_open.fetch_sub(1, Ordering::Relaxed);
        if self.finished {
            self.stats.streams_finished.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.streams_cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One item of a mock stream.
pub enum Event {
    /// A content-carrying event (counted by `cut_after` / `stall_after`).
    Content(String),
    /// Framing (start, stop, usage).
    Frame(String),
}

/// An SSE response from a list of already formatted events, honouring the timing and failure
/// directives.
pub fn sse_response(state: &MockState, b: &Behavior, events: Vec<Event>) -> Response {
    let guard = StreamGuard::new(state.stats.clone());
    let b = b.clone();
    let body = event_stream(events, b, guard);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-request-id", "req_mock_stream")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn event_stream(
    events: Vec<Event>,
    b: Behavior,
    guard: StreamGuard,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let first = b.ttft;
    stream::unfold(
        (events.into_iter(), 0usize, Some(guard), true),
        move |(mut it, mut content, guard, is_first)| {
            let b = b.clone();
            async move {
                let mut guard = guard?;
                let wait = if is_first { first } else { b.delay };
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                let Some(ev) = it.next() else {
                    guard.finished = true;
                    return None;
                };
                if let Event::Content(_) = ev {
                    if b.cut_after == Some(content) {
                        // Let what was sent reach the wire first, as a real connection reset
                        // after some events would.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        drop(guard);
                        return Some((
                            Err(std::io::Error::other("mock: cut")),
                            (it, content, None, false),
                        ));
                    }
                    if b.stall_after == Some(content) {
                        std::future::pending::<()>().await;
                    }
                    content += 1;
                }
                let text = match ev {
                    Event::Content(t) | Event::Frame(t) => t,
                };
                Some((Ok(Bytes::from(text)), (it, content, Some(guard), false)))
            }
        },
    )
}

/// A JSON answer after the first-byte wait.
pub async fn json_after(b: &Behavior, v: Value) -> Response {
    if !b.ttft.is_zero() {
        tokio::time::sleep(b.ttft).await;
    }
    let mut res = axum::Json(v).into_response();
    if let Ok(v) = "req_mock_1".parse() {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

pub fn parse_body(body: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new((
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": format!("mock: invalid JSON: {e}"), "type": "invalid_request_error"}})),
        )
            .into_response())
    })
}

#[expect(clippy::print_stdout, reason = "the mock announces where it listens")]
pub fn announce(addr: SocketAddr) {
    println!("mock provider listening on http://{addr}");
}

pub fn path_model_and_method(call: &str) -> (String, String) {
    let (model, method) = call.split_once(':').unwrap_or((call, ""));
    (model.to_owned(), method.to_owned())
}
