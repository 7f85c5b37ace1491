//! Anthropic Messages streams: reading an upstream's events into neutral events ([`decode`]),
//! and writing neutral events for an Anthropic client ([`encode`]) in the order its SDKs expect:
//! `message_start`, then for each block `content_block_start`/`_delta`/`_stop`, then
//! `message_delta` with the stop reason and the usage, then `message_stop`.

mod decode;
mod encode;

pub use decode::Decoder;
pub use encode::Encoder;
