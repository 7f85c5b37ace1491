//! Capped copies of bodies for the trace. The proxy forwards every byte; the trace keeps at
//! most `limit` bytes of each body plus its true size. Shared vocabulary of the gateway (which
//! captures) and the recorder (which stores), so it sits below both.
//!
//! A cut capture also keeps the body's last [`TAIL`] bytes: providers report usage at the end
//! (the last stream event, the end of a JSON body), and a response larger than the capture must
//! still be charged what the provider says it cost.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};

use crate::memory::Held;

/// How much of the end of a cut body is kept for reading usage.
pub const TAIL: usize = 64 * 1024;

/// Bodies up to this size are copied into a capture of their own size rather than shared.
const SHARE_ABOVE: usize = 64 * 1024;

/// A capped copy of a body being streamed, plus its true size.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    buf: BytesMut,
    /// The latest bytes past the limit: between `TAIL` and `2 * TAIL` of them, trimmed in
    /// amortized steps.
    tail: BytesMut,
    limit: usize,
    pub total: u64,
    pub truncated: bool,
    /// What the kept bytes hold of the memory budget (a capture the budget cannot pay for
    /// stops keeping bytes; the body itself still flows).
    memory: Held,
}

impl Capture {
    pub fn new(limit: usize) -> Self {
        Self::within(limit, Held::default())
    }

    /// A capture whose kept bytes are held against a memory budget.
    pub fn within(limit: usize, memory: Held) -> Self {
        Capture {
            buf: BytesMut::new(),
            tail: BytesMut::new(),
            limit,
            total: 0,
            truncated: false,
            memory,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let mut room = self.limit.saturating_sub(self.buf.len());
        if chunk.len().min(room) > 0 && !self.memory.try_grow(chunk.len().min(room)) {
            // Out of budget: keep what is kept so far (the tail still tells the usage).
            self.limit = self.buf.len();
            room = 0;
        }
        let kept = chunk.len().min(room);
        self.buf.extend_from_slice(&chunk[..kept]);
        if chunk.len() > room {
            self.truncated = true;
            let rest = &chunk[kept..];
            let rest = &rest[rest.len().saturating_sub(TAIL)..];
            if self.tail.len() + rest.len() > 2 * TAIL {
                let drop = (self.tail.len() + rest.len()).saturating_sub(TAIL);
                let _ = self.tail.split_to(drop.min(self.tail.len()));
            }
            self.tail.extend_from_slice(rest);
        }
    }

    /// A capture of a body already in memory. Copies what it keeps unless the body is large
    /// and kept whole: a small body is often a slice of the connection's read buffer, and
    /// sharing it would pin that whole buffer (8 KiB and more) until the trace is written,
    /// tens of megabytes for a queue of a few thousand traces.
    pub fn of(body: &Bytes, limit: usize) -> CapturedBytes {
        let bytes = if body.len() <= limit && body.len() > SHARE_ABOVE {
            body.clone()
        } else {
            Bytes::copy_from_slice(&body[..body.len().min(limit)])
        };
        let truncated = body.len() > limit;
        let tail = truncated.then(|| {
            let from = body.len().saturating_sub(TAIL).max(limit);
            Bytes::copy_from_slice(&body[from..])
        });
        CapturedBytes {
            bytes,
            total: body.len() as u64,
            truncated,
            tail,
            memory: Held::default(),
        }
    }

    pub fn finish(self) -> CapturedBytes {
        let tail = self.truncated.then(|| {
            let t = self.tail.freeze();
            t.slice(t.len().saturating_sub(TAIL)..)
        });
        // The buffer grew by doubling: a trace waiting in the queue should hold its bytes, not
        // up to twice as much.
        let bytes = if self.buf.capacity() > self.buf.len() + self.buf.len() / 4 {
            Bytes::copy_from_slice(&self.buf)
        } else {
            self.buf.freeze()
        };
        CapturedBytes {
            bytes,
            total: self.total,
            truncated: self.truncated,
            tail,
            memory: self.memory,
        }
    }
}

/// A copy of `headers` whose values own their bytes, all in one allocation.
///
/// hyper parses header values as slices of the connection's read buffer, so a trace queued
/// with the headers as they came would pin that whole buffer (8 KiB and more per read) until
/// the trace is written: measured with heaptrack under streaming load, read buffers pinned
/// this way were half of the gateway's heap at its peak (26 of 52 MiB).
pub fn detach_headers(headers: &HeaderMap) -> HeaderMap {
    let mut store = BytesMut::with_capacity(headers.iter().map(|(_, v)| v.len()).sum());
    for (_, value) in headers {
        store.extend_from_slice(value.as_bytes());
    }
    let store = store.freeze();
    let mut out = HeaderMap::with_capacity(headers.keys_len());
    let mut at = 0;
    for (name, value) in headers {
        let end = at + value.len();
        // The bytes came from a valid value, so this only fails if `http` tightens its rules;
        // the shared value is still correct then, just not detached.
        let mut copy =
            HeaderValue::from_maybe_shared(store.slice(at..end)).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        out.append(name.clone(), copy);
        at = end;
    }
    out
}

/// What a [`Capture`] kept.
#[derive(Debug, Clone, Default)]
pub struct CapturedBytes {
    pub bytes: Bytes,
    pub total: u64,
    pub truncated: bool,
    /// When cut: the body's last bytes (up to [`TAIL`]) not already in `bytes`.
    pub tail: Option<Bytes>,
    /// The memory budget `bytes` holds (empty for a copy of a body held elsewhere).
    pub memory: Held,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_is_capped_but_counts_everything() {
        let mut c = Capture::new(5);
        c.push(b"abc");
        c.push(b"defgh");
        let b = c.finish();
        assert_eq!(&b.bytes[..], b"abcde");
        assert_eq!(b.total, 8);
        assert!(b.truncated);
        let full = Bytes::from_static(b"hello");
        let cb = Capture::of(&full, 10);
        assert!(!cb.truncated);
        assert_eq!(cb.total, 5);
    }

    #[test]
    fn a_cut_capture_does_not_share_the_big_buffer() {
        let big = Bytes::from(vec![7u8; 1 << 20]);
        let cb = Capture::of(&big, 16);
        assert_eq!(cb.bytes.len(), 16);
        assert!(cb.truncated);
        // A copy: the megabyte can be freed while the capture lives on.
        assert_ne!(cb.bytes.as_ptr(), big.as_ptr());
        let whole = Capture::of(&big, 2 << 20);
        assert_eq!(whole.bytes.as_ptr(), big.as_ptr());
        // A small body kept whole is copied too: it may be a slice of a large read buffer.
        let small = big.slice(..1000);
        let kept = Capture::of(&small, 2 << 20);
        assert_eq!(&kept.bytes[..], &small[..]);
        assert_ne!(kept.bytes.as_ptr(), big.as_ptr());
    }

    #[test]
    fn a_cut_capture_keeps_the_end_of_the_body() {
        let body: Vec<u8> = (0..(300 * 1024)).map(|i| (i % 251) as u8).collect();
        let whole = Capture::of(&Bytes::from(body.clone()), 1000);
        assert_eq!(whole.tail.as_deref(), Some(&body[body.len() - TAIL..]));
        // Streamed in uneven chunks, the same tail.
        let mut c = Capture::new(1000);
        for chunk in body.chunks(7777) {
            c.push(chunk);
        }
        let streamed = c.finish();
        assert_eq!(streamed.tail, whole.tail);
        assert_eq!(&streamed.bytes[..], &body[..1000]);
        // Just past the limit: the tail is what did not fit, nothing twice.
        let mut c = Capture::new(10);
        c.push(b"0123456789abc");
        assert_eq!(c.finish().tail.as_deref(), Some(&b"abc"[..]));
        assert!(
            Capture::of(&Bytes::from_static(b"short"), 10)
                .tail
                .is_none()
        );
    }

    #[test]
    fn detached_headers_are_the_same_headers_in_bytes_of_their_own() {
        // As hyper parses them: values slicing one buffer that also holds other bytes.
        let block = Bytes::from(b"application/json|one|two|Bearer sk-secret|".to_vec());
        let value = |r: std::ops::Range<usize>| HeaderValue::from_maybe_shared(block.slice(r));
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, value(0..16).unwrap());
        headers.append("x-dup", value(17..20).unwrap());
        headers.append("x-dup", value(21..24).unwrap());
        headers.append("x-empty", value(0..0).unwrap());
        let mut secret = value(25..41).unwrap();
        secret.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, secret);

        let detached = detach_headers(&headers);

        assert_eq!(detached, headers);
        let dups: Vec<_> = detached.get_all("x-dup").iter().collect();
        assert_eq!(dups, ["one", "two"]);
        assert!(detached[http::header::AUTHORIZATION].is_sensitive());
        assert!(!detached[http::header::CONTENT_TYPE].is_sensitive());
        let source = block.as_ptr_range();
        for (name, v) in &detached {
            if !v.is_empty() {
                assert!(
                    !source.contains(&v.as_bytes().as_ptr()),
                    "{name} still shares the buffer"
                );
            }
        }
    }
}
