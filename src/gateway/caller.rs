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

/// The longest credential value accepted. Real provider keys and OAuth tokens are far shorter
/// (Azure AD tokens, the longest, stay under a few KiB); anything longer is refused before it is
/// searched for anywhere.
pub const MAX_CREDENTIAL_LEN: usize = 8 * 1024;
/// The most credential values collected from one request (each is scrubbed from the trace).
const MAX_CREDENTIALS: usize = 8;

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
    /// A credential header that is not valid text, too long, or too many (cannot be a real key).
    Malformed,
}

impl Presented {
    /// How the call presents itself, before the credential is checked: an unknown or revoked
    /// virtual key is still a virtual-key attempt.
    pub fn auth_mode(&self) -> Option<AuthMode> {
        match self {
            Presented::VirtualKey(_) => Some(AuthMode::VirtualKey),
            Presented::OAuth => Some(AuthMode::OAuth),
            Presented::Byok => Some(AuthMode::Byok),
            Presented::None | Presented::Malformed => None,
        }
    }

    /// The visible prefix of a presented virtual key (`sk-vk-AbCd…`), never the secret.
    pub fn key_hint(&self) -> Option<String> {
        match self {
            Presented::VirtualKey(k) => Some(key_hint(k)),
            _ => None,
        }
    }
}

/// The first ten characters of a key and an ellipsis: the prefix and four characters, as the
/// portal shows keys.
pub fn key_hint(key: &str) -> String {
    let visible: String = key.chars().take(10).collect();
    format!("{visible}…")
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub presented: Presented,
    /// Every credential value seen, to scrub from anything stored (never persisted).
    pub secrets: Vec<String>,
    /// Headers that carry a virtual-key token, credential headers or not: never forwarded.
    pub key_carriers: Vec<http::HeaderName>,
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

/// The first token shaped like a virtual key anywhere in `text`, whatever surrounds it (an
/// auth scheme, quotes, a list) and whatever the prefix's case: `Token sk-vk-…`, `Bearer
/// SK-VK-…`, `x-api-key: Bearer sk-vk-…`. Such a token is never passed through as if it were a
/// provider key.
pub fn find_virtual_key(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    for at in memchr::memchr2_iter(b's', b'S', bytes) {
        let rest = &bytes[at..];
        let Some(p) = VIRTUAL_KEY_PREFIXES
            .iter()
            .find(|p| rest.len() >= p.len() && rest[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
        else {
            continue;
        };
        // A token, not the middle of a word: `task-vk-…` is not a key.
        if at > 0 && is_token_byte(bytes[at - 1]) {
            continue;
        }
        let len = rest.iter().take_while(|b| is_token_byte(**b)).count();
        if len > p.len() {
            return text.get(at..at + len);
        }
    }
    None
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A virtual key inside `Basic base64(user:password)`.
fn basic_virtual_key(value: &str) -> Option<String> {
    use base64::Engine as _;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    find_virtual_key(&String::from_utf8_lossy(&decoded)).map(str::to_owned)
}

/// The value of the `key` query parameter, if any (its name percent-decoded, as the provider
/// reads it: `%6Bey` is `key`).
pub fn query_key(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        is_credential_param(k).then(|| decode_param(v))
    })
}

/// Whether a raw query parameter name is a credential parameter's.
pub fn is_credential_param(raw_name: &str) -> bool {
    CREDENTIAL_PARAMS.contains(&raw_name)
        || CREDENTIAL_PARAMS.contains(&decode_param(raw_name).as_str())
}

fn decode_param(v: &str) -> String {
    url::form_urlencoded::parse(format!("k={v}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A virtual key anywhere in the query: a parameter's value, its name, a bare `?sk-vk-…`.
pub fn query_virtual_key(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|pair| find_virtual_key(&decode_param(pair)).map(str::to_owned))
}

pub fn classify(headers: &HeaderMap, query: Option<&str>) -> Credentials {
    let mut values: Vec<(&str, String)> = Vec::new();
    let mut malformed = false;
    for name in CREDENTIAL_HEADERS {
        for v in headers.get_all(name) {
            match v.to_str() {
                Ok(s) if s.len() > MAX_CREDENTIAL_LEN => malformed = true,
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
        if k.len() > MAX_CREDENTIAL_LEN {
            malformed = true;
        } else {
            values.push(("?key", k));
        }
    }
    if values.len() > MAX_CREDENTIALS {
        malformed = true;
        values.truncate(MAX_CREDENTIALS);
    }
    // A virtual-key token anywhere: in a credential value whatever its scheme, in any other
    // header, inside Basic credentials, in any query parameter.
    let mut anywhere: Option<String> = None;
    let mut key_carriers = Vec::new();
    for (name, value) in headers {
        // Bytes, not text: a header with one non-ASCII byte must not hide a key beside it.
        let text = String::from_utf8_lossy(value.as_bytes());
        let text = text.as_ref();
        if let Some(k) = find_virtual_key(text)
            .map(str::to_owned)
            .or_else(|| basic_virtual_key(text))
        {
            key_carriers.push(name.clone());
            anywhere.get_or_insert(k);
        }
    }
    let anywhere = anywhere.or_else(|| query_virtual_key(query));
    let mut secrets: Vec<String> = values.iter().map(|(_, v)| v.clone()).collect();
    if let Some(k) = &anywhere
        && !secrets.contains(k)
    {
        secrets.push(k.clone());
    }
    // The key itself when a credential position holds exactly one, else the token found.
    let virtual_key = values
        .iter()
        .map(|(_, v)| v)
        .find(|v| is_virtual_key(v))
        .cloned()
        .or(anywhere);
    let presented = if let Some(vk) = virtual_key {
        Presented::VirtualKey(vk)
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
    Credentials {
        presented,
        secrets,
        key_carriers,
    }
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
    super::deadline(
        services,
        "virtual key",
        services.store.virtual_key_cached(&hash),
    )
    .await?
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

    /// K2: a virtual key in any scheme, any header, any casing, any query parameter is a
    /// virtual key, and every header carrying it is listed to be kept from the provider.
    #[test]
    fn a_virtual_key_is_found_whatever_wraps_it() {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode("user:sk-vk-basic1");
        for (headers, query, key) in [
            (
                h(&[("authorization", "Token sk-vk-abc")]),
                None,
                "sk-vk-abc",
            ),
            (
                h(&[("authorization", "  bearer   sk-vk-abc  ")]),
                None,
                "sk-vk-abc",
            ),
            (
                h(&[("authorization", "BEARER sk-vk-abc")]),
                None,
                "sk-vk-abc",
            ),
            (h(&[("x-api-key", "Bearer sk-vk-abc")]), None, "sk-vk-abc"),
            (h(&[("x-goog-api-key", "\"sk-vk-abc\"")]), None, "sk-vk-abc"),
            (
                h(&[("authorization", "Bearer SK-VK-abc")]),
                None,
                "SK-VK-abc",
            ),
            (
                h(&[("x-custom-auth", "sk-antix-abc")]),
                None,
                "sk-antix-abc",
            ),
            (
                h(&[("authorization", &format!("Basic {basic}"))]),
                None,
                "sk-vk-basic1",
            ),
            (h(&[]), Some("api_key=sk-vk-abc"), "sk-vk-abc"),
            (h(&[]), Some("alt=sse&token=x%20sk-vk-abc"), "sk-vk-abc"),
            // A bare key, a key as a parameter's name.
            (h(&[]), Some("alt=sse&sk-vk-bare"), "sk-vk-bare"),
            (h(&[]), Some("sk-vk-name=1"), "sk-vk-name"),
            (h(&[]), Some("sk%2Dvk%2Dencoded"), "sk-vk-encoded"),
        ] {
            let c = classify(&headers, query);
            assert_eq!(
                c.presented,
                Presented::VirtualKey(key.into()),
                "{headers:?} {query:?}"
            );
            assert!(c.secrets.iter().any(|s| s.contains(key)));
            if query.is_none() {
                assert!(!c.key_carriers.is_empty());
            }
        }
        // A header that is not valid text does not hide a key.
        let mut odd = HeaderMap::new();
        odd.insert(
            "x-note",
            http::HeaderValue::from_bytes(b"\xff\xfe sk-vk-hidden").unwrap(),
        );
        let c = classify(&odd, None);
        assert_eq!(c.presented, Presented::VirtualKey("sk-vk-hidden".into()));
        assert_eq!(
            c.key_carriers,
            vec![http::HeaderName::from_static("x-note")]
        );
        // A percent-encoded credential parameter name is the parameter.
        assert_eq!(
            query_key(Some("%6Bey=AIza-byok")).as_deref(),
            Some("AIza-byok")
        );
        // Not keys: a word that merely contains the letters, a bare prefix.
        for v in ["task-vk-abc", "Bearer sk-vk-", "risk-antix-x"] {
            assert_ne!(
                classify(&h(&[("authorization", v)]), None).presented,
                Presented::VirtualKey(v.into())
            );
            assert!(find_virtual_key(v).is_none(), "{v}");
        }
    }

    #[test]
    fn absurd_credentials_are_malformed() {
        let long = "x".repeat(MAX_CREDENTIAL_LEN + 1);
        assert_eq!(
            classify(&h(&[("x-api-key", &long)]), None).presented,
            Presented::Malformed
        );
        let many: Vec<(&'static str, &str)> =
            (0..20).map(|_| ("x-api-key", "sk-proj-123")).collect();
        assert_eq!(classify(&h(&many), None).presented, Presented::Malformed);
        let c = classify(&h(&[("x-api-key", "sk-vk-abcdef")]), None);
        assert_eq!(c.presented.auth_mode(), Some(AuthMode::VirtualKey));
        assert_eq!(c.presented.key_hint().as_deref(), Some("sk-vk-abcd…"));
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

#[cfg(test)]
mod properties {
    //! K2 as a property: whatever scheme, casing, spacing or header a virtual key arrives in,
    //! it is classified as a virtual key, and the headers that would go upstream (credential
    //! headers and every header that carried it removed) hold no trace of it.
    use proptest::prelude::*;

    use super::*;
    use crate::gateway::headers::upstream_request_headers;

    const KEY: &str = "sk-vk-Abc123XyZ456DeF789gHi012JkL345mnO6";

    fn scheme() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "", "Bearer ", "bearer ", "BEARER  ", "Token ", "token ", "Key ", "Api-Key ", "  ",
            "Bearer\t",
        ])
        .prop_map(str::to_owned)
    }

    fn header_name() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "authorization",
            "x-api-key",
            "x-goog-api-key",
            "api-key",
            "x-custom-token",
            "x-whatever",
        ])
        .prop_map(str::to_owned)
    }

    fn casing(key: &str, upper: bool) -> String {
        if upper {
            // The prefix in capitals: still ours, refused rather than forwarded.
            format!("SK-VK-{}", &key[6..])
        } else {
            key.to_owned()
        }
    }

    proptest! {
        #[test]
        fn a_virtual_key_is_never_passed_upstream(
            name in header_name(),
            scheme in scheme(),
            upper in any::<bool>(),
            quoted in any::<bool>(),
            trailing in "[ \t]{0,3}",
            decoy in prop::option::of("sk-proj-[a-z0-9]{8,20}"),
        ) {
            let key = casing(KEY, upper);
            let value = if quoted { format!("{scheme}\"{key}\"{trailing}") } else { format!("{scheme}{key}{trailing}") };
            let mut h = HeaderMap::new();
            h.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), http::HeaderValue::from_str(value.trim_end()).unwrap());
            if let Some(d) = &decoy {
                h.append("x-api-key", http::HeaderValue::from_str(d).unwrap());
            }
            let c = classify(&h, None);
            prop_assert_eq!(&c.presented, &Presented::VirtualKey(key.clone()));
            let mut up = upstream_request_headers(&h, true);
            for n in &c.key_carriers {
                up.remove(n);
            }
            for (_, v) in &up {
                prop_assert!(!v.to_str().unwrap_or("").to_ascii_lowercase().contains("sk-vk-"));
            }
        }

        #[test]
        fn a_virtual_key_in_the_query_is_found_and_stripped(
            param in prop::sample::select(vec!["key", "api_key", "token", "x"]),
            other in "[a-z]{1,5}=[a-z0-9]{0,5}",
        ) {
            let q = format!("{other}&{param}={KEY}");
            let c = classify(&HeaderMap::new(), Some(&q));
            prop_assert_eq!(c.presented, Presented::VirtualKey(KEY.to_owned()));
            let kept = crate::gateway::headers::strip_credential_params(&q).unwrap_or_default();
            prop_assert!(!kept.contains("sk-vk-"));
        }
    }
}
