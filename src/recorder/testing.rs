//! Drafts as the proxy hands them to the recorder, for the recorder's tests, the store suite's
//! observability tests and the server's tests.

use bytes::Bytes;

use super::TraceDraft;
use crate::capture::Capture;
use crate::domain::{AuthMode, EndpointId, OrgId, Outcome, Provider, TraceId, now_ms};
use crate::providers::Wire;

/// A plausible finished chat call (BYOK, non-streamed, with usage).
pub fn sample_draft(org: OrgId, endpoint: EndpointId) -> TraceDraft {
    let request =
        Bytes::from_static(br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#);
    let response = Bytes::from_static(
        br#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hello"}}],"usage":{"prompt_tokens":12,"completion_tokens":3}}"#,
    );
    TraceDraft {
        id: TraceId::new_v7(),
        org_id: org,
        endpoint_id: endpoint,
        started_at: now_ms(),
        auth_mode: Some(AuthMode::Byok),
        virtual_key_id: None,
        key_hint: None,
        provider: Some(Provider::OpenAi),
        wire: Some(Wire::OpenAiChat),
        requested_model: Some("gpt-4o".into()),
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        request_headers: http::HeaderMap::new(),
        request_body: Capture::of(&request, 1 << 20),
        facts: None,
        sent_unanswered: false,
        status: 200,
        response_headers: http::HeaderMap::new(),
        response_body: Capture::of(&response, 1 << 20),
        is_stream: false,
        ttft: Some(std::time::Duration::from_millis(5)),
        latency: std::time::Duration::from_millis(9),
        outcome: Outcome::Ok,
        error: None,
        passthrough: true,
        client_ids: Default::default(),
        secrets: Vec::new(),
        reservation: None,
        memory: Default::default(),
        attempts: Vec::new(),
    }
}
