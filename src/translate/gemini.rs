//! Gemini `generateContent`, as the translator reads and writes it: the request wire types
//! (camelCase as the SDKs send it, snake_case as Google's REST examples do; the rest of a
//! request lands in `rest`), the finish-reason vocabulary, the synthesized tool-call ids, and
//! the three directions in [`request`], [`response`] (with the response wire types, which a
//! stream's chunks share) and [`stream`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ir::StopReason;

mod config;
pub mod request;
pub mod response;
mod schema;
pub mod stream;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateRequest {
    #[serde(default)]
    pub contents: Vec<Content>,
    #[serde(
        default,
        alias = "system_instruction",
        skip_serializing_if = "Option::is_none"
    )]
    pub system_instruction: Option<Content>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(
        default,
        alias = "tool_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub tool_config: Option<ToolConfig>,
    #[serde(
        default,
        alias = "generation_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub generation_config: Option<GenerationConfig>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// A part of any kind; which field is set says which.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    #[serde(
        default,
        alias = "thought_signature",
        skip_serializing_if = "Option::is_none"
    )]
    pub thought_signature: Option<String>,
    #[serde(
        default,
        alias = "inline_data",
        skip_serializing_if = "Option::is_none"
    )]
    pub inline_data: Option<Blob>,
    #[serde(default, alias = "file_data", skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData>,
    #[serde(
        default,
        alias = "function_call",
        skip_serializing_if = "Option::is_none"
    )]
    pub function_call: Option<FunctionCall>,
    #[serde(
        default,
        alias = "function_response",
        skip_serializing_if = "Option::is_none"
    )]
    pub function_response: Option<FunctionResponse>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    #[serde(alias = "mime_type")]
    pub mime_type: String,
    pub data: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    #[serde(default, alias = "mime_type", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(alias = "file_uri")]
    pub file_uri: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct FunctionCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub args: Value,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct FunctionResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub response: Value,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    #[serde(
        default,
        alias = "function_declarations",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub function_declarations: Vec<FunctionDeclaration>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDeclaration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// OpenAPI-style schema (upper-case types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Plain JSON Schema, what the other shapes carry.
    #[serde(
        default,
        alias = "parameters_json_schema",
        skip_serializing_if = "Option::is_none"
    )]
    pub parameters_json_schema: Option<Value>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    #[serde(
        default,
        alias = "function_calling_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub function_calling_config: Option<FunctionCallingConfig>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(
        default,
        alias = "allowed_function_names",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_function_names: Vec<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, alias = "top_p", skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, alias = "top_k", skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(
        default,
        alias = "max_output_tokens",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_output_tokens: Option<u64>,
    #[serde(
        default,
        alias = "stop_sequences",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub stop_sequences: Vec<String>,
    #[serde(
        default,
        alias = "candidate_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub candidate_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(
        default,
        alias = "presence_penalty",
        skip_serializing_if = "Option::is_none"
    )]
    pub presence_penalty: Option<f64>,
    #[serde(
        default,
        alias = "frequency_penalty",
        skip_serializing_if = "Option::is_none"
    )]
    pub frequency_penalty: Option<f64>,
    #[serde(
        default,
        alias = "response_mime_type",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_mime_type: Option<String>,
    #[serde(
        default,
        alias = "response_schema",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_schema: Option<Value>,
    #[serde(
        default,
        alias = "response_json_schema",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_json_schema: Option<Value>,
    #[serde(
        default,
        alias = "thinking_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub thinking_config: Option<ThinkingConfig>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    #[serde(
        default,
        alias = "thinking_budget",
        skip_serializing_if = "Option::is_none"
    )]
    pub thinking_budget: Option<i64>,
    #[serde(
        default,
        alias = "thinking_level",
        skip_serializing_if = "Option::is_none"
    )]
    pub thinking_level: Option<String>,
    #[serde(
        default,
        alias = "include_thoughts",
        skip_serializing_if = "Option::is_none"
    )]
    pub include_thoughts: Option<bool>,
}

/// `STOP` covers a natural end, a stop sequence and a tool call alike; the decoders tell a
/// tool call apart by the parts they saw.
pub fn stop_from_wire(reason: &str, saw_tool_call: bool) -> StopReason {
    match reason {
        "STOP" if saw_tool_call => StopReason::ToolUse,
        "STOP" => StopReason::EndTurn,
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            StopReason::ContentFilter
        }
        other => StopReason::Other(other.to_owned()),
    }
}

pub fn stop_to_wire(reason: &StopReason) -> &str {
    match reason {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::ToolUse => "STOP",
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
        StopReason::Other(r) if r.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') => r,
        StopReason::Other(_) => "OTHER",
    }
}

/// Separates a Gemini thought signature carried inside a tool-call id (see [`call_id`]).
const SIGNATURE_MARK: &str = "__thought__";

/// The id given to a Gemini function call, which has none of its own: stable (the response id
/// and the call's position), and carrying the call's thought signature, which Gemini 3 rejects
/// a follow-up without and which OpenAI and Anthropic clients would otherwise drop. Clients echo
/// ids faithfully, so the signature comes back with the tool result. The signature's base64 is
/// written URL-safe and unpadded, so the id still matches Anthropic's `^[a-zA-Z0-9_-]+$`.
pub fn call_id(base: &str, signature: Option<&str>) -> String {
    let Some(sig) = signature.filter(|s| !s.is_empty()) else {
        return base.to_owned();
    };
    let mut id = String::with_capacity(base.len() + SIGNATURE_MARK.len() + sig.len());
    id.push_str(base);
    id.push_str(SIGNATURE_MARK);
    id.extend(sig.chars().filter(|&c| c != '=').map(|c| match c {
        '+' => '-',
        '/' => '_',
        c => c,
    }));
    id
}

/// The id without its signature, and the signature in Gemini's standard base64.
pub fn split_call_id(id: &str) -> (&str, Option<String>) {
    let Some((base, safe)) = id.split_once(SIGNATURE_MARK).filter(|(_, s)| !s.is_empty()) else {
        return (id, None);
    };
    let mut sig: String = safe
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !sig.len().is_multiple_of(4) {
        sig.push('=');
    }
    (base, Some(sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_ride_in_ids_and_come_back_intact() {
        let sig = "CpkCAdHtim/zBQ9c1Lw3j+0m+/4=";
        let id = call_id("call_JbrRaJrPBJWl1dkPhJy8-Ag_0", Some(sig));
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{id}"
        );
        assert_eq!(
            split_call_id(&id),
            ("call_JbrRaJrPBJWl1dkPhJy8-Ag_0", Some(sig.to_owned()))
        );
        assert_eq!(call_id("call_1", None), "call_1");
        assert_eq!(split_call_id("toolu_01A09q90"), ("toolu_01A09q90", None));
    }
}
