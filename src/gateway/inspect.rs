//! Phase: read and inspect the request body. JSON is read whole (the gateway needs the model to
//! route and the output limit to price a reservation, and a JSON request is small next to its
//! response); anything else (audio and file uploads) streams upstream as it arrives, with a
//! capped copy kept for the trace and the size limit enforced on the stream itself (a chunked
//! body has no length to check up front).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;

use super::call::RequestCopy;
use super::{GatewayError, RequestBody};
use crate::capture::Capture;

/// What the JSON body says about routing, streaming and output size; everything else is skipped
/// unparsed.
#[derive(serde::Deserialize, Default)]
pub struct Peek {
    pub model: Option<String>,
    pub stream: Option<bool>,
    pub stream_options: Option<serde::de::IgnoredAny>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    #[serde(rename = "generationConfig")]
    generation_config: Option<GenerationConfig>,
}

#[derive(serde::Deserialize, Default)]
struct GenerationConfig {
    #[serde(rename = "maxOutputTokens")]
    max_output_tokens: Option<u64>,
}

impl Peek {
    /// The most output the request allows, whatever the API calls it.
    pub fn max_output(&self) -> Option<u64> {
        self.max_tokens
            .or(self.max_completion_tokens)
            .or(self.max_output_tokens)
            .or(self
                .generation_config
                .as_ref()
                .and_then(|g| g.max_output_tokens))
    }
}

/// The body, ready to go upstream.
pub enum Body {
    /// Read whole: JSON (or an unlabelled small body).
    Json(Bytes),
    /// Streaming through.
    Stream(reqwest::Body),
}

pub struct Inspected {
    pub body: Body,
    pub peek: Peek,
    /// The copy the trace keeps.
    pub copy: RequestCopy,
}

impl Inspected {
    pub fn json(&self) -> Option<&Bytes> {
        match &self.body {
            Body::Json(b) => Some(b),
            Body::Stream(_) => None,
        }
    }

    /// The size of a body read whole (0 for a stream: its size is not known yet).
    pub fn json_len(&self) -> usize {
        self.json().map_or(0, Bytes::len)
    }
}

/// Reads (or starts streaming) the body, up to `limit` bytes, keeping `capture_limit` of it.
pub async fn read(
    parts: &http::request::Parts,
    body: RequestBody,
    limit: u64,
    capture_limit: usize,
) -> Result<Inspected, GatewayError> {
    if is_json(parts) {
        let bytes = read_limited(body, limit).await?;
        let peek = if bytes.is_empty() {
            Peek::default()
        } else {
            serde_json::from_slice(&bytes).unwrap_or_default()
        };
        let copy = RequestCopy::Whole(Capture::of(&bytes, capture_limit));
        Ok(Inspected {
            body: Body::Json(bytes),
            peek,
            copy,
        })
    } else {
        let (stream, capture) = capped_stream(body, limit, capture_limit);
        Ok(Inspected {
            body: Body::Stream(stream),
            peek: Peek::default(),
            copy: RequestCopy::Streaming(capture),
        })
    }
}

fn is_json(parts: &http::request::Parts) -> bool {
    match parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        Some(ct) => {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("application/json") || ct.contains("+json")
        }
        // SDKs always label JSON; an unlabelled small body (or none) is read whole too.
        None => true,
    }
}

async fn read_limited(body: RequestBody, limit: u64) -> Result<Bytes, GatewayError> {
    let limited = http_body_util::Limited::new(body, limit as usize);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(GatewayError::BodyTooLarge(limit))
        }
        Err(e) => Err(GatewayError::BadRequestBody(e.to_string())),
    }
}

/// A non-JSON body streamed upstream as it arrives, with a capped copy for the trace and the
/// size limit enforced on the stream (going past it fails the upstream request).
fn capped_stream(
    body: RequestBody,
    limit: u64,
    capture_limit: usize,
) -> (reqwest::Body, Arc<Mutex<Capture>>) {
    let capture = Arc::new(Mutex::new(Capture::new(capture_limit)));
    let sink = capture.clone();
    let mut seen: u64 = 0;
    let stream = body
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.0))
        .and_then(move |chunk| {
            seen += chunk.len() as u64;
            if let Ok(mut c) = sink.lock() {
                c.push(&chunk);
            }
            let over = seen > limit;
            async move {
                if over {
                    Err(std::io::Error::other(GatewayError::BodyTooLarge(limit)))
                } else {
                    Ok(chunk)
                }
            }
        });
    (reqwest::Body::wrap_stream(stream), capture)
}
