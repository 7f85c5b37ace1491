//! Fallbacks: where a call goes when its own target cannot serve it. The endpoint lists them
//! in its settings (a request may override the list with `X-Antix-Fallbacks`); they are tried
//! in order once the first target's retries are exhausted (429, 5xx, 529, no connection), or
//! at once when its answer says the model cannot serve this call (unknown or unavailable,
//! overloaded, the prompt past its context window). Like retries, only before anything reached
//! the client, and only for a body read whole.
//!
//! A fallback to another provider's model translates a chat call (see [`crate::translate`]);
//! it spends the organization's credential, so it takes a virtual key: a caller's own provider
//! key reaches its own provider only. A virtual key's model allow-list holds for every fallback,
//! and its budget reservation covers the dearest target the call may end on.
//!
//! What each fallback is decided up front ([`plan`], cheap: no body is touched), what it sends
//! only when it is used ([`Planned::leg`]).

use bytes::Bytes;

use super::GatewayError;
use super::target::{self, Target, Translation};
use crate::domain::{Endpoint, Fallback, Provider};
use crate::metering::Facts;
use crate::providers::Wire;

/// The request header that overrides an endpoint's fallbacks for one call.
pub const HEADER: &str = "x-antix-fallbacks";

/// The largest error answer read to decide whether it says the model cannot serve the call.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// The fallbacks for this call: the request's header (`none` for none), else the endpoint's.
pub fn list<'a>(
    headers: &http::HeaderMap,
    endpoint: &'a Endpoint,
) -> Result<std::borrow::Cow<'a, [Fallback]>, GatewayError> {
    match headers.get(HEADER) {
        None => Ok(std::borrow::Cow::Borrowed(&endpoint.fallbacks)),
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| GatewayError::BadFallbacks("the header is not text".into()))?;
            Fallback::parse_list(v)
                .map(std::borrow::Cow::Owned)
                .map_err(GatewayError::BadFallbacks)
        }
    }
}

/// What the call looked like as the client sent it: the base every fallback is built from.
#[derive(Debug, Clone)]
pub struct Original {
    /// The shape the client speaks.
    pub family: Provider,
    pub wire: Wire,
    pub method: http::Method,
    pub path: String,
    /// The client's body, before any translation.
    pub body: Bytes,
    pub is_stream: bool,
    pub include_usage: Option<bool>,
    pub stream_options: bool,
}

/// One fallback, as planned before the call: usable (with the API it would call), or why not.
#[derive(Debug, Clone)]
pub struct Planned {
    pub fallback: Fallback,
    pub usable: Result<Wire, String>,
}

/// Decides which fallbacks this call may use. `key` is whether the caller has a virtual key
/// (else only the first target's own provider is reachable, with the caller's own credential);
/// `allows` is the key's model allow-list.
pub fn plan(
    list: &[Fallback],
    original: &Original,
    first: &Target,
    key: bool,
    allows: impl Fn(&str) -> bool,
) -> Vec<Planned> {
    list.iter()
        .filter(|f| !(f.provider == first.provider && Some(&f.model) == first.model.as_ref()))
        .map(|f| Planned {
            fallback: f.clone(),
            usable: usable(f, original, first, key, &allows),
        })
        .collect()
}

fn usable(
    f: &Fallback,
    original: &Original,
    first: &Target,
    key: bool,
    allows: &impl Fn(&str) -> bool,
) -> Result<Wire, String> {
    if !key && (f.provider != first.provider || f.credential.is_some()) {
        return Err(
            "another provider's (or a named credential's) target takes a virtual key".into(),
        );
    }
    if !allows(&f.model) {
        return Err(format!("the key may not use model {}", f.model));
    }
    if f.provider == original.family {
        let path = same_shape_path(original, &f.model).ok_or("the path names no model")?;
        Ok(Wire::classify(original.family, &original.method, &path))
    } else if target::is_chat(original.wire) && key {
        let (path, _) = target::chat_path(f.provider, &f.model, original.is_stream);
        Ok(Wire::classify(f.provider, &original.method, &path))
    } else {
        Err(format!(
            "{} is not a chat call Antix translates for {}",
            original.path, f.provider
        ))
    }
}

/// The path of a call in the client's own shape to another model (Gemini names it there).
fn same_shape_path(original: &Original, model: &str) -> Option<String> {
    if original.family != Provider::Gemini {
        return Some(original.path.clone());
    }
    let old = target::path_model(&original.path)?;
    Some(
        original
            .path
            .replacen(&format!("/models/{old}:"), &format!("/models/{model}:"), 1),
    )
}

/// What a fallback sends: the target, the body, and the translation of its answer.
pub struct Leg {
    pub target: Target,
    pub body: Bytes,
    pub translation: Option<super::relay::Translated>,
}

impl Planned {
    /// The call to make for this fallback. `fallback_id` and `created` name a translated
    /// answer as the first target's would have been named.
    pub fn leg(&self, original: &Original, fallback_id: &str, created: u64) -> Result<Leg, String> {
        let wire = self.usable.clone()?;
        let f = &self.fallback;
        if f.provider == original.family {
            let path = same_shape_path(original, &f.model).ok_or("the path names no model")?;
            let body = if original.family == Provider::Gemini {
                original.body.clone()
            } else {
                with_model(&original.body, &f.model)?
            };
            let inject_usage = wire == Wire::OpenAiChat
                && original.is_stream
                && original.include_usage != Some(true);
            return Ok(Leg {
                target: Target {
                    provider: f.provider,
                    path,
                    wire,
                    model: Some(f.model.clone()),
                    is_stream: original.is_stream,
                    inject_usage,
                    stream_options: original.stream_options,
                    translate: None,
                    query: None,
                },
                body,
                translation: None,
            });
        }
        let gemini_stream = original.path.ends_with(":streamGenerateContent");
        let out = crate::translate::request(
            original.family,
            f.provider,
            &original.body,
            &f.model,
            gemini_stream,
        )
        .map_err(|e| e.to_string())?;
        let (path, query) = target::chat_path(f.provider, &f.model, original.is_stream);
        let t = Translation {
            client: original.family,
            upstream: f.provider,
        };
        let ctx = out.context(&f.model, created, fallback_id);
        Ok(Leg {
            target: Target {
                provider: f.provider,
                path,
                wire,
                model: Some(f.model.clone()),
                is_stream: original.is_stream,
                inject_usage: false,
                stream_options: false,
                translate: Some(t),
                query,
            },
            body: Bytes::from(out.body),
            translation: Some((t, ctx)),
        })
    }
}

/// The body with its `model` replaced.
fn with_model(body: &[u8], model: &str) -> Result<Bytes, String> {
    let mut v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|_| "the body is not a JSON object".to_owned())?;
    v.insert("model".into(), serde_json::Value::String(model.to_owned()));
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// The most any usable fallback is estimated to cost (for a key with a budget, whose
/// reservation must cover it); a fallback whose model has no price is not usable then.
pub fn price(planned: &mut [Planned], facts: &Facts) -> i64 {
    let mut most = 0;
    for p in planned {
        let Ok(wire) = p.usable.clone() else {
            continue;
        };
        let mut f = facts.clone();
        f.models = vec![p.fallback.model.clone()];
        match crate::metering::estimate(wire, &f) {
            Ok(n) => most = most.max(n),
            Err(_) => {
                p.usable = Err(format!(
                    "model {} has no price, and the key has a budget",
                    p.fallback.model
                ));
            }
        }
    }
    most
}

/// Whether an error answer says this model cannot serve the call, so another target may:
/// the model unknown or unavailable, overloaded, or the prompt past its context window.
/// Other errors (a malformed request, a bad parameter) would fail anywhere.
pub fn model_cannot_serve(status: u16, body: &[u8]) -> bool {
    if !matches!(status, 400 | 404 | 413 | 422 | 503 | 529) {
        return false;
    }
    if status == 529 {
        return true;
    }
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    let context = any(&[
        "context_length_exceeded",
        "context length",
        "context window",
        "prompt is too long",
        "maximum number of tokens",
        "too many tokens",
        "input token count",
    ]);
    let unavailable = any(&[
        "model_not_found",
        "overloaded",
        "model is not available",
        "model is currently unavailable",
        "does not exist",
        "is not found",
        "not_found_error",
    ]) && (status != 400 || text.contains("model"));
    match status {
        400 | 413 | 422 => context || unavailable,
        404 => text.contains("model"),
        _ => unavailable || any(&["unavailable"]),
    }
}

/// Whether an answer may say the model cannot serve the call (then its body is read to know).
pub fn worth_reading(status: u16) -> bool {
    matches!(status, 400 | 404 | 413 | 422 | 503 | 529)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original(family: Provider, path: &str, body: &str) -> Original {
        Original {
            family,
            wire: Wire::classify(family, &http::Method::POST, path),
            method: http::Method::POST,
            path: path.into(),
            body: Bytes::from(body.to_owned()),
            is_stream: false,
            include_usage: None,
            stream_options: false,
        }
    }

    fn first(provider: Provider, model: &str) -> Target {
        Target {
            provider,
            path: "/v1/chat/completions".into(),
            wire: Wire::OpenAiChat,
            model: Some(model.into()),
            is_stream: false,
            inject_usage: false,
            stream_options: false,
            translate: None,
            query: None,
        }
    }

    #[test]
    fn errors_that_say_the_model_cannot_serve() {
        let yes = [
            (
                400,
                r#"{"error":{"code":"context_length_exceeded","message":"This model's maximum context length is 128000 tokens"}}"#,
            ),
            (
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
            ),
            (
                404,
                r#"{"error":{"code":"model_not_found","message":"The model `gpt-9` does not exist"}}"#,
            ),
            (
                404,
                r#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}"#,
            ),
            (
                503,
                r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#,
            ),
            (
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ),
        ];
        for (s, b) in yes {
            assert!(model_cannot_serve(s, b.as_bytes()), "{s} {b}");
        }
        let no = [
            (
                400,
                r#"{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error"}}"#,
            ),
            (401, r#"{"error":{"message":"Incorrect API key"}}"#),
            (404, r#"{"error":{"message":"No such file: file-abc"}}"#),
            (500, r#"{"error":{"message":"overloaded"}}"#),
        ];
        for (s, b) in no {
            assert!(!model_cannot_serve(s, b.as_bytes()), "{s} {b}");
        }
    }

    #[test]
    fn plans_follow_the_caller_and_the_key() {
        let o = original(
            Provider::OpenAi,
            "/v1/chat/completions",
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
        );
        let list = Fallback::parse_list(
            "openai/gpt-4o, openai/gpt-4o-mini, anthropic/claude-haiku-4-5, gemini/gemini-2.5-flash#backup",
        )
        .unwrap();
        let f = first(Provider::OpenAi, "gpt-4o");
        // The first target itself is not a fallback.
        let keyed = plan(&list, &o, &f, true, |m| m != "gemini-2.5-flash");
        assert_eq!(keyed.len(), 3);
        assert_eq!(keyed[0].usable, Ok(Wire::OpenAiChat));
        assert_eq!(keyed[1].usable, Ok(Wire::AnthropicMessages));
        assert!(
            keyed[2]
                .usable
                .as_ref()
                .unwrap_err()
                .contains("may not use")
        );
        let byok = plan(&list, &o, &f, false, |_| true);
        assert!(byok[0].usable.is_ok());
        assert!(byok[1].usable.is_err() && byok[2].usable.is_err());
        // Embeddings are not translated.
        let e = original(
            Provider::OpenAi,
            "/v1/embeddings",
            r#"{"model":"text-embedding-3-small","input":"x"}"#,
        );
        let p = plan(&list[2..3], &e, &f, true, |_| true);
        assert!(p[0].usable.is_err());
    }

    #[test]
    fn legs_rename_or_translate() {
        let o = original(
            Provider::OpenAi,
            "/v1/chat/completions",
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
        );
        let list = Fallback::parse_list("openai/gpt-4o-mini, anthropic/claude-haiku-4-5").unwrap();
        let f = first(Provider::OpenAi, "gpt-4o");
        let p = plan(&list, &o, &f, true, |_| true);
        let same = p[0].leg(&o, "t1", 1).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&same.body).unwrap();
        assert_eq!(v["model"], "gpt-4o-mini");
        assert!(same.translation.is_none());
        let other = p[1].leg(&o, "t1", 1).unwrap();
        assert_eq!(other.target.path, "/v1/messages");
        assert_eq!(other.target.provider, Provider::Anthropic);
        let v: serde_json::Value = serde_json::from_slice(&other.body).unwrap();
        assert_eq!(v["model"], "claude-haiku-4-5");
        assert!(other.translation.is_some());
        // Gemini names the model in the path.
        let g = original(
            Provider::Gemini,
            "/v1beta/models/gemini-2.5-pro:generateContent",
            r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#,
        );
        let gl = Fallback::parse_list("gemini/gemini-2.5-flash").unwrap();
        let mut gf = first(Provider::Gemini, "gemini-2.5-pro");
        gf.path = g.path.clone();
        let leg = plan(&gl, &g, &gf, false, |_| true)[0]
            .leg(&g, "t", 1)
            .unwrap();
        assert_eq!(
            leg.target.path,
            "/v1beta/models/gemini-2.5-flash:generateContent"
        );
    }
}
