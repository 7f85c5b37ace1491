//! Provider wire formats: which API a call speaks, how its usage is reported, how a streamed
//! response is reassembled, and what an error looks like in each provider's own shape.
//!
//! One module per provider ([`openai`], [`anthropic`], [`gemini`]), the routing table of the
//! universal `multi` endpoint ([`multi`]), and shared SSE framing ([`sse`]).
//!
//! # Usage fields, per provider
//!
//! | Normalized ([`Usage`]) | OpenAI chat / completions | OpenAI Responses | Anthropic Messages | Gemini |
//! |---|---|---|---|---|
//! | `input_tokens` (all prompt tokens) | `prompt_tokens` (includes cached) | `input_tokens` (includes cached) | `input_tokens + cache_creation_input_tokens + cache_read_input_tokens` (Anthropic's `input_tokens` excludes both) | `promptTokenCount` (includes cached) |
//! | `output_tokens` (all generated) | `completion_tokens` (includes reasoning) | `output_tokens` (includes reasoning) | `output_tokens` (includes thinking) | `candidatesTokenCount + thoughtsTokenCount` (thoughts are *not* in candidates, and are billed as output) |
//! | `cache_read_tokens` | `prompt_tokens_details.cached_tokens` | `input_tokens_details.cached_tokens` | `cache_read_input_tokens` | `cachedContentTokenCount` |
//! | `cache_write_tokens` | — | — | `cache_creation_input_tokens` | — |
//! | `cache_write_1h_tokens` | — | — | `cache_creation.ephemeral_1h_input_tokens` | — |
//! | `reasoning_tokens` | `completion_tokens_details.reasoning_tokens` | `output_tokens_details.reasoning_tokens` | — (not reported separately) | `thoughtsTokenCount` |
//!
//! Where usage arrives in a stream: OpenAI chat in the last chunk (only when
//! `stream_options.include_usage` is set, which the gateway sets and then hides from the client);
//! Responses in `response.completed`; Anthropic in `message_start` (input, cache) and
//! `message_delta` (cumulative output); Gemini in every chunk's `usageMetadata` (the last wins).

use bytes::Bytes;
use serde_json::Value;

pub use crate::domain::Provider;
use crate::usage::{ToolUses, Usage};
pub use apis::Billing;

pub mod anthropic;
pub mod apis;
pub mod gemini;
pub mod multi;
pub mod openai;
pub mod sse;

/// The API a call speaks on the wire. It decides how usage is read, bodies reassembled and the
/// call billed ([`apis`] holds the table); it is not always the provider billed (`multi` sends
/// OpenAI-shaped chat to Anthropic's and Gemini's OpenAI-compatible APIs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    OpenAiChat,
    OpenAiResponses,
    OpenAiEmbeddings,
    OpenAiCompletions,
    OpenAiImages,
    OpenAiSpeech,
    OpenAiTranscription,
    /// `POST /files`: a batch's input file is inspected on its way.
    OpenAiFileUpload,
    /// `GET /files/{id}/content`: a batch's results when the file is its output.
    OpenAiFileContent,
    OpenAiBatch,
    /// `GET /batches/{id}`: names a finished batch's output file.
    OpenAiBatchStatus,
    OpenAiFree,
    OpenAiOther,
    AnthropicMessages,
    AnthropicCountTokens,
    AnthropicBatch,
    AnthropicBatchResults,
    AnthropicFree,
    AnthropicOther,
    GeminiGenerate,
    GeminiEmbed,
    GeminiCountTokens,
    /// `:predict` (Imagen): images.
    GeminiPredict,
    GeminiBatch,
    /// `GET batches/{id}`: a finished batch carries its responses and their usage.
    GeminiBatchStatus,
    GeminiFree,
    GeminiOther,
}

impl Wire {
    /// Classifies a call: the API family it speaks, its method and its upstream path (always
    /// starting with `/`, query excluded). See [`apis`].
    pub fn classify(family: Provider, method: &http::Method, path: &str) -> Wire {
        apis::classify(family, method, path)
    }

    /// The provider family whose error shape and SDK this wire belongs to.
    pub fn family(self) -> Provider {
        match self {
            Wire::OpenAiChat
            | Wire::OpenAiResponses
            | Wire::OpenAiEmbeddings
            | Wire::OpenAiCompletions
            | Wire::OpenAiImages
            | Wire::OpenAiSpeech
            | Wire::OpenAiTranscription
            | Wire::OpenAiFileUpload
            | Wire::OpenAiFileContent
            | Wire::OpenAiBatch
            | Wire::OpenAiBatchStatus
            | Wire::OpenAiFree
            | Wire::OpenAiOther => Provider::OpenAi,
            Wire::AnthropicMessages
            | Wire::AnthropicCountTokens
            | Wire::AnthropicBatch
            | Wire::AnthropicBatchResults
            | Wire::AnthropicFree
            | Wire::AnthropicOther => Provider::Anthropic,
            Wire::GeminiGenerate
            | Wire::GeminiEmbed
            | Wire::GeminiCountTokens
            | Wire::GeminiPredict
            | Wire::GeminiBatch
            | Wire::GeminiBatchStatus
            | Wire::GeminiFree
            | Wire::GeminiOther => Provider::Gemini,
        }
    }

    /// How the call is paid for.
    pub fn billing(self) -> Billing {
        match self {
            Wire::OpenAiChat
            | Wire::OpenAiResponses
            | Wire::OpenAiEmbeddings
            | Wire::OpenAiCompletions
            | Wire::AnthropicMessages
            | Wire::GeminiGenerate
            | Wire::GeminiEmbed => Billing::Tokens,
            Wire::OpenAiImages | Wire::GeminiPredict => Billing::Images,
            Wire::OpenAiSpeech => Billing::Speech,
            Wire::OpenAiTranscription => Billing::Transcription,
            Wire::OpenAiFileUpload => Billing::FileUpload,
            Wire::OpenAiBatch | Wire::AnthropicBatch | Wire::GeminiBatch => Billing::BatchCreate,
            Wire::OpenAiFileContent | Wire::AnthropicBatchResults | Wire::GeminiBatchStatus => {
                Billing::BatchResults
            }
            Wire::OpenAiBatchStatus
            | Wire::OpenAiFree
            | Wire::AnthropicCountTokens
            | Wire::AnthropicFree
            | Wire::GeminiCountTokens
            | Wire::GeminiFree => Billing::Free,
            Wire::OpenAiOther | Wire::AnthropicOther | Wire::GeminiOther => Billing::Unmetered,
        }
    }

    /// Whether the call consumes what costs money and a reservation is held for it (listing
    /// models or counting tokens does not).
    pub fn metered(self) -> bool {
        self.billing().metered()
    }

    /// Calls that make up multi-turn agent sessions (the Activity tab).
    pub fn session_capable(self) -> bool {
        matches!(
            self,
            Wire::AnthropicMessages
                | Wire::OpenAiResponses
                | Wire::OpenAiChat
                | Wire::GeminiGenerate
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Wire::OpenAiChat => "openai.chat",
            Wire::OpenAiResponses => "openai.responses",
            Wire::OpenAiEmbeddings => "openai.embeddings",
            Wire::OpenAiCompletions => "openai.completions",
            Wire::OpenAiImages => "openai.images",
            Wire::OpenAiSpeech => "openai.speech",
            Wire::OpenAiTranscription => "openai.transcription",
            Wire::OpenAiFileUpload => "openai.file_upload",
            Wire::OpenAiFileContent => "openai.file_content",
            Wire::OpenAiBatch => "openai.batch",
            Wire::OpenAiBatchStatus => "openai.batch_status",
            Wire::OpenAiFree => "openai.free",
            Wire::OpenAiOther => "openai.other",
            Wire::AnthropicMessages => "anthropic.messages",
            Wire::AnthropicCountTokens => "anthropic.count_tokens",
            Wire::AnthropicBatch => "anthropic.batch",
            Wire::AnthropicBatchResults => "anthropic.batch_results",
            Wire::AnthropicFree => "anthropic.free",
            Wire::AnthropicOther => "anthropic.other",
            Wire::GeminiGenerate => "gemini.generate",
            Wire::GeminiEmbed => "gemini.embed",
            Wire::GeminiCountTokens => "gemini.count_tokens",
            Wire::GeminiPredict => "gemini.predict",
            Wire::GeminiBatch => "gemini.batch",
            Wire::GeminiBatchStatus => "gemini.batch_status",
            Wire::GeminiFree => "gemini.free",
            Wire::GeminiOther => "gemini.other",
        }
    }
}

/// What the gateway reads out of a response body (after the fact, off the request path).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// Usage as reported; `Usage::default()` when none was.
    pub usage: Usage,
    /// The model the provider says answered.
    pub model: Option<String>,
    /// The provider's id for the response (chains `previous_response_id`).
    pub response_id: Option<String>,
    /// A streamed response rebuilt into the provider's non-streaming shape.
    pub assembled: Option<Value>,
    /// The generated text, for estimates and search.
    pub text: String,
    /// An error message carried in the body or in a stream's error event.
    pub error: Option<String>,
    /// Server-side tools the provider ran (and bills per use).
    pub tool_uses: ToolUses,
    /// Whether the terminal event of a stream was seen (`[DONE]`, `message_stop`, …); always
    /// true for a complete non-streamed JSON body.
    pub complete: bool,
}

/// Parses a response body (possibly truncated) for the given wire format.
pub fn parse_response(wire: Wire, streamed: bool, body: &[u8]) -> Parsed {
    match wire.family() {
        Provider::OpenAi => openai::parse(wire, streamed, body),
        Provider::Anthropic => anthropic::parse(streamed, body),
        Provider::Gemini => gemini::parse(streamed, body),
    }
}

/// The tools the model called in a response (its final, non-streaming shape: a body, or a
/// stream reassembled), in order: OpenAI chat `tool_calls`, Responses `*_call` output items,
/// Anthropic `tool_use` blocks, Gemini `functionCall` parts. Shown on the Activity tab between
/// the calls of an agent session.
pub fn tool_calls(wire: Wire, v: &Value) -> Vec<String> {
    let name = |x: &Value| x.as_str().map(str::to_owned);
    let mut out = Vec::new();
    match wire.family() {
        Provider::OpenAi => {
            for c in v
                .get("choices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for t in c
                    .pointer("/message/tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    out.extend(t.pointer("/function/name").and_then(name));
                }
            }
            for item in v
                .get("output")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(kind) = item.get("type").and_then(Value::as_str) else {
                    continue;
                };
                if let Some(base) = kind.strip_suffix("_call") {
                    out.push(
                        item.get("name")
                            .and_then(name)
                            .unwrap_or_else(|| base.to_owned()),
                    );
                }
            }
        }
        Provider::Anthropic => {
            for b in v
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if matches!(
                    b.get("type").and_then(Value::as_str),
                    Some("tool_use" | "server_tool_use")
                ) {
                    out.extend(b.get("name").and_then(name));
                }
            }
        }
        Provider::Gemini => {
            for c in v
                .get("candidates")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for p in c
                    .pointer("/content/parts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    out.extend(p.pointer("/functionCall/name").and_then(name));
                }
            }
        }
    }
    out
}

/// Whether a response body may hold tool calls (a cheap look before parsing it for them).
pub fn may_call_tools(body: &[u8]) -> bool {
    // Built once: building a finder costs more than searching a short body with it.
    static FINDERS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 4]> =
        std::sync::LazyLock::new(|| {
            [
                &b"\"tool_calls\""[..],
                b"\"tool_use\"",
                b"_call\"",
                b"\"functionCall\"",
            ]
            .map(memchr::memmem::Finder::new)
        });
    FINDERS.iter().any(|f| f.find(body).is_some())
}

/// The usage reported at the end of a body whose beginning was not kept (see
/// [`crate::capture::TAIL`]), read the way the wire's own parser reads it.
pub fn usage_in_tail(wire: Wire, tail: &[u8]) -> Option<Usage> {
    let body = usage_body_in_tail(wire, tail)?;
    let u = parse_response(wire, false, &body).usage;
    u.is_reported().then_some(u)
}

/// The last `"usage"` object (`"usageMetadata"` for Gemini) in the end of a body, as a minimal
/// response body of the wire's own shape (`{"usage": {…}}`). Inside a JSON string a quote is
/// always escaped, so generated text cannot fake the key.
pub fn usage_body_in_tail(wire: Wire, tail: &[u8]) -> Option<Vec<u8>> {
    let key: &[u8] = match wire.family() {
        Provider::Gemini => b"\"usageMetadata\"",
        Provider::OpenAi | Provider::Anthropic => b"\"usage\"",
    };
    let finder = memchr::memmem::FinderRev::new(key);
    let mut end = tail.len();
    while let Some(at) = finder.rfind(&tail[..end]) {
        end = at;
        let rest = tail[at + key.len()..].trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b":") else {
            continue;
        };
        let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
        let Some(Ok(v @ Value::Object(_))) = values.next() else {
            continue;
        };
        let mut wrapped = serde_json::Map::new();
        wrapped.insert(
            std::str::from_utf8(&key[1..key.len() - 1]).ok()?.to_owned(),
            v,
        );
        return serde_json::to_vec(&Value::Object(wrapped)).ok();
    }
    None
}

/// Status code and message of an error the gateway itself answers with, in the provider's own
/// JSON shape, so SDKs raise their usual exception with a readable message.
pub fn error_body(family: Provider, status: u16, message: &str) -> Bytes {
    let v = match family {
        Provider::OpenAi => openai::error_json(status, message),
        Provider::Anthropic => anthropic::error_json(status, message),
        Provider::Gemini => gemini::error_json(status, message),
    };
    Bytes::from(v.to_string())
}

/// An error event to end a stream that already started (status 200 is on the wire), in the
/// provider's streaming shape.
pub fn stream_error_event(family: Provider, status: u16, message: &str) -> Bytes {
    let v = match family {
        Provider::OpenAi => openai::error_json(status, message),
        Provider::Anthropic => anthropic::error_json(status, message),
        Provider::Gemini => gemini::error_json(status, message),
    };
    match family {
        Provider::Anthropic => Bytes::from(format!("event: error\ndata: {v}\n\n")),
        Provider::OpenAi | Provider::Gemini => Bytes::from(format!("data: {v}\n\n")),
    }
}

/// Reads a JSON number as a token count (providers send integers; anything else is ignored).
pub(crate) fn count(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

pub(crate) fn string(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_from_the_end_of_a_cut_body() {
        let filler = "x\\\"usage\\\": {\\\"prompt_tokens\\\": 1}".repeat(50);
        // A chat completion: the text mentions "usage" (escaped), the real object is last.
        let chat = format!(
            r#"...{filler}"}}, "finish_reason": "stop"}}], "usage": {{"prompt_tokens": 12, "completion_tokens": 3400}}}}"#
        );
        let u = usage_in_tail(Wire::OpenAiChat, chat.as_bytes()).unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (Some(12), Some(3400)));
        // A Responses stream cut into the middle of `response.completed`.
        let responses = r#"tput_text","text":"…"}]}],"usage":{"input_tokens":9,"output_tokens":70000,"output_tokens_details":{"reasoning_tokens":100}}}}

"#;
        let u = usage_in_tail(Wire::OpenAiResponses, responses.as_bytes()).unwrap();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.reasoning_tokens),
            (Some(9), Some(70000), Some(100))
        );
        // Anthropic's last message_delta carries the output count.
        let anthropic = "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5000}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let u = usage_in_tail(Wire::AnthropicMessages, anthropic.as_bytes()).unwrap();
        assert_eq!(u.output_tokens, Some(5000));
        let gemini = r#"t"}]}}],"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 900, "totalTokenCount": 904}}]"#;
        let u = usage_in_tail(Wire::GeminiGenerate, gemini.as_bytes()).unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (Some(4), Some(900)));
        // A tail cut inside the usage object itself reads as nothing.
        assert!(
            usage_in_tail(
                Wire::OpenAiChat,
                br#"{"prompt_tokens": 12, "completion_tokens": 3400}}"#
            )
            .is_none()
        );
        assert!(usage_in_tail(Wire::OpenAiChat, b"").is_none());
    }

    #[test]
    fn classify_paths() {
        use Provider::*;
        let post = http::Method::POST;
        for (family, path, wire) in [
            (OpenAi, "/v1/chat/completions", Wire::OpenAiChat),
            (OpenAi, "/v1/responses", Wire::OpenAiResponses),
            (OpenAi, "/v1/embeddings", Wire::OpenAiEmbeddings),
            (OpenAi, "/v1/completions", Wire::OpenAiCompletions),
            (OpenAi, "/v1beta/openai/chat/completions", Wire::OpenAiChat),
            (Anthropic, "/v1/messages", Wire::AnthropicMessages),
            (
                Anthropic,
                "/v1/messages/count_tokens",
                Wire::AnthropicCountTokens,
            ),
            (
                Gemini,
                "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
                Wire::GeminiGenerate,
            ),
            (
                Gemini,
                "/v1beta/models/text-embedding-004:embedContent",
                Wire::GeminiEmbed,
            ),
            (
                Gemini,
                "/v1beta/models/x:countTokens",
                Wire::GeminiCountTokens,
            ),
        ] {
            assert_eq!(Wire::classify(family, &post, path), wire, "{path}");
        }
        assert_eq!(
            Wire::classify(OpenAi, &http::Method::GET, "/v1/models"),
            Wire::OpenAiFree
        );
        assert_eq!(
            Wire::classify(Gemini, &http::Method::GET, "/v1beta/models"),
            Wire::GeminiFree
        );
    }

    #[test]
    fn error_shapes() {
        let o: Value = serde_json::from_slice(&error_body(Provider::OpenAi, 401, "no")).unwrap();
        assert_eq!(o["error"]["message"], "no");
        assert_eq!(o["error"]["type"], "invalid_request_error");
        let a: Value =
            serde_json::from_slice(&error_body(Provider::Anthropic, 429, "slow")).unwrap();
        assert_eq!(a["type"], "error");
        assert_eq!(a["error"]["type"], "rate_limit_error");
        let g: Value = serde_json::from_slice(&error_body(Provider::Gemini, 404, "gone")).unwrap();
        assert_eq!(g["error"]["code"], 404);
        assert_eq!(g["error"]["status"], "NOT_FOUND");
        let ev = stream_error_event(Provider::Anthropic, 502, "cut");
        assert!(ev.starts_with(b"event: error\ndata: {"));
    }
}
