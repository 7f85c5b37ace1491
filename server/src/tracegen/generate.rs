//! Realistic synthetic traces, for filling a database to benchmark the observability queries
//! and for demos: a month of mixed OpenAI / Anthropic / Gemini traffic through virtual keys,
//! BYOK and OAuth, streamed and not, with errors, agent sessions, and now and then a 200 KB
//! agent transcript. Deterministic for a seed.
//!
//! Records are built directly (not through the proxy), but with the same shapes the recorder
//! writes: compressed bodies, search text, session keys, costs from the price catalog.

use antix::domain::{EndpointId, Millis, OrgId, Outcome, TraceId, VirtualKeyId};
use antix::pricing::Catalog;
use antix::store::compression::compress;
use antix::store::traces::{TraceBodies, TraceRecord};
use antix::usage::{Usage, UsageSource};

/// A word that appears in about one trace in two thousand (a "rare" search).
pub const RARE_WORD: &str = "quokka";
/// A phrase found only at the end of the big agent transcripts.
pub const TRANSCRIPT_MARKER: &str = "xylophone-ledger-7731";
/// How often a trace carries a ~200 KB transcript.
pub const BIG_EVERY: u64 = 5000;

/// SplitMix64: small, fast, good enough for synthetic data, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

const TOPICS: &[&str] = &[
    "the billing service",
    "our React dashboard",
    "a Postgres migration",
    "the CSV importer",
    "a Rust HTTP client",
    "the onboarding emails",
    "Kubernetes autoscaling",
    "the search ranking",
    "a Python data pipeline",
    "the mobile checkout",
    "an SQL report",
    "the payment webhook",
];
const ASKS: &[&str] = &[
    "Explain why",
    "Refactor",
    "Write tests for",
    "Find the bug in",
    "Summarize the design of",
    "Add logging to",
    "Speed up",
    "Document",
    "Review",
    "Plan a rollout of",
];
const WORDS: &[&str] = &[
    "function", "request", "latency", "cache", "error", "retry", "timeout", "user", "account",
    "invoice", "deploy", "schema", "index", "query", "thread", "buffer", "token", "stream",
    "config", "handler", "module", "service", "metric", "alert", "batch", "queue", "worker",
];

fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s.push('.');
    s
}

/// Between `lo` and `hi` sentences.
fn paragraph(rng: &mut Rng, lo: u64, hi: u64) -> String {
    let sentences = rng.range(lo, hi);
    (0..sentences)
        .map(|_| {
            let n = rng.range(6, 16) as usize;
            sentence(rng, n)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    OpenAiChat,
    OpenAiResponses,
    Anthropic,
    Gemini,
}

struct OpenSession {
    /// When its next call starts: an agent's calls follow each other within seconds (and
    /// sometimes run in parallel), whatever the rest of the traffic does.
    next_at: Millis,
    key: String,
    parent: Option<String>,
    preview: String,
    model: &'static str,
    left: u32,
    turn: u32,
}

/// Makes traces for one endpoint, in time order.
pub struct Generator {
    rng: Rng,
    org: OrgId,
    endpoint: EndpointId,
    keys: Vec<VirtualKeyId>,
    sessions: Vec<OpenSession>,
    n: u64,
    /// No trace starts after this (sessions run ahead of the overall clock).
    horizon: Millis,
}

impl Generator {
    pub fn new(seed: u64, org: OrgId, endpoint: EndpointId, keys: Vec<VirtualKeyId>) -> Self {
        Generator {
            rng: Rng(seed),
            org,
            endpoint,
            keys,
            sessions: Vec::new(),
            n: 0,
            horizon: Millis::MAX,
        }
    }

    /// Traces start no later than `horizon` (now, for generated history).
    pub fn with_horizon(mut self, horizon: Millis) -> Self {
        self.horizon = horizon;
        self
    }

    /// One trace starting at `at`.
    pub fn trace(&mut self, at: Millis) -> TraceRecord {
        self.n += 1;
        let rng = &mut self.rng;
        let kind = match rng.below(100) {
            0..45 => Kind::OpenAiChat,
            45..75 => Kind::Anthropic,
            75..90 => Kind::Gemini,
            _ => Kind::OpenAiResponses,
        };
        let (provider, wire, path) = match kind {
            Kind::OpenAiChat => ("openai", "openai.chat", "/v1/chat/completions".to_owned()),
            Kind::OpenAiResponses => ("openai", "openai.responses", "/v1/responses".to_owned()),
            Kind::Anthropic => ("anthropic", "anthropic.messages", "/v1/messages".to_owned()),
            Kind::Gemini => ("gemini", "gemini.generate", String::new()),
        };
        let auth = match rng.below(100) {
            0..50 if !self.keys.is_empty() => "virtual_key",
            _ if kind == Kind::Anthropic && rng.chance(400) => "oauth",
            _ => "byok",
        };
        let key = (auth == "virtual_key").then(|| rng.pick(&self.keys));

        // Agent traffic comes in sessions of several calls.
        let mut session: Option<(String, Option<String>, String, &'static str, u32)> = None;
        let mut at = at;
        let mut session_index = None;
        if matches!(kind, Kind::Anthropic | Kind::OpenAiResponses) && rng.chance(700) {
            if self.sessions.len() < 4 && (self.sessions.is_empty() || rng.chance(150)) {
                let cc = rng.chance(600) && kind == Kind::Anthropic;
                let sid = format!("{:016x}", rng.next());
                let fp = format!("{:016x}", rng.next());
                let preview = format!("{} {}", rng.pick(ASKS), rng.pick(TOPICS));
                let model = if kind == Kind::Anthropic {
                    rng.pick(&["claude-sonnet-4-5", "claude-haiku-4-5"])
                } else {
                    "gpt-4.1"
                };
                let (key, parent) = if cc {
                    (format!("cc:{sid}:{fp}"), Some(format!("cc:{sid}")))
                } else {
                    (format!("fp:{fp}"), None)
                };
                self.sessions.push(OpenSession {
                    next_at: at,
                    key,
                    parent,
                    preview,
                    model,
                    left: rng.range(3, 60) as u32,
                    turn: 0,
                });
            }
            let i = rng.below(self.sessions.len() as u64) as usize;
            let s = &mut self.sessions[i];
            s.left -= 1;
            s.turn += 1;
            at = s.next_at.min(self.horizon);
            session = Some((
                s.key.clone(),
                s.parent.clone(),
                s.preview.clone(),
                s.model,
                s.turn,
            ));
            session_index = Some(i);
        }
        let rng = &mut self.rng;
        let model: &'static str = match (&session, kind) {
            (Some((.., m, _)), _) => m,
            (None, Kind::OpenAiChat) => {
                rng.pick(&["gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o3-mini"])
            }
            (None, Kind::OpenAiResponses) => rng.pick(&["gpt-4.1", "gpt-4o"]),
            (None, Kind::Anthropic) => {
                rng.pick(&["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5"])
            }
            (None, Kind::Gemini) => rng.pick(&["gemini-2.5-flash", "gemini-2.5-pro"]),
        };
        let path = if kind == Kind::Gemini {
            format!("/v1beta/models/{model}:generateContent")
        } else {
            path
        };

        let big = self.n.is_multiple_of(BIG_EVERY);
        let prompt = match &session {
            Some((_, _, preview, _, 1)) => preview.clone(),
            _ => format!(
                "{} {}. {}",
                rng.pick(ASKS),
                rng.pick(TOPICS),
                paragraph(rng, 1, 6)
            ),
        };
        let mut prompt = prompt;
        if rng.chance(1) || self.n % 2000 == 7 {
            prompt.push_str(&format!(" Also, the {RARE_WORD} case."));
        }
        let history = if big {
            // An agent transcript: many tool calls and results, ~200 KB, marker at the end.
            let mut h = String::with_capacity(210_000);
            let mut turn = 0;
            while h.len() < 200_000 {
                turn += 1;
                h.push_str(&format!("[tool_result {turn}] "));
                h.push_str(&paragraph(rng, 12, 12));
                h.push('\n');
            }
            h.push_str(&format!("Final note: {TRANSCRIPT_MARKER}."));
            Some(h)
        } else {
            None
        };
        let answer = paragraph(rng, 1, 8);
        let system = "You are a careful senior engineer.";

        let status: u16 = match rng.below(1000) {
            0..10 => 429,
            10..15 => 500,
            15..20 => 400,
            _ => 200,
        };
        let outcome = match (status, rng.below(1000)) {
            (200, 0..5) => Outcome::UpstreamCut,
            (200, 5..8) => Outcome::ClientDisconnected,
            (200, 8..10) => Outcome::Timeout,
            _ => Outcome::Ok,
        };
        let ok = status == 200 && outcome == Outcome::Ok;
        let stream = rng.chance(600);
        let input = (prompt.len() / 4) as u64
            + history.as_ref().map_or(0, |h| h.len() as u64 / 4)
            + rng.range(50, 4000);
        let output = if ok {
            (answer.len() / 4) as u64 + rng.range(5, 800)
        } else {
            0
        };
        let cached =
            (kind == Kind::Anthropic && session.is_some()).then(|| input * rng.range(50, 95) / 100);
        let usage = Usage {
            input_tokens: Some(input),
            output_tokens: Some(output),
            cache_read_tokens: cached,
            reasoning_tokens: (model == "o3-mini").then_some(output / 2),
            ..Default::default()
        };
        let cost = ok.then(|| Catalog::builtin().cost(model, &usage)).flatten();
        let latency_us = if ok {
            rng.range(300_000, 25_000_000) as i64
        } else {
            rng.range(20_000, 3_000_000) as i64
        };
        let ttft_us = (stream && ok).then(|| (latency_us / rng.range(3, 20) as i64).max(100_000));
        if let Some(i) = session_index {
            // The next call follows this one after a short think, or (one time in five) runs
            // beside it, like parallel tool calls.
            let parallel = rng.chance(200);
            let gap = rng.range(200, 4000) as i64;
            let s = &mut self.sessions[i];
            if !parallel {
                s.next_at = at + latency_us / 1000 + gap;
            }
            if s.left == 0 {
                self.sessions.swap_remove(i);
            }
        }
        let rng = &mut self.rng;

        let user_content = match &history {
            Some(h) => format!("{h}\n{prompt}"),
            None => prompt.clone(),
        };
        let request = match kind {
            Kind::OpenAiChat => serde_json::json!({"model": model, "stream": stream,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": user_content}]}),
            Kind::OpenAiResponses => {
                serde_json::json!({"model": model, "stream": stream, "instructions": system, "input": user_content})
            }
            Kind::Anthropic => {
                serde_json::json!({"model": model, "max_tokens": 4096, "stream": stream, "system": system,
                "messages": [{"role": "user", "content": [{"type": "text", "text": user_content}]}]})
            }
            Kind::Gemini => serde_json::json!({"systemInstruction": {"parts": [{"text": system}]},
                "contents": [{"role": "user", "parts": [{"text": user_content}]}]}),
        };
        let request_bytes = serde_json::to_vec(&request).unwrap_or_default();
        let id = format!("gen_{:x}", rng.next());
        let response = if ok {
            match kind {
                Kind::OpenAiChat => {
                    serde_json::json!({"id": id, "object": "chat.completion", "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": input, "completion_tokens": output}})
                }
                Kind::OpenAiResponses => {
                    serde_json::json!({"id": id, "object": "response", "model": model, "status": "completed",
                    "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": answer}]}],
                    "usage": {"input_tokens": input, "output_tokens": output}})
                }
                Kind::Anthropic => {
                    serde_json::json!({"id": id, "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn",
                    "usage": {"input_tokens": input - cached.unwrap_or(0), "cache_read_input_tokens": cached.unwrap_or(0), "output_tokens": output}})
                }
                Kind::Gemini => {
                    serde_json::json!({"candidates": [{"content": {"role": "model", "parts": [{"text": answer}]}, "finishReason": "STOP"}],
                    "usageMetadata": {"promptTokenCount": input, "candidatesTokenCount": output}, "modelVersion": model})
                }
            }
        } else {
            serde_json::json!({"error": {"type": "rate_limit_error", "message": format!("upstream said {status}")}})
        };
        let response_json = serde_json::to_vec(&response).unwrap_or_default();
        let (raw, assembled) = if stream && ok {
            // A short event stream standing for the real one; the assembled JSON is above.
            let mut sse = String::new();
            for w in answer.split(' ').take(40) {
                sse.push_str(&format!("data: {{\"delta\":\"{w} \"}}\n\n"));
            }
            sse.push_str("data: [DONE]\n\n");
            (sse.into_bytes(), Some(response_json))
        } else {
            (response_json, None)
        };

        let search_text = format!("{model}\n{system}\n{user_content}\n{answer}");
        let (session_key, session_parent, session_preview) = match session {
            Some((k, p, preview, ..)) => (Some(k), p, Some(preview)),
            None => (None, None, None),
        };
        TraceRecord {
            id: TraceId::at(at),
            org_id: self.org,
            endpoint_id: self.endpoint,
            started_at: at,
            auth_mode: auth.into(),
            virtual_key_id: key,
            key_hint: None,
            provider: Some(provider.into()),
            wire: Some(wire.into()),
            model: Some(model.into()),
            method: "POST".into(),
            path,
            status_code: status,
            outcome,
            error: (!ok).then(|| match outcome {
                Outcome::Ok => format!("upstream answered {status}"),
                o => o.as_str().replace('_', " "),
            }),
            is_stream: stream,
            usage,
            usage_source: UsageSource::Provider,
            // Errors report no usage and bill nothing (as the recorder records them).
            cost_nanos: if ok {
                cost.as_ref().map(|c| c.total_nanos)
            } else {
                Some(0)
            },
            cost_estimated: auth != "virtual_key",
            cost_detail: cost.as_ref().and_then(|c| serde_json::to_string(c).ok()),
            catalog_version: cost.as_ref().map(|c| c.catalog_version.clone()),
            ttft_us,
            latency_us,
            session_key,
            session_parent,
            response_id: (ok && kind == Kind::OpenAiResponses).then(|| id.clone()),
            request_bytes: request_bytes.len() as i64,
            response_bytes: raw.len() as i64,
            reservation: None,
            search_text,
            session_preview,
            session_starts: None,
            tool_calls: None,
            attempts: Vec::new(),
            batch: None,
            bodies: TraceBodies {
                request_headers:
                    r#"{"content-type":"application/json","authorization":"<redacted>"}"#.into(),
                response_headers: r#"{"content-type":"application/json"}"#.into(),
                request_body: Some(compress(&request_bytes)),
                response_body: Some(compress(&raw)),
                response_assembled: assembled.map(|a| compress(&a)),
                request_truncated: false,
                response_truncated: false,
            },
        }
    }
}

/// One long agent session (the Activity tab at agent scale): `calls` Messages calls of a
/// Claude Code-like agent, mostly one after another with the tools it called in between, now
/// and then a few in parallel; ending `now`.
pub fn agent_session(
    org: OrgId,
    endpoint: EndpointId,
    calls: u64,
    now: Millis,
    seed: u64,
) -> Vec<TraceRecord> {
    let mut rng = Rng(seed ^ 0xA6E7);
    let key = format!("cc:generated-{seed}-{calls}");
    let preview = format!("Refactor the billing module ({calls} calls)");
    let tools = ["Read", "Edit", "Bash", "Grep", "Write", "Glob"];
    let mut at = now - calls as i64 * 9_000;
    let mut out = Vec::with_capacity(calls as usize);
    let mut i = 0;
    while i < calls {
        // Mostly sequential; sometimes a burst of parallel calls (sub-tasks).
        let burst = if rng.chance(60) { rng.range(2, 4) } else { 1 };
        let mut longest = 0;
        for _ in 0..burst.min(calls - i) {
            let latency_ms = rng.range(800, 12_000) as i64;
            longest = longest.max(latency_ms);
            let called: Vec<&str> = (0..rng.range(0, 3)).map(|_| rng.pick(&tools)).collect();
            let input = rng.range(2_000, 60_000);
            let output = rng.range(40, 2_000);
            let usage = Usage {
                input_tokens: Some(input),
                output_tokens: Some(output),
                ..Default::default()
            };
            let cost = Catalog::builtin().cost("claude-sonnet-4-5", &usage);
            let request = serde_json::json!({"model": "claude-sonnet-4-5", "max_tokens": 4096,
                "messages": [{"role": "user", "content": preview}]});
            let response = serde_json::json!({"id": format!("msg_{i}"), "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-5", "content": called.iter().map(|t| serde_json::json!({"type": "tool_use", "name": t, "input": {}})).collect::<Vec<_>>(),
                "usage": {"input_tokens": input, "output_tokens": output}});
            let request = serde_json::to_vec(&request).unwrap_or_default();
            let response = serde_json::to_vec(&response).unwrap_or_default();
            out.push(TraceRecord {
                id: TraceId::at(at),
                org_id: org,
                endpoint_id: endpoint,
                started_at: at,
                auth_mode: "oauth".into(),
                virtual_key_id: None,
                key_hint: None,
                provider: Some("anthropic".into()),
                wire: Some("anthropic.messages".into()),
                model: Some("claude-sonnet-4-5".into()),
                method: "POST".into(),
                path: "/v1/messages".into(),
                status_code: 200,
                outcome: Outcome::Ok,
                error: None,
                is_stream: true,
                usage,
                usage_source: UsageSource::Provider,
                cost_nanos: cost.as_ref().map(|c| c.total_nanos),
                cost_estimated: true,
                cost_detail: None,
                catalog_version: cost.as_ref().map(|c| c.catalog_version.clone()),
                ttft_us: Some(rng.range(300, 1500) as i64 * 1000),
                latency_us: latency_ms * 1000,
                session_key: Some(key.clone()),
                session_parent: Some(key.clone()),
                response_id: None,
                request_bytes: request.len() as i64,
                response_bytes: response.len() as i64,
                reservation: None,
                search_text: preview.clone(),
                session_preview: Some(preview.clone()),
                session_starts: None,
                tool_calls: (!called.is_empty()).then(|| called.join(",")),
                attempts: Vec::new(),
                batch: None,
                bodies: TraceBodies {
                    request_headers: "{}".into(),
                    response_headers: "{}".into(),
                    request_body: Some(compress(&request)),
                    response_body: Some(compress(&response)),
                    response_assembled: None,
                    request_truncated: false,
                    response_truncated: false,
                },
            });
            i += 1;
            at += 1;
        }
        at += longest + rng.range(200, 3_000) as i64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_varied() {
        let (o, e) = (OrgId::new_v4(), EndpointId::new_v4());
        let keys = vec![VirtualKeyId::new_v4()];
        let mut a = Generator::new(7, o, e, keys.clone());
        let mut b = Generator::new(7, o, e, keys);
        let ra: Vec<_> = (0..BIG_EVERY)
            .map(|i| a.trace(1_000_000 + i as i64))
            .collect();
        let rb: Vec<_> = (0..BIG_EVERY)
            .map(|i| b.trace(1_000_000 + i as i64))
            .collect();
        assert_eq!(
            ra.iter().map(|r| r.search_text.len()).collect::<Vec<_>>(),
            rb.iter().map(|r| r.search_text.len()).collect::<Vec<_>>()
        );
        let count = |f: &dyn Fn(&TraceRecord) -> bool| ra.iter().filter(|r| f(r)).count();
        assert!(count(&|r| r.auth_mode == "virtual_key") > 1500);
        assert!(count(&|r| r.auth_mode == "oauth") > 100);
        assert!(count(&|r| r.status_code >= 400) > 40);
        assert!(count(&|r| r.session_key.is_some()) > 500);
        assert!(
            count(&|r| r.cost_nanos.is_some()) > 3000,
            "models priced by the catalog"
        );
        assert!(count(&|r| r.search_text.contains(RARE_WORD)) >= 2);
        let big = ra
            .iter()
            .find(|r| r.search_text.contains(TRANSCRIPT_MARKER))
            .unwrap();
        assert!(big.request_bytes > 200_000);
    }
}
