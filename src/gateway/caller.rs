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
mod tests;

#[cfg(test)]
mod properties;
