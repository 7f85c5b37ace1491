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
    if let Some(r) = super::unknown_model(&model, Family::OpenAi) {
        return r;
    }
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
    let r = Responses::new(&req, &b);
    if req["background"].as_bool() == Some(true) {
        // Runs later: no output and no usage yet (retrieve it with GET /v1/responses/{id}).
        return json_after(&b, r.response("queued", json!([]), Value::Null)).await;
    }
    if req["stream"].as_bool() != Some(true) {
        return json_after(&b, r.completed()).await;
    }
    sse_response(&s, &b, r.events())
}

/// One mock Responses answer, as a JSON body or as stream events (SSE and WebSocket alike).
pub struct Responses {
    req: Value,
    model: String,
    rid: String,
    mid: String,
    words: Vec<String>,
    usage: Value,
}

impl Responses {
    pub fn new(req: &Value, b: &Behavior) -> Self {
        let a = answer(req, b, &req["input"]);
        let usage = json!({
            "input_tokens": a.prompt_tokens, "input_tokens_details": {"cached_tokens": b.cache_read},
            "output_tokens": a.output_tokens, "output_tokens_details": {"reasoning_tokens": b.reasoning},
            "total_tokens": a.prompt_tokens + a.output_tokens,
        });
        Responses {
            req: req.clone(),
            model: req["model"].as_str().unwrap_or("gpt-4.1").to_owned(),
            rid: id("resp_"),
            mid: id("msg_"),
            words: a.words,
            usage: if b.no_usage { Value::Null } else { usage },
        }
    }

    fn text(&self) -> String {
        self.words.concat()
    }

    fn message(&self, t: &str, status: &str) -> Value {
        json!({"type": "message", "id": self.mid, "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": t, "annotations": []}]})
    }

    pub fn response(&self, status: &str, output: Value, usage: Value) -> Value {
        json!({
            "id": self.rid, "object": "response", "created_at": now(), "status": status, "model": self.model,
            "output": output, "usage": usage, "error": null, "incomplete_details": null,
            "instructions": self.req.get("instructions").cloned().unwrap_or(Value::Null),
            "metadata": {}, "parallel_tool_calls": true, "temperature": 1.0, "top_p": 1.0,
            "tool_choice": "auto", "tools": [], "text": {"format": {"type": "text"}},
            "previous_response_id": self.req.get("previous_response_id").cloned().unwrap_or(Value::Null),
        })
    }

    pub fn completed(&self) -> Value {
        let text = self.text();
        self.response(
            "completed",
            json!([self.message(&text, "completed")]),
            self.usage.clone(),
        )
    }

    /// A `generate: false` request (Codex warms a WebSocket up with one): created and
    /// completed, nothing generated.
    pub fn warmup_events(&self) -> Vec<Value> {
        vec![
            json!({"type": "response.created", "sequence_number": 0,
                   "response": self.response("in_progress", json!([]), Value::Null)}),
            json!({"type": "response.completed", "sequence_number": 1,
                   "response": self.response("completed", json!([]), json!({"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}))}),
        ]
    }

    /// The stream's events, as JSON objects with their `type`.
    pub fn event_values(&self) -> Vec<(bool, Value)> {
        let text = self.text();
        let mid = &self.mid;
        let mut out: Vec<(bool, Value)> = vec![
            (
                false,
                json!({"type": "response.created", "response": self.response("in_progress", json!([]), Value::Null)}),
            ),
            (
                false,
                json!({"type": "response.in_progress", "response": self.response("in_progress", json!([]), Value::Null)}),
            ),
            (
                false,
                json!({"type": "response.output_item.added", "output_index": 0, "item": self.message("", "in_progress")}),
            ),
            (
                false,
                json!({"type": "response.content_part.added", "item_id": mid, "output_index": 0, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []}}),
            ),
        ];
        for w in &self.words {
            out.push((
                true,
                json!({"type": "response.output_text.delta", "item_id": mid, "output_index": 0,
                "content_index": 0, "delta": w, "logprobs": []}),
            ));
        }
        out.push((false, json!({"type": "response.output_text.done", "item_id": mid, "output_index": 0, "content_index": 0, "text": text, "logprobs": []})));
        out.push((false, json!({"type": "response.content_part.done", "item_id": mid, "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": text, "annotations": []}})));
        out.push((false, json!({"type": "response.output_item.done", "output_index": 0, "item": self.message(&text, "completed")})));
        out.push((
            false,
            json!({"type": "response.completed", "response": self.completed()}),
        ));
        for (seq, (_, v)) in out.iter_mut().enumerate() {
            v["sequence_number"] = json!(seq);
        }
        out
    }

    /// The same events as SSE frames.
    pub fn events(&self) -> Vec<Event> {
        self.event_values()
            .into_iter()
            .map(|(content, v)| {
                let kind = v["type"].as_str().unwrap_or_default().to_owned();
                let frame = format!("event: {kind}\ndata: {v}\n\n");
                if content {
                    Event::Content(frame)
                } else {
                    Event::Frame(frame)
                }
            })
            .collect()
    }
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

/// The Responses API over a WebSocket (`GET /v1/responses` upgraded), as Codex speaks it: each
/// `response.create` text frame is answered with the stream's events, one JSON object per text
/// frame; `generate: false` (a warm-up) with an empty completed response.
pub async fn responses_websocket(
    State(s): State<MockState>,
    headers: HeaderMap,
    ws: Result<
        axum::extract::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Response {
    let b = Behavior::from(&headers);
    let Ok(ws) = ws else {
        return axum::response::IntoResponse::into_response(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
        );
    };
    if b.no_websocket {
        return axum::response::IntoResponse::into_response(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
        );
    }
    ws.on_upgrade(move |socket| websocket_session(s, b, socket))
}

async fn websocket_session(s: MockState, b: Behavior, mut socket: axum::extract::ws::WebSocket) {
    use axum::extract::ws::Message;
    while let Some(Ok(msg)) = socket.recv().await {
        let Message::Text(text) = msg else {
            if matches!(msg, Message::Close(_)) {
                break;
            }
            continue;
        };
        s.stats
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Ok(req) = serde_json::from_str::<Value>(text.as_str()) else {
            let e = json!({"type": "error", "status": 400, "error": {"type": "invalid_request_error", "message": "frame is not JSON"}});
            let _ = socket.send(Message::Text(e.to_string().into())).await;
            continue;
        };
        if req["type"] != "response.create" {
            let e = json!({"type": "error", "status": 400, "error": {"type": "invalid_request_error", "message": "expected response.create"}});
            let _ = socket.send(Message::Text(e.to_string().into())).await;
            continue;
        }
        let r = Responses::new(&req, &b);
        let events: Vec<Value> = if req["generate"] == json!(false) {
            r.warmup_events()
        } else {
            r.event_values().into_iter().map(|(_, v)| v).collect()
        };
        for (i, ev) in events.into_iter().enumerate() {
            let wait = if i == 0 { b.ttft } else { b.delay };
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            if socket
                .send(Message::Text(ev.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
