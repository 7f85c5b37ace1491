//! OpenAI shapes: Chat Completions (also served at Gemini's OpenAI-compatible path),
//! Responses, Embeddings.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::{
    Behavior, Event, Family, MockState, all_text, answer_words, count_tokens, json_after,
    last_user_text, parse_body, sse_response,
};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

struct Answer {
    words: Vec<String>,
    prompt_tokens: u64,
    output_tokens: u64,
}

fn answer(req: &Value, b: &Behavior, prompt: &Value) -> Answer {
    let words = answer_words(&last_user_text(req), b.chunks);
    let text: String = words.concat();
    Answer {
        prompt_tokens: count_tokens(&all_text(prompt)) + b.cache_read,
        output_tokens: count_tokens(&text) + b.reasoning,
        words,
    }
}

fn chat_usage(a: &Answer, b: &Behavior) -> Value {
    json!({
        "prompt_tokens": a.prompt_tokens,
        "completion_tokens": a.output_tokens,
        "total_tokens": a.prompt_tokens + a.output_tokens,
        "prompt_tokens_details": {"cached_tokens": b.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": b.reasoning, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    })
}

pub async fn chat(State(s): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    s.stats
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let b = Behavior::from(&headers);
    if let Some(r) = b.failure(&headers, Family::OpenAi).await {
        return r;
    }
    let req = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let model = req["model"].as_str().unwrap_or("gpt-4o-mini").to_owned();
    let a = answer(&req, &b, &req["messages"]);
    let cid = id("chatcmpl-");
    let created = now();
    if req["stream"].as_bool() != Some(true) {
        let mut v = json!({
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": a.words.concat(), "refusal": null},
                         "logprobs": null, "finish_reason": "stop"}],
        });
        if !b.no_usage {
            v["usage"] = chat_usage(&a, &b);
        }
        return json_after(&b, v).await;
    }
    let include_usage = req
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({
            "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        format!(
            "data: {}\n\n",
            serde_json::to_string(&c).unwrap_or_default()
        )
    };
    let mut events = vec![Event::Frame(chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    ))];
    for w in &a.words {
        events.push(Event::Content(chunk(json!({"content": w}), Value::Null)));
    }
    events.push(Event::Frame(chunk(json!({}), json!("stop"))));
    if include_usage && !b.no_usage {
        let u = json!({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                       "system_fingerprint": "fp_mock", "choices": [], "usage": chat_usage(&a, &b)});
        events.push(Event::Frame(format!("data: {u}\n\n")));
    }
    events.push(Event::Frame("data: [DONE]\n\n".into()));
    sse_response(&s, &b, events)
}

pub async fn responses(State(s): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    s.stats
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let b = Behavior::from(&headers);
    if let Some(r) = b.failure(&headers, Family::OpenAi).await {
        return r;
    }
    let req = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let model = req["model"].as_str().unwrap_or("gpt-4.1").to_owned();
    let a = answer(&req, &b, &req["input"]);
    let rid = id("resp_");
    let mid = id("msg_");
    let text: String = a.words.concat();
    let usage = json!({
        "input_tokens": a.prompt_tokens, "input_tokens_details": {"cached_tokens": b.cache_read},
        "output_tokens": a.output_tokens, "output_tokens_details": {"reasoning_tokens": b.reasoning},
        "total_tokens": a.prompt_tokens + a.output_tokens,
    });
    let message = |t: &str, status: &str| {
        json!({"type": "message", "id": mid, "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": t, "annotations": []}]})
    };
    let response = |status: &str, output: Value, usage: Value| {
        json!({
            "id": rid, "object": "response", "created_at": now(), "status": status, "model": model,
            "output": output, "usage": usage, "error": null, "incomplete_details": null,
            "instructions": req.get("instructions").cloned().unwrap_or(Value::Null),
            "metadata": {}, "parallel_tool_calls": true, "temperature": 1.0, "top_p": 1.0,
            "tool_choice": "auto", "tools": [], "text": {"format": {"type": "text"}},
            "previous_response_id": req.get("previous_response_id").cloned().unwrap_or(Value::Null),
        })
    };
    let final_usage = if b.no_usage { Value::Null } else { usage };
    if req["background"].as_bool() == Some(true) {
        // Runs later: no output and no usage yet (retrieve it with GET /v1/responses/{id}).
        return json_after(&b, response("queued", json!([]), Value::Null)).await;
    }
    if req["stream"].as_bool() != Some(true) {
        return json_after(
            &b,
            response(
                "completed",
                json!([message(&text, "completed")]),
                final_usage,
            ),
        )
        .await;
    }
    let mut seq = 0u64;
    let mut ev = |kind: &str, mut v: Value| {
        v["type"] = json!(kind);
        v["sequence_number"] = json!(seq);
        seq += 1;
        format!("event: {kind}\ndata: {v}\n\n")
    };
    let mut events = vec![
        Event::Frame(ev(
            "response.created",
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        )),
        Event::Frame(ev(
            "response.in_progress",
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        )),
        Event::Frame(ev(
            "response.output_item.added",
            json!({"output_index": 0, "item": message("", "in_progress")}),
        )),
        Event::Frame(ev(
            "response.content_part.added",
            json!({"item_id": mid, "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []}}),
        )),
    ];
    for w in &a.words {
        events.push(Event::Content(ev(
            "response.output_text.delta",
            json!({"item_id": mid, "output_index": 0,
            "content_index": 0, "delta": w, "logprobs": []}),
        )));
    }
    events.push(Event::Frame(ev("response.output_text.done", json!({"item_id": mid, "output_index": 0, "content_index": 0, "text": text, "logprobs": []}))));
    events.push(Event::Frame(ev(
        "response.content_part.done",
        json!({"item_id": mid, "output_index": 0, "content_index": 0,
        "part": {"type": "output_text", "text": text, "annotations": []}}),
    )));
    events.push(Event::Frame(ev(
        "response.output_item.done",
        json!({"output_index": 0, "item": message(&text, "completed")}),
    )));
    events.push(Event::Frame(ev("response.completed", json!({"response": response("completed", json!([message(&text, "completed")]), final_usage)}))));
    sse_response(&s, &b, events)
}

pub async fn embeddings(State(s): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    s.stats
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let b = Behavior::from(&headers);
    if let Some(r) = b.failure(&headers, Family::OpenAi).await {
        return r;
    }
    let req = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let inputs: Vec<String> = match &req["input"] {
        Value::Array(a) => a.iter().map(all_text).collect(),
        other => vec![all_text(other)],
    };
    let base64 = req["encoding_format"].as_str() == Some("base64");
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let vector: Vec<f32> = (0..8).map(|k| ((t.len() + k) % 7) as f32 / 7.0).collect();
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|t| count_tokens(t)).sum();
    json_after(
        &b,
        json!({"object": "list", "data": data, "model": req["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
    .await
}
