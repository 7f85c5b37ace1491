//! Anthropic Messages, as the translator reads and writes it: the wire types (the rest of a
//! request lands in `rest`, so nothing passes unseen), the usage and stop-reason vocabulary,
//! and the three directions in [`request`], [`response`] and [`stream`].

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ir::StopReason;
use crate::usage::Usage;

pub mod request;
pub mod response;
pub mod stream;

/// Anthropic requires `max_tokens`; when the client's shape left it out we ask for 4,096, the
/// largest output every Claude model accepts (the Claude 3 models stop there) and the default
/// LiteLLM and other gateways use.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Anthropic's smallest thinking budget.
pub const MIN_THINKING_BUDGET: u64 = 1024;

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct MessagesRequest {
    #[serde(default)]
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Thinking {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct OutputFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Message {
    pub role: String,
    pub content: Content,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A string, or content blocks (system prompts, messages and tool results all take both).
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

/// A content block of any type; which fields are set depends on `type`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Block {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Lenient: other block types use `source` for other things (a `search_result`'s is a
    /// string), and must reach the refusal that names their type.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `None` for a value that is not a `T`. Owned strings move through the `Value` without a copy.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.and_then(|v| serde_json::from_value(v).ok()))
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Source {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Tool {
    /// Absent (or `custom`) for client tools; server tools name their version here.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
}

/// A `usage` object (a message's, `message_start`'s or `message_delta`'s). Anthropic's
/// `input_tokens` excludes cache reads and writes.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
pub struct AnthropicUsage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<CacheCreation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
pub struct CacheCreation {
    #[serde(default)]
    pub ephemeral_5m_input_tokens: u64,
    #[serde(default)]
    pub ephemeral_1h_input_tokens: u64,
}

/// Same reading as [`crate::providers::anthropic::usage`]: input is the sum of the three counts.
impl From<AnthropicUsage> for Usage {
    fn from(u: AnthropicUsage) -> Usage {
        let (base, read, write) = (
            u.input_tokens,
            u.cache_read_input_tokens,
            u.cache_creation_input_tokens,
        );
        let input = (base.is_some() || read.is_some() || write.is_some())
            .then(|| base.unwrap_or(0) + read.unwrap_or(0) + write.unwrap_or(0));
        Usage {
            input_tokens: input,
            output_tokens: u.output_tokens,
            cache_read_tokens: read,
            cache_write_tokens: write,
            cache_write_1h_tokens: u.cache_creation.map(|c| c.ephemeral_1h_input_tokens),
            reasoning_tokens: None,
        }
    }
}

/// Anthropic reports no reasoning count of its own (thinking is inside `output_tokens`), so a
/// reasoning count has nowhere to go; the total output stays right.
impl From<&Usage> for AnthropicUsage {
    fn from(u: &Usage) -> AnthropicUsage {
        AnthropicUsage {
            input_tokens: Some(u.uncached_input()),
            cache_creation_input_tokens: u.cache_write_tokens,
            cache_read_input_tokens: u.cache_read_tokens,
            cache_creation: u.cache_write_1h_tokens.map(|h| CacheCreation {
                ephemeral_5m_input_tokens: u.cache_write_tokens.unwrap_or(0).saturating_sub(h),
                ephemeral_1h_input_tokens: h,
            }),
            output_tokens: Some(u.output_tokens.unwrap_or(0)),
        }
    }
}

pub fn stop_from_wire(reason: &str) -> StopReason {
    match reason {
        "end_turn" => StopReason::EndTurn,
        "stop_sequence" => StopReason::StopSequence,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_owned()),
    }
}

/// Reasons Anthropic has no word for (Gemini's `MALFORMED_FUNCTION_CALL`, …) end the turn.
pub fn stop_to_wire(reason: &StopReason) -> &str {
    match reason {
        StopReason::EndTurn => "end_turn",
        StopReason::StopSequence => "stop_sequence",
        StopReason::MaxTokens => "max_tokens",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFilter => "refusal",
        StopReason::Other(r) if r == "pause_turn" => "pause_turn",
        StopReason::Other(_) => "end_turn",
    }
}

/// `{"type":"error","error":{"type","message"}}`, as a body or a stream event.
#[derive(Debug, Deserialize)]
pub struct ErrorBody<'a> {
    #[serde(borrow)]
    pub error: Option<ErrorDetail<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub message: Option<Cow<'a, str>>,
}

/// The HTTP status Anthropic uses for an error type (for errors met mid-stream, where the
/// status line is long gone).
pub fn error_status(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}
