use super::*;

const CHAT: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,"prompt_tokens_details":{"cached_tokens":1024},"completion_tokens_details":{"reasoning_tokens":128}}}"#;

/// The typed reading of completions and the `Value` reading agree on every shape the
/// typed one accepts, and the `Value` reading takes the rest.
#[test]
fn typed_and_value_readings_agree() {
    let bodies = [
        CHAT,
        r#"{"id":"c","model":"m","choices":[{"text":"legacy"},{"message":{"content":null},"text":"t2"}]}"#,
        r#"{"choices":[{"message":{"content":"a \"quoted\" \u00e9"}},{"message":{"content":"b"}}]}"#,
        r#"{"error":{"message":"Rate limit","type":"requests"}}"#,
        r#"{"error":"plain","choices":null,"usage":null}"#,
        r#"{"error":{"code":42}}"#,
        r#"{"object":"list","data":[{"embedding":[0.1]}],"usage":{"prompt_tokens":8,"total_tokens":8}}"#,
        // Shapes the typed reading refuses: the Value reading decides.
        r#"{"model":7,"id":"x","choices":[{"message":{"content":"c"}}]}"#,
        r#"{"choices":[{"message":{"content":[{"type":"text","text":"parts"}]},"text":"t"}]}"#,
        r#"{"choices":[{"message":"odd"}]}"#,
        r#"{"id":"first","id":"second"}"#,
        r#"["id","model"]"#,
        r#"  {"model":"m"}  "#,
        "{}",
        "not json",
    ];
    for wire in [
        Wire::OpenAiChat,
        Wire::OpenAiCompletions,
        Wire::OpenAiEmbeddings,
    ] {
        for body in bodies {
            let want = serde_json::from_slice::<Value>(body.as_bytes())
                .map(|v| from_value(wire, &v))
                .unwrap_or_default();
            assert_eq!(parse(wire, false, body.as_bytes()), want, "{body}");
        }
    }
    let p = parse(Wire::OpenAiChat, false, bodies[2].as_bytes());
    assert_eq!(p.text, "a \"quoted\" \u{e9}b");
}

#[test]
fn chat_usage_golden() {
    let p = parse(Wire::OpenAiChat, false, CHAT.as_bytes());
    assert_eq!(
        p.usage,
        Usage {
            input_tokens: Some(1200),
            output_tokens: Some(300),
            cache_read_tokens: Some(1024),
            cache_write_tokens: None,
            cache_write_1h_tokens: None,
            reasoning_tokens: Some(128),
        }
    );
    assert_eq!(p.model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(p.text, "Hello!");
    assert!(p.complete);
}

#[test]
fn responses_usage_golden() {
    let body = r#"{"id":"resp_1","object":"response","model":"o4-mini","output":[{"type":"message","content":[{"type":"output_text","text":"Hi"}]}],"usage":{"input_tokens":50,"input_tokens_details":{"cached_tokens":10},"output_tokens":70,"output_tokens_details":{"reasoning_tokens":64},"total_tokens":120}}"#;
    let p = parse(Wire::OpenAiResponses, false, body.as_bytes());
    assert_eq!(p.usage.input_tokens, Some(50));
    assert_eq!(p.usage.cache_read_tokens, Some(10));
    assert_eq!(p.usage.output_tokens, Some(70));
    assert_eq!(p.usage.reasoning_tokens, Some(64));
    assert_eq!(p.response_id.as_deref(), Some("resp_1"));
    assert_eq!(p.text, "Hi");
}

#[test]
fn embeddings_usage_has_zero_output() {
    let body = r#"{"object":"list","data":[],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
    let p = parse(Wire::OpenAiEmbeddings, false, body.as_bytes());
    assert_eq!(p.usage.input_tokens, Some(8));
    assert_eq!(p.usage.output_tokens, Some(0));
}

const STREAM: &str = "data: {\"id\":\"c1\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n\
data: {\"id\":\"c1\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}],\"usage\":null}\n\n\
data: {\"id\":\"c1\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n\
data: {\"id\":\"c1\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n\
data: [DONE]\n\n";

#[test]
fn chat_stream_reassembles_with_usage() {
    let p = parse(Wire::OpenAiChat, true, STREAM.as_bytes());
    assert!(p.complete);
    assert_eq!(p.text, "Hello");
    assert_eq!(p.usage.input_tokens, Some(9));
    assert_eq!(p.usage.output_tokens, Some(2));
    let a = p.assembled.unwrap();
    assert_eq!(a["choices"][0]["message"]["content"], "Hello");
    assert_eq!(a["choices"][0]["finish_reason"], "stop");
}

#[test]
fn chat_stream_tool_calls_are_joined() {
    let s = "data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"a\"}}]}}]}\n\n\
data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\":1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n";
    let p = parse(Wire::OpenAiChat, true, s.as_bytes());
    let a = p.assembled.unwrap();
    let tc = &a["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(tc["id"], "call_1");
    assert_eq!(tc["function"]["arguments"], "{\"a\":1}");
    assert!(!p.usage.is_reported());
}

#[test]
fn cut_stream_is_incomplete_and_keeps_partial_text() {
    let cut = &STREAM[..STREAM.find("\"lo\"").unwrap()];
    let p = parse(Wire::OpenAiChat, true, cut.as_bytes());
    assert!(!p.complete);
    assert_eq!(p.text, "Hel");
}

#[test]
fn include_usage_injection_and_hiding_round_trip() {
    let req = br#"{"model":"gpt-4o","stream":true,"messages":[]}"#;
    let injected = with_include_usage(req, false).unwrap();
    let v: Value = serde_json::from_slice(&injected).unwrap();
    assert_eq!(v["stream_options"]["include_usage"], true);
    assert_eq!(v["model"], "gpt-4o");
    assert_eq!(
        with_include_usage(b"  {}", false).unwrap(),
        br#"  {"stream_options":{"include_usage":true}}"#
    );
    assert!(with_include_usage(b"[1]", false).is_none());
    // An escaped key is the same key: rewritten, not shadowed by a second one.
    let escaped =
        br#"{"model":"gpt-4o","stream":true,"stream_\u006fptions":{"include_usage":false}}"#;
    let facts = crate::metering::read::json(Wire::OpenAiChat, escaped, None, true).unwrap();
    assert!(facts.stream_options);
    let v: Value =
        serde_json::from_slice(&with_include_usage(escaped, facts.stream_options).unwrap())
            .unwrap();
    assert_eq!(v["stream_options"]["include_usage"], true);

    // Feed the stream in awkward pieces: the client must see exactly the stream it would
    // have seen without include_usage.
    let mut f = HiddenUsageFilter::default();
    let mut seen = Vec::new();
    for piece in STREAM.as_bytes().chunks(7) {
        seen.extend_from_slice(&f.push(piece));
    }
    seen.extend_from_slice(&f.finish());
    let seen = String::from_utf8(seen).unwrap();
    assert!(!seen.contains("usage"), "{seen}");
    assert!(seen.contains("\"Hel\"") && seen.ends_with("data: [DONE]\n\n"));
    assert_eq!(seen.matches("data: ").count(), 4);
}

#[test]
fn an_endless_event_is_not_held_back() {
    let mut f = HiddenUsageFilter::default();
    let mut forwarded = 0;
    for _ in 0..100 {
        forwarded += f.push(&[b'x'; 16 * 1024]).len();
    }
    assert!(forwarded >= 100 * 16 * 1024 - MAX_HELD_EVENT - 16 * 1024);
}

#[test]
fn responses_stream_takes_the_completed_response() {
    let s = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_9\",\"model\":\"gpt-4.1\"}}\n\n\
event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi \"}\n\n\
event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"there\"}\n\n\
event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_9\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":2}}}\n\n";
    let p = parse(Wire::OpenAiResponses, true, s.as_bytes());
    assert!(p.complete);
    assert_eq!(p.text, "Hi there");
    assert_eq!(p.response_id.as_deref(), Some("resp_9"));
    assert_eq!(p.model.as_deref(), Some("gpt-4.1-2025-04-14"));
    assert_eq!(p.usage.output_tokens, Some(2));
}

#[test]
fn error_bodies_are_read() {
    let p = parse(
        Wire::OpenAiChat,
        false,
        br#"{"error":{"message":"Rate limit reached","type":"requests"}}"#,
    );
    assert_eq!(p.error.as_deref(), Some("Rate limit reached"));
    let s = "data: {\"error\":{\"message\":\"boom\"}}\n\n";
    assert_eq!(
        parse(Wire::OpenAiChat, true, s.as_bytes()).error.as_deref(),
        Some("boom")
    );
}
