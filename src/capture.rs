//! Capped copies of bodies for the trace. The proxy forwards every byte; the trace keeps at
//! most `limit` bytes of each body plus its true size. Shared vocabulary of the gateway (which
//! captures) and the recorder (which stores), so it sits below both.

use bytes::{Bytes, BytesMut};

/// A capped copy of a body being streamed, plus its true size.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    buf: BytesMut,
    limit: usize,
    pub total: u64,
    pub truncated: bool,
}

impl Capture {
    pub fn new(limit: usize) -> Self {
        Capture {
            buf: BytesMut::new(),
            limit,
            total: 0,
            truncated: false,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let room = self.limit.saturating_sub(self.buf.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    /// A capture of a body already in memory. Shares the buffer when the whole body is kept;
    /// copies the kept part when it is cut, so a small capture never pins a large buffer.
    pub fn of(body: &Bytes, limit: usize) -> CapturedBytes {
        let bytes = if body.len() <= limit {
            body.clone()
        } else {
            Bytes::copy_from_slice(&body[..limit])
        };
        CapturedBytes {
            bytes,
            total: body.len() as u64,
            truncated: body.len() > limit,
        }
    }

    pub fn finish(self) -> CapturedBytes {
        CapturedBytes {
            bytes: self.buf.freeze(),
            total: self.total,
            truncated: self.truncated,
        }
    }
}

/// What a [`Capture`] kept.
#[derive(Debug, Clone, Default)]
pub struct CapturedBytes {
    pub bytes: Bytes,
    pub total: u64,
    pub truncated: bool,
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
    }
}
