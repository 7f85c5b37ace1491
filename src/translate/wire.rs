//! Helpers the wire structs and stream decoders of every shape share (a leaf: it imports only
//! the neutral event type).

use std::borrow::Cow;

use serde::Deserializer;
use serde::de::{self, Visitor};

use super::ir::Event;

/// An event the decoder could not read: the stream is no longer trustworthy, so it ends with
/// an error rather than with a silently shorter answer.
pub fn unreadable(sink: &mut dyn FnMut(Event<'_>), shape: &str) {
    sink(Event::Error {
        status: 502,
        message: Cow::Owned(format!(
            "the upstream sent an unreadable {shape} stream event"
        )),
    });
}

/// An optional string that borrows from the event text when it has no escapes (most deltas),
/// and tolerates `null`. Serde borrows a `Cow` only when it is not inside an `Option`.
pub fn opt_cow<'de, D>(d: D) -> Result<Option<Cow<'de, str>>, D::Error>
where
    D: Deserializer<'de>,
{
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Cow<'de, str>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string or null")
        }

        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_str(V)
        }
    }
    d.deserialize_option(V)
}
