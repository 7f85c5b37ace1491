//! Format translation between the three chat APIs: OpenAI Chat Completions, Anthropic Messages
//! and Gemini `generateContent`. DOC_PLACEHOLDER

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
