//! The per-call pieces of a proxied request, each timed on its own, so a regression in one of
//! them shows as one number instead of a blur in the end-to-end benchmark:
//!
//!     cargo bench --bench call_path --features test-support
//!
//! On the request path: route parse, credential classification. Off it, in the recorder:
//! usage parsing per provider (plain and streamed), the credential scrubber, body compression
//! and a whole finalize (parse, price, scrub, redact, compress) of a typical call.

use std::hint::black_box;

use antix::capture::Capture;
use antix::domain::{EndpointId, OrgId};
use antix::gateway::{caller, route};
use antix::providers::{self, Wire};
use antix::recorder::{finalize, testing};
use antix::redact::Scrubber;
use antix::store::compression;
use bytes::Bytes;

fn main() {
    divan::main();
}

const OPENAI: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog while the gateway records every request and response.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":25,"completion_tokens":26,"total_tokens":51,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#;
const ANTHROPIC: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"The quick brown fox jumps over the lazy dog while the gateway records every request and response."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":26}}"#;
const GEMINI: &str = r#"{"candidates":[{"content":{"parts":[{"text":"The quick brown fox jumps over the lazy dog while the gateway records every request and response."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":25,"candidatesTokenCount":26,"totalTokenCount":51},"modelVersion":"gemini-2.0-flash"}"#;

/// An OpenAI chat stream of `n` content chunks and a final usage chunk.
fn openai_stream(n: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"finish_reason\":null}}],\"usage\":null}}\n\n"
        ));
    }
    s.push_str("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":25,\"completion_tokens\":26,\"total_tokens\":51}}\n\ndata: [DONE]\n\n");
    s.into_bytes()
}

#[divan::bench]
fn route_parse() -> bool {
    route::parse(
        black_box("/v1/0192f3a4-5b6c-7d8e-9f00-112233445566/openai/v1/chat/completions"),
        black_box(None),
    )
    .is_ok()
}

#[divan::bench]
fn classify_credentials(bencher: divan::Bencher) {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_static(
            "Bearer sk-vk-Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4_abc123",
        ),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    bencher.bench(|| caller::classify(black_box(&headers), black_box(None)));
}

#[divan::bench(args = ["openai", "anthropic", "gemini", "openai-stream-40", "openai-stream-8000"])]
fn parse_usage(bencher: divan::Bencher, which: &str) {
    let (wire, streamed, body) = match which {
        "openai" => (Wire::OpenAiChat, false, OPENAI.as_bytes().to_vec()),
        "anthropic" => (
            Wire::AnthropicMessages,
            false,
            ANTHROPIC.as_bytes().to_vec(),
        ),
        "gemini" => (Wire::GeminiGenerate, false, GEMINI.as_bytes().to_vec()),
        "openai-stream-40" => (Wire::OpenAiChat, true, openai_stream(40)),
        // A long answer (~1.3 MB of events): the cost must grow with the length, not its square.
        _ => (Wire::OpenAiChat, true, openai_stream(8000)),
    };
    bencher.bench(|| providers::parse_response(wire, streamed, black_box(&body)));
}

#[divan::bench(args = [1024, 65536])]
fn scrub(bencher: divan::Bencher, len: usize) {
    let secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";
    let mut body = "The quick brown fox jumps over the lazy dog. ".repeat(len / 45 + 1);
    body.truncate(len - secret.len());
    body.push_str(secret);
    let scrubber = Scrubber::new(&[secret]);
    bencher.bench(|| scrubber.bytes(black_box(body.as_bytes())));
}

#[divan::bench(args = [512, 16384])]
fn compress(bencher: divan::Bencher, len: usize) {
    let body: Vec<u8> = OPENAI.bytes().cycle().take(len).collect();
    bencher.bench(|| compression::compress(black_box(&body)));
}

#[divan::bench(args = ["json", "stream-40"])]
fn finalize_call(bencher: divan::Bencher, which: &str) {
    let mut draft = testing::sample_draft(OrgId::new_v4(), EndpointId::new_v4());
    draft.secrets = vec!["sk-proj-abcdefghijklmnopqrstuvwxyz0123456789".into()];
    if which != "json" {
        draft.is_stream = true;
        draft.response_body = Capture::of(&Bytes::from(openai_stream(40)), 1 << 20);
    }
    bencher
        .with_inputs(|| draft.clone())
        .bench_values(finalize::finalize);
}
