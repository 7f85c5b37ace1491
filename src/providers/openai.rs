//! OpenAI: Chat Completions, Responses, Embeddings and legacy Completions (also the shape of the
//! OpenAI-compatible APIs of Anthropic and Gemini). Usage mapping: see [`crate::providers`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

use super::sse::{self, SseEvent};
use super::{Parsed, Wire, count, string};
use crate::usage::Usage;

/// `{"error":{"message","type","param","code"}}`, with OpenAI's type names per status.
pub fn error_json(status: u16, message: &str) -> Value {
    let (kind, code) = match status {
        400 | 409 | 410 | 413 | 422 => ("invalid_request_error", Value::Null),
        401 => ("invalid_request_error", json!("invalid_api_key")),
        403 => ("permission_error", Value::Null),
        404 => ("invalid_request_error", json!("not_found")),
        429 => ("rate_limit_exceeded", json!("rate_limit_exceeded")),
        503 => ("service_unavailable", Value::Null),
        504 => ("timeout", Value::Null),
        _ => ("server_error", Value::Null),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// Usage from a `usage` object of any OpenAI API.
pub fn usage(u: &Value) -> Option<Usage> {
    if !u.is_object() {
        return None;
    }
    // Chat and legacy completions name it prompt/completion; Responses input/output.
    let input = count(u, "prompt_tokens").or_else(|| count(u, "input_tokens"));
    let output = count(u, "completion_tokens").or_else(|| count(u, "output_tokens"));
    let in_details = u
        .get("prompt_tokens_details")
        .or_else(|| u.get("input_tokens_details"));
    let out_details = u
        .get("completion_tokens_details")
        .or_else(|| u.get("output_tokens_details"));
    let usage = Usage {
        input_tokens: input,
        // Embeddings report only prompt tokens: nothing is generated.
        output_tokens: output.or(input.map(|_| 0)),
        cache_read_tokens: in_details.and_then(|d| count(d, "cached_tokens")),
        cache_write_tokens: None,
        cache_write_1h_tokens: None,
        reasoning_tokens: out_details.and_then(|d| count(d, "reasoning_tokens")),
    };
    usage.is_reported().then_some(usage)
}

pub fn parse(wire: Wire, streamed: bool, body: &[u8]) -> Parsed {
    if streamed || sse::looks_like_sse(body) {
        let events = sse::events(body);
        return match wire {
            Wire::OpenAiResponses => parse_responses_stream(&events),
            _ => parse_chat_stream(&events),
        };
    }
    // Objects only: serde would also read a struct from an array, by position.
    if wire != Wire::OpenAiResponses
        && body.trim_ascii_start().starts_with(b"{")
        && let Ok(c) = serde_json::from_slice::<CompletionIn>(body)
    {
        return c.parsed();
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => from_value(wire, &v),
        Err(_) => Parsed::default(),
    }
}

/// A non-streamed answer of any OpenAI API, of any shape.
fn from_value(wire: Wire, v: &Value) -> Parsed {
    let mut p = Parsed {
        usage: v.get("usage").and_then(usage).unwrap_or_default(),
        model: string(v, "model"),
        response_id: string(v, "id"),
        error: error_message(v),
        complete: true,
        ..Default::default()
    };
    p.text = match wire {
        Wire::OpenAiResponses => responses_text(v),
        _ => chat_text(v),
    };
    if wire == Wire::OpenAiResponses {
        for item in v
            .get("output")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            count_tool_use(item, &mut p.tool_uses);
        }
    }
    p
}

/// A Responses output item that is a search the provider ran (and bills per call).
fn count_tool_use(item: &Value, uses: &mut crate::usage::ToolUses) {
    match item.get("type").and_then(Value::as_str) {
        Some("web_search_call") => uses.web_searches += 1,
        Some("file_search_call") => uses.file_searches += 1,
        _ => {}
    }
}

fn error_message(v: &Value) -> Option<String> {
    error_text(v.get("error")?)
}

fn error_text(e: &Value) -> Option<String> {
    if e.is_null() {
        return None;
    }
    Some(
        e.get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| e.to_string()),
    )
}

fn chat_text(v: &Value) -> String {
    let mut out = String::new();
    for c in v
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(t) = c.pointer("/message/content").and_then(Value::as_str) {
            out.push_str(t);
        } else if let Some(t) = c.get("text").and_then(Value::as_str) {
            out.push_str(t);
        }
    }
    out
}

fn responses_text(v: &Value) -> String {
    let mut out = String::new();
    for item in v
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for part in item
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = part.get("text").and_then(Value::as_str) {
                out.push_str(t);
            }
        }
    }
    out
}

/// A chat or legacy completion answer, read with typed serde: a `Value` of the whole answer
/// cost several times more to build and drop, on every call. An answer that does not fit these
/// types (a field of another type, a duplicate key) is read again as a `Value`, which takes any
/// shape, so both readings agree wherever this one succeeds.
#[derive(serde::Deserialize)]
struct CompletionIn<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Option<Vec<CompletionChoiceIn<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(serde::Deserialize)]
struct CompletionChoiceIn<'a> {
    #[serde(default, borrow)]
    message: Option<MessageIn<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct MessageIn<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
}

impl CompletionIn<'_> {
    fn parsed(self) -> Parsed {
        let mut text = String::new();
        for c in self.choices.iter().flatten() {
            if let Some(t) = c.message.as_ref().and_then(|m| m.content.as_deref()) {
                text.push_str(t);
            } else if let Some(t) = c.text.as_deref() {
                text.push_str(t);
            }
        }
        Parsed {
            usage: self.usage.as_ref().and_then(usage).unwrap_or_default(),
            model: self.model.map(Cow::into_owned),
            response_id: self.id.map(Cow::into_owned),
            error: self.error.as_ref().and_then(error_text),
            complete: true,
            text,
            ..Default::default()
        }
    }
}

#[derive(Default)]
struct ChoiceAcc {
    role: Option<String>,
    content: String,
    has_content: bool,
    finish_reason: Value,
    tool_calls: BTreeMap<u64, (Option<String>, Option<String>, String)>,
}

/// One chat-completion chunk, read with typed serde (several times faster than a `Value` for
/// the dozens of chunks of every streamed answer). Unknown fields are skipped.
#[derive(serde::Deserialize)]
struct ChunkIn<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    created: Option<Value>,
    #[serde(default, borrow)]
    choices: Vec<ChoiceIn<'a>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(serde::Deserialize)]
struct ChoiceIn<'a> {
    #[serde(default)]
    index: u64,
    #[serde(default, borrow)]
    delta: Option<DeltaIn<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    finish_reason: Option<Value>,
}

#[derive(serde::Deserialize)]
struct DeltaIn<'a> {
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCallIn<'a>>>,
}

#[derive(serde::Deserialize)]
struct ToolCallIn<'a> {
    #[serde(default)]
    index: u64,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<FunctionIn<'a>>,
}

#[derive(serde::Deserialize)]
struct FunctionIn<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

fn parse_chat_stream(events: &[SseEvent]) -> Parsed {
    let mut p = Parsed::default();
    let mut created = Value::Null;
    let mut choices: BTreeMap<u64, ChoiceAcc> = BTreeMap::new();
    for ev in events {
        if ev.data.trim() == "[DONE]" {
            p.complete = true;
            continue;
        }
        let Ok(chunk) = serde_json::from_str::<ChunkIn>(&ev.data) else {
            continue;
        };
        if let Some(e) = chunk.error.filter(|e| !e.is_null()) {
            p.error = Some(
                e.get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.to_string()),
            );
            continue;
        }
        if p.model.is_none() {
            p.model = chunk.model.map(Cow::into_owned);
        }
        if p.response_id.is_none() {
            p.response_id = chunk.id.map(Cow::into_owned);
        }
        if created.is_null()
            && let Some(c) = chunk.created
        {
            created = c;
        }
        if let Some(u) = chunk.usage.as_ref().and_then(usage) {
            p.usage.merge(&u);
        }
        for c in chunk.choices {
            let acc = choices.entry(c.index).or_default();
            let delta = c.delta;
            if let Some(r) = delta.as_ref().and_then(|d| d.role.as_ref()) {
                acc.role = Some(r.to_string());
            }
            if let Some(t) = delta
                .as_ref()
                .and_then(|d| d.content.as_deref())
                .or(c.text.as_deref())
            {
                acc.content.push_str(t);
                acc.has_content = true;
            }
            for tc in delta.and_then(|d| d.tool_calls).into_iter().flatten() {
                let entry = acc.tool_calls.entry(tc.index).or_default();
                if let Some(id) = tc.id {
                    entry.0 = Some(id.into_owned());
                }
                if let Some(f) = tc.function {
                    if let Some(n) = f.name {
                        entry.1 = Some(n.into_owned());
                    }
                    if let Some(a) = f.arguments {
                        entry.2.push_str(&a);
                    }
                }
            }
            if let Some(f) = c.finish_reason
                && !f.is_null()
            {
                acc.finish_reason = f;
            }
        }
    }
    let mut text = String::new();
    let assembled_choices: Vec<Value> = choices
        .into_iter()
        .map(|(index, acc)| {
            text.push_str(&acc.content);
            let mut message = json!({
                "role": acc.role.unwrap_or_else(|| "assistant".into()),
                "content": if acc.has_content { Value::String(acc.content) } else { Value::Null },
            });
            if !acc.tool_calls.is_empty() {
                message["tool_calls"] = Value::Array(
                    acc.tool_calls
                        .into_values()
                        .map(|(id, name, args)| {
                            json!({"id": id, "type": "function",
                                   "function": {"name": name, "arguments": args}})
                        })
                        .collect(),
                );
            }
            json!({"index": index, "message": message, "finish_reason": acc.finish_reason})
        })
        .collect();
    if p.model.is_some() || !assembled_choices.is_empty() {
        p.assembled = Some(json!({
            "id": p.response_id,
            "object": "chat.completion",
            "created": created,
            "model": p.model,
            "choices": assembled_choices,
            "usage": usage_json(&p.usage),
        }));
    }
    p.text = text;
    p
}

fn usage_json(u: &Usage) -> Value {
    if !u.is_reported() {
        return Value::Null;
    }
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    })
}

fn parse_responses_stream(events: &[SseEvent]) -> Parsed {
    let mut p = Parsed::default();
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
            "response.output_text.delta" => {
                if let Some(d) = v.get("delta").and_then(Value::as_str) {
                    text.push_str(d);
                }
            }
            // Each output item is done once, even when the stream ends before the response does.
            "response.output_item.done" => {
                if let Some(item) = v.get("item") {
                    count_tool_use(item, &mut p.tool_uses);
                }
            }
            "response.created" | "response.in_progress" => {
                if let Some(r) = v.get("response") {
                    p.model = p.model.or_else(|| string(r, "model"));
                    p.response_id = p.response_id.or_else(|| string(r, "id"));
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                if let Some(r) = v.get("response") {
                    p.model = string(r, "model").or(p.model.take());
                    p.response_id = string(r, "id").or(p.response_id.take());
                    if let Some(u) = r.get("usage").and_then(usage) {
                        p.usage.merge(&u);
                    }
                    if let Some(e) = error_message(r) {
                        p.error = Some(e);
                    }
                    p.assembled = Some(r.clone());
                }
                p.complete = true;
            }
            "error" => {
                p.error = Some(
                    string(&v, "message")
                        .or_else(|| error_message(&v))
                        .unwrap_or_else(|| v.to_string()),
                );
            }
            _ => {}
        }
    }
    p.text = match &p.assembled {
        Some(r) if text.is_empty() => responses_text(r),
        _ => text,
    };
    p
}

/// For a streaming chat request that did not ask for usage, the request body with
/// `stream_options.include_usage` turned on, so the gateway learns the usage. Without a
/// `stream_options` field, it is inserted as text after the opening brace (the body is otherwise
/// forwarded byte for byte); one that says `include_usage: false` is rewritten.
pub fn with_include_usage(body: &[u8], has_options: bool) -> Option<Vec<u8>> {
    // With `stream_options` present (`has_options`: read by a JSON parser, which sees through
    // escaped keys), it is rewritten in place: an added second one could lose to it.
    if has_options || memchr::memmem::find(body, b"\"stream_options\"").is_some() {
        let mut v: Value = serde_json::from_slice(body).ok()?;
        let options = v
            .as_object_mut()?
            .entry("stream_options")
            .or_insert(json!({}));
        if !options.is_object() {
            *options = json!({});
        }
        options
            .as_object_mut()?
            .insert("include_usage".into(), Value::Bool(true));
        return serde_json::to_vec(&v).ok();
    }
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    if body[start] != b'{' {
        return None;
    }
    let rest = &body[start + 1..];
    let empty = rest
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'}');
    let insert: &[u8] = if empty {
        br#""stream_options":{"include_usage":true}"#
    } else {
        br#""stream_options":{"include_usage":true},"#
    };
    let mut out = Vec::with_capacity(body.len() + insert.len());
    out.extend_from_slice(&body[..=start]);
    out.extend_from_slice(insert);
    out.extend_from_slice(rest);
    Some(out)
}

/// Hides, from the client, what turning on `include_usage` changed in a chat stream: the
/// extra usage-only chunk (empty `choices`) and the `"usage":null` field on every other chunk.
/// Works event by event, so nothing is held back longer than one event.
/// The most bytes of one unfinished event the filter holds back.
const MAX_HELD_EVENT: usize = 256 * 1024;

#[derive(Default)]
pub struct HiddenUsageFilter {
    pending: BytesMut,
    /// How far `pending` is known to hold no event boundary: each byte is scanned once, however
    /// small the pieces an event arrives in.
    scanned: usize,
}

impl HiddenUsageFilter {
    /// Feeds upstream bytes; returns the bytes to forward now.
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        // A boundary may straddle the previous piece's end: back up by its length less one.
        while let Some(end) = find_event_end(&self.pending, self.scanned.saturating_sub(3)) {
            let event = self.pending.split_to(end);
            self.scanned = 0;
            filter_event(&event, &mut out);
        }
        self.scanned = self.pending.len();
        // A hostile or broken stream with no event boundary in sight: forward what is held
        // rather than buffer without bound (the usage chunk is small; this is never it).
        if self.pending.len() > MAX_HELD_EVENT {
            out.extend_from_slice(&self.pending.split());
            self.scanned = 0;
        }
        out.freeze()
    }

    /// The bytes left when the stream ends (an unterminated last event goes out unchanged).
    pub fn finish(&mut self) -> Bytes {
        self.scanned = 0;
        self.pending.split().freeze()
    }
}

/// Index just past the blank line ending the first complete event at or after `from`, if any.
fn find_event_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' && buf[i + 1] == b'\n' {
            return Some(i + 2);
        }
        if buf[i] == b'\r' && buf[i + 1] == b'\n' && buf.get(i + 2..i + 4) == Some(b"\r\n") {
            return Some(i + 4);
        }
        i += 1;
    }
    None
}

fn filter_event(event: &[u8], out: &mut BytesMut) {
    const NULL_USAGE: &[u8] = br#","usage":null"#;
    let contains = |needle: &[u8]| event.windows(needle.len()).any(|w| w == needle);
    if contains(NULL_USAGE) {
        // Compact JSON from the provider: the field can only be the chunk's own `usage` key (a
        // quote inside a string value would be escaped).
        let mut i = 0;
        while i < event.len() {
            if event[i..].starts_with(NULL_USAGE) {
                i += NULL_USAGE.len();
            } else {
                out.extend_from_slice(&event[i..=i]);
                i += 1;
            }
        }
        return;
    }
    if contains(b"\"usage\"") && is_usage_only_chunk(event) {
        return;
    }
    out.extend_from_slice(event);
}

fn is_usage_only_chunk(event: &[u8]) -> bool {
    let text = String::from_utf8_lossy(event);
    let data: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect::<Vec<_>>()
        .join("\n");
    let Ok(v) = serde_json::from_str::<Value>(&data) else {
        return false;
    };
    v.get("choices")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
        && v.get("usage").is_some_and(Value::is_object)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod properties {
    //! The usage-hiding filter as a property: however the upstream's bytes are cut into pieces,
    //! the client gets the same bytes, and they are the stream it would have had without the
    //! usage the gateway asked for.
    use proptest::prelude::*;

    use super::HiddenUsageFilter;

    fn chunk(text: &str) -> String {
        let v = serde_json::json!({"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}], "usage": null});
        format!("data: {v}\n\n")
    }

    fn run(stream: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut f = HiddenUsageFilter::default();
        let mut out = Vec::new();
        let mut at = 0;
        for &c in cuts {
            let c = c.min(stream.len()).max(at);
            out.extend_from_slice(&f.push(&stream[at..c]));
            at = c;
        }
        out.extend_from_slice(&f.push(&stream[at..]));
        out.extend_from_slice(&f.finish());
        out
    }

    proptest! {
        #[test]
        fn any_cutting_of_a_stream_gives_the_client_the_same_bytes(
            texts in prop::collection::vec("[ -~\\n\"\\\\é]{0,12}", 1..6),
            mut cuts in prop::collection::vec(0usize..2000, 0..12),
            crlf in any::<bool>(),
        ) {
            let mut stream: String = texts.iter().map(|t| chunk(t)).collect();
            stream.push_str("data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n");
            stream.push_str("data: [DONE]\n\n");
            if crlf {
                // Only line ends become CRLF: serde escapes every newline inside the JSON.
                stream = stream.replace('\n', "\r\n");
            }
            cuts.sort_unstable();
            let whole = run(stream.as_bytes(), &[]);
            let pieces = run(stream.as_bytes(), &cuts);
            prop_assert_eq!(&whole, &pieces);
            let seen = String::from_utf8(whole).unwrap();
            prop_assert!(!seen.contains("\"usage\""), "{}", seen);
            prop_assert_eq!(seen.matches("data: ").count(), texts.len() + 1);
            // Every content chunk is still valid JSON with its text intact.
            for (event, text) in seen.split("data: ").skip(1).zip(&texts) {
                let v: serde_json::Value = serde_json::from_str(event.trim()).unwrap();
                prop_assert_eq!(v["choices"][0]["delta"]["content"].as_str(), Some(text.as_str()));
            }
        }
    }
}
