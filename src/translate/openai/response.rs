//! OpenAI chat completions (non-streamed) to and from the neutral [`Response`], and the message
//! of an OpenAI error body.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::request::parse_arguments;
use super::{
    ChatUsage, ErrorBody, FunctionCall, ToolCall as WireToolCall, stop_from_wire, stop_to_wire,
};
use crate::translate::ir::{Part, Response, StopReason, ToolCall};
use crate::translate::{Res, ResponseContext, invalid, unsupported};

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    created: Option<u64>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<ChatUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
    #[serde(default)]
    audio: Option<Value>,
}

pub fn read(body: &[u8]) -> Res<Response> {
    let c: Completion = serde_json::from_slice(body).map_err(invalid)?;
    let mut r = Response {
        id: c.id,
        model: c.model,
        created: c.created,
        usage: c.usage.map(Into::into).unwrap_or_default(),
        ..Response::default()
    };
    // `n` > 1 is refused on the way in, so the first choice is the answer.
    let Some(choice) = c.choices.into_iter().next() else {
        return Ok(r);
    };
    if choice.message.audio.as_ref().is_some_and(|a| !a.is_null()) {
        return unsupported("audio output");
    }
    r.stop = choice.finish_reason.as_deref().map(stop_from_wire);
    let m = choice.message;
    if let Some(t) = m.content.filter(|t| !t.is_empty()) {
        r.parts.push(Part::Text(t));
    }
    if let Some(t) = m.refusal.filter(|t| !t.is_empty()) {
        r.parts.push(Part::Text(t));
        r.stop = Some(StopReason::ContentFilter);
    }
    for c in m.tool_calls.into_iter().flatten() {
        r.parts.push(Part::ToolCall(ToolCall {
            arguments: parse_arguments(&c.function.arguments)?,
            id: c.id,
            name: c.function.name,
        }));
    }
    Ok(r)
}

#[derive(Serialize)]
struct CompletionOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChoiceOut; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<ChatUsage>,
}

#[derive(Serialize)]
struct ChoiceOut {
    index: u32,
    message: MessageOut,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct MessageOut {
    role: &'static str,
    content: Option<String>,
    refusal: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall>,
}

/// Reasoning text has no place in a chat completion (OpenAI never returns its own); its token
/// count stays in `completion_tokens_details.reasoning_tokens`.
pub fn write(r: &Response, ctx: &ResponseContext) -> Res<Vec<u8>> {
    let mut text: Option<String> = None;
    let mut calls = Vec::new();
    for p in &r.parts {
        match p {
            Part::Text(t) => text.get_or_insert_with(String::new).push_str(t),
            Part::ToolCall(c) => calls.push(WireToolCall {
                id: c.id.clone(),
                kind: "function".into(),
                function: FunctionCall {
                    name: c.name.clone(),
                    arguments: c.arguments.to_string(),
                },
            }),
            Part::Thought { .. } | Part::RedactedThought(_) => {}
            Part::Media(_) | Part::ToolResult(_) => {
                return Err(invalid("the answer holds user input"));
            }
        }
    }
    let stop = r.stop.as_ref().unwrap_or(&StopReason::EndTurn);
    let out = CompletionOut {
        id: r.id.as_deref().unwrap_or(&ctx.fallback_id),
        object: "chat.completion",
        created: r.created.unwrap_or(ctx.created),
        model: r.model.as_deref().unwrap_or(&ctx.model),
        choices: [ChoiceOut {
            index: 0,
            message: MessageOut {
                role: "assistant",
                content: text,
                refusal: None,
                tool_calls: calls,
            },
            logprobs: None,
            finish_reason: stop_to_wire(stop),
        }],
        usage: r.usage.is_reported().then(|| ChatUsage::from(&r.usage)),
    };
    serde_json::to_vec(&out).map_err(invalid)
}

/// The message of an OpenAI error body.
pub fn error_message(body: &[u8]) -> Option<String> {
    let b: ErrorBody = serde_json::from_slice(body).ok()?;
    Some(b.error?.message?.into_owned())
}
