//! How trace bodies are stored: zstd-compressed, except short ones. One format for every writer
//! (the recorder, the trace generator) and every reader (the portal's drawer and snippets).
//!
//! A stored body is a zstd frame when it starts with zstd's magic number, and the body itself
//! otherwise. Bodies shorter than [`MIN_COMPRESSED`] are stored as they are, unless they start
//! with the magic number themselves (those are compressed, so reading never mistakes one).

/// zstd level for stored bodies: level 1 compresses JSON about 4–8× and costs about half of
/// level 3's time on the small bodies most calls carry (compression ran on every trace, ~3 % of
/// the gateway's CPU under load at level 3). Reading does not depend on the level.
const ZSTD_LEVEL: i32 = 1;

/// Below this size zstd saves a few dozen bytes a body and costs more CPU than the rest of the
/// row's insert: building its entropy tables dominates for short inputs.
const MIN_COMPRESSED: usize = 256;

/// The first four bytes of every zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

pub fn compress(bytes: &[u8]) -> Vec<u8> {
    if bytes.len() < MIN_COMPRESSED && !bytes.starts_with(&ZSTD_MAGIC) {
        return bytes.to_vec();
    }
    // Creating a zstd context costs more than compressing a typical body: keep one per thread.
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            std::cell::RefCell::new(zstd::bulk::Compressor::new(ZSTD_LEVEL).ok());
    }
    COMPRESSOR
        .with(|c| c.borrow_mut().as_mut().and_then(|c| c.compress(bytes).ok()))
        .unwrap_or_else(|| {
            zstd::bulk::compress(bytes, ZSTD_LEVEL).unwrap_or_else(|_| bytes.to_vec())
        })
}

/// Inverse of [`compress`], for the portal. Bounded so a corrupt or hostile blob cannot expand
/// without limit.
pub fn decompress(bytes: &[u8], limit: usize) -> Option<Vec<u8>> {
    if !bytes.starts_with(&ZSTD_MAGIC) {
        return (bytes.len() <= limit).then(|| bytes.to_vec());
    }
    zstd::bulk::decompress(bytes, limit).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_body_reads_back_as_written() {
        let long = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#.repeat(20);
        let mut magic_short = ZSTD_MAGIC.to_vec();
        magic_short.extend_from_slice(b"not a frame");
        for body in [&b""[..], b"{}", &long, &magic_short, &[0xFF; 300][..]] {
            let stored = compress(body);
            assert_eq!(decompress(&stored, 1 << 20).as_deref(), Some(body));
        }
    }

    #[test]
    fn short_bodies_are_stored_as_they_are_and_long_ones_compressed() {
        assert_eq!(compress(b"{\"a\":1}"), b"{\"a\":1}");
        let long = b"{\"content\":\"hello\"}".repeat(40);
        let stored = compress(&long);
        assert!(stored.starts_with(&ZSTD_MAGIC) && stored.len() < long.len() / 4);
        // A short body that looks like a frame is compressed, so it cannot be misread.
        assert!(compress(&ZSTD_MAGIC).len() > ZSTD_MAGIC.len());
    }

    #[test]
    fn reading_is_bounded() {
        assert_eq!(decompress(b"0123456789", 4), None);
        let long = vec![b'a'; 10_000];
        assert_eq!(decompress(&compress(&long), 100), None);
    }
}
