//! Anthropic messages (non-streamed) to and from the neutral [`Response`], and the message of
//! an Anthropic error body.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::request::write_part;
use super::{AnthropicUsage, Block, ErrorBody, stop_from_wire, stop_to_wire};
use crate::translate::ir::{Part, Response, StopReason, ToolCall};
use crate::translate::{Res, ResponseContext, invalid, unsupported};

#[derive(Deserialize)]
struct MessageIn {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

pub fn read(body: &[u8]) -> Res<Response> {
    let m: MessageIn = serde_json::from_slice(body).map_err(invalid)?;
    let mut r = Response {
        id: m.id,
        model: m.model,
        stop: m.stop_reason.as_deref().map(stop_from_wire),
        stop_sequence: m.stop_sequence,
        usage: m.usage.map(Into::into).unwrap_or_default(),
        ..Response::default()
    };
    for b in m.content {
        // Citations say where a text came from; the text itself is the answer.
        r.parts.push(match b.kind.as_str() {
            "text" => Part::Text(b.text.unwrap_or_default()),
            "tool_use" => Part::ToolCall(ToolCall {
                id: b.id.unwrap_or_default(),
                name: b.name.unwrap_or_default(),
                arguments: match b.input {
                    Some(v @ Value::Object(_)) => v,
                    _ => json!({}),
                },
            }),
            "thinking" => Part::Thought {
                text: b.thinking.unwrap_or_default(),
                signature: b.signature,
            },
            "redacted_thinking" => Part::RedactedThought(b.data.unwrap_or_default()),
            other => return unsupported(format!("`{other}` content block")),
        });
    }
    Ok(r)
}

#[derive(Serialize)]
struct MessageOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block>,
    stop_reason: &'a str,
    stop_sequence: Option<&'a str>,
    usage: AnthropicUsage,
}

pub fn write(r: &Response, ctx: &ResponseContext) -> Res<Vec<u8>> {
    let content = r
        .parts
        .iter()
        .filter(|p| !matches!(p, Part::Text(t) if t.is_empty()))
        .map(write_part)
        .collect::<Res<_>>()?;
    let stop = r.stop.as_ref().unwrap_or(&StopReason::EndTurn);
    let out = MessageOut {
        id: r.id.as_deref().unwrap_or(&ctx.fallback_id),
        kind: "message",
        role: "assistant",
        model: r.model.as_deref().unwrap_or(&ctx.model),
        content,
        stop_reason: stop_to_wire(stop),
        stop_sequence: r.stop_sequence.as_deref(),
        usage: AnthropicUsage::from(&r.usage),
    };
    serde_json::to_vec(&out).map_err(invalid)
}

/// The message of an Anthropic error body.
pub fn error_message(body: &[u8]) -> Option<String> {
    let b: ErrorBody = serde_json::from_slice(body).ok()?;
    Some(b.error?.message?.into_owned())
}
