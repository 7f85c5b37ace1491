//! How trace bodies are stored: zstd-compressed. One format for every writer (the recorder, the
//! trace generator) and every reader (the portal's drawer and snippets).

/// zstd level for stored bodies: level 1 compresses JSON about 4–8× and costs about half of
/// level 3's time on the small bodies most calls carry (compression ran on every trace, ~3 % of
/// the gateway's CPU under load at level 3). Reading does not depend on the level.
const ZSTD_LEVEL: i32 = 1;

pub fn compress(bytes: &[u8]) -> Vec<u8> {
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
    zstd::bulk::decompress(bytes, limit).ok()
}
