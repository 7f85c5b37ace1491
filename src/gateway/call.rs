//! The decisions about one proxied call, made by the pipeline's phases in order and carried in
//! one value. Whichever way the call leaves the gateway (answered, refused, cut short, abandoned
//! by its client) its trace is filled from this value, in [`Call::into_draft`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderMap;
use uuid::Uuid;

use crate::capture::{Capture, CapturedBytes};
use crate::domain::{
    AuthMode, Endpoint, EndpointId, Millis, OrgId, Outcome, Provider, TraceId, VirtualKeyId,
};
use crate::limits::Reservation;
use crate::providers::Wire;
use crate::recorder::{Recordable, TraceDraft};

/// The header naming the trace of a proxied call, on every proxy response.
pub const TRACE_HEADER: &str = "x-antix-trace-id";

/// The copy of the request body kept for the trace.
#[derive(Debug)]
pub enum RequestCopy {
    /// A body read whole (JSON).
    Whole(CapturedBytes),
    /// A body still streaming upstream; its capped copy fills as it goes.
    Streaming(Arc<Mutex<Capture>>),
}

impl Default for RequestCopy {
    fn default() -> Self {
        RequestCopy::Whole(CapturedBytes::default())
    }
}

impl RequestCopy {
    /// Whether a streamed body went past `limit` bytes (the stream was cut for it).
    pub fn exceeded(&self, limit: u64) -> bool {
        match self {
            RequestCopy::Whole(_) => false,
            RequestCopy::Streaming(c) => c.lock().is_ok_and(|c| c.total > limit),
        }
    }

    fn finish(self) -> CapturedBytes {
        match self {
            RequestCopy::Whole(b) => b,
            RequestCopy::Streaming(c) => c
                .lock()
                .map(|mut c| std::mem::take(&mut *c).finish())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug)]
pub struct Call {
    // Known when the call arrives at a known endpoint.
    pub id: TraceId,
    pub started: Instant,
    pub started_at: Millis,
    pub org_id: OrgId,
    pub endpoint_id: EndpointId,
    pub method: String,
    /// The native path plus the redacted query string.
    pub path: String,
    /// Redacted when the trace is finalized, off the request path.
    pub request_headers: HeaderMap,
    /// Conversation ids agent clients send (Claude Code, Codex).
    pub client_ids: crate::sessions::ClientIds,

    // Identify caller.
    /// Credential values the request carried: scrubbed from what is stored, never persisted.
    pub secrets: Vec<String>,
    pub auth: Option<AuthMode>,
    pub key_id: Option<VirtualKeyId>,
    /// A presented virtual key's visible prefix, kept while the key is not known to be valid.
    pub key_hint: Option<String>,

    // Read and inspect body.
    pub request_body: RequestCopy,
    /// What the body says its cost depends on.
    pub facts: Option<Box<crate::metering::Facts>>,

    // Choose target.
    pub provider: Option<Provider>,
    pub wire: Option<Wire>,
    pub model: Option<String>,
    pub is_stream: bool,

    // Admit.
    /// The budget reservation held for this call, settled when its trace is written.
    pub reservation: Option<Reservation>,

    // Call upstream.
    /// The request went out, and no answer came (yet): the provider may bill it.
    pub sent_unanswered: bool,

    // The upstream's answer, and what of it reached the client.
    pub status: u16,
    pub response_headers: HeaderMap,
    pub response_body: CapturedBytes,
    pub ttft: Option<Duration>,

    /// Bodies this call holds in memory (read whole), against the gateway's memory budget.
    pub memory: crate::memory::Held,
    /// The tries at the upstream, when there was more than one.
    pub attempts: Vec<crate::domain::Attempt>,
}

impl Call {
    pub fn new(
        parts: &http::request::Parts,
        endpoint: &Endpoint,
        path: String,
        started: Instant,
        started_at: Millis,
    ) -> Self {
        Call {
            id: TraceId::new_v7(),
            started,
            started_at,
            org_id: endpoint.org_id,
            endpoint_id: endpoint.id,
            method: parts.method.as_str().to_owned(),
            path,
            request_headers: parts.headers.clone(),
            client_ids: crate::sessions::ClientIds::from_headers(&parts.headers),
            ..Call::default()
        }
    }

    /// The time to first byte, when `first_byte` came.
    pub fn mark_first_byte(&mut self, first_byte: Option<Instant>) {
        if let Some(fb) = first_byte {
            self.ttft = Some(fb.saturating_duration_since(self.started));
        }
    }
}

/// Only the placeholder a finished [`crate::recorder::PendingTrace`] leaves behind.
impl Default for Call {
    fn default() -> Self {
        Call {
            id: TraceId(Uuid::nil()),
            started: Instant::now(),
            started_at: 0,
            org_id: OrgId(Uuid::nil()),
            endpoint_id: EndpointId(Uuid::nil()),
            method: String::new(),
            path: String::new(),
            request_headers: HeaderMap::new(),
            client_ids: crate::sessions::ClientIds::default(),
            secrets: Vec::new(),
            auth: None,
            key_id: None,
            key_hint: None,
            request_body: RequestCopy::default(),
            facts: None,
            sent_unanswered: false,
            provider: None,
            wire: None,
            model: None,
            is_stream: false,
            reservation: None,
            status: 0,
            response_headers: HeaderMap::new(),
            response_body: CapturedBytes::default(),
            ttft: None,
            memory: crate::memory::Held::default(),
            attempts: Vec::new(),
        }
    }
}

impl Recordable for Call {
    fn into_draft(self, outcome: Outcome, error: Option<String>) -> TraceDraft {
        let request_body = self.request_body.finish();
        // From here on the call holds only what the trace keeps: copies of bodies read whole
        // (captures of streamed bodies hold their own share) and of the headers (see
        // `detach_headers`).
        let mut memory = self.memory;
        memory.set(
            [&request_body, &self.response_body]
                .iter()
                .filter(|c| c.memory.bytes() == 0)
                .map(|c| c.bytes.len() + c.tail.as_ref().map_or(0, bytes::Bytes::len))
                .sum(),
        );
        TraceDraft {
            id: self.id,
            org_id: self.org_id,
            endpoint_id: self.endpoint_id,
            started_at: self.started_at,
            auth_mode: self.auth,
            // A key that checked out is named by its id; only a failed attempt keeps the hint.
            key_hint: self.key_hint.filter(|_| self.key_id.is_none()),
            virtual_key_id: self.key_id,
            provider: self.provider,
            wire: self.wire,
            requested_model: self.model,
            method: self.method,
            path: self.path,
            request_headers: crate::capture::detach_headers(&self.request_headers),
            request_body,
            facts: self.facts,
            sent_unanswered: self.sent_unanswered,
            status: self.status,
            response_headers: crate::capture::detach_headers(&self.response_headers),
            response_body: self.response_body,
            is_stream: self.is_stream,
            ttft: self.ttft,
            latency: self.started.elapsed(),
            outcome,
            error,
            passthrough: self.auth.is_some_and(|a| a != AuthMode::VirtualKey),
            client_ids: self.client_ids,
            secrets: self.secrets,
            reservation: self.reservation,
            memory,
            attempts: self.attempts,
        }
    }
}
