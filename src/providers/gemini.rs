//! Gemini API (`generateContent`, `streamGenerateContent` as SSE or as a streamed JSON array,
//! `embedContent`, `countTokens`). Thoughts tokens are not included in `candidatesTokenCount`
//! but are billed as output, so normalized output adds them (see [`crate::providers`]).

use serde_json::{Value, json};

use super::sse;
use super::{Parsed, count, string};
use crate::usage::Usage;

/// `{"error":{"code","message","status"}}` with google.rpc status names.
pub fn error_json(status: u16, message: &str) -> Value {
    let name = match status {
        400 | 413 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        410 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        501 => "UNIMPLEMENTED",
        503 | 502 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
    json!({"error": {"code": status, "message": message, "status": name}})
}

pub fn usage(u: &Value) -> Option<Usage> {
    if !u.is_object() {
        return None;
    }
    let candidates = count(u, "candidatesTokenCount");
    let thoughts = count(u, "thoughtsTokenCount");
    let output = match (candidates, thoughts) {
        (None, None) => None,
        (c, t) => Some(c.unwrap_or(0) + t.unwrap_or(0)),
    };
    let input = count(u, "promptTokenCount");
    let usage = Usage {
        input_tokens: input,
        // An embedding or a prompt-only response generates nothing.
        output_tokens: output.or(input.map(|_| 0)),
        cache_read_tokens: count(u, "cachedContentTokenCount"),
        cache_write_tokens: None,
        cache_write_1h_tokens: None,
        reasoning_tokens: thoughts,
    };
    usage.is_reported().then_some(usage)
}

pub fn parse(streamed: bool, body: &[u8]) -> Parsed {
    let chunks: Vec<Value> = if sse::looks_like_sse(body) {
        sse::events(body)
            .iter()
            .filter_map(|e| serde_json::from_str(&e.data).ok())
            .collect()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => items,
            Ok(v) => vec![v],
            // A streamed JSON array cut short: keep the complete elements.
            Err(_) if streamed => partial_array(body),
            Err(_) => return Parsed::default(),
        }
    };
    let mut p = Parsed::default();
    let mut text = String::new();
    let mut parts: Vec<Value> = Vec::new();
    let mut last: Option<Value> = None;
    for c in &chunks {
        if let Some(e) = c.get("error") {
            p.error = Some(
                e.get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.to_string()),
            );
            continue;
        }
        if let Some(u) = c.get("usageMetadata").and_then(usage) {
            p.usage.merge(&u);
        }
        p.model = string(c, "modelVersion").or(p.model.take());
        p.response_id = string(c, "responseId").or(p.response_id.take());
        // Grounding with Google Search is billed per prompt that ran a search.
        let searched = c
            .pointer("/candidates/0/groundingMetadata/webSearchQueries")
            .and_then(Value::as_array)
            .is_some_and(|q| !q.is_empty());
        if searched {
            p.tool_uses.grounded_prompts = 1;
        }
        if let Some(cand) = c.pointer("/candidates/0") {
            for part in cand
                .pointer("/content/parts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let thought = part.get("thought").and_then(Value::as_bool) == Some(true);
                if let Some(t) = part.get("text").and_then(Value::as_str) {
                    if !thought {
                        text.push_str(t);
                    }
                    merge_text_part(&mut parts, t, thought);
                } else {
                    parts.push(part.clone());
                }
            }
            if cand.get("finishReason").is_some() {
                p.complete = true;
            }
        }
        // Embeddings and token counts have no candidates; one body is the whole answer.
        if c.get("embedding").is_some()
            || c.get("embeddings").is_some()
            || c.get("totalTokens").is_some()
        {
            p.complete = true;
        }
        last = Some(c.clone());
    }
    if chunks.len() > 1
        && let Some(mut a) = last
    {
        a["candidates"][0]["content"] = json!({"role": "model", "parts": parts});
        if p.usage.is_reported() {
            a["usageMetadata"] = chunks
                .iter()
                .rev()
                .find_map(|c| c.get("usageMetadata").cloned())
                .unwrap_or(Value::Null);
        }
        p.assembled = Some(a);
    }
    if !streamed && chunks.len() == 1 && p.error.is_none() {
        p.complete = true;
    }
    p.text = text;
    p
}

/// Consecutive text parts of the same kind (thought or answer) are joined, as the
/// non-streaming API would have returned them.
fn merge_text_part(parts: &mut Vec<Value>, t: &str, thought: bool) {
    if let Some(prev) = parts.last_mut() {
        let prev_thought = prev.get("thought").and_then(Value::as_bool) == Some(true);
        if prev_thought == thought
            && let Some(pt) = prev.get("text").and_then(Value::as_str)
        {
            let joined = format!("{pt}{t}");
            prev["text"] = Value::String(joined);
            return;
        }
    }
    let mut part = json!({"text": t});
    if thought {
        part["thought"] = json!(true);
    }
    parts.push(part);
}

/// The complete elements of a streamed JSON array whose end is missing.
fn partial_array(body: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(body);
    let Some(open) = text.find('[') else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut rest = &text[open + 1..];
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() || rest.starts_with(']') {
            break;
        }
        let mut it = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        match it.next() {
            Some(Ok(v)) => {
                out.push(v);
                rest = &rest[it.byte_offset()..];
            }
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thoughts_are_output_and_cache_is_inclusive() {
        let body = br#"{"candidates":[{"content":{"role":"model","parts":[{"text":"42"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1000,"cachedContentTokenCount":600,"candidatesTokenCount":10,"thoughtsTokenCount":90,"totalTokenCount":1100},"modelVersion":"gemini-2.5-pro","responseId":"r1"}"#;
        let p = parse(false, body);
        assert_eq!(
            p.usage,
            Usage {
                input_tokens: Some(1000),
                output_tokens: Some(100),
                cache_read_tokens: Some(600),
                cache_write_tokens: None,
                cache_write_1h_tokens: None,
                reasoning_tokens: Some(90),
            }
        );
        assert_eq!(p.usage.uncached_input(), 400);
        assert_eq!(p.text, "42");
        assert!(p.complete);
    }

    const SSE: &str = "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hel\"}]}}],\"usageMetadata\":{\"promptTokenCount\":7},\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n\
data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"lo\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":7,\"candidatesTokenCount\":2,\"totalTokenCount\":9},\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n";

    #[test]
    fn sse_stream_reassembles() {
        let p = parse(true, SSE.as_bytes());
        assert!(p.complete);
        assert_eq!(p.text, "Hello");
        assert_eq!(p.usage.input_tokens, Some(7));
        assert_eq!(p.usage.output_tokens, Some(2));
        let a = p.assembled.unwrap();
        assert_eq!(a["candidates"][0]["content"]["parts"][0]["text"], "Hello");
    }

    #[test]
    fn json_array_stream_even_when_cut() {
        let full = r#"[{"candidates":[{"content":{"parts":[{"text":"a"}]}}]},
{"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}}]"#;
        let p = parse(true, full.as_bytes());
        assert_eq!(p.text, "ab");
        assert!(p.complete);
        let cut = &full[..full.find(",\n").unwrap() + 5];
        let p = parse(true, cut.as_bytes());
        assert_eq!(p.text, "a");
        assert!(!p.complete);
    }

    #[test]
    fn embeddings_have_zero_output() {
        let p = parse(
            false,
            br#"{"embedding":{"values":[0.1]},"usageMetadata":{"promptTokenCount":4}}"#,
        );
        assert_eq!(p.usage.output_tokens, Some(0));
        assert!(p.complete);
    }
}
