//! Phase: read and inspect the request body. JSON is read whole (the gateway needs the model to
//! route, the output limit and choices to price a reservation, and a JSON request is small next
//! to its response); so is a form a limited key sends to a metered API (the model and the file's
//! size are in it). Anything else (uploads from passthrough keys) streams upstream as it
//! arrives, with a capped copy kept for the trace and the size limit enforced on the stream
//! itself (a chunked body has no length to check up front).
//!
//! What the body says is read once, into [`Facts`] ([`crate::metering::read`]); strictly for a
//! key with limits, whose call is refused when its body cannot be read with certainty.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;

use super::call::RequestCopy;
use super::{GatewayError, RequestBody};
use crate::capture::Capture;
use crate::memory::Held;
use crate::metering::{Facts, read};
use crate::providers::{Billing, Wire};

/// The body, ready to go upstream.
pub enum Body {
    /// Read whole.
    Whole(Bytes),
    /// Streaming through.
    Stream(reqwest::Body),
}

impl Body {
    /// The body for another attempt: a body read whole can be sent again, a streamed one only
    /// once (`None` then).
    pub fn again(&self) -> Option<Body> {
        match self {
            Body::Whole(b) => Some(Body::Whole(b.clone())),
            Body::Stream(_) => None,
        }
    }
}

pub struct Inspected {
    pub body: Body,
    pub facts: Facts,
    /// The copy the trace keeps.
    pub copy: RequestCopy,
    /// A JSON body (the gateway may rewrite it, e.g. to ask for usage).
    pub json: bool,
}

/// How to read a body.
pub struct Reading<'a> {
    /// The API, as far as the path tells before the body is read.
    pub wire: Wire,
    /// The model a Gemini path names.
    pub path_model: Option<&'a str>,
    /// A key with limits: refuse what cannot be read with certainty.
    pub strict: bool,
    pub limit: u64,
    pub capture_limit: usize,
    /// The memory budget bodies read whole and captured copies are held against.
    pub memory: &'a std::sync::Arc<crate::memory::MemoryBudget>,
}

/// Reads (or starts streaming) the body.
pub async fn read(
    parts: &http::request::Parts,
    body: RequestBody,
    how: &Reading<'_>,
    held: &mut Held,
) -> Result<Inspected, GatewayError> {
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let lower = content_type.to_ascii_lowercase();
    // SDKs always label JSON; an unlabelled small body (or none) is read whole too.
    let json = lower.is_empty() || lower.starts_with("application/json") || lower.contains("+json");
    let form = lower.starts_with("multipart/form-data");
    let metered_form = matches!(
        how.wire.billing(),
        Billing::Images | Billing::Transcription | Billing::FileUpload
    );
    if json {
        let bytes = read_limited(body, how.limit, declared, held).await?;
        let facts = read::json(how.wire, &bytes, how.path_model, how.strict)
            .map_err(|e| GatewayError::UnreadableBody(e.0))?;
        let copy = RequestCopy::Whole(Capture::of(&bytes, how.capture_limit));
        return Ok(Inspected {
            body: Body::Whole(bytes),
            facts,
            copy,
            json: true,
        });
    }
    // A metered form is read whole: its model and file size price the call. A file upload is
    // read only for a key with limits (a batch's requests are checked on the way).
    let buffered = metered_form && (how.strict || how.wire.billing() != Billing::FileUpload);
    if form && buffered {
        let bytes = read_limited(body, how.limit, declared, held).await?;
        let facts = read::multipart(how.wire, content_type, bytes.clone(), how.strict)
            .await
            .map_err(|e| GatewayError::UnreadableBody(e.0))?;
        let copy = RequestCopy::Whole(Capture::of(&bytes, how.capture_limit));
        return Ok(Inspected {
            body: Body::Whole(bytes),
            facts,
            copy,
            json: false,
        });
    }
    if how.strict && how.wire.billing().metered() {
        return Err(GatewayError::UnreadableBody(format!(
            "a `{}` body is not what this API takes",
            if content_type.is_empty() {
                "unlabelled"
            } else {
                content_type
            }
        )));
    }
    let (stream, capture) = capped_stream(
        body,
        how.limit,
        Capture::within(how.capture_limit, how.memory.empty()),
    );
    let mut facts = Facts {
        n: 1,
        ..Facts::default()
    };
    if let Some(m) = how.path_model {
        facts.models.push(m.to_owned());
    }
    Ok(Inspected {
        body: Body::Stream(stream),
        facts,
        copy: RequestCopy::Streaming(capture),
        json: false,
    })
}

/// Reads a body whole, up to `limit` bytes, holding what it reads against the memory budget
/// (all of a declared length up front, so a body that cannot fit is refused before a byte of
/// it is read).
async fn read_limited(
    mut body: RequestBody,
    limit: u64,
    declared: Option<u64>,
    held: &mut Held,
) -> Result<Bytes, GatewayError> {
    if let Some(n) = declared {
        if n > limit {
            return Err(GatewayError::BodyTooLarge(limit));
        }
        if !held.try_grow(n as usize) {
            return Err(GatewayError::Overloaded);
        }
    }
    let limit = limit as usize;
    // One chunk (the usual case for a small JSON body) is kept as it came, without a copy.
    let mut first: Option<Bytes> = None;
    let mut buf = bytes::BytesMut::new();
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| GatewayError::BadRequestBody(e.0))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        len += data.len();
        if len > limit {
            return Err(GatewayError::BodyTooLarge(limit as u64));
        }
        if len > held.bytes() && !held.try_grow(len - held.bytes()) {
            return Err(GatewayError::Overloaded);
        }
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            None => buf.extend_from_slice(&data),
            Some(f) => {
                buf.reserve(declared.map_or(f.len() + data.len(), |d| d as usize));
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

/// A non-JSON body streamed upstream as it arrives, with a capped copy for the trace and the
/// size limit enforced on the stream (going past it fails the upstream request).
fn capped_stream(
    body: RequestBody,
    limit: u64,
    capture: Capture,
) -> (reqwest::Body, Arc<Mutex<Capture>>) {
    let capture = Arc::new(Mutex::new(capture));
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
