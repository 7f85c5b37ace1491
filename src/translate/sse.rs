//! Server-sent events on the streaming path: an incremental reader that hands over each event
//! as soon as its blank line arrives (unlike [`crate::providers::sse`], which reads a recorded
//! body after the fact), and the writers for the three shapes' framing.
//!
//! The reader copies each line once into reused buffers; nothing is allocated per event once
//! the buffers have grown to the stream's largest event.

use serde::Serialize;

/// The most bytes one event (or one unfinished line) may hold. Gemini sends a whole function
/// call in one event, so this is generous; past it the stream is treated as broken rather than
/// buffered without bound.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct Reader {
    /// Bytes after the last complete line.
    pending: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
}

/// The stream broke the SSE framing beyond repair (an event larger than [`MAX_EVENT_BYTES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversized;

impl Reader {
    /// Feeds bytes; `on_event(name, data)` runs for every event completed by them. The name is
    /// empty when the event has no `event:` field (OpenAI and Gemini send data only).
    pub fn push(
        &mut self,
        chunk: &[u8],
        on_event: &mut dyn FnMut(&str, &str),
    ) -> Result<(), Oversized> {
        self.pending.extend_from_slice(chunk);
        let Reader {
            pending,
            event,
            data,
            has_data,
        } = self;
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &pending[start..]) {
            let end = start + nl;
            let mut line = &pending[start..end];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            start = end + 1;
            if line.is_empty() {
                if *has_data {
                    on_event(event, data);
                }
                event.clear();
                data.clear();
                *has_data = false;
                continue;
            }
            let (field, value) = match memchr::memchr(b':', line) {
                Some(0) => continue,
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (line, &b""[..]),
            };
            match field {
                b"event" => {
                    event.clear();
                    event.push_str(&String::from_utf8_lossy(value));
                }
                b"data" => {
                    if *has_data {
                        data.push('\n');
                    }
                    data.push_str(&String::from_utf8_lossy(value));
                    *has_data = true;
                }
                _ => {}
            }
        }
        pending.drain(..start);
        if pending.len() > MAX_EVENT_BYTES || data.len() > MAX_EVENT_BYTES {
            return Err(Oversized);
        }
        Ok(())
    }
}

/// `data: {json}` and a blank line, OpenAI's and Gemini's framing (Gemini ends lines with CRLF).
pub fn write_data(out: &mut Vec<u8>, value: &impl Serialize, crlf: bool) {
    let mark = out.len();
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut *out, value).is_err() {
        // Our own output types always serialize; if one ever did not, send nothing rather
        // than half an event.
        out.truncate(mark);
        return;
    }
    out.extend_from_slice(if crlf { b"\r\n\r\n" } else { b"\n\n" });
}

/// `event: {name}` then `data: {json}`, Anthropic's framing.
pub fn write_event(out: &mut Vec<u8>, name: &str, value: &impl Serialize) {
    let mark = out.len();
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(mark);
        return;
    }
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(pieces: &[&[u8]]) -> Vec<(String, String)> {
        let mut r = Reader::default();
        let mut seen = Vec::new();
        for p in pieces {
            r.push(p, &mut |e, d| seen.push((e.to_owned(), d.to_owned())))
                .unwrap();
        }
        seen
    }

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let body = b"event: message_start\ndata: {\"a\":1}\n\n: ping\n\ndata: x\r\ndata: y\r\n\r\ndata: [DONE]\n\ndata: {\"cut";
        let expected = vec![
            ("message_start".to_owned(), "{\"a\":1}".to_owned()),
            (String::new(), "x\ny".to_owned()),
            (String::new(), "[DONE]".to_owned()),
        ];
        assert_eq!(read_all(&[body]), expected);
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(read_all(&bytes), expected);
        for split in 0..body.len() {
            assert_eq!(read_all(&[&body[..split], &body[split..]]), expected);
        }
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut r = Reader::default();
        let big = vec![b'x'; MAX_EVENT_BYTES / 4 + 1];
        let mut result = Ok(());
        for _ in 0..5 {
            result = r.push(&big, &mut |_, _| {});
        }
        assert_eq!(result, Err(Oversized));
    }

    #[test]
    fn writers_frame_each_shape() {
        let mut out = Vec::new();
        write_data(&mut out, &serde_json::json!({"a": 1}), false);
        write_data(&mut out, &serde_json::json!({"b": 2}), true);
        write_event(&mut out, "ping", &serde_json::json!({"type": "ping"}));
        assert_eq!(
            out,
            b"data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\nevent: ping\ndata: {\"type\":\"ping\"}\n\n"
        );
    }
}
