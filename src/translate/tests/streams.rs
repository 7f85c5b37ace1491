//! Streaming and response edge cases the golden fixtures do not show: streams that break off,
//! lack their terminal event or carry garbage, reasoning on the way to each client, parallel
//! tool calls, blocked prompts, same-shape passthrough and error bodies that are not JSON.

use serde_json::{Value, json};

use crate::providers::sse::events;
use crate::translate::{Provider, ResponseContext, StreamTranslator, error, request, response};

fn ctx(include_usage: bool) -> ResponseContext {
    ResponseContext {
        model: "target-model".into(),
        created: 1_735_689_600,
        fallback_id: "trace-0001".into(),
        include_usage,
    }
}

/// The translated stream, fed in one piece, and whether the client's stream was ended.
fn translate(from: Provider, to: Provider, body: &str, include_usage: bool) -> (String, bool) {
    let mut t = StreamTranslator::new(from, to, ctx(include_usage));
    let mut out = t.push(body.as_bytes()).to_vec();
    out.extend_from_slice(&t.finish());
    (String::from_utf8(out).unwrap(), t.is_done())
}

fn datas(sse: &str) -> Vec<Value> {
    events(sse.as_bytes())
        .iter()
        .filter_map(|e| serde_json::from_str(&e.data).ok())
        .collect()
}

fn anthropic_event(v: Value) -> String {
    format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap())
}

fn anthropic_start() -> String {
    anthropic_event(
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
        "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [],
        "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 1}}}),
    )
}

#[test]
fn a_stream_cut_short_is_left_cut() {
    let body = anthropic_start()
        + &anthropic_event(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        )
        + &anthropic_event(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
        );
    for to in [Provider::OpenAi, Provider::Gemini] {
        let (out, done) = translate(Provider::Anthropic, to, &body, true);
        assert!(!done, "{to}: {out}");
        assert!(out.contains("Hel"), "{to}: {out}");
        assert!(
            !out.contains("[DONE]") && !out.contains("finishReason"),
            "{to}: {out}"
        );
    }
}

#[test]
fn a_finished_answer_without_its_terminal_event_is_finished() {
    let body = "data: {\"id\":\"c1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n\
                data: {\"id\":\"c1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    let (out, done) = translate(Provider::OpenAi, Provider::Anthropic, body, false);
    assert!(done);
    let names: Vec<String> = events(out.as_bytes())
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
}

#[test]
fn an_unreadable_event_ends_the_stream_with_an_error() {
    let (out, done) = translate(
        Provider::Gemini,
        Provider::Anthropic,
        "data: {not json\r\n\r\n",
        false,
    );
    assert!(done);
    assert!(out.starts_with("event: error\n"), "{out}");
    assert!(out.contains("unreadable Gemini stream event"), "{out}");
}

#[test]
fn same_shape_streams_pass_untouched() {
    let body = "data: {\"weird\": true}\n\nnot even sse";
    let mut t = StreamTranslator::new(Provider::OpenAi, Provider::OpenAi, ctx(false));
    assert_eq!(t.push(body.as_bytes()), body.as_bytes());
    assert!(t.finish().is_empty());
}

#[test]
fn reasoning_reaches_gemini_and_anthropic_clients_but_not_openai_ones() {
    let body = anthropic_start()
        + &anthropic_event(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        )
        + &anthropic_event(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "7 × 143"}}),
        )
        + &anthropic_event(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIY"}}),
        )
        + &anthropic_event(json!({"type": "content_block_stop", "index": 0}))
        + &anthropic_event(
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        )
        + &anthropic_event(
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "No."}}),
        )
        + &anthropic_event(json!({"type": "content_block_stop", "index": 1}))
        + &anthropic_event(
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 30}}),
        )
        + &anthropic_event(json!({"type": "message_stop"}));
    let (gemini, _) = translate(Provider::Anthropic, Provider::Gemini, &body, false);
    let parts: Vec<Value> = datas(&gemini)
        .iter()
        .map(|c| c["candidates"][0]["content"]["parts"][0].clone())
        .collect();
    assert_eq!(parts[0], json!({"text": "7 × 143", "thought": true}));
    assert_eq!(
        parts[1],
        json!({"text": "", "thought": true, "thoughtSignature": "EqQBCgIY"})
    );
    assert_eq!(parts[2], json!({"text": "No."}));
    let (openai, _) = translate(Provider::Anthropic, Provider::OpenAi, &body, false);
    assert!(
        !openai.contains("143") && openai.contains("No."),
        "{openai}"
    );

    // And back: a Gemini thought with its signature becomes a signed thinking block.
    let gemini_up = "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"7 × 143\",\"thought\":true,\"thoughtSignature\":\"EqQBCgIY\"},{\"text\":\"No.\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":2,\"thoughtsTokenCount\":9},\"responseId\":\"r1\",\"modelVersion\":\"gemini-2.5-pro\"}\r\n\r\n";
    let (anthropic, done) = translate(Provider::Gemini, Provider::Anthropic, gemini_up, false);
    assert!(done);
    let deltas: Vec<Value> = datas(&anthropic)
        .into_iter()
        .filter(|v| v["type"] == "content_block_delta")
        .map(|v| v["delta"].clone())
        .collect();
    assert_eq!(
        deltas,
        [
            json!({"type": "thinking_delta", "thinking": "7 × 143"}),
            json!({"type": "signature_delta", "signature": "EqQBCgIY"}),
            json!({"type": "text_delta", "text": "No."}),
        ]
    );
}

#[test]
fn a_gemini_clients_history_gives_anthropic_its_thinking_back_whole() {
    // What a Gemini SDK keeps of a streamed Anthropic answer: one part per chunk.
    let history = json!({"contents": [
        {"role": "user", "parts": [{"text": "Is 1001 prime?"}]},
        {"role": "model", "parts": [
            {"text": "7 × ", "thought": true},
            {"text": "143", "thought": true},
            {"text": "", "thought": true, "thoughtSignature": "EqQBCgIY"},
            {"text": "No."},
            {"text": ""}]},
        {"role": "user", "parts": [{"text": "Why?"}]}]});
    let t = request(
        Provider::Gemini,
        Provider::Anthropic,
        &serde_json::to_vec(&history).unwrap(),
        "claude-sonnet-4-5",
        false,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(
        v["messages"][1]["content"],
        json!([
            {"type": "thinking", "thinking": "7 × 143", "signature": "EqQBCgIY"},
            {"type": "text", "text": "No."}
        ])
    );
}

#[test]
fn parallel_openai_tool_calls_become_separate_blocks_and_parts() {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let call = |i: u32, id: &str, args: &str| json!({"tool_calls": [{"index": i, "id": id, "type": "function", "function": {"name": "get_weather", "arguments": args}}]});
    let more =
        |i: u32, args: &str| json!({"tool_calls": [{"index": i, "function": {"arguments": args}}]});
    let body = chunk(json!({"role": "assistant", "content": null}), Value::Null)
        + &chunk(call(0, "call_a", ""), Value::Null)
        + &chunk(more(0, "{\"location\":\"Paris\"}"), Value::Null)
        + &chunk(call(1, "call_b", "{\"location\":"), Value::Null)
        + &chunk(more(1, "\"Tokyo\"}"), Value::Null)
        + &chunk(json!({}), json!("tool_calls"))
        + "data: [DONE]\n\n";
    let (anthropic, _) = translate(Provider::OpenAi, Provider::Anthropic, &body, false);
    let starts: Vec<Value> = datas(&anthropic)
        .into_iter()
        .filter(|v| v["type"] == "content_block_start")
        .map(|v| json!([v["index"], v["content_block"]["id"]]))
        .collect();
    assert_eq!(starts, [json!([0, "call_a"]), json!([1, "call_b"])]);
    assert!(anthropic.contains("\"stop_reason\":\"tool_use\""));

    let (gemini, _) = translate(Provider::OpenAi, Provider::Gemini, &body, false);
    let calls: Vec<Value> = datas(&gemini)
        .into_iter()
        .filter_map(|c| {
            c["candidates"][0]["content"]["parts"][0]
                .get("functionCall")
                .cloned()
        })
        .collect();
    assert_eq!(
        calls,
        [
            json!({"id": "call_a", "name": "get_weather", "args": {"location": "Paris"}}),
            json!({"id": "call_b", "name": "get_weather", "args": {"location": "Tokyo"}}),
        ]
    );
}

#[test]
fn broken_tool_arguments_end_a_gemini_clients_stream_with_an_error() {
    let body = "data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"function\":{\"name\":\"f\",\"arguments\":\"{oops\"}}]},\"finish_reason\":null}]}\n\n\
                data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n";
    let (out, done) = translate(Provider::OpenAi, Provider::Gemini, body, false);
    assert!(done);
    let last = datas(&out).pop().unwrap();
    assert_eq!(last["error"]["code"], 502, "{out}");
    assert!(!out.contains("finishReason"), "{out}");
}

#[test]
fn a_blocked_prompt_is_a_content_filter_stop() {
    let body = br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":12,"totalTokenCount":12},"modelVersion":"gemini-2.5-flash","responseId":"r9"}"#;
    let out = response(Provider::Gemini, Provider::OpenAi, body, &ctx(false)).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    let out = response(Provider::Gemini, Provider::Anthropic, body, &ctx(false)).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["stop_reason"], "refusal");
}

#[test]
fn an_openai_refusal_is_a_refusal_for_anthropic_clients() {
    let body = br#"{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}"#;
    let out = response(Provider::OpenAi, Provider::Anthropic, body, &ctx(false)).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["stop_reason"], "refusal");
    assert_eq!(v["content"][0]["text"], "I can't help with that.");
}

#[test]
fn same_shape_requests_keep_their_bytes_and_report_their_flags() {
    let body = br#"{"model":"gpt-4o","n":3,"stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
    let t = request(Provider::OpenAi, Provider::OpenAi, body, "other", false).unwrap();
    assert_eq!(t.body, body);
    assert!(t.stream && t.include_usage);
    let t = request(Provider::Gemini, Provider::Gemini, b"{}", "g", true).unwrap();
    assert!(t.stream && !t.include_usage);
}

#[test]
fn error_bodies_keep_status_and_message_whatever_their_shape() {
    let out = error(
        Provider::Anthropic,
        Provider::OpenAi,
        502,
        b"<html>Bad gateway</html>",
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["message"], "<html>Bad gateway</html>");
    let out = error(Provider::OpenAi, Provider::Gemini, 503, b"");
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["code"], 503);
    assert_eq!(v["error"]["status"], "UNAVAILABLE");
    assert_eq!(v["error"]["message"], "upstream openai error (status 503)");
}

#[test]
fn tool_results_answer_calls_in_order_for_gemini() {
    // OpenAI clients may return tool messages in any order; Gemini pairs them by position.
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "b", "type": "function", "function": {"name": "time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "b", "content": "noon"},
        {"role": "tool", "tool_call_id": "a", "content": "sunny"}]});
    let t = request(
        Provider::OpenAi,
        Provider::Gemini,
        &serde_json::to_vec(&body).unwrap(),
        "g",
        false,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&t.body).unwrap();
    let names: Vec<&Value> = v["contents"][2]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["functionResponse"]["name"])
        .collect();
    assert_eq!(names, [&json!("weather"), &json!("time")]);
}

/// Cost per upstream event and per request, on the fixtures. Run in release:
/// `cargo test --release -p antix --lib translate::tests::streams::timing -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn timing() {
    use std::time::Instant;

    let fixtures = super::fixtures();
    for (dir, from, to) in [
        ("openai_to_anthropic", Provider::Anthropic, Provider::OpenAi),
        ("anthropic_to_openai", Provider::OpenAi, Provider::Anthropic),
        ("anthropic_to_gemini", Provider::Gemini, Provider::Anthropic),
        ("gemini_to_openai", Provider::OpenAi, Provider::Gemini),
    ] {
        let case = fixtures.join(dir).join("stream_text");
        let body = std::fs::read(case.join("upstream_stream.sse")).unwrap();
        let n_events = events(&body).len() as u32;
        let rounds = 20_000u32;
        let start = Instant::now();
        for _ in 0..rounds {
            let mut t = StreamTranslator::new(from, to, ctx(true));
            std::hint::black_box(t.push(&body));
            std::hint::black_box(t.finish());
        }
        let per_event = start.elapsed() / (rounds * n_events);
        let request_body =
            std::fs::read(fixtures.join(dir).join("tools/client_request.json")).unwrap();
        let (client, target) = (to, from);
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(request(client, target, &request_body, "m", false).unwrap());
        }
        let per_request = start.elapsed() / rounds;
        println!(
            "{dir}: {per_event:?} per stream event, {per_request:?} per tools request ({} bytes)",
            request_body.len()
        );
    }
}
