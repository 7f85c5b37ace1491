//! Every API of every provider, as the gateway bills it. A virtual key spends its
//! organization's credential, so each call must be metered (reserved before it is forwarded,
//! charged when it ends), free by nature, or refused: the table below is exhaustive by
//! construction, because whatever it does not name is [`Billing::Unmetered`], which a key with a
//! budget or an allow-list may not use unless it says so.
//!
//! Paths are matched exactly, segment by segment (`*` is one segment, or part of one), after
//! the API version prefix (`/v1`, `/v1beta`, `/v1alpha`, and `/v1beta/openai` for Gemini's
//! OpenAI-compatible API).
//!
//! | Provider | Method and path | Billing |
//! |---|---|---|
//! | OpenAI | `POST /chat/completions`, `/completions`, `/responses`, `/embeddings` | tokens |
//! | OpenAI | `POST /images/generations`, `/images/edits`, `/images/variations` | images |
//! | OpenAI | `POST /audio/speech` | speech (characters or tokens) |
//! | OpenAI | `POST /audio/transcriptions`, `/audio/translations` | transcription (seconds or tokens) |
//! | OpenAI | `POST /files` | file upload (a batch's input is inspected) |
//! | OpenAI | `POST /batches` | batch (batch price, settled from its results) |
//! | OpenAI | `GET /files/*/content` | a batch's results, when the file is one |
//! | OpenAI | `GET /batches/*` | free (learns a batch's output file) |
//! | OpenAI | listing, retrieval, deletion, cancelling, moderation, token counting, uploads | free |
//! | Anthropic | `POST /messages` | tokens |
//! | Anthropic | `POST /messages/batches` | batch |
//! | Anthropic | `GET /messages/batches/*/results` | a batch's results |
//! | Anthropic | `POST /messages/count_tokens`, models, files, batch listing and cancelling | free |
//! | Gemini | `POST models/*:generateContent`, `:streamGenerateContent`, `:embedContent`, `:batchEmbedContents` | tokens |
//! | Gemini | `POST models/*:predict` (Imagen) | images |
//! | Gemini | `POST models/*:batchGenerateContent` | batch |
//! | Gemini | `GET batches/*` | a batch's results, when done |
//! | Gemini | `POST models/*:countTokens`, models, files, operations, batch listing and cancelling | free |
//! | any | anything else (fine-tuning jobs, vector stores, assistants, realtime sessions, caches, video) | unmetered |

use http::Method;

use super::Wire;
use crate::domain::Provider;

/// How a call is paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Billing {
    /// Costs nothing: listing, retrieving, deleting, cancelling, counting tokens, moderation.
    Free,
    /// Tokens, from the usage the provider reports (estimated when it reports none).
    Tokens,
    /// Images generated: image tokens when reported, else per image by size and quality.
    Images,
    /// Text to speech: characters of the input (or tokens, for token-priced models).
    Speech,
    /// Speech to text: seconds of audio (or tokens, when reported).
    Transcription,
    /// A file upload: free, but a batch's input file is inspected so its batch can be metered.
    FileUpload,
    /// A batch of requests, billed at the batch price when its results are read back.
    BatchCreate,
    /// Reading a batch back: its results carry the usage that settles it.
    BatchResults,
    /// The gateway cannot tell what this costs.
    Unmetered,
}

impl Billing {
    /// Whether the call costs money the gateway meters (a reservation is held for it).
    pub fn metered(self) -> bool {
        matches!(
            self,
            Billing::Tokens
                | Billing::Images
                | Billing::Speech
                | Billing::Transcription
                | Billing::BatchCreate
        )
    }
}

/// One row of the table: method, path pattern (after the version prefix), wire.
type Row = (&'static str, &'static str, Wire);

const OPENAI: &[Row] = &[
    ("POST", "chat/completions", Wire::OpenAiChat),
    ("GET", "chat/completions", Wire::OpenAiFree),
    ("GET", "chat/completions/*", Wire::OpenAiFree),
    ("POST", "chat/completions/*", Wire::OpenAiFree),
    ("DELETE", "chat/completions/*", Wire::OpenAiFree),
    ("GET", "chat/completions/*/messages", Wire::OpenAiFree),
    ("POST", "completions", Wire::OpenAiCompletions),
    ("POST", "responses", Wire::OpenAiResponses),
    ("POST", "responses/input_tokens", Wire::OpenAiFree),
    ("GET", "responses/*", Wire::OpenAiFree),
    ("DELETE", "responses/*", Wire::OpenAiFree),
    ("POST", "responses/*/cancel", Wire::OpenAiFree),
    ("GET", "responses/*/input_items", Wire::OpenAiFree),
    ("POST", "embeddings", Wire::OpenAiEmbeddings),
    ("POST", "moderations", Wire::OpenAiFree),
    ("POST", "images/generations", Wire::OpenAiImages),
    ("POST", "images/edits", Wire::OpenAiImages),
    ("POST", "images/variations", Wire::OpenAiImages),
    ("POST", "audio/speech", Wire::OpenAiSpeech),
    ("POST", "audio/transcriptions", Wire::OpenAiTranscription),
    ("POST", "audio/translations", Wire::OpenAiTranscription),
    ("GET", "models", Wire::OpenAiFree),
    ("GET", "models/*", Wire::OpenAiFree),
    ("DELETE", "models/*", Wire::OpenAiFree),
    ("POST", "files", Wire::OpenAiFileUpload),
    ("GET", "files", Wire::OpenAiFree),
    ("GET", "files/*", Wire::OpenAiFree),
    ("DELETE", "files/*", Wire::OpenAiFree),
    ("GET", "files/*/content", Wire::OpenAiFileContent),
    ("POST", "uploads", Wire::OpenAiFree),
    ("POST", "uploads/*/parts", Wire::OpenAiFree),
    ("POST", "uploads/*/complete", Wire::OpenAiFree),
    ("POST", "uploads/*/cancel", Wire::OpenAiFree),
    ("POST", "batches", Wire::OpenAiBatch),
    ("GET", "batches", Wire::OpenAiFree),
    ("GET", "batches/*", Wire::OpenAiBatchStatus),
    ("POST", "batches/*/cancel", Wire::OpenAiFree),
    ("GET", "fine_tuning/jobs", Wire::OpenAiFree),
    ("GET", "fine_tuning/jobs/*", Wire::OpenAiFree),
    ("GET", "fine_tuning/jobs/*/events", Wire::OpenAiFree),
    ("GET", "fine_tuning/jobs/*/checkpoints", Wire::OpenAiFree),
    ("POST", "fine_tuning/jobs/*/cancel", Wire::OpenAiFree),
    ("POST", "conversations", Wire::OpenAiFree),
    ("GET", "conversations/*", Wire::OpenAiFree),
    ("POST", "conversations/*", Wire::OpenAiFree),
    ("DELETE", "conversations/*", Wire::OpenAiFree),
    ("GET", "conversations/*/items", Wire::OpenAiFree),
    ("POST", "conversations/*/items", Wire::OpenAiFree),
    ("GET", "conversations/*/items/*", Wire::OpenAiFree),
    ("DELETE", "conversations/*/items/*", Wire::OpenAiFree),
];

const ANTHROPIC: &[Row] = &[
    ("POST", "messages", Wire::AnthropicMessages),
    ("POST", "messages/count_tokens", Wire::AnthropicCountTokens),
    ("POST", "messages/batches", Wire::AnthropicBatch),
    ("GET", "messages/batches", Wire::AnthropicFree),
    ("GET", "messages/batches/*", Wire::AnthropicFree),
    (
        "GET",
        "messages/batches/*/results",
        Wire::AnthropicBatchResults,
    ),
    ("POST", "messages/batches/*/cancel", Wire::AnthropicFree),
    ("DELETE", "messages/batches/*", Wire::AnthropicFree),
    ("GET", "models", Wire::AnthropicFree),
    ("GET", "models/*", Wire::AnthropicFree),
    ("POST", "files", Wire::AnthropicFree),
    ("GET", "files", Wire::AnthropicFree),
    ("GET", "files/*", Wire::AnthropicFree),
    ("GET", "files/*/content", Wire::AnthropicFree),
    ("DELETE", "files/*", Wire::AnthropicFree),
];

const GEMINI: &[Row] = &[
    ("POST", "models/*:generateContent", Wire::GeminiGenerate),
    (
        "POST",
        "models/*:streamGenerateContent",
        Wire::GeminiGenerate,
    ),
    ("POST", "models/*:embedContent", Wire::GeminiEmbed),
    ("POST", "models/*:batchEmbedContents", Wire::GeminiEmbed),
    ("POST", "models/*:countTokens", Wire::GeminiCountTokens),
    ("POST", "models/*:predict", Wire::GeminiPredict),
    ("POST", "models/*:batchGenerateContent", Wire::GeminiBatch),
    ("GET", "models", Wire::GeminiFree),
    ("GET", "models/*", Wire::GeminiFree),
    ("GET", "batches", Wire::GeminiFree),
    ("GET", "batches/*", Wire::GeminiBatchStatus),
    ("POST", "batches/*:cancel", Wire::GeminiFree),
    ("DELETE", "batches/*", Wire::GeminiFree),
    ("GET", "operations", Wire::GeminiFree),
    ("GET", "operations/*", Wire::GeminiFree),
    ("POST", "files", Wire::GeminiFree),
    ("GET", "files", Wire::GeminiFree),
    ("GET", "files/*", Wire::GeminiFree),
    ("DELETE", "files/*", Wire::GeminiFree),
    ("GET", "cachedContents", Wire::GeminiFree),
    ("GET", "cachedContents/*", Wire::GeminiFree),
    ("DELETE", "cachedContents/*", Wire::GeminiFree),
];

/// The wire a call speaks, from the API family, method and upstream path (query excluded).
pub fn classify(family: Provider, method: &Method, path: &str) -> Wire {
    // A HEAD is a GET without the body: it costs what the GET costs.
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let (table, other, tail) = match family {
        Provider::OpenAi => (
            OPENAI,
            Wire::OpenAiOther,
            strip_version(path, &["/v1beta/openai/", "/openai/v1/", "/v1/"]),
        ),
        Provider::Anthropic => (
            ANTHROPIC,
            Wire::AnthropicOther,
            strip_version(path, &["/v1/"]),
        ),
        Provider::Gemini => (
            GEMINI,
            Wire::GeminiOther,
            strip_version(path, &["/upload/v1beta/", "/v1beta/", "/v1alpha/", "/v1/"]),
        ),
    };
    let Some(tail) = tail else {
        return other;
    };
    table
        .iter()
        .find(|(m, pattern, _)| *m == method && path_matches(pattern, tail))
        .map_or(other, |(_, _, w)| *w)
}

fn strip_version<'a>(path: &'a str, prefixes: &[&str]) -> Option<&'a str> {
    prefixes.iter().find_map(|p| path.strip_prefix(p))
}

/// Segment by segment; `*` in a pattern segment matches any run of characters within one path
/// segment (never a `/`). A trailing slash is not the same path.
fn path_matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(pat), Some(seg)) if !seg.is_empty() && segment_matches(pat, seg) => {}
            _ => return false,
        }
    }
}

fn segment_matches(pattern: &str, seg: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == seg,
        Some((head, tail)) => {
            seg.len() > head.len() + tail.len()
                && seg.starts_with(head)
                && seg.ends_with(tail)
                && !seg[head.len()..seg.len() - tail.len()].contains(':')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(family: Provider, method: &str, path: &str) -> Billing {
        classify(
            family,
            &Method::from_bytes(method.as_bytes()).unwrap(),
            path,
        )
        .billing()
    }

    #[test]
    fn the_table_decides_and_anything_else_is_unmetered() {
        use Provider::*;
        for (family, method, path, billing) in [
            (OpenAi, "POST", "/v1/chat/completions", Billing::Tokens),
            (
                OpenAi,
                "POST",
                "/v1beta/openai/chat/completions",
                Billing::Tokens,
            ),
            (OpenAi, "POST", "/v1/responses", Billing::Tokens),
            (OpenAi, "GET", "/v1/responses/resp_1", Billing::Free),
            (OpenAi, "POST", "/v1/images/generations", Billing::Images),
            (OpenAi, "POST", "/v1/audio/speech", Billing::Speech),
            (
                OpenAi,
                "POST",
                "/v1/audio/transcriptions",
                Billing::Transcription,
            ),
            (OpenAi, "POST", "/v1/files", Billing::FileUpload),
            (OpenAi, "POST", "/v1/batches", Billing::BatchCreate),
            (
                OpenAi,
                "GET",
                "/v1/files/file-1/content",
                Billing::BatchResults,
            ),
            (OpenAi, "GET", "/v1/models", Billing::Free),
            (OpenAi, "HEAD", "/v1/models", Billing::Free),
            (OpenAi, "POST", "/v1/models", Billing::Unmetered),
            (OpenAi, "POST", "/v1/fine_tuning/jobs", Billing::Unmetered),
            (OpenAi, "POST", "/v1/realtime/sessions", Billing::Unmetered),
            (OpenAi, "POST", "/v1/vector_stores", Billing::Unmetered),
            (OpenAi, "POST", "/v1/chat/completions/", Billing::Unmetered),
            (
                OpenAi,
                "POST",
                "/v1/files/x/chat/completions",
                Billing::Unmetered,
            ),
            (OpenAi, "POST", "/v2/chat/completions", Billing::Unmetered),
            (Anthropic, "POST", "/v1/messages", Billing::Tokens),
            (
                Anthropic,
                "POST",
                "/v1/messages/count_tokens",
                Billing::Free,
            ),
            (
                Anthropic,
                "POST",
                "/v1/messages/batches",
                Billing::BatchCreate,
            ),
            (
                Anthropic,
                "GET",
                "/v1/messages/batches/b1/results",
                Billing::BatchResults,
            ),
            (Anthropic, "POST", "/v1/complete", Billing::Unmetered),
            (
                Gemini,
                "POST",
                "/v1beta/models/gemini-2.5-pro:generateContent",
                Billing::Tokens,
            ),
            (
                Gemini,
                "POST",
                "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
                Billing::Tokens,
            ),
            (
                Gemini,
                "POST",
                "/v1beta/models/text-embedding-004:embedContent",
                Billing::Tokens,
            ),
            (
                Gemini,
                "POST",
                "/v1beta/models/imagen-3.0-generate-002:predict",
                Billing::Images,
            ),
            (
                Gemini,
                "POST",
                "/v1beta/models/gemini-2.5-flash:batchGenerateContent",
                Billing::BatchCreate,
            ),
            (Gemini, "GET", "/v1beta/batches/b1", Billing::BatchResults),
            (
                Gemini,
                "POST",
                "/v1beta/models/x:countTokens",
                Billing::Free,
            ),
            (Gemini, "POST", "/upload/v1beta/files", Billing::Free),
            (
                Gemini,
                "POST",
                "/v1beta/models/veo-3:predictLongRunning",
                Billing::Unmetered,
            ),
            (Gemini, "POST", "/v1beta/cachedContents", Billing::Unmetered),
            (
                Gemini,
                "POST",
                "/v1beta/tunedModels/t1:generateContent",
                Billing::Unmetered,
            ),
            (
                Gemini,
                "POST",
                "/v1beta/models/gemini-2.5-pro%3AgenerateContent",
                Billing::Unmetered,
            ),
            (
                Gemini,
                "POST",
                "/v1beta/models/a:b:generateContent",
                Billing::Unmetered,
            ),
        ] {
            assert_eq!(b(family, method, path), billing, "{method} {path}");
        }
    }
}
