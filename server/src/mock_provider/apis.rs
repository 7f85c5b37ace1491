//! The mock's APIs beyond chat, with realistic usage so metering is exercised end to end:
//! OpenAI images (token usage for `gpt-image-*`, a count for others), speech (audio bytes),
//! transcription (a duration, or tokens for `gpt-4o-*-transcribe`), files, batches (results
//! carry each request's usage), background Responses and their retrieval, and one API no
//! gateway can meter (fine-tuning jobs); Anthropic message batches; Gemini batches and Imagen.
//!
//! Batches finish at once: created, then retrieved as done with their results.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Behavior, Family, MockState, all_text, count_tokens, json_after, parse_body};

/// What the mock remembers between calls: uploaded files and created batches.
#[derive(Default)]
pub struct Store {
    /// File id → content.
    files: Mutex<HashMap<String, Vec<u8>>>,
    /// Batch id → the requests' bodies.
    batches: Mutex<HashMap<String, Vec<Value>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

fn count(s: &MockState) {
    s.stats
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// The mock's usage for one chat-like request body: its text's tokens in, a short answer out.
fn usage_of(body: &Value) -> (u64, u64) {
    let input = count_tokens(&all_text(body));
    let output = body
        .get("max_tokens")
        .or_else(|| body.get("max_completion_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(12)
        .min(12);
    (input, output)
}

/// A multipart form's text fields and the size of its file.
fn form(headers: &HeaderMap, body: &[u8]) -> (HashMap<String, String>, Vec<u8>) {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(boundary) = ct.split("boundary=").nth(1) else {
        return (HashMap::new(), Vec::new());
    };
    let boundary = boundary.trim_matches('"');
    let delim = format!("--{boundary}");
    let text = body;
    let mut fields = HashMap::new();
    let mut file = Vec::new();
    let parts = split_bytes(text, delim.as_bytes());
    for part in parts {
        let Some(head_end) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..head_end]);
        let mut data = &part[head_end + 4..];
        if data.ends_with(b"\r\n") {
            data = &data[..data.len() - 2];
        }
        let name = head
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("")
            .to_owned();
        if head.contains("filename=") {
            file = data.to_vec();
        } else {
            fields.insert(name, String::from_utf8_lossy(data).into_owned());
        }
    }
    (fields, file)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(hay: &'a [u8], delim: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = hay;
    while let Some(i) = find(rest, delim) {
        out.push(&rest[..i]);
        rest = &rest[i + delim.len()..];
    }
    out.push(rest);
    out
}

fn bad(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": {"message": message, "type": "invalid_request_error"}})),
    )
        .into_response()
}

// ---- OpenAI --------------------------------------------------------------------------------

pub async fn images(State(s): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    count(&s);
    let b = Behavior::from(&headers);
    if let Some(r) = b.failure(&headers, Family::OpenAi).await {
        return r;
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    let (model, n, prompt, quality, size) = if is_form {
        let (f, _) = form(&headers, &body);
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        (
            f.get("model").cloned().unwrap_or_else(|| "dall-e-2".into()),
            f.get("n").and_then(|n| n.parse().ok()).unwrap_or(1u64),
            get("prompt"),
            get("quality"),
            get("size"),
        )
    } else {
        let Ok(v) = parse_body(&body) else {
            return bad("mock: invalid JSON");
        };
        let get = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        (
            v["model"].as_str().unwrap_or("dall-e-2").to_owned(),
            v["n"].as_u64().unwrap_or(1),
            get("prompt"),
            get("quality"),
            get("size"),
        )
    };
    // OpenAI's published image tokens per quality and size.
    let square = size.is_empty() || size == "1024x1024" || size == "auto";
    let per_image: u64 = match (quality.as_str(), square) {
        ("low", true) => 272,
        ("low", false) => 408,
        ("medium", true) => 1056,
        ("medium", false) => 1584,
        (_, true) => 4160,
        (_, false) => 6240,
    };
    let data: Vec<Value> = (0..n)
        .map(|_| json!({"b64_json": "iVBORw0KGgo=", "revised_prompt": prompt}))
        .collect();
    let mut out = json!({"created": chrono::Utc::now().timestamp(), "data": data});
    if model.starts_with("gpt-image") {
        let text = count_tokens(&prompt);
        out["usage"] = json!({
            "input_tokens": text, "output_tokens": per_image * n, "total_tokens": text + per_image * n,
            "input_tokens_details": {"text_tokens": text, "image_tokens": 0}
        });
    }
    json_after(&b, out).await
}

pub async fn speech(State(s): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    count(&s);
    let b = Behavior::from(&headers);
    if let Some(r) = b.failure(&headers, Family::OpenAi).await {
        return r;
    }
    let Ok(v) = parse_body(&body) else {
        return bad("mock: invalid JSON");
    };
    let chars = v["input"].as_str().map_or(0, |t| t.chars().count());
    // About a kilobyte of "audio" per ten characters.
    let audio = vec![0xFFu8; (chars * 100).max(16)];
    ([(header::CONTENT_TYPE, "audio/mpeg")], audio).into_response()
}

pub async fn transcription(
    State(s): State<MockState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    count(&s);
    let b = Behavior::from(&headers);
    if let Some(r) = b.failure(&headers, Family::OpenAi).await {
        return r;
    }
    let (fields, file) = form(&headers, &body);
    let model = fields.get("model").cloned().unwrap_or_default();
    // A second of audio per 16 kB, as at 128 kbit/s.
    let seconds = (file.len() as f64 / 16_000.0).max(1.0).round();
    let text = "Mock transcript of the uploaded audio.";
    let usage = if model.contains("transcribe") {
        json!({"type": "tokens", "input_tokens": (seconds as u64) * 10, "output_tokens": count_tokens(text),
               "total_tokens": (seconds as u64) * 10 + count_tokens(text),
               "input_token_details": {"audio_tokens": (seconds as u64) * 10, "text_tokens": 0}})
    } else {
        json!({"type": "duration", "seconds": seconds})
    };
    json_after(&b, json!({"text": text, "usage": usage})).await
}

pub async fn upload_file(State(s): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    count(&s);
    let (fields, file) = form(&headers, &body);
    let file_id = id("file-");
    let bytes = file.len();
    lock(&s.apis.files).insert(file_id.clone(), file);
    axum::Json(json!({
        "id": file_id, "object": "file", "bytes": bytes, "created_at": chrono::Utc::now().timestamp(),
        "filename": "input.jsonl", "purpose": fields.get("purpose").cloned().unwrap_or_default()
    }))
    .into_response()
}

pub async fn file_content(State(s): State<MockState>, Path(file): Path<String>) -> Response {
    count(&s);
    match lock(&s.apis.files).get(&file) {
        Some(c) => ([(header::CONTENT_TYPE, "application/octet-stream")], c.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"message": "No such File object", "type": "invalid_request_error"}})),
        )
            .into_response(),
    }
}

pub async fn create_batch(State(s): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    count(&s);
    let b = Behavior::from(&headers);
    if let Some(r) = b.failure(&headers, Family::OpenAi).await {
        return r;
    }
    let Ok(v) = parse_body(&body) else {
        return bad("mock: invalid JSON");
    };
    let input = v["input_file_id"].as_str().unwrap_or_default().to_owned();
    let Some(content) = lock(&s.apis.files).get(&input).cloned() else {
        return bad("mock: unknown input_file_id");
    };
    let requests: Vec<Value> = content
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .collect();
    let batch_id = id("batch_");
    lock(&s.apis.batches).insert(batch_id.clone(), requests);
    axum::Json(
        json!({"id": batch_id, "object": "batch", "endpoint": v["endpoint"], "input_file_id": input,
        "completion_window": "24h", "status": "validating", "output_file_id": null}),
    )
    .into_response()
}

/// A batch is done as soon as it is retrieved: its output file holds one result per request.
pub async fn get_batch(State(s): State<MockState>, Path(batch): Path<String>) -> Response {
    count(&s);
    let Some(requests) = lock(&s.apis.batches).get(&batch).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"message": "No such batch"}})),
        )
            .into_response();
    };
    let mut lines = Vec::new();
    for r in &requests {
        let body = &r["body"];
        let (input, output) = usage_of(body);
        lines.push(json!({"id": id("batch_req_"), "custom_id": r["custom_id"], "response": {"status_code": 200,
            "request_id": id("req_"), "body": {"id": id("chatcmpl-"), "object": "chat.completion",
            "model": body["model"], "choices": [{"index": 0, "message": {"role": "assistant", "content": "Batch answer."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}}}, "error": null}).to_string());
    }
    let output_file = format!("file-out-{batch}");
    lock(&s.apis.files).insert(output_file.clone(), (lines.join("\n") + "\n").into_bytes());
    axum::Json(
        json!({"id": batch, "object": "batch", "status": "completed", "output_file_id": output_file,
        "request_counts": {"total": requests.len(), "completed": requests.len(), "failed": 0}}),
    )
    .into_response()
}

/// Background Responses: created queued, with no usage; retrieved completed, with it.
pub async fn get_response(State(s): State<MockState>, Path(id_): Path<String>) -> Response {
    count(&s);
    axum::Json(json!({"id": id_, "object": "response", "status": "completed", "model": "gpt-4o",
        "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done in the background."}]}],
        "usage": {"input_tokens": 20, "output_tokens": 6, "total_tokens": 26}}))
    .into_response()
}

pub async fn fine_tuning(State(s): State<MockState>) -> Response {
    count(&s);
    axum::Json(json!({"id": id("ftjob-"), "object": "fine_tuning.job", "status": "queued"}))
        .into_response()
}

// ---- Anthropic -----------------------------------------------------------------------------

pub async fn anthropic_batch(
    State(s): State<MockState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    count(&s);
    let b = Behavior::from(&headers);
    if let Some(r) = b.failure(&headers, Family::Anthropic).await {
        return r;
    }
    let Ok(v) = parse_body(&body) else {
        return bad("mock: invalid JSON");
    };
    let requests: Vec<Value> = v["requests"].as_array().cloned().unwrap_or_default();
    let n = requests.len();
    let batch_id = id("msgbatch_");
    lock(&s.apis.batches).insert(batch_id.clone(), requests);
    axum::Json(json!({"id": batch_id, "type": "message_batch", "processing_status": "in_progress",
        "request_counts": {"processing": n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
        "results_url": null}))
    .into_response()
}

pub async fn anthropic_batch_results(
    State(s): State<MockState>,
    Path(batch): Path<String>,
) -> Response {
    count(&s);
    let Some(requests) = lock(&s.apis.batches).get(&batch).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(
                json!({"type": "error", "error": {"type": "not_found_error", "message": "batch"}}),
            ),
        )
            .into_response();
    };
    let lines: Vec<String> = requests
        .iter()
        .map(|r| {
            let p = &r["params"];
            let (input, output) = usage_of(p);
            json!({"custom_id": r["custom_id"], "result": {"type": "succeeded", "message": {"id": id("msg_"),
                "type": "message", "role": "assistant", "model": p["model"], "content": [{"type": "text", "text": "Batch answer."}],
                "stop_reason": "end_turn", "usage": {"input_tokens": input, "output_tokens": output}}}})
            .to_string()
        })
        .collect();
    (
        [(header::CONTENT_TYPE, "application/x-jsonl")],
        lines.join("\n") + "\n",
    )
        .into_response()
}

// ---- Gemini --------------------------------------------------------------------------------

pub async fn gemini_batch(s: &MockState, model: &str, req: &Value) -> Response {
    let requests: Vec<Value> = req
        .pointer("/batch/input_config/requests/requests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut r| {
            r["model"] = json!(model);
            r
        })
        .collect();
    let name = id("mockbatch");
    lock(&s.apis.batches).insert(name.clone(), requests);
    axum::Json(json!({"name": format!("batches/{name}"), "metadata": {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch", "state": "BATCH_STATE_PENDING"}, "done": false}))
        .into_response()
}

pub async fn gemini_get_batch(State(s): State<MockState>, Path(batch): Path<String>) -> Response {
    count(&s);
    let Some(requests) = lock(&s.apis.batches).get(&batch).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": 404, "message": "batch", "status": "NOT_FOUND"}})),
        )
            .into_response();
    };
    let responses: Vec<Value> = requests
        .iter()
        .map(|r| {
            let input = count_tokens(&all_text(&r["request"]["contents"]));
            json!({"response": {"candidates": [{"content": {"role": "model", "parts": [{"text": "Batch answer."}]}, "finishReason": "STOP"}],
                "modelVersion": r["model"], "usageMetadata": {"promptTokenCount": input, "candidatesTokenCount": 4, "totalTokenCount": input + 4}}})
        })
        .collect();
    axum::Json(json!({"name": format!("batches/{batch}"), "done": true,
        "response": {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
            "inlinedResponses": {"inlinedResponses": responses}}}))
    .into_response()
}

pub async fn imagen(b: &Behavior, req: &Value) -> Response {
    let instances = req["instances"].as_array().map_or(1, Vec::len) as u64;
    let per = req
        .pointer("/parameters/sampleCount")
        .and_then(Value::as_u64)
        .unwrap_or(4);
    let predictions: Vec<Value> = (0..instances * per)
        .map(|_| json!({"bytesBase64Encoded": "iVBORw0KGgo=", "mimeType": "image/png"}))
        .collect();
    json_after(b, json!({"predictions": predictions})).await
}
