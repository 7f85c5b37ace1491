//! Server-sent events, parsed after the fact from the bytes a stream delivered (the gateway
//! forwards the raw bytes untouched; this only reads the recorded copy).
//!
//! The parse follows the SSE specification's "interpret an event stream" steps over one
//! complete buffer. It used to be the `eventsource-stream` crate's, driven over the buffer a
//! line at a time; that crate is built for an async stream arriving in pieces, and copied the
//! rest of its buffer after every line: its parse was 7 % of the gateway's CPU on streamed
//! calls. The crate stays as the reference the property test below holds this parser to.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; empty when absent (OpenAI and Gemini send data only).
    pub event: String,
    pub data: String,
}

/// Every complete event in `body`. Invalid UTF-8 is replaced rather than ending the parse, and
/// an unterminated last event (a cut stream) is dropped, as the SSE specification says.
pub fn events(body: &[u8]) -> Vec<SseEvent> {
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = Vec::new();
    let mut event: &str = "";
    let mut data = String::new();
    let mut lines = lines(text).peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        let Some(line) = content(line, last) else {
            break;
        };
        if line.is_empty() {
            // Dispatch: an event without data is no event; either way the next starts afresh.
            if !data.is_empty() {
                data.pop();
                out.push(SseEvent {
                    event: if event == "message" { "" } else { event }.to_owned(),
                    data: std::mem::take(&mut data),
                });
            }
            event = "";
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            // A comment (the field name is empty).
            "" => {}
            "event" => event = value,
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            // `id` and `retry` matter to a reconnecting client, not to reading a recording.
            _ => {}
        }
    }
    out
}

/// A line without its ending, when the line is complete. The last line of a cut stream has no
/// ending; a CR as the very last byte may be the first half of a CRLF still to come, so that
/// line is not complete either.
fn content(line: &str, last: bool) -> Option<&str> {
    if let Some(l) = line
        .strip_suffix("\r\n")
        .or_else(|| line.strip_suffix('\n'))
    {
        return Some(l);
    }
    line.strip_suffix('\r').filter(|_| !last)
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
        start = match memchr::memchr2(b'\n', b'\r', &bytes[from..]) {
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

    /// The `eventsource-stream` crate's reading of `body` fed in one piece: the reference.
    fn reference(body: &[u8]) -> Vec<SseEvent> {
        use eventsource_stream::Eventsource;
        use futures_util::{FutureExt, StreamExt};
        let text = String::from_utf8_lossy(body);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned();
        let pieces = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(text)]);
        let parsed = pieces.eventsource().collect::<Vec<_>>().now_or_never();
        parsed
            .expect("a stream of one ready piece")
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

    #[test]
    fn reads_as_the_reference_parser_does() {
        let bodies: [&[u8]; 10] = [
            b"data: a\n\ndata: b\n\n",
            b"data: a\r\n\r\nevent: e\r\ndata: b\r\ndata: c\r\n\r\n",
            b"data: a\r\rdata: b\r\r",
            b"data: a\r\n\ndata: b\r\r\ndata: c\n\r\n",
            b": comment\nid: 7\nretry: 10\ndata:x\n\ndata: cut",
            b"data: a\r",
            b"data: \xff\xfe\n\ndata: ok\n\n",
            b"",
            b"event: message\ndata\n\nevent: x\n\ndata:  two spaces\n\n",
            b"data: a\n\n\n\nevent: e\ndata: b\ndata:\n\n",
        ];
        for body in bodies {
            assert_eq!(
                events(body),
                reference(body),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            lines("a\r\nb\rc\nd").collect::<Vec<_>>(),
            ["a\r\n", "b\r", "c\n", "d"]
        );
    }

    proptest::proptest! {
        /// Any stream made of the pieces that matter to the grammar (field names, colons,
        /// spaces, every kind of line end, comments, text) reads the same as the reference.
        #[test]
        fn any_stream_reads_as_the_reference_parser_does(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "data", "event", "id", "retry", "message", ":", " ", "\n", "\r", "\r\n",
                    "x", "é", "{\"a\":1}", "[DONE]", "\u{feff}",
                ]),
                0..40,
            ),
        ) {
            let body = pieces.concat();
            // The crate takes the first character of a body that starts with a byte order mark
            // as one byte and panics; `events` drops one mark, and the reference mirrors that,
            // so a second one is left out of the comparison.
            proptest::prop_assume!(!body.starts_with("\u{feff}\u{feff}"));
            proptest::prop_assert_eq!(events(body.as_bytes()), reference(body.as_bytes()));
        }
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
