//! Format translation between the three chat APIs: OpenAI Chat Completions, Anthropic Messages
//! and Gemini `generateContent`, in all six directions, for requests, complete answers, streamed
//! answers and error bodies. A feature one side cannot honour is refused by name, never dropped
//! silently.
//!
//! Every direction is one read and one write: a provider module (`openai`, `anthropic`,
//! `gemini`) reads its shape's typed wire structs into the neutral types of `ir`, and the
//! target's module writes them out. Wire structs name the fields we read and collect the rest of
//! a request in a flattened `rest` map, so an unknown field is seen and refused by name rather
//! than lost. Streams go through [`StreamTranslator`]: an incremental SSE reader, a decoder per
//! upstream shape and an encoder per client shape, each event parsed once into borrowed typed
//! structs (no `serde_json::Value` on that path).
//!
//! How the proxy uses it, for a client speaking `from` routed to a target speaking `to`:
//! 1. [`request`]`(from, to, body, target_model, gemini_stream)` gives the body to send and
//!    whether to call the target streaming (Gemini: `:streamGenerateContent?alt=sse`, the only
//!    Gemini stream read here; otherwise `:generateContent`). A refusal is a
//!    [`TranslateError`] whose [`status`](TranslateError::status) is 400 and whose message names
//!    the feature.
//! 2. A successful answer goes through [`response`]`(to, from, body, ctx)` or, streamed, through
//!    a [`StreamTranslator`]`::new(to, from, ctx)`; an error status through
//!    [`error`]`(to, from, status, body)`. `ctx` comes from
//!    [`TranslatedRequest::context`].
//!
//! Same shape on both sides is a passthrough (bytes untouched). Ids and model names are the
//! upstream's (`msg_…`, `chatcmpl-…`, Gemini's `responseId`), so a client's id finds the
//! upstream's logs. Gemini has no call ids: a Gemini answer's calls are named
//! `call_<responseId>_<n>`, a Gemini request's `call_<turn>_<n>`; a Gemini thought signature
//! on a call rides inside that id (see `gemini::call_id`) because Gemini 3 rejects a follow-up
//! without it and OpenAI and Anthropic clients only echo ids.
//!
//! # Refused (400, [`TranslateError::Unsupported`])
//!
//! | Feature (as the client writes it) | From | To | Why |
//! |---|---|---|---|
//! | `n` > 1, `candidateCount` > 1 | OpenAI, Gemini | any | one answer per call; Anthropic has no choices and streams would interleave them |
//! | `logprobs` / `top_logprobs`, `responseLogprobs` / `logprobs` | OpenAI, Gemini | any | Anthropic has none, and the two shapes of them differ |
//! | audio input (`input_audio`), audio output (`modalities`, `audio`), `responseModalities` other than text, `speechConfig` | OpenAI, Gemini | any | only a few OpenAI and Gemini models, no Anthropic one |
//! | media other than images and PDF (named by media type, e.g. `audio/wav`, `video/mp4`) | Gemini | OpenAI, Anthropic | no part type for them |
//! | a PDF by URL | Anthropic, Gemini | OpenAI | OpenAI takes inline PDFs only |
//! | files stored at a provider: `file_id`, Anthropic `file` sources, Gemini Files API and `gs://` `fileData` | any | any | the other provider cannot read them |
//! | images in tool results | Anthropic | OpenAI, Gemini | OpenAI tool messages are text, Gemini function responses JSON |
//! | reasoning in the conversation: Anthropic `thinking`, Gemini signed `thought` parts | Anthropic, Gemini | OpenAI | a signature only its issuer can check; Chat Completions takes no reasoning input |
//! | Anthropic `redacted_thinking` | Anthropic | OpenAI, Gemini | encrypted for Anthropic alone |
//! | provider-run tools: Anthropic typed tools (`web_search_…`, `code_execution_…`, `bash_…`, …), `mcp_servers`, `container`; OpenAI `web_search_options`, non-function tools (`custom`); Gemini `googleSearch`, `codeExecution`, `urlContext`, … | any | any | run by the provider; nothing equivalent elsewhere |
//! | legacy `functions` / `function_call` / `function` messages | OpenAI | any | use tools |
//! | `tool_choice` `allowed_tools`, Gemini `allowedFunctionNames` beyond one forced tool, mode `VALIDATED` | OpenAI, Gemini | any | no equivalent |
//! | `parallel_tool_calls: false`, `disable_parallel_tool_use` | OpenAI, Anthropic | Gemini | Gemini cannot be told |
//! | JSON output: `response_format`, `responseMimeType: application/json` | OpenAI, Gemini | Anthropic | Anthropic's structured outputs need a beta header the gateway does not send |
//! | `responseMimeType` other than text and JSON (`text/x.enum`) | Gemini | any | no equivalent |
//! | `top_k` | Anthropic, Gemini | OpenAI | no such sampling knob |
//! | `seed`, non-zero presence / frequency penalties | OpenAI, Gemini | Anthropic | no such sampling knobs |
//! | dynamic thinking (`thinkingBudget: -1`, Anthropic `adaptive`) | Gemini, Anthropic | Anthropic | Anthropic takes a fixed budget (adaptive only on its newest models) |
//! | `safetySettings`, `cachedContent`, `toolConfig.retrievalConfig` | Gemini | any | Gemini's own filters and cache |
//! | Anthropic `citations` and `context` on documents, `search_result` and other server blocks | Anthropic | any | no equivalent |
//! | any other field, content part or block type not read (`logit_bias`, `prediction`, `verbosity`, …) | any | any | refused by name from the wire type's `rest` (a field holding only `null`, `false` or `[]` asks for nothing and passes) |
//!
//! Answers that cannot be carried (Gemini image or code-execution output, Anthropic server-tool
//! blocks, OpenAI audio, tool arguments that are not a JSON object) fail as
//! [`TranslateError::InvalidResponse`] (502): the upstream produced something the client's shape
//! has no words for.
//!
//! # Accepted without being carried
//!
//! | Field | Why leaving it out does not change the answer |
//! |---|---|
//! | Anthropic `cache_control` | a caching hint: OpenAI caches prompts by itself and Gemini implicitly; the usage still reports cache reads |
//! | OpenAI `store`, `metadata`, `service_tier`, `prompt_cache_key`, `prompt_cache_retention`, `safety_identifier`; Anthropic `service_tier`; Gemini `labels` | storage, billing and routing, not generation |
//! | OpenAI image `detail`, Gemini `mediaResolution` | resolution and cost hints; each target picks its own |
//! | `strict` on OpenAI and Anthropic tools | the schema still goes across; no other shape guarantees schema-exact arguments |
//! | OpenAI participant `name`; `user` / `metadata.user_id` to Gemini | no equivalent field; identifiers, not instructions |
//! | Gemini function `response` / `responseJsonSchema` | an output-schema hint for the model |
//! | `is_error` on a tool result, to OpenAI | no field; the content, usually the error message, goes as is |
//! | Gemini thought signatures on text parts, and on calls sent to OpenAI or Anthropic; unsigned Gemini thought summaries in a request | only Gemini reads them, and it does not read summaries back |
//! | reasoning text in answers, to OpenAI clients; Anthropic `redacted_thinking` in answers, to Gemini clients; citations on Anthropic answers | no place in the client's shape; reasoning tokens stay in the usage, cited text stays |
//! | a system message in the middle of an OpenAI conversation | moved to the front, in order: Anthropic and Gemini take one system prompt |
//!
//! Sampling values go across unchanged, not rescaled: a `temperature` of 1.5 is valid for OpenAI
//! and Gemini, and Anthropic (0 to 1) answers it with its own 400, which says exactly that.
//!
//! # Stop reasons
//!
//! | Neutral | OpenAI `finish_reason` | Anthropic `stop_reason` | Gemini `finishReason` |
//! |---|---|---|---|
//! | end of turn | `stop` | `end_turn` | `STOP` |
//! | stop sequence | `stop` | `stop_sequence` | `STOP` |
//! | length | `length` | `max_tokens`, `model_context_window_exceeded` | `MAX_TOKENS` |
//! | tool call | `tool_calls` | `tool_use` | `STOP` with `functionCall` parts |
//! | filtered or refused | `content_filter` (and a `refusal`) | `refusal` | `SAFETY`, `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`, `IMAGE_SAFETY`, a blocked prompt |
//! | other (`pause_turn`, `MALFORMED_FUNCTION_CALL`, …) | `stop` | `end_turn` (`pause_turn` kept) | the Gemini name, else `OTHER` |
//!
//! # Usage
//!
//! Read into [`crate::usage::Usage`] exactly as the table in [`crate::providers`] says, and
//! written back so the gateway's own reader finds the same numbers in the client's shape (the
//! golden tests check this): OpenAI `prompt_tokens` counts every input token and
//! `cached_tokens` the cache reads; Anthropic `input_tokens` only the uncached ones, beside
//! `cache_read_input_tokens` and `cache_creation_input_tokens`; Gemini `promptTokenCount`
//! everything, `candidatesTokenCount` the output without `thoughtsTokenCount`. What a shape has
//! no field for stays inside the totals: cache writes for OpenAI and Gemini clients, the
//! reasoning count for Anthropic clients. Streams: OpenAI clients get a final usage chunk only
//! when they asked `include_usage` (the upstream is always asked); Anthropic clients get input
//! in `message_start` and everything in `message_delta`; Gemini clients get `usageMetadata` on
//! every chunk once the prompt count is known.
//!
//! # Reasoning controls and `max_tokens`
//!
//! | Client asks | OpenAI `reasoning_effort` | Anthropic `thinking` | Gemini `thinkingConfig` |
//! |---|---|---|---|
//! | effort `low` / `medium` / `high` (`minimal` = low) | same | `budget_tokens` 1,024 / 8,192 / 24,576 | `thinkingBudget`, same numbers |
//! | a budget of n tokens | `low` up to 1,024, `medium` up to 8,192, else `high` | n, at least 1,024 | n |
//! | off (`none`, `disabled`, budget 0) | left out | left out | `thinkingBudget: 0` |
//! | dynamic (`-1`, `adaptive`) | left out | refused | `-1` |
//!
//! The effort budgets are Google's own mapping for its OpenAI-compatible API. Anthropic thinking
//! and Gemini `includeThoughts` ask to see the reasoning: Anthropic and Gemini answers carry it
//! (thinking blocks and thought parts translate into each other, signature included); OpenAI
//! never returns it. Anthropic requires `max_tokens`: without one it is
//! `anthropic::DEFAULT_MAX_TOKENS` (4,096) plus the thinking budget. OpenAI gets
//! `max_completion_tokens`, which reasoning models require.

use bytes::Bytes;
use serde_json::{Map, Value};

pub use crate::domain::Provider;
pub use stream::StreamTranslator;

mod anthropic;
mod gemini;
mod ir;
mod openai;
mod sse;
mod stream;
#[cfg(test)]
mod tests;
mod wire;

/// Why a body could not be translated. The proxy answers [`TranslateError::status`] with the
/// message in the client's error shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The request uses a feature the target cannot honour faithfully; `feature` names it as the
    /// client wrote it.
    #[error("{feature} is not supported when translating {from} requests to {to}")]
    Unsupported {
        feature: String,
        from: Provider,
        to: Provider,
    },
    /// The client's body is not a valid request of its shape.
    #[error("invalid {shape} request: {message}")]
    InvalidRequest { shape: Provider, message: String },
    /// The upstream's body is not a valid response of its shape, or holds something the
    /// client's shape cannot carry.
    #[error("untranslatable {shape} response: {message}")]
    InvalidResponse { shape: Provider, message: String },
}

impl TranslateError {
    /// The HTTP status to answer with: the client's fault (400) or the upstream's (502).
    pub fn status(&self) -> u16 {
        match self {
            TranslateError::Unsupported { .. } | TranslateError::InvalidRequest { .. } => 400,
            TranslateError::InvalidResponse { .. } => 502,
        }
    }

    /// The refused feature, for logs and tests.
    pub fn feature(&self) -> Option<&str> {
        match self {
            TranslateError::Unsupported { feature, .. } => Some(feature),
            TranslateError::InvalidRequest { .. } | TranslateError::InvalidResponse { .. } => None,
        }
    }
}

/// A translated request, with what the proxy needs to call the target and read its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslatedRequest {
    pub body: Vec<u8>,
    /// The client asked for a stream: call the target streaming (for Gemini,
    /// `:streamGenerateContent?alt=sse`, the only Gemini stream [`StreamTranslator`] reads).
    pub stream: bool,
    /// OpenAI clients only: whether they asked for the final usage chunk.
    pub include_usage: bool,
}

impl TranslatedRequest {
    /// The context to read the answer with; `created` is the Unix time of the call.
    pub fn context(&self, model: &str, created: u64, fallback_id: &str) -> ResponseContext {
        ResponseContext {
            model: model.to_owned(),
            created,
            fallback_id: fallback_id.to_owned(),
            include_usage: self.include_usage,
        }
    }
}

/// What translating an answer needs to know about the call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseContext {
    /// The model to name when the upstream names none (the target model).
    pub model: String,
    /// Unix seconds for OpenAI's `created`, which Anthropic and Gemini do not send.
    pub created: u64,
    /// The id to give an answer whose upstream sent none (Gemini may omit `responseId`); the
    /// gateway's trace id is a good one.
    pub fallback_id: String,
    /// OpenAI clients: send the final usage chunk (they asked `stream_options.include_usage`).
    pub include_usage: bool,
}

/// Translates a client request in shape `from` into shape `to` for `target_model`.
///
/// `gemini_stream` says, for a Gemini client only, whether it called `:streamGenerateContent`
/// (Gemini puts that in the URL, not the body). For the same shape on both sides the body is
/// returned untouched: nothing needs translating.
pub fn request(
    from: Provider,
    to: Provider,
    body: &[u8],
    target_model: &str,
    gemini_stream: bool,
) -> Result<TranslatedRequest, TranslateError> {
    if from == to {
        return passthrough(from, body, gemini_stream);
    }
    let read = match from {
        Provider::OpenAi => openai::request::read(body),
        Provider::Anthropic => anthropic::request::read(body),
        Provider::Gemini => gemini::request::read(body, gemini_stream),
    };
    let ir = read.map_err(|f| f.for_request(from, to))?;
    let write = match to {
        Provider::OpenAi => openai::request::write(&ir, target_model),
        Provider::Anthropic => anthropic::request::write(&ir, target_model),
        Provider::Gemini => gemini::request::write(&ir),
    };
    Ok(TranslatedRequest {
        body: write.map_err(|f| f.for_request(from, to))?,
        stream: ir.stream,
        include_usage: ir.include_usage,
    })
}

/// The same shape on both sides: the body goes as it is, and only the stream flags are read.
fn passthrough(
    shape: Provider,
    body: &[u8],
    gemini_stream: bool,
) -> Result<TranslatedRequest, TranslateError> {
    #[derive(serde::Deserialize)]
    struct Flags {
        #[serde(default)]
        stream: Option<bool>,
        #[serde(default)]
        stream_options: Option<openai::StreamOptions>,
    }
    let (stream, include_usage) = if shape == Provider::Gemini {
        (gemini_stream, false)
    } else {
        let flags: Flags =
            serde_json::from_slice(body).map_err(|e| invalid(e).for_request(shape, shape))?;
        let include = flags.stream_options.and_then(|o| o.include_usage);
        (flags.stream == Some(true), include == Some(true))
    };
    Ok(TranslatedRequest {
        body: body.to_vec(),
        stream,
        include_usage,
    })
}

/// Translates a complete (non-streamed, successful) answer of the upstream in shape `from` into
/// the client's shape `to`. Error answers go through [`error`] instead.
pub fn response(
    from: Provider,
    to: Provider,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<Vec<u8>, TranslateError> {
    if from == to {
        return Ok(body.to_vec());
    }
    let read = match from {
        Provider::OpenAi => openai::response::read(body),
        Provider::Anthropic => anthropic::response::read(body),
        Provider::Gemini => gemini::response::read(body, ctx),
    };
    let ir = read.map_err(|f| f.for_response(from))?;
    let write = match to {
        Provider::OpenAi => openai::response::write(&ir, ctx),
        Provider::Anthropic => anthropic::response::write(&ir, ctx),
        Provider::Gemini => gemini::response::write(&ir, ctx),
    };
    write.map_err(|f| f.for_response(from))
}

/// Translates an upstream error body (status `status`, shape `from`) into the client's error
/// shape, keeping the status and the upstream's message. A body that is not the provider's
/// error JSON is quoted as the message.
pub fn error(from: Provider, to: Provider, status: u16, body: &[u8]) -> Bytes {
    if from == to {
        return Bytes::copy_from_slice(body);
    }
    let message = match from {
        Provider::OpenAi => openai::response::error_message(body),
        Provider::Anthropic => anthropic::response::error_message(body),
        Provider::Gemini => gemini::response::error_message(body),
    };
    let message = message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            format!("upstream {from} error (status {status})")
        } else {
            text.chars().take(MAX_QUOTED_ERROR).collect()
        }
    });
    crate::providers::error_body(to, status, &message)
}

/// An upstream error page can be large HTML; the client needs its gist, not all of it.
const MAX_QUOTED_ERROR: usize = 2_000;

/// A translation step's failure, before it knows which direction it served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// A feature with no faithful equivalent, named as the client wrote it.
    Unsupported(String),
    Invalid(String),
}

pub(crate) type Res<T> = Result<T, Fault>;

impl Fault {
    fn for_request(self, from: Provider, to: Provider) -> TranslateError {
        match self {
            Fault::Unsupported(feature) => TranslateError::Unsupported { feature, from, to },
            Fault::Invalid(message) => TranslateError::InvalidRequest {
                shape: from,
                message,
            },
        }
    }

    fn for_response(self, from: Provider) -> TranslateError {
        let message = match self {
            Fault::Unsupported(feature) => format!("{feature} has no equivalent"),
            Fault::Invalid(message) => message,
        };
        TranslateError::InvalidResponse {
            shape: from,
            message,
        }
    }
}

pub(crate) fn unsupported<T>(feature: impl Into<String>) -> Res<T> {
    Err(Fault::Unsupported(feature.into()))
}

pub(crate) fn invalid(message: impl std::fmt::Display) -> Fault {
    Fault::Invalid(message.to_string())
}

/// Fields that landed in a wire type's `rest`: each one is refused by name unless it is on the
/// `ignored` list (fields with no effect on the answer, see the module doc) or holds only a
/// default (`null`, `false`, `[]`), which asks for nothing. An empty object is not a default:
/// `web_search_options: {}` turns search on.
pub(crate) fn check_rest(rest: &Map<String, Value>, ignored: &[&str], prefix: &str) -> Res<()> {
    for (key, value) in rest {
        let default = match value {
            Value::Null | Value::Bool(false) => true,
            Value::Array(a) => a.is_empty(),
            Value::Bool(true) | Value::Number(_) | Value::String(_) | Value::Object(_) => false,
        };
        if !default && !ignored.contains(&key.as_str()) {
            return unsupported(format!("`{prefix}{key}`"));
        }
    }
    Ok(())
}

/// The media type and base64 payload of a `data:` URL.
pub(crate) fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((mime, data))
}

/// A media type guessed from a URL's extension, for targets that insist on one.
pub(crate) fn mime_from_url(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        _ => return None,
    })
}
