//! Gemini API: generateContent, streamGenerateContent (SSE with `alt=sse`, else a streamed JSON
//! array), countTokens, embedContent, and the model list.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{
    Behavior, Event, Family, MockState, all_text, answer_words, count_tokens, json_after,
    last_user_text, parse_body, path_model_and_method, sse_response,
};

pub async fn models(headers: HeaderMap) -> Response {
    let b = Behavior::from(&headers);
    if let Some(r) = b.failure(&headers, Family::Gemini).await {
        return r;
    }
    axum::Json(json!({"models": [
        {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash", "supportedGenerationMethods": ["generateContent", "countTokens"]},
        {"name": "models/gemini-2.5-pro", "displayName": "Gemini 2.5 Pro", "supportedGenerationMethods": ["generateContent", "countTokens"]}
    ]}))
    .into_response()
}

pub async fn call(
    State(s): State<MockState>,
    Path(call): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.stats
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let b = Behavior::from(&headers);
    if let Some(r) = b.failure(&headers, Family::Gemini).await {
        return r;
    }
    let req = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let (model, method) = path_model_and_method(&call);
    if let Some(r) = super::unknown_model(&model, Family::Gemini) {
        return r;
    }
    let prompt = count_tokens(&(all_text(&req["contents"]) + &all_text(&req["systemInstruction"])))
        + b.cache_read;
    match method.as_str() {
        "countTokens" => json_after(&b, json!({"totalTokens": prompt})).await,
        "batchGenerateContent" => super::apis::gemini_batch(&s, &model, &req).await,
        "predict" => super::apis::imagen(&b, &req).await,
        "embedContent" => json_after(&b, json!({"embedding": {"values": [0.1, 0.2, 0.3, 0.4]}})).await,
        "batchEmbedContents" => {
            let n = req["requests"].as_array().map_or(1, Vec::len);
            let embeddings: Vec<_> = (0..n).map(|_| json!({"values": [0.1, 0.2, 0.3, 0.4]})).collect();
            json_after(&b, json!({"embeddings": embeddings})).await
        }
        "generateContent" | "streamGenerateContent" => {
            let words = answer_words(&last_user_text(&req), b.chunks);
            let text: String = words.concat();
            let output = count_tokens(&text);
            let mut usage = json!({"promptTokenCount": prompt, "candidatesTokenCount": output,
                "totalTokenCount": prompt + output + b.reasoning});
            if b.cache_read > 0 {
                usage["cachedContentTokenCount"] = json!(b.cache_read);
            }
            if b.reasoning > 0 {
                usage["thoughtsTokenCount"] = json!(b.reasoning);
            }
            let rid = uuid::Uuid::new_v4().simple().to_string();
            let tool = req["tools"][0]["functionDeclarations"][0]["name"]
                .as_str()
                .filter(|_| b.tool_call)
                .map(str::to_owned);
            let chunk = |t: &str, last: bool| {
                let mut parts = vec![json!({"text": t})];
                if last && let Some(name) = &tool {
                    parts.push(json!({"functionCall": {"name": name, "args": {"city": "Paris"}}}));
                }
                let mut c = json!({"candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0}],
                    "modelVersion": model, "responseId": rid});
                if last {
                    c["candidates"][0]["finishReason"] = json!("STOP");
                }
                if !b.no_usage {
                    c["usageMetadata"] = if last { usage.clone() } else { json!({"promptTokenCount": prompt, "totalTokenCount": prompt}) };
                }
                c
            };
            if method == "generateContent" {
                return json_after(&b, chunk(&text, true)).await;
            }
            let n = words.len();
            let sse = query.as_deref().is_some_and(|q| q.split('&').any(|p| p == "alt=sse"));
            if sse {
                let events = words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| Event::Content(format!("data: {}\r\n\r\n", chunk(w, i + 1 == n))))
                    .collect();
                return sse_response(&s, &b, events);
            }
            // Without alt=sse the API streams one JSON array.
            let mut events = vec![Event::Frame("[".into())];
            for (i, w) in words.iter().enumerate() {
                let sep = if i == 0 { "" } else { ",\r\n" };
                events.push(Event::Content(format!("{sep}{}", chunk(w, i + 1 == n))));
            }
            events.push(Event::Frame("]".into()));
            let mut res = sse_response(&s, &b, events);
            res.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
            res
        }
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": 404, "message": format!("mock: unknown method {method}"), "status": "NOT_FOUND"}})),
        )
            .into_response(),
    }
}
