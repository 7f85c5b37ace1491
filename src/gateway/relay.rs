//! Phase: relay. The upstream's answer goes back to the client: a success streams through a
//! [`TracedBody`] (which records the trace when it ends); an error answer is passed through when
//! it is the provider's own JSON error (the SDK knows how to read it) and replaced by a JSON
//! error in the provider's shape when it is HTML, malformed or empty. A refusal by the gateway
//! itself is answered in the provider's shape too. Every response names its trace.

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{self, HeaderValue};

use super::body::{ProxyBody, TracedBody, TracedBodyParts};
use super::call::{Call, TRACE_HEADER};
use super::{GatewayError, headers};
use crate::capture::Capture;
use crate::domain::{Outcome, Provider};
use crate::recorder::PendingTrace;

/// Upstream error bodies are read whole (to check they are JSON) up to this size.
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// How the relay treats the body.
pub struct Relay {
    pub family: Provider,
    pub idle_timeout: std::time::Duration,
    pub capture_limit: usize,
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The memory budget the response's captured copy is held against.
    pub memory: std::sync::Arc<crate::memory::MemoryBudget>,
    /// The gateway asked for usage the client did not ask for: hide it again.
    pub hide_usage: bool,
    pub is_stream: bool,
    /// A batch input file on its way: recorded before the client hears it was accepted.
    pub batch_input: Option<BatchInput>,
    /// The answer is translated back into the client's shape.
    pub translation: Option<Translated>,
}

/// A translation, and what names the translated answer.
pub type Translated = (
    super::target::Translation,
    crate::translate::ResponseContext,
);

/// A complete answer to translate is read whole, up to this size (a chat answer is far
/// smaller; this bounds what a misbehaving upstream can make the gateway hold).
const MAX_TRANSLATED_BODY: usize = 8 * 1024 * 1024;

/// The requests of a batch input file being uploaded with a virtual key.
pub struct BatchInput {
    pub store: crate::store::Store,
    pub org: crate::domain::OrgId,
    pub key: Option<crate::domain::VirtualKeyId>,
    pub items: Vec<crate::metering::BatchItem>,
}

/// Relays the upstream's answer.
pub async fn response(
    mut relay: Relay,
    response: reqwest::Response,
    mut call: PendingTrace<Call>,
) -> http::Response<ProxyBody> {
    let status = response.status();
    let upstream_headers = response.headers().clone();
    call.status = status.as_u16();
    call.response_headers = upstream_headers.clone();
    call.sent_unanswered = false;
    let trace = trace_header(&call);
    if status.as_u16() >= 400 {
        return error(relay, response, status, &upstream_headers, call, trace).await;
    }
    if let Some(input) = relay.batch_input.take() {
        return batch_input(
            relay,
            input,
            response,
            status,
            &upstream_headers,
            call,
            trace,
        )
        .await;
    }
    let sse = upstream_headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !sse && let Some((t, ctx)) = relay.translation.take() {
        return translated_whole(
            relay,
            t,
            &ctx,
            response,
            status,
            &upstream_headers,
            call,
            trace,
        )
        .await;
    }
    let translator = relay
        .translation
        .take()
        .map(|(t, ctx)| crate::translate::StreamTranslator::new(t.upstream, t.client, ctx));
    let hide_usage = relay.hide_usage && sse;
    let changed = hide_usage || translator.is_some();
    let mut out_headers = headers::client_response_headers(&upstream_headers, changed);
    out_headers.insert(TRACE_HEADER, trace);
    let expected_len = response.content_length();
    let body = TracedBody::new(TracedBodyParts {
        translator,
        upstream: response.bytes_stream().boxed(),
        idle_timeout: relay.idle_timeout,
        shutdown: relay.shutdown,
        hide_usage,
        capture_limit: relay.capture_limit,
        capture_memory: relay.memory.empty(),
        family: relay.family,
        sse: sse || relay.is_stream,
        expected_len: if changed { None } else { expected_len },
        pending: call,
    });
    let mut res = http::Response::new(ProxyBody::Traced(Box::new(body)));
    *res.status_mut() = status;
    *res.headers_mut() = out_headers;
    res
}

/// A complete answer from a provider of another shape: read whole, translated, sent.
#[expect(
    clippy::too_many_arguments,
    reason = "the relay's state, passed through"
)]
async fn translated_whole(
    relay: Relay,
    t: super::target::Translation,
    ctx: &crate::translate::ResponseContext,
    response: reqwest::Response,
    status: http::StatusCode,
    upstream_headers: &http::HeaderMap,
    mut call: PendingTrace<Call>,
    trace: HeaderValue,
) -> http::Response<ProxyBody> {
    let (body, cut) = read_body(response, relay.idle_timeout, MAX_TRANSLATED_BODY).await;
    call.mark_first_byte(Some(std::time::Instant::now()));
    call.response_body = Capture::of(&body, relay.capture_limit);
    let translated = if cut {
        Err(GatewayError::UpstreamUnreachable(
            "the provider's answer broke off or was too large to translate".into(),
        ))
    } else {
        crate::translate::response(t.upstream, t.client, &body, ctx)
            .map_err(GatewayError::Translation)
    };
    match translated {
        Ok(out) => {
            let mut out_headers = headers::client_response_headers(upstream_headers, true);
            out_headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            out_headers.insert(TRACE_HEADER, trace);
            let mut res = http::Response::new(ProxyBody::full(Bytes::from(out)));
            *res.status_mut() = status;
            *res.headers_mut() = out_headers;
            call.finish(Outcome::Ok, None);
            res
        }
        Err(e) => {
            let mut res = e.response(relay.family);
            res.headers_mut().insert(TRACE_HEADER, trace);
            call.status = res.status().as_u16();
            call.finish(e.outcome(), Some(e.to_string()));
            res
        }
    }
}

/// The provider accepted a batch input file: its requests are recorded under the file's id
/// before the client learns the id (so a batch created right after can find them). Should the
/// database not take them, the batch is refused later rather than let through unchecked.
async fn batch_input(
    relay: Relay,
    input: BatchInput,
    response: reqwest::Response,
    status: http::StatusCode,
    upstream_headers: &http::HeaderMap,
    mut call: PendingTrace<Call>,
    trace: HeaderValue,
) -> http::Response<ProxyBody> {
    let (body, cut) = read_error_body(response, relay.idle_timeout).await;
    let id = (!cut)
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .flatten()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned));
    if let Some(id) = &id
        && let Err(e) = input
            .store
            .put_batch_input(
                input.org,
                id,
                input.key,
                &input.items,
                crate::domain::now_ms(),
            )
            .await
    {
        tracing::error!(error = %e, "could not record a batch input file; its batch will be refused");
    }
    let mut out_headers = headers::client_response_headers(upstream_headers, false);
    out_headers.insert(TRACE_HEADER, trace);
    let mut res = http::Response::new(ProxyBody::full(body.clone()));
    *res.status_mut() = status;
    *res.headers_mut() = out_headers;
    call.response_body = Capture::of(&body, relay.capture_limit);
    call.finish(Outcome::Ok, None);
    res
}

/// An upstream error answer.
async fn error(
    relay: Relay,
    response: reqwest::Response,
    status: http::StatusCode,
    upstream_headers: &http::HeaderMap,
    mut call: PendingTrace<Call>,
    trace: HeaderValue,
) -> http::Response<ProxyBody> {
    let (body, cut) = read_error_body(response, relay.idle_timeout).await;
    let is_json_error =
        !cut && serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| v.is_object());
    let res = if is_json_error {
        let translated = relay
            .translation
            .as_ref()
            .map(|(t, _)| crate::translate::error(t.upstream, t.client, status.as_u16(), &body));
        let mut out_headers =
            headers::client_response_headers(upstream_headers, translated.is_some());
        out_headers.insert(TRACE_HEADER, trace);
        let mut res =
            http::Response::new(ProxyBody::full(translated.unwrap_or_else(|| body.clone())));
        *res.status_mut() = status;
        *res.headers_mut() = out_headers;
        res
    } else {
        let e = GatewayError::UpstreamBadResponse {
            status: status.as_u16(),
        };
        let mut res = e.response(relay.family);
        res.headers_mut().insert(TRACE_HEADER, trace);
        if let Some(ra) = upstream_headers.get(header::RETRY_AFTER) {
            res.headers_mut().insert(header::RETRY_AFTER, ra.clone());
        }
        for name in [
            "x-request-id",
            "request-id",
            "anthropic-ratelimit-requests-remaining",
        ] {
            if let Some(v) = upstream_headers.get(name) {
                res.headers_mut().insert(name, v.clone());
            }
        }
        res
    };
    call.status = res.status().as_u16();
    call.response_body = Capture::of(&body, relay.capture_limit);
    if is_json_error {
        call.finish(Outcome::Ok, None);
    } else {
        call.finish(
            Outcome::UpstreamError,
            Some(format!(
                "upstream answered HTTP {} with a non-JSON body",
                status.as_u16()
            )),
        );
    }
    res
}

/// The error body, up to [`MAX_ERROR_BODY`]; `true` when it was cut (too long, broke off, or
/// went idle).
async fn read_error_body(response: reqwest::Response, idle: std::time::Duration) -> (Bytes, bool) {
    read_body(response, idle, MAX_ERROR_BODY).await
}

/// The body, up to `max` bytes; `true` when it was cut (too long, broke off, or went idle).
async fn read_body(
    response: reqwest::Response,
    idle: std::time::Duration,
    max: usize,
) -> (Bytes, bool) {
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    loop {
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(chunk))) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > max {
                    return (bytes.into(), true);
                }
            }
            Ok(None) => return (bytes.into(), false),
            Ok(Some(Err(_))) | Err(_) => return (bytes.into(), true),
        }
    }
}

/// The gateway's own refusal (or failure to reach the provider), in the provider's shape.
pub fn refusal(
    e: &GatewayError,
    family: Provider,
    mut call: PendingTrace<Call>,
) -> http::Response<ProxyBody> {
    let body = e.body(family);
    call.status = e.status();
    call.response_body = Capture::of(&body, body.len());
    call.response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let trace = trace_header(&call);
    call.finish(e.outcome(), Some(e.to_string()));
    let mut res = e.response(family);
    res.headers_mut().insert(TRACE_HEADER, trace);
    res
}

fn trace_header(call: &Call) -> HeaderValue {
    HeaderValue::from_str(&call.id.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}
