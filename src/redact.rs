//! Redaction of secrets in what Antix stores and shows (traces, logs, error texts), never in what
//! it forwards. One low-level module that the gateway, the recorder and the portal all use:
//! headers whose names say they carry a credential, query parameters that do, JSON fields that
//! name one, and every credential value a request presented, wherever it is echoed.
//!
//! Everything here runs in time linear in its input: the bodies are the client's, and so are
//! the secrets searched for in them (a client chooses its own header values).

use http::HeaderMap;
use serde_json::Value;

pub const REDACTED: &str = "<redacted>";

/// Whether a header may carry a secret and must never be stored as is.
pub fn is_secret_header(name: &str) -> bool {
    const WORDS: [&str; 8] = [
        "key",
        "token",
        "secret",
        "auth",
        "session",
        "cookie",
        "password",
        "signature",
    ];
    // Agent clients' conversation ids: they name a conversation, they open nothing, and the
    // Activity tab's grouping is explained by them.
    const CONVERSATION_IDS: [&str; 4] = [
        "x-claude-code-session-id",
        "session-id",
        "session_id",
        "x-codex-parent-thread-id",
    ];
    // Header names arrive lowercase from `http`; others are lowered here.
    let n = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    };
    if CONVERSATION_IDS.contains(&n.as_ref()) {
        return false;
    }
    WORDS.iter().any(|w| n.contains(w))
}

/// Headers as a JSON object for storage, with secret-looking values replaced by `<redacted>`
/// and non-text values marked as such.
pub fn headers_json(headers: &HeaderMap) -> String {
    // Written out directly (runs twice per trace): building a `serde_json::Map` of owned names
    // and values first cost about as much again as the JSON itself. Same output: names in
    // first-seen order, a repeated header as an array of its values.
    let mut out = Vec::with_capacity(48 * headers.len() + 2);
    out.push(b'{');
    for (i, name) in headers.keys().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_str(&mut out, name.as_str());
        out.push(b':');
        let secret = is_secret_header(name.as_str());
        let values = headers.get_all(name);
        let many = values.iter().nth(1).is_some();
        if many {
            out.push(b'[');
        }
        for (j, value) in values.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            let shown = if secret {
                REDACTED
            } else {
                value.to_str().unwrap_or("<binary>")
            };
            push_json_str(&mut out, shown);
        }
        if many {
            out.push(b']');
        }
    }
    out.push(b'}');
    // Only JSON text was written, from `&str`s.
    String::from_utf8(out).unwrap_or_default()
}

/// `s` as a JSON string literal (serde_json's escaping).
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Query parameters that can carry secrets (Gemini's `key`, signed URLs, tokens).
const SECRET_PARAMS: [&str; 7] = [
    "key",
    "api_key",
    "apikey",
    "token",
    "access_token",
    "sig",
    "signature",
];

/// The query string with secret parameters' values replaced by `<redacted>`.
pub fn query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) || looks_like_key(v) {
                format!("{k}={REDACTED}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A query value shaped like an API key (`sk-…`, Google's `AIza…`, OAuth `ya29.…`), whatever
/// the parameter is called: clients put keys in parameters of every name.
fn looks_like_key(value: &str) -> bool {
    let v = value
        .trim_start_matches("Bearer%20")
        .trim_start_matches("Bearer+");
    ["sk-", "sk_", "AIza", "ya29."].iter().any(|p| {
        v.len() >= p.len() + 8 && v.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p))
    })
}

/// JSON fields that hold credentials when a client puts them in a body.
pub const SECRET_FIELDS: [&str; 8] = [
    "api_key",
    "apikey",
    "access_token",
    "refresh_token",
    "client_secret",
    "secret",
    "password",
    "authorization",
];

/// Whether a JSON object key names a credential (compared case-insensitively).
pub fn is_secret_field(key: &str) -> bool {
    SECRET_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(key))
}

/// Whether a body has a JSON key that names a credential (checked case-insensitively). One
/// pass over the body: only the bytes after each quote are compared.
fn looks_secret(raw: &[u8]) -> bool {
    memchr::memchr_iter(b'"', raw).any(|i| {
        SECRET_FIELDS.iter().any(|f| {
            let end = i + 1 + f.len();
            raw.get(i + 1..end)
                .is_some_and(|w| w.eq_ignore_ascii_case(f.as_bytes()))
                && raw.get(end) == Some(&b'"')
        })
    })
}

/// A JSON request body as it is stored: as sent, except credential fields replaced.
pub fn request_json(raw: &[u8], parsed: Option<&Value>) -> Vec<u8> {
    match parsed {
        Some(v) if looks_secret(raw) => {
            let mut v = v.clone();
            json_value(&mut v);
            serde_json::to_vec(&v).unwrap_or_else(|_| raw.to_vec())
        }
        _ => raw.to_vec(),
    }
}

/// Replaces the values of credential fields, at any depth.
pub fn json_value(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if is_secret_field(k) && !val.is_null() {
                    *val = Value::String(REDACTED.into());
                } else {
                    json_value(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(json_value),
        _ => {}
    }
}

/// Credential values shorter than this are not searched for: they would match ordinary text
/// (and no real key is this short).
pub const MIN_SECRET_LEN: usize = 8;

/// Finds every credential value a request carried, wherever it is echoed (an upstream error
/// that quotes the rejected key, a client that pasted its key into a prompt). Each secret is
/// searched with a linear-time substring search (two-way, SIMD-accelerated), cheap to set up for
/// the one to three secrets a request carries; the gateway caps how many it collects.
pub struct Scrubber {
    finders: Vec<memchr::memmem::Finder<'static>>,
}

impl Scrubber {
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Self {
        let finders = secrets
            .iter()
            .map(AsRef::as_ref)
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .map(|s| memchr::memmem::Finder::new(s).into_owned())
            .collect();
        Scrubber { finders }
    }

    /// `bytes` with every secret replaced by `<redacted>`, or `None` when it holds none (the
    /// caller keeps its buffer as it is).
    pub fn bytes(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        for f in &self.finders {
            let hay = out.as_deref().unwrap_or(bytes);
            if f.find(hay).is_none() {
                continue;
            }
            let mut next = Vec::with_capacity(hay.len());
            let mut at = 0;
            for m in f.find_iter(hay) {
                // Matches do not overlap: the iterator resumes after each one.
                next.extend_from_slice(&hay[at..m]);
                next.extend_from_slice(REDACTED.as_bytes());
                at = m + f.needle().len();
            }
            next.extend_from_slice(&hay[at..]);
            out = Some(next);
        }
        out
    }

    pub fn text(&self, text: &str) -> Option<String> {
        // Secrets are whole strings, so replacing them keeps the text valid UTF-8.
        self.bytes(text.as_bytes())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn headers_and_queries() {
        let m = h(&[
            ("authorization", "Bearer sk-canary"),
            ("x-goog-api-key", "AIza-canary"),
            ("x-claude-code-session-id", "s1"),
            ("anthropic-version", "2023-06-01"),
            ("x-multi", "a"),
            ("x-multi", "b"),
        ]);
        let j = headers_json(&m);
        assert!(!j.contains("canary"), "{j}");
        assert!(j.contains("2023-06-01"));
        assert!(j.contains(r#""x-multi":["a","b"]"#), "{j}");
        // Valid JSON, names in first-seen order, secrets replaced.
        let v: Value = serde_json::from_str(&j).unwrap();
        let names: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(names[0], "authorization");
        assert_eq!(v["authorization"], REDACTED);
        assert_eq!(v["x-claude-code-session-id"], "s1");
        assert!(is_secret_header("X-API-Key") && !is_secret_header("Session-ID"));
        let mut odd = HeaderMap::new();
        odd.insert("x-bytes", HeaderValue::from_bytes(b"a\x80b").unwrap());
        odd.insert("x-quote", HeaderValue::from_static("say \"hi\""));
        let v: Value = serde_json::from_str(&headers_json(&odd)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"x-bytes": "<binary>", "x-quote": "say \"hi\""})
        );
        assert_eq!(query("alt=sse&key=AIza-canary"), "alt=sse&key=<redacted>");
    }

    #[test]
    fn json_fields_at_any_depth() {
        let raw = br#"{"model":"m","API_KEY":"sk-1","nested":[{"password":"p"}],"n":null}"#;
        let v: Value = serde_json::from_slice(raw).unwrap();
        let out = String::from_utf8(request_json(raw, Some(&v))).unwrap();
        assert!(!out.contains("sk-1") && !out.contains("\"p\""), "{out}");
        assert!(out.contains(REDACTED));
        let plain = br#"{"model":"m"}"#;
        assert_eq!(request_json(plain, None), plain.to_vec());
    }

    #[test]
    fn scrubbing_replaces_every_secret_and_keeps_clean_text() {
        let s = Scrubber::new(&["sk-canary-123", "short", "AIzaCanary99"]);
        let out = s
            .bytes(b"key sk-canary-123 and AIzaCanary99, sk-canary-123.")
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "key <redacted> and <redacted>, <redacted>."
        );
        assert_eq!(s.bytes(b"nothing here, short is too short"), None);
        assert_eq!(
            s.text("error: sk-canary-123").as_deref(),
            Some("error: <redacted>")
        );
        assert!(Scrubber::new::<&str>(&[]).bytes(b"x").is_none());
    }

    /// A hostile client picks both the body and the secret: a long secret made of the body's
    /// own repeated bytes is the worst case of a naive search. Linear here: a 4 MiB body against
    /// a 60 KiB needle finishes in well under a second even in a debug build.
    #[test]
    fn scrubbing_is_linear_on_adversarial_input() {
        let secret = "a".repeat(60 * 1024) + "b";
        let body = vec![b'a'; 4 << 20];
        let s = Scrubber::new(&[secret.as_str()]);
        let t = std::time::Instant::now();
        assert_eq!(s.bytes(&body), None);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }
}
