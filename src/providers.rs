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
use crate::usage::Usage;

pub mod anthropic;
pub mod gemini;
pub mod multi;
pub mod openai;
pub mod sse;

/// The API a call speaks on the wire. It decides how usage is read and bodies reassembled;
/// it is not always the provider billed (`multi` sends OpenAI-shaped chat to Anthropic's and
/// Gemini's OpenAI-compatible APIs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    OpenAiChat,
    OpenAiResponses,
    OpenAiEmbeddings,
    OpenAiCompletions,
    OpenAiOther,
    AnthropicMessages,
    AnthropicCountTokens,
    AnthropicOther,
    GeminiGenerate,
    GeminiEmbed,
    GeminiCountTokens,
    GeminiOther,
}

impl Wire {
    /// Classifies an upstream path (always starting with `/`, query excluded) spoken in the
    /// given API family.
    pub fn classify(family: Provider, path: &str) -> Wire {
        match family {
            Provider::OpenAi => {
                let p = path.trim_end_matches('/');
                if p.ends_with("/chat/completions") {
                    Wire::OpenAiChat
                } else if p.ends_with("/responses") {
                    Wire::OpenAiResponses
                } else if p.ends_with("/embeddings") {
                    Wire::OpenAiEmbeddings
                } else if p.ends_with("/completions") {
                    Wire::OpenAiCompletions
                } else {
                    Wire::OpenAiOther
                }
            }
            Provider::Anthropic => {
                let p = path.trim_end_matches('/');
                if p.ends_with("/messages/count_tokens") {
                    Wire::AnthropicCountTokens
                } else if p.ends_with("/messages") {
                    Wire::AnthropicMessages
                } else {
                    Wire::AnthropicOther
                }
            }
            Provider::Gemini => match path.rsplit_once(':').map(|(_, m)| m) {
                Some("generateContent" | "streamGenerateContent") => Wire::GeminiGenerate,
                Some("embedContent" | "batchEmbedContents") => Wire::GeminiEmbed,
                Some("countTokens") => Wire::GeminiCountTokens,
                _ => Wire::GeminiOther,
            },
        }
    }

    /// The provider family whose error shape and SDK this wire belongs to.
    pub fn family(self) -> Provider {
        match self {
            Wire::OpenAiChat
            | Wire::OpenAiResponses
            | Wire::OpenAiEmbeddings
            | Wire::OpenAiCompletions
            | Wire::OpenAiOther => Provider::OpenAi,
            Wire::AnthropicMessages | Wire::AnthropicCountTokens | Wire::AnthropicOther => {
                Provider::Anthropic
            }
            Wire::GeminiGenerate
            | Wire::GeminiEmbed
            | Wire::GeminiCountTokens
            | Wire::GeminiOther => Provider::Gemini,
        }
    }

    /// Whether the call consumes tokens that cost money (listing models or counting tokens
    /// does not).
    pub fn metered(self) -> bool {
        matches!(
            self,
            Wire::OpenAiChat
                | Wire::OpenAiResponses
                | Wire::OpenAiEmbeddings
                | Wire::OpenAiCompletions
                | Wire::AnthropicMessages
                | Wire::GeminiGenerate
                | Wire::GeminiEmbed
        )
    }

    /// Calls that make up multi-turn agent sessions (the Activity tab).
    pub fn session_capable(self) -> bool {
        matches!(self, Wire::AnthropicMessages | Wire::OpenAiResponses)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Wire::OpenAiChat => "openai.chat",
            Wire::OpenAiResponses => "openai.responses",
            Wire::OpenAiEmbeddings => "openai.embeddings",
            Wire::OpenAiCompletions => "openai.completions",
            Wire::OpenAiOther => "openai.other",
            Wire::AnthropicMessages => "anthropic.messages",
            Wire::AnthropicCountTokens => "anthropic.count_tokens",
            Wire::AnthropicOther => "anthropic.other",
            Wire::GeminiGenerate => "gemini.generate",
            Wire::GeminiEmbed => "gemini.embed",
            Wire::GeminiCountTokens => "gemini.count_tokens",
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
    fn classify_paths() {
        use Provider::*;
        assert_eq!(
            Wire::classify(OpenAi, "/v1/chat/completions"),
            Wire::OpenAiChat
        );
        assert_eq!(
            Wire::classify(OpenAi, "/v1/responses"),
            Wire::OpenAiResponses
        );
        assert_eq!(
            Wire::classify(OpenAi, "/v1/embeddings"),
            Wire::OpenAiEmbeddings
        );
        assert_eq!(
            Wire::classify(OpenAi, "/v1/completions"),
            Wire::OpenAiCompletions
        );
        assert_eq!(Wire::classify(OpenAi, "/v1/models"), Wire::OpenAiOther);
        assert_eq!(
            Wire::classify(OpenAi, "/v1beta/openai/chat/completions"),
            Wire::OpenAiChat
        );
        assert_eq!(
            Wire::classify(Anthropic, "/v1/messages"),
            Wire::AnthropicMessages
        );
        assert_eq!(
            Wire::classify(Anthropic, "/v1/messages/count_tokens"),
            Wire::AnthropicCountTokens
        );
        assert_eq!(
            Wire::classify(
                Gemini,
                "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
            ),
            Wire::GeminiGenerate
        );
        assert_eq!(
            Wire::classify(Gemini, "/v1beta/models/text-embedding-004:embedContent"),
            Wire::GeminiEmbed
        );
        assert_eq!(
            Wire::classify(Gemini, "/v1beta/models/x:countTokens"),
            Wire::GeminiCountTokens
        );
        assert_eq!(Wire::classify(Gemini, "/v1beta/models"), Wire::GeminiOther);
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
