//! Server-sent events, parsed after the fact from the bytes a stream delivered (the gateway
//! forwards the raw bytes untouched; this only reads the recorded copy). Parsing is the
//! `eventsource-stream` crate's, driven synchronously over the whole buffer.

use eventsource_stream::Eventsource;
use futures_util::{FutureExt, StreamExt};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; empty when absent (OpenAI and Gemini send data only).
    pub event: String,
    pub data: String,
}

/// Every complete event in `body`. Invalid UTF-8 is replaced rather than ending the parse, and
/// an unterminated last event (a cut stream) is dropped, as the SSE specification says.
pub fn events(body: &[u8]) -> Vec<SseEvent> {
    let text = String::from_utf8_lossy(body).into_owned();
    let chunks = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(text)]);
    let parsed = chunks.eventsource().collect::<Vec<_>>().now_or_never();
    parsed
        .unwrap_or_default()
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| SseEvent {
            event: if e.event == "message" {
                String::new()
            } else {
                e.event
            },
            data: e.data,
        })
        .collect()
}

/// Whether a body looks like an event stream rather than one JSON document.
pub fn looks_like_sse(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let rest = &body[start..];
    rest.starts_with(b"data:")
        || rest.starts_with(b"event:")
        || rest.starts_with(b":")
        || rest.starts_with(b"id:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_and_drops_the_cut_one() {
        let body = b"event: message_start\ndata: {\"a\":1}\n\n: comment\n\ndata: x\r\ndata: y\r\n\r\ndata: {\"cut";
        let ev = events(body);
        assert_eq!(
            ev,
            vec![
                SseEvent {
                    event: "message_start".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: String::new(),
                    data: "x\ny".into()
                },
            ]
        );
    }

    #[test]
    fn invalid_utf8_does_not_lose_later_events() {
        let mut body = b"data: \xff\xfe\n\n".to_vec();
        body.extend_from_slice(b"data: ok\n\n");
        let ev = events(&body);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].data, "ok");
    }

    #[test]
    fn sniff() {
        assert!(looks_like_sse(b"\ndata: x"));
        assert!(looks_like_sse(b"event: ping"));
        assert!(!looks_like_sse(b"{\"a\":1}"));
    }
}
