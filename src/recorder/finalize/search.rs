//! The text body search indexes for a trace.

use serde_json::Value;

use crate::providers::Parsed;
use crate::redact;

/// The most text indexed per trace for body search (an agent transcript of a few hundred KB
/// fits; the rest of a giant body is still stored, just not searchable).
pub(super) const MAX_SEARCH_TEXT: usize = 1 << 20;

/// What body search looks at: the request's text (JSON string values, unescaped, so a search
/// matches what a person reads), then the response's text.
pub(super) fn search_text(
    request: Option<&Value>,
    request_raw: &[u8],
    parsed: &Parsed,
    response_raw: &[u8],
) -> String {
    let mut out = String::new();
    match request {
        Some(v) => collect_strings(v, &mut out),
        None => out.push_str(&String::from_utf8_lossy(
            &request_raw[..request_raw.len().min(MAX_SEARCH_TEXT)],
        )),
    }
    out.push('\n');
    if !parsed.text.is_empty() {
        out.push_str(&parsed.text);
    } else if let Ok(v) = serde_json::from_slice::<Value>(response_raw) {
        collect_strings(&v, &mut out);
    }
    if let Some(e) = &parsed.error {
        out.push('\n');
        out.push_str(e);
    }
    if out.len() > MAX_SEARCH_TEXT {
        let mut end = MAX_SEARCH_TEXT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

pub(super) fn collect_strings(v: &Value, out: &mut String) {
    match v {
        Value::String(s) if out.len() < MAX_SEARCH_TEXT => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        // Credential fields are redacted in the stored body; they must not be searchable either.
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !redact::is_secret_field(k))
            .for_each(|(_, v)| collect_strings(v, out)),
        _ => {}
    }
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
