//! Phase: identify the caller. Which credential a request presents, wherever its SDK put it:
//! `Authorization: Bearer` (OpenAI, Anthropic OAuth), `x-api-key` (Anthropic), `x-goog-api-key`
//! or `?key=` (Gemini), `api-key` (Azure-style OpenAI clients); then who that is.
//!
//! A value with a virtual-key prefix is always a virtual key: when it is unknown, revoked or
//! malformed the request is refused, never passed upstream as if it were the client's own key.

use http::HeaderMap;

use super::GatewayError;
use crate::Services;
use crate::crypto;
use crate::domain::{self, AuthMode, Endpoint, VirtualKey};

/// Prefixes of keys this gateway issues.
pub const VIRTUAL_KEY_PREFIXES: [&str; 2] = ["sk-vk-", "sk-antix-"];

/// Header names that can carry a credential; all are removed before a virtual-key request goes
/// upstream, and all are redacted in traces.
pub const CREDENTIAL_HEADERS: [&str; 4] =
    ["authorization", "x-api-key", "x-goog-api-key", "api-key"];
/// Query parameters that can carry a credential.
pub const CREDENTIAL_PARAMS: [&str; 1] = ["key"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// A key issued by this gateway.
    VirtualKey(String),
    /// An Anthropic OAuth token (Claude Code subscriptions): passed through.
    OAuth,
    /// Any other provider key: passed through unchanged.
    Byok,
    /// No credential at all.
    None,
    /// A credential header that is not valid text (cannot be a real key).
    Malformed,
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub presented: Presented,
    /// Every credential value seen, to scrub from anything stored (never persisted).
    pub secrets: Vec<String>,
}

fn bearer(v: &str) -> &str {
    let v = v.trim();
    if v.eq_ignore_ascii_case("bearer") {
        return "";
    }
    match v.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => v,
    }
}

pub fn is_virtual_key(v: &str) -> bool {
    VIRTUAL_KEY_PREFIXES.iter().any(|p| v.starts_with(p))
}

/// The value of the `key` query parameter, if any.
pub fn query_key(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        CREDENTIAL_PARAMS.contains(&k).then(|| {
            url::form_urlencoded::parse(format!("k={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
    })
}

pub fn classify(headers: &HeaderMap, query: Option<&str>) -> Credentials {
    let mut values = Vec::new();
    let mut malformed = false;
    for name in CREDENTIAL_HEADERS {
        for v in headers.get_all(name) {
            match v.to_str() {
                Ok(s) => {
                    let s = if name == "authorization" {
                        bearer(s)
                    } else {
                        s.trim()
                    };
                    if !s.is_empty() {
                        values.push((name, s.to_owned()));
                    }
                }
                Err(_) => malformed = true,
            }
        }
    }
    if let Some(k) = query_key(query).filter(|k| !k.is_empty()) {
        values.push(("?key", k));
    }
    let secrets: Vec<String> = values.iter().map(|(_, v)| v.clone()).collect();
    let presented = if let Some((_, vk)) = values.iter().find(|(_, v)| is_virtual_key(v)) {
        Presented::VirtualKey(vk.clone())
    } else if malformed {
        Presented::Malformed
    } else if values.is_empty() {
        Presented::None
    } else if values.iter().any(|(name, v)| {
        *name == "authorization"
            && (v.starts_with("sk-ant-oat")
                || headers
                    .get_all("anthropic-beta")
                    .iter()
                    .filter_map(|b| b.to_str().ok())
                    .any(|b| b.split(',').any(|f| f.trim().starts_with("oauth-"))))
    }) {
        Presented::OAuth
    } else {
        Presented::Byok
    };
    Credentials { presented, secrets }
}

/// Who is calling, once their credential checks out.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A key of this gateway: the organization's credential is used, under the key's limits.
    VirtualKey(Box<VirtualKey>),
    /// The client's own provider key, passed through.
    Byok,
    /// An OAuth token (Claude Code subscriptions), passed through.
    OAuth,
}

impl Caller {
    pub fn auth_mode(&self) -> AuthMode {
        match self {
            Caller::VirtualKey(_) => AuthMode::VirtualKey,
            Caller::Byok => AuthMode::Byok,
            Caller::OAuth => AuthMode::OAuth,
        }
    }

    pub fn key(&self) -> Option<&VirtualKey> {
        match self {
            Caller::VirtualKey(k) => Some(k),
            Caller::Byok | Caller::OAuth => None,
        }
    }
}

/// Turns the presented credential into a caller. A virtual key is looked up (through the
/// store's cache), and must be usable and belong to the endpoint's organization; a provider key
/// or OAuth token passes through as it is.
pub async fn identify(
    services: &Services,
    presented: &Presented,
    endpoint: &Endpoint,
) -> Result<Caller, GatewayError> {
    match presented {
        Presented::VirtualKey(k) => {
            let key = virtual_key(services, k).await?;
            match key.unusable_reason(domain::now_ms()) {
                Some("revoked") => return Err(GatewayError::RevokedVirtualKey),
                Some(_) => return Err(GatewayError::ExpiredVirtualKey),
                None => {}
            }
            if key.org_id != endpoint.org_id {
                return Err(GatewayError::WrongOrganization);
            }
            Ok(Caller::VirtualKey(Box::new(key)))
        }
        Presented::OAuth => Ok(Caller::OAuth),
        Presented::Byok => Ok(Caller::Byok),
        Presented::None => Err(GatewayError::NoCredentials),
        Presented::Malformed => Err(GatewayError::MalformedCredentials),
    }
}

async fn virtual_key(services: &Services, key: &str) -> Result<VirtualKey, GatewayError> {
    // A malformed key is refused before any lookup: typos and fuzzing cost no query.
    if !crypto::virtual_key_checksum_ok(key) {
        return Err(GatewayError::UnknownVirtualKey);
    }
    let hash = services.keys.token_hash(key);
    services
        .store
        .virtual_key_cached(&hash)
        .await
        .map_err(|_| GatewayError::StoreUnavailable)?
        .ok_or(GatewayError::UnknownVirtualKey)
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
    fn every_sdk_location() {
        for (headers, query) in [
            (h(&[("authorization", "Bearer sk-vk-abc")]), None),
            (h(&[("x-api-key", "sk-vk-abc")]), None),
            (h(&[("x-goog-api-key", "sk-vk-abc")]), None),
            (h(&[("api-key", "sk-vk-abc")]), None),
            (h(&[]), Some("alt=sse&key=sk-vk-abc")),
            (h(&[("authorization", "bearer sk-antix-abc")]), None),
        ] {
            let c = classify(&headers, query);
            assert!(
                matches!(c.presented, Presented::VirtualKey(ref k) if k.ends_with("abc")),
                "{c:?}"
            );
        }
    }

    #[test]
    fn a_virtual_key_wins_over_a_raw_key() {
        let c = classify(
            &h(&[
                ("authorization", "Bearer sk-proj-raw"),
                ("x-api-key", "sk-vk-x"),
            ]),
            None,
        );
        assert_eq!(c.presented, Presented::VirtualKey("sk-vk-x".into()));
        assert_eq!(c.secrets.len(), 2);
    }

    #[test]
    fn byok_oauth_none() {
        assert_eq!(
            classify(&h(&[("authorization", "Bearer sk-proj-1")]), None).presented,
            Presented::Byok
        );
        assert_eq!(
            classify(&h(&[("x-api-key", "sk-ant-api03-x")]), None).presented,
            Presented::Byok
        );
        assert_eq!(
            classify(&h(&[]), Some("key=AIzaX")).presented,
            Presented::Byok
        );
        assert_eq!(
            classify(&h(&[("authorization", "Bearer sk-ant-oat01-abc")]), None).presented,
            Presented::OAuth
        );
        assert_eq!(
            classify(
                &h(&[
                    ("authorization", "Bearer opaque"),
                    ("anthropic-beta", "claude-code-20250219,oauth-2025-04-20")
                ]),
                None
            )
            .presented,
            Presented::OAuth
        );
        assert_eq!(classify(&h(&[]), None).presented, Presented::None);
        assert_eq!(
            classify(&h(&[("authorization", "Bearer ")]), None).presented,
            Presented::None
        );
    }

    #[test]
    fn non_text_header_is_malformed() {
        let mut m = HeaderMap::new();
        m.insert("x-api-key", HeaderValue::from_bytes(b"\xffabc").unwrap());
        assert_eq!(classify(&m, None).presented, Presented::Malformed);
    }

    #[test]
    fn query_key_is_decoded() {
        assert_eq!(
            query_key(Some("a=1&key=sk-vk-a%2Bb")).as_deref(),
            Some("sk-vk-a+b")
        );
        assert_eq!(query_key(Some("monkey=1")), None);
    }
}
