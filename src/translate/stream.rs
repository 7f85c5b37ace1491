//! The streaming translator: upstream SSE bytes in, client SSE bytes out, event by event.
//!
//! Three stages, each holding only the state its shape needs: the SSE [`Reader`] frames the
//! bytes, a decoder (one per upstream shape) reads each event once into neutral [`Event`]s, and
//! an encoder (one per client shape) writes those in the client's vocabulary as soon as they
//! can be written. Only Gemini clients make the encoder hold anything back: Gemini carries a
//! tool call whole, so the argument pieces of the others are gathered until the call ends.

use std::borrow::Cow;

use bytes::Bytes;

use super::ir::Event;
use super::sse::Reader;
use super::{Provider, ResponseContext, anthropic, gemini, openai};

/// Translates one streamed answer. Feed it the upstream body's bytes as they come with
/// [`push`](Self::push), then call [`finish`](Self::finish) when the upstream body ends.
pub struct StreamTranslator {
    /// `None` when both sides speak the same shape: bytes pass untouched.
    inner: Option<Inner>,
}

struct Inner {
    reader: Reader,
    decoder: Decoder,
    encoder: Encoder,
}

enum Decoder {
    OpenAi(openai::stream::Decoder),
    Anthropic(anthropic::stream::Decoder),
    Gemini(gemini::stream::Decoder),
}

enum Encoder {
    OpenAi(openai::stream::Encoder),
    Anthropic(anthropic::stream::Encoder),
    Gemini(gemini::stream::Encoder),
}

impl StreamTranslator {
    /// `from` is the upstream's shape, `to` the client's.
    pub fn new(from: Provider, to: Provider, ctx: ResponseContext) -> Self {
        if from == to {
            return StreamTranslator { inner: None };
        }
        let decoder = match from {
            Provider::OpenAi => Decoder::OpenAi(Default::default()),
            Provider::Anthropic => Decoder::Anthropic(Default::default()),
            Provider::Gemini => Decoder::Gemini(gemini::stream::Decoder::new(&ctx)),
        };
        let encoder = match to {
            Provider::OpenAi => Encoder::OpenAi(openai::stream::Encoder::new(ctx)),
            Provider::Anthropic => Encoder::Anthropic(anthropic::stream::Encoder::new(ctx)),
            Provider::Gemini => Encoder::Gemini(gemini::stream::Encoder::new(ctx)),
        };
        StreamTranslator {
            inner: Some(Inner {
                reader: Reader::default(),
                decoder,
                encoder,
            }),
        }
    }

    /// Feeds upstream bytes (any split); returns the client bytes they complete.
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        let Some(inner) = &mut self.inner else {
            return Bytes::copy_from_slice(chunk);
        };
        let Inner {
            reader,
            decoder,
            encoder,
        } = inner;
        // Translated events are about the size of the upstream's.
        let mut out = Vec::with_capacity(chunk.len() + chunk.len() / 2);
        let framed = reader.push(chunk, &mut |name, data| {
            let mut sink = |ev: Event<'_>| encoder.emit(ev, &mut out);
            decoder.event(name, data, &mut sink);
        });
        if framed.is_err() {
            encoder.emit(
                Event::Error {
                    status: 502,
                    message: Cow::Borrowed("the upstream sent an event too large to translate"),
                },
                &mut out,
            );
        }
        Bytes::from(out)
    }

    /// The upstream body ended: returns what is still owed to the client. An upstream that
    /// stopped without finishing its answer gets no invented ending, so the client sees the cut
    /// (the gateway may append its own error event).
    pub fn finish(&mut self) -> Bytes {
        let Some(inner) = &mut self.inner else {
            return Bytes::new();
        };
        let mut out = Vec::new();
        let mut sink = |ev: Event<'_>| inner.encoder.emit(ev, &mut out);
        inner.decoder.finish(&mut sink);
        Bytes::from(out)
    }

    /// Whether the client's terminal event (or an error event) has been written.
    pub fn is_done(&self) -> bool {
        match &self.inner {
            None => false,
            Some(inner) => inner.encoder.is_done(),
        }
    }
}

impl Decoder {
    fn event(&mut self, name: &str, data: &str, sink: &mut dyn FnMut(Event<'_>)) {
        match self {
            Decoder::OpenAi(d) => d.event(data, sink),
            Decoder::Anthropic(d) => d.event(name, data, sink),
            Decoder::Gemini(d) => d.event(data, sink),
        }
    }

    fn finish(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        match self {
            Decoder::OpenAi(d) => d.finish(sink),
            Decoder::Anthropic(d) => d.finish(sink),
            Decoder::Gemini(_) => {}
        }
    }
}

impl Encoder {
    fn emit(&mut self, ev: Event<'_>, out: &mut Vec<u8>) {
        match self {
            Encoder::OpenAi(e) => e.emit(ev, out),
            Encoder::Anthropic(e) => e.emit(ev, out),
            Encoder::Gemini(e) => e.emit(ev, out),
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Encoder::OpenAi(e) => e.done,
            Encoder::Anthropic(e) => e.done,
            Encoder::Gemini(e) => e.done,
        }
    }
}
