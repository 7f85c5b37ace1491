//! Anthropic Messages: usage with exclusive cache accounting, streamed as Anthropic does.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    Behavior, Event, Family, MockState, all_text, answer_words, count_tokens, json_after,
    last_user_text, parse_body, sse_response,
};

pub async fn messages(State(s): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    s.stats
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let b = Behavior::from(&headers);
    if let Some(r) = b.failure(&headers, Family::Anthropic).await {
        return r;
    }
    let req = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let model = req["model"]
        .as_str()
        .unwrap_or("claude-sonnet-4-5")
        .to_owned();
    if let Some(r) = super::unknown_model(&model, Family::Anthropic) {
        return r;
    }
    let words = answer_words(&last_user_text(&req), b.chunks);
    let text: String = words.concat();
    let prompt = count_tokens(&(all_text(&req["messages"]) + &all_text(&req["system"])));
    // Anthropic reports input excluding what was read from or written to the cache.
    let input = prompt;
    let output = count_tokens(&text);
    let mid = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let usage = json!({
        "input_tokens": input, "output_tokens": output,
        "cache_creation_input_tokens": b.cache_write, "cache_read_input_tokens": b.cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": b.cache_write, "ephemeral_1h_input_tokens": 0},
        "service_tier": "standard",
    });
    let tool = req["tools"][0]["name"]
        .as_str()
        .filter(|_| b.tool_call)
        .map(str::to_owned);
    let tool_id = format!("toolu_{}", &uuid::Uuid::new_v4().simple().to_string()[..24]);
    let stop = if tool.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    if req["stream"].as_bool() != Some(true) {
        let mut content = vec![json!({"type": "text", "text": text})];
        if let Some(name) = &tool {
            content.push(json!({"type": "tool_use", "id": tool_id, "name": name, "input": {"city": "Paris"}}));
        }
        let mut v = json!({"id": mid, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null});
        if !b.no_usage {
            v["usage"] = usage;
        }
        return json_after(&b, v).await;
    }
    let ev = |kind: &str, v: Value| format!("event: {kind}\ndata: {v}\n\n");
    let mut start_usage = usage.clone();
    start_usage["output_tokens"] = json!(1);
    let mut start = json!({"type": "message_start", "message": {"id": mid, "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": null, "stop_sequence": null}});
    if !b.no_usage {
        start["message"]["usage"] = start_usage;
    }
    let mut events = vec![
        Event::Frame(ev("message_start", start)),
        Event::Frame(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        )),
        Event::Frame(ev("ping", json!({"type": "ping"}))),
    ];
    for w in &words {
        events.push(Event::Content(ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": w}}),
        )));
    }
    events.push(Event::Frame(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    )));
    if let Some(name) = &tool {
        events.push(Event::Frame(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1,
                "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}}}),
        )));
        for part in ["{\"city\": ", "\"Paris\"}"] {
            events.push(Event::Frame(ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": part}}),
            )));
        }
        events.push(Event::Frame(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        )));
    }
    let mut delta =
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}});
    if !b.no_usage {
        delta["usage"] = json!({"output_tokens": output});
    }
    events.push(Event::Frame(ev("message_delta", delta)));
    events.push(Event::Frame(ev(
        "message_stop",
        json!({"type": "message_stop"}),
    )));
    sse_response(&s, &b, events)
}

pub async fn count(State(s): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    s.stats
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let b = Behavior::from(&headers);
    if let Some(r) = b.failure(&headers, Family::Anthropic).await {
        return r;
    }
    let req = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let n = count_tokens(&(all_text(&req["messages"]) + &all_text(&req["system"])));
    json_after(&b, json!({"input_tokens": n})).await
}
