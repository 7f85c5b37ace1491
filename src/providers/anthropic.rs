//! Anthropic Messages API (and count_tokens). Anthropic's `input_tokens` excludes cache reads
//! and writes, so the normalized input is the sum of the three (see [`crate::providers`]).

use serde_json::{Value, json};

use super::sse::{self, SseEvent};
use super::{Parsed, count, string};
use crate::usage::Usage;

/// `{"type":"error","error":{"type","message"}}`, with Anthropic's type names per status.
pub fn error_json(status: u16, message: &str) -> Value {
    let kind = match status {
        400 | 409 | 410 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// Usage from an Anthropic `usage` object (in a message, `message_start` or `message_delta`).
/// Only fields present are set, so partial stream usage merges cleanly.
/// Web searches the server ran, as the usage counts them (a running total in streams).
fn web_searches(u: Option<&Value>) -> u64 {
    u.and_then(|u| u.pointer("/server_tool_use/web_search_requests"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

pub fn usage(u: &Value) -> Option<Usage> {
    if !u.is_object() {
        return None;
    }
    let base = count(u, "input_tokens");
    let read = count(u, "cache_read_input_tokens");
    let write = count(u, "cache_creation_input_tokens");
    let write_1h = u
        .get("cache_creation")
        .and_then(|c| count(c, "ephemeral_1h_input_tokens"));
    let input = if base.is_some() || read.is_some() || write.is_some() {
        Some(base.unwrap_or(0) + read.unwrap_or(0) + write.unwrap_or(0))
    } else {
        None
    };
    let usage = Usage {
        input_tokens: input,
        output_tokens: count(u, "output_tokens"),
        cache_read_tokens: read,
        cache_write_tokens: write,
        cache_write_1h_tokens: write_1h,
        reasoning_tokens: None,
    };
    (usage.input_tokens.is_some() || usage.output_tokens.is_some()).then_some(usage)
}

pub fn parse(streamed: bool, body: &[u8]) -> Parsed {
    if streamed || sse::looks_like_sse(body) {
        return parse_stream(&sse::events(body));
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Parsed::default();
    };
    Parsed {
        usage: v.get("usage").and_then(usage).unwrap_or_default(),
        model: string(&v, "model"),
        response_id: string(&v, "id"),
        text: message_text(&v),
        error: error_message(&v),
        complete: true,
        assembled: None,
        tool_uses: crate::usage::ToolUses {
            web_searches: web_searches(v.get("usage")),
            ..Default::default()
        },
    }
}

fn error_message(v: &Value) -> Option<String> {
    if v.get("type").and_then(Value::as_str) != Some("error") {
        return None;
    }
    Some(
        v.pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string()),
    )
}

fn message_text(v: &Value) -> String {
    let mut out = String::new();
    for block in v
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            out.push_str(t);
        }
    }
    out
}

fn parse_stream(events: &[SseEvent]) -> Parsed {
    let mut p = Parsed::default();
    let mut message: Option<Value> = None;
    // Content blocks by index, with tool-use input accumulated as JSON text.
    let mut blocks: Vec<(Value, String)> = Vec::new();
    let mut text = String::new();
    for ev in events {
        let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
            continue;
        };
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(ev.event.as_str());
        match kind {
            "message_start" => {
                if let Some(m) = v.get("message") {
                    p.model = string(m, "model");
                    p.response_id = string(m, "id");
                    if let Some(u) = m.get("usage").and_then(usage) {
                        p.usage.merge(&u);
                    }
                    p.tool_uses.web_searches =
                        p.tool_uses.web_searches.max(web_searches(m.get("usage")));
                    message = Some(m.clone());
                }
            }
            "content_block_start" => {
                let idx = v.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                let block = v.get("content_block").cloned().unwrap_or(Value::Null);
                if blocks.len() <= idx {
                    blocks.resize(idx + 1, (Value::Null, String::new()));
                }
                blocks[idx] = (block, String::new());
            }
            "content_block_delta" => {
                let idx = v.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                let Some(delta) = v.get("delta") else {
                    continue;
                };
                if blocks.len() <= idx {
                    blocks.resize(
                        idx + 1,
                        (json!({"type": "text", "text": ""}), String::new()),
                    );
                }
                let (block, json_acc) = &mut blocks[idx];
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let t = delta.get("text").and_then(Value::as_str).unwrap_or("");
                        text.push_str(t);
                        append_str(block, "text", t);
                    }
                    Some("thinking_delta") => {
                        let t = delta.get("thinking").and_then(Value::as_str).unwrap_or("");
                        append_str(block, "thinking", t);
                    }
                    Some("signature_delta") => {
                        let t = delta.get("signature").and_then(Value::as_str).unwrap_or("");
                        append_str(block, "signature", t);
                    }
                    Some("input_json_delta") => {
                        json_acc.push_str(
                            delta
                                .get("partial_json")
                                .and_then(Value::as_str)
                                .unwrap_or(""),
                        );
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(u) = v.get("usage").and_then(usage) {
                    p.usage.merge(&u);
                }
                p.tool_uses.web_searches =
                    p.tool_uses.web_searches.max(web_searches(v.get("usage")));
                if let (Some(m), Some(d)) = (message.as_mut(), v.get("delta"))
                    && let Some(obj) = d.as_object()
                {
                    for (k, val) in obj {
                        m[k] = val.clone();
                    }
                }
            }
            "message_stop" => p.complete = true,
            "error" => p.error = error_message(&v).or_else(|| Some(v.to_string())),
            _ => {}
        }
    }
    if let Some(mut m) = message {
        let content: Vec<Value> = blocks
            .into_iter()
            .filter(|(b, _)| !b.is_null())
            .map(|(mut b, json_text)| {
                if !json_text.is_empty() {
                    b["input"] =
                        serde_json::from_str(&json_text).unwrap_or(Value::String(json_text));
                }
                b
            })
            .collect();
        m["content"] = Value::Array(content);
        if let Some(u) = m.get_mut("usage")
            && let Some(out) = p.usage.output_tokens
        {
            u["output_tokens"] = json!(out);
        }
        p.assembled = Some(m);
    }
    p.text = text;
    p
}

fn append_str(block: &mut Value, key: &str, piece: &str) {
    let cur = block
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    block[key] = Value::String(cur + piece);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_accounting_is_exclusive_and_normalized() {
        // Anthropic's input_tokens (100) excludes the 2,000 read and 500 written from cache.
        let body = br#"{"id":"msg_1","type":"message","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Hi"}],"usage":{"input_tokens":100,"cache_creation_input_tokens":500,"cache_read_input_tokens":2000,"output_tokens":42,"cache_creation":{"ephemeral_5m_input_tokens":200,"ephemeral_1h_input_tokens":300}}}"#;
        let p = parse(false, body);
        assert_eq!(
            p.usage,
            Usage {
                input_tokens: Some(2600),
                output_tokens: Some(42),
                cache_read_tokens: Some(2000),
                cache_write_tokens: Some(500),
                cache_write_1h_tokens: Some(300),
                reasoning_tokens: None,
            }
        );
        assert_eq!(p.usage.uncached_input(), 100);
        assert_eq!(p.text, "Hi");
    }

    const STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-3-5-haiku-20241022\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":10,\"cache_creation_input_tokens\":0,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: ping\ndata: {\"type\":\"ping\"}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" world\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn stream_usage_merges_start_and_delta() {
        let p = parse(true, STREAM.as_bytes());
        assert!(p.complete);
        assert_eq!(p.usage.input_tokens, Some(35));
        assert_eq!(p.usage.cache_read_tokens, Some(10));
        assert_eq!(p.usage.output_tokens, Some(15));
        assert_eq!(p.text, "Hello world");
        let m = p.assembled.unwrap();
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(m["content"][0]["text"], "Hello world");
        assert_eq!(m["content"][1]["input"]["city"], "Paris");
        assert_eq!(m["usage"]["output_tokens"], 15);
    }

    #[test]
    fn cut_stream_keeps_input_usage_and_text() {
        let cut = &STREAM[..STREAM.find(" world").unwrap()];
        let p = parse(true, cut.as_bytes());
        assert!(!p.complete);
        assert_eq!(p.text, "Hello");
        assert_eq!(p.usage.input_tokens, Some(35));
        assert_eq!(p.usage.output_tokens, Some(1));
    }

    #[test]
    fn error_events_and_bodies() {
        let s = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        assert_eq!(
            parse(true, s.as_bytes()).error.as_deref(),
            Some("Overloaded")
        );
        let b = br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: required"}}"#;
        assert_eq!(
            parse(false, b).error.as_deref(),
            Some("max_tokens: required")
        );
    }
}
