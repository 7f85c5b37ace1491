//! Gemini responses: their wire types (a streamed chunk has the same shape, so [`super::stream`]
//! uses them too, borrowing strings from the event), the usage vocabulary, the non-streamed
//! direction to and from the neutral [`Response`], and the message of a Gemini error body.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{call_id, stop_from_wire, stop_to_wire};
use crate::translate::ir::{Part, Response, StopReason, ToolCall};
use crate::translate::wire::opt_cow;
use crate::translate::{Res, ResponseContext, invalid, unsupported};
use crate::usage::Usage;

/// A response, or one chunk of a streamed one (the same shape). Strings borrow from the body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseIn<'a> {
    #[serde(default, borrow)]
    pub candidates: Vec<CandidateIn<'a>>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub model_version: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub response_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(default, borrow)]
    pub error: Option<ErrorDetail<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateIn<'a> {
    #[serde(default, borrow)]
    pub content: Option<ContentIn<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub struct ContentIn<'a> {
    #[serde(default, borrow)]
    pub parts: Vec<PartIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartIn<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub text: Option<Cow<'a, str>>,
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub thought_signature: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub function_call: Option<FunctionCallIn<'a>>,
    /// Output the other shapes cannot carry (images, code execution), refused by name.
    #[serde(default)]
    pub inline_data: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub executable_code: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub code_execution_result: Option<serde::de::IgnoredAny>,
}

impl PartIn<'_> {
    /// The name of output this part holds that has no equivalent elsewhere.
    pub fn untranslatable(&self) -> Option<&'static str> {
        if self.inline_data.is_some() {
            Some("Gemini `inlineData` output")
        } else if self.executable_code.is_some() || self.code_execution_result.is_some() {
            Some("Gemini code execution output")
        } else {
            None
        }
    }
}

#[derive(Deserialize)]
pub struct FunctionCallIn<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(default)]
    pub args: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub block_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail<'a> {
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub message: Option<Cow<'a, str>>,
}

/// `{"error": {...}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorBody<'a> {
    #[serde(borrow)]
    pub error: Option<ErrorDetail<'a>>,
}

/// What the client's shape is written from (a response, or one chunk of a stream).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseOut<'a> {
    pub candidates: [CandidateOut<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<UsageMetadata>,
    pub model_version: &'a str,
    pub response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateOut<'a> {
    pub content: ContentOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<&'a str>,
    pub index: u32,
}

#[derive(Serialize)]
pub struct ContentOut<'a> {
    pub parts: &'a [PartOut<'a>],
    pub role: &'static str,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCallOut<'a>>,
}

#[derive(Serialize)]
pub struct FunctionCallOut<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub args: &'a Value,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_token_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_content_token_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates_token_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thoughts_token_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_token_count: Option<u64>,
}

/// Same reading as [`crate::providers::gemini::usage`]: thoughts are output, outside
/// `candidatesTokenCount`.
impl From<UsageMetadata> for Usage {
    fn from(u: UsageMetadata) -> Usage {
        let output = match (u.candidates_token_count, u.thoughts_token_count) {
            (None, None) => None,
            (c, t) => Some(c.unwrap_or(0) + t.unwrap_or(0)),
        };
        Usage {
            input_tokens: u.prompt_token_count,
            output_tokens: output.or(u.prompt_token_count.map(|_| 0)),
            cache_read_tokens: u.cached_content_token_count,
            cache_write_tokens: None,
            cache_write_1h_tokens: None,
            reasoning_tokens: u.thoughts_token_count,
        }
    }
}

/// Gemini has no cache-write count: written tokens stay inside `promptTokenCount`. Counts not
/// known yet (output early in a stream) are left out, as Gemini does.
impl From<&Usage> for UsageMetadata {
    fn from(u: &Usage) -> UsageMetadata {
        let input = u.input_tokens.unwrap_or(0);
        let output = u.output_tokens;
        let thoughts = u.reasoning_tokens.filter(|t| *t > 0);
        UsageMetadata {
            prompt_token_count: Some(input),
            cached_content_token_count: u.cache_read_tokens.filter(|c| *c > 0),
            candidates_token_count: output.map(|o| o.saturating_sub(thoughts.unwrap_or(0))),
            thoughts_token_count: thoughts,
            total_token_count: Some(input + output.unwrap_or(0)),
        }
    }
}

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
