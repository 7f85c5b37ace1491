//! Gemini responses (non-streamed) to and from the neutral [`Response`], and the message of a
//! Gemini error body.

use std::borrow::Cow;

use super::{
    CandidateOut, ContentOut, ErrorBody, FunctionCallOut, PartIn, PartOut, ResponseIn, ResponseOut,
    UsageMetadata, call_id, stop_from_wire, stop_to_wire,
};
use crate::translate::ir::{Part, Response, StopReason, ToolCall};
use crate::translate::{Res, ResponseContext, invalid, unsupported};

pub fn read(body: &[u8], ctx: &ResponseContext) -> Res<Response> {
    let r: ResponseIn = serde_json::from_slice(body).map_err(invalid)?;
    let id: &str = r.response_id.as_deref().unwrap_or(&ctx.fallback_id);
    let mut out = Response {
        id: r.response_id.as_deref().map(str::to_owned),
        model: r.model_version.as_deref().map(str::to_owned),
        usage: r.usage_metadata.map(Into::into).unwrap_or_default(),
        ..Response::default()
    };
    let Some(candidate) = r.candidates.into_iter().next() else {
        // No candidate at all: the prompt itself was blocked.
        if r.prompt_feedback.is_some_and(|f| f.block_reason.is_some()) {
            out.stop = Some(StopReason::ContentFilter);
        }
        return Ok(out);
    };
    let mut calls = 0;
    for p in candidate.content.map(|c| c.parts).unwrap_or_default() {
        if let Some(part) = read_part(p, id, &mut calls)? {
            out.parts.push(part);
        }
    }
    out.stop = candidate
        .finish_reason
        .as_deref()
        .map(|f| stop_from_wire(f, calls > 0));
    Ok(out)
}

/// One output part in the neutral form; `calls` counts function calls so far, for their ids.
pub fn read_part(p: PartIn<'_>, response_id: &str, calls: &mut usize) -> Res<Option<Part>> {
    if let Some(what) = p.untranslatable() {
        return unsupported(what);
    }
    if let Some(f) = p.function_call {
        let base = match f.id {
            Some(id) => id.into_owned(),
            None => format!("call_{response_id}_{calls}"),
        };
        *calls += 1;
        return Ok(Some(Part::ToolCall(ToolCall {
            id: call_id(&base, p.thought_signature.as_deref()),
            name: f.name.into_owned(),
            arguments: match f.args {
                Some(v @ serde_json::Value::Object(_)) => v,
                _ => serde_json::json!({}),
            },
        })));
    }
    Ok(match (p.text, p.thought == Some(true)) {
        (Some(text), true) => Some(Part::Thought {
            text: text.into_owned(),
            signature: p.thought_signature.map(Cow::into_owned),
        }),
        (Some(text), false) if !text.is_empty() => Some(Part::Text(text.into_owned())),
        _ => None,
    })
}

/// Anthropic's redacted reasoning has no Gemini form and is left out of the answer.
pub fn write(r: &Response, ctx: &ResponseContext) -> Res<Vec<u8>> {
    let mut parts = Vec::with_capacity(r.parts.len());
    for p in &r.parts {
        parts.push(match p {
            Part::Text(t) => PartOut {
                text: Some(t),
                ..PartOut::default()
            },
            Part::Thought { text, signature } => PartOut {
                text: Some(text),
                thought: Some(true),
                thought_signature: signature.as_deref().filter(|s| !s.is_empty()),
                ..PartOut::default()
            },
            Part::ToolCall(c) => PartOut {
                function_call: Some(FunctionCallOut {
                    id: &c.id,
                    name: &c.name,
                    args: &c.arguments,
                }),
                ..PartOut::default()
            },
            Part::RedactedThought(_) => continue,
            Part::Media(_) | Part::ToolResult(_) => {
                return Err(invalid("the answer holds user input"));
            }
        });
    }
    let stop = r.stop.as_ref().unwrap_or(&StopReason::EndTurn);
    let out = ResponseOut {
        candidates: [CandidateOut {
            content: ContentOut {
                parts: &parts,
                role: "model",
            },
            finish_reason: Some(stop_to_wire(stop)),
            index: 0,
        }],
        usage_metadata: r.usage.is_reported().then(|| UsageMetadata::from(&r.usage)),
        model_version: r.model.as_deref().unwrap_or(&ctx.model),
        response_id: r.id.as_deref().unwrap_or(&ctx.fallback_id),
    };
    serde_json::to_vec(&out).map_err(invalid)
}

/// The message of a Gemini error body.
pub fn error_message(body: &[u8]) -> Option<String> {
    let b: ErrorBody = serde_json::from_slice(body).ok()?;
    Some(b.error?.message?.into_owned())
}
