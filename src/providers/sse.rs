//! Server-sent events, parsed after the fact from the bytes a stream delivered (the gateway
//! forwards the raw bytes untouched; this only reads the recorded copy). Parsing is the
//! `eventsource-stream` crate's, driven synchronously over the recorded buffer a line at a time.

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
///
/// The body is fed to the parser a line at a time: after each line it consumes, the parser
/// copies everything still in its buffer, so the whole body as one piece cost time quadratic in
/// its length (captures go up to 4 MiB by default). The parser is built for arbitrary
/// chunking, so the events are the same.
pub fn events(body: &[u8]) -> Vec<SseEvent> {
    let text = String::from_utf8_lossy(body);
    // The byte order mark is dropped here: the crate slices it off as if it were one byte and
    // panics (it is three).
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    parse(lines(text))
}

/// The complete events of `pieces`, fed to the parser in that order.
fn parse<'a>(pieces: impl Iterator<Item = &'a str>) -> Vec<SseEvent> {
    let pieces = futures_util::stream::iter(pieces.map(Ok::<_, std::convert::Infallible>));
    let parsed = pieces.eventsource().collect::<Vec<_>>().now_or_never();
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

/// `text` in lines, each with its ending (LF, CRLF or a lone CR; the last may have none).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= bytes.len() {
            return None;
        }
        let from = start;
        start = match bytes[from..].iter().position(|&b| b == b'\n' || b == b'\r') {
            None => bytes.len(),
            Some(i) if bytes[from + i] == b'\r' && bytes.get(from + i + 1) == Some(&b'\n') => {
                from + i + 2
            }
            Some(i) => from + i + 1,
        };
        // Line endings are ASCII: `start` is a character boundary.
        Some(&text[from..start])
    })
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

    /// The parser fed the whole body at once (what `events` did before it fed lines).
    fn whole(body: &[u8]) -> Vec<SseEvent> {
        parse(std::iter::once(String::from_utf8_lossy(body).as_ref()))
    }

    #[test]
    fn line_by_line_gives_the_events_of_the_whole_body() {
        let bodies: [&[u8]; 8] = [
            b"data: a\n\ndata: b\n\n",
            b"data: a\r\n\r\nevent: e\r\ndata: b\r\ndata: c\r\n\r\n",
            b"data: a\r\rdata: b\r\r",
            b"data: a\r\n\ndata: b\r\r\ndata: c\n\r\n",
            b": comment\nid: 7\nretry: 10\ndata:x\n\ndata: cut",
            b"data: a\r",
            b"data: \xff\xfe\n\ndata: ok\n\n",
            b"",
        ];
        for body in bodies {
            assert_eq!(
                events(body),
                whole(body),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            lines("a\r\nb\rc\nd").collect::<Vec<_>>(),
            ["a\r\n", "b\r", "c\n", "d"]
        );
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let ev = events(b"\xef\xbb\xbfdata: bom\n\n");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data, "bom");
    }

    #[test]
    fn sniff() {
        assert!(looks_like_sse(b"\ndata: x"));
        assert!(looks_like_sse(b"event: ping"));
        assert!(!looks_like_sse(b"{\"a\":1}"));
    }
}
