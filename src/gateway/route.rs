//! The endpoint URL: `/v1/{endpoint_uuid}/{provider}/{native_path…}?query`. Parsed from the raw
//! (still percent-encoded) path, so an encoded `..` or `/` cannot slip past the checks and
//! change where the request goes.

use crate::domain::{EndpointId, Provider};

/// The provider segment of the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderPath {
    One(Provider),
    Multi,
}

impl ProviderPath {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "multi" => Some(ProviderPath::Multi),
            other => Provider::parse(other).map(ProviderPath::One),
        }
    }

    /// The error shape to use before the wire format is known.
    pub fn default_family(self) -> Provider {
        match self {
            ProviderPath::One(p) => p,
            ProviderPath::Multi => Provider::OpenAi,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub endpoint: EndpointId,
    pub provider: ProviderPath,
    /// The provider's own path, normalized to start with its API version (`/v1/…`,
    /// `/v1beta/…`).
    pub native_path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// Not an endpoint URL at all, or an unknown provider segment.
    NotFound { family: Provider },
    /// An endpoint URL whose path tries to escape the provider's API.
    BadPath {
        family: Provider,
        reason: &'static str,
    },
}

/// Parses a request target (path and query, as sent).
pub fn parse(path: &str, query: Option<&str>) -> Result<Route, RouteError> {
    let not_found = |family| RouteError::NotFound { family };
    let rest = path
        .strip_prefix("/v1/")
        .ok_or(not_found(Provider::OpenAi))?;
    let (endpoint, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let (provider, native) = rest.split_once('/').unwrap_or((rest, ""));
    let provider = ProviderPath::parse(provider).ok_or(not_found(Provider::OpenAi))?;
    let family = provider.default_family();
    let endpoint = uuid::Uuid::parse_str(endpoint)
        .map(EndpointId)
        .map_err(|_| not_found(family))?;
    check_native(native).map_err(|reason| RouteError::BadPath { family, reason })?;
    if let Some(q) = query
        && (q.contains('#') || q.bytes().any(|b| b.is_ascii_control()))
    {
        return Err(RouteError::BadPath {
            family,
            reason: "control characters in the query",
        });
    }
    Ok(Route {
        endpoint,
        provider,
        native_path: normalize(provider, native),
        query: query.filter(|q| !q.is_empty()).map(str::to_owned),
    })
}

/// Refuses anything that could change the upstream authority or climb out of the API root.
fn check_native(native: &str) -> Result<(), &'static str> {
    if native
        .bytes()
        .any(|b| b.is_ascii_control() || b == b'\\' || b == b'#')
    {
        return Err("control characters or backslashes in the path");
    }
    if native.starts_with('/') || native.contains("//") {
        return Err("empty path segment");
    }
    if native.contains('@') {
        return Err("`@` in the path");
    }
    let lower = native.to_ascii_lowercase();
    for encoded in ["%2e", "%2f", "%5c", "%00", "%40", "%23"] {
        if lower.contains(encoded) {
            return Err("encoded dot, slash or separator in the path");
        }
    }
    if native.split('/').any(|seg| seg == "." || seg == "..") {
        return Err("`.` or `..` segment in the path");
    }
    Ok(())
}

/// Adds the API version the SDKs leave out: OpenAI's SDK appends `/chat/completions` to the
/// base URL with no `/v1`, the others include their version. An encoded `:` (`%3A`) is decoded:
/// Gemini reads `models/m%3AgenerateContent` as `models/m:generateContent`, and so must the
/// gateway, or the call would be classified as something it is not.
fn normalize(provider: ProviderPath, native: &str) -> String {
    let decoded;
    let native = if native.contains('%') {
        decoded = native.replace("%3A", ":").replace("%3a", ":");
        decoded.as_str()
    } else {
        native
    };
    // Gemini's file uploads live outside its versioned API root.
    if native.starts_with("upload/") {
        return format!("/{native}");
    }
    let has_version = native == "v1"
        || native.starts_with("v1/")
        || native.starts_with("v1beta/")
        || native.starts_with("v1alpha/")
        || native == "v1beta";
    if has_version {
        return format!("/{native}");
    }
    match provider {
        ProviderPath::One(Provider::Gemini) => format!("/v1beta/{native}"),
        _ if native.starts_with("models/") && native.contains(':') => format!("/v1beta/{native}"),
        _ => format!("/v1/{native}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EP: &str = "6f1c4a52-9a4e-4d43-8a5e-2b7f2f4c9e10";

    fn p(path: &str) -> Result<Route, RouteError> {
        parse(path, None)
    }

    #[test]
    fn sdk_base_urls_normalize() {
        for (path, native) in [
            (
                format!("/v1/{EP}/openai/chat/completions"),
                "/v1/chat/completions",
            ),
            (
                format!("/v1/{EP}/openai/v1/chat/completions"),
                "/v1/chat/completions",
            ),
            (format!("/v1/{EP}/openai/models"), "/v1/models"),
            (format!("/v1/{EP}/anthropic/v1/messages"), "/v1/messages"),
            (
                format!("/v1/{EP}/anthropic/v1/messages/count_tokens"),
                "/v1/messages/count_tokens",
            ),
            (
                format!("/v1/{EP}/gemini/v1beta/models/gemini-2.5-pro:generateContent"),
                "/v1beta/models/gemini-2.5-pro:generateContent",
            ),
            (format!("/v1/{EP}/gemini/models"), "/v1beta/models"),
            (
                format!("/v1/{EP}/multi/chat/completions"),
                "/v1/chat/completions",
            ),
            (format!("/v1/{EP}/multi/v1/messages"), "/v1/messages"),
            (
                format!("/v1/{EP}/gemini/v1beta/models/gemini-2.5-pro%3AgenerateContent"),
                "/v1beta/models/gemini-2.5-pro:generateContent",
            ),
            (
                format!("/v1/{EP}/gemini/upload/v1beta/files"),
                "/upload/v1beta/files",
            ),
        ] {
            let r = p(&path).unwrap();
            assert_eq!(r.native_path, native, "{path}");
            assert_eq!(r.endpoint.to_string(), EP);
        }
        let r = parse(
            &format!("/v1/{EP}/gemini/v1beta/models/x:streamGenerateContent"),
            Some("alt=sse&key=abc"),
        )
        .unwrap();
        assert_eq!(r.query.as_deref(), Some("alt=sse&key=abc"));
        assert_eq!(r.provider, ProviderPath::One(Provider::Gemini));
    }

    #[test]
    fn unknown_things_are_not_found() {
        assert!(matches!(p("/v2/x"), Err(RouteError::NotFound { .. })));
        assert!(matches!(
            p(&format!("/v1/{EP}/azure/x")),
            Err(RouteError::NotFound { .. })
        ));
        assert!(matches!(
            p("/v1/not-a-uuid/anthropic/v1/messages"),
            Err(RouteError::NotFound {
                family: Provider::Anthropic
            })
        ));
    }

    #[test]
    fn escapes_are_refused() {
        for bad in [
            "../../admin",
            "v1/../../admin",
            "%2e%2e/admin",
            "v1%2Fchat",
            "/evil.com/x",
            "v1//evil.com",
            "@evil.com/v1/x",
            "v1/x%00",
            "v1/x\\y",
            ".",
        ] {
            let path = format!("/v1/{EP}/openai/{bad}");
            assert!(
                matches!(p(&path), Err(RouteError::BadPath { .. })),
                "{bad} was accepted"
            );
        }
    }
}

#[cfg(test)]
mod properties {
    //! The route parser as a property: whatever the path, no panic; and a path it accepts cannot
    //! climb out of the provider's API root or change the upstream authority.
    use proptest::prelude::*;

    use super::*;

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("..".to_owned()),
            Just(".".to_owned()),
            Just("%2e%2e".to_owned()),
            Just("%2F".to_owned()),
            Just("%5c".to_owned()),
            Just("@evil.com".to_owned()),
            Just("".to_owned()),
            Just("v1".to_owned()),
            Just("chat".to_owned()),
            Just("models".to_owned()),
            Just("gemini-2.5-flash%3AgenerateContent".to_owned()),
            "[a-zA-Z0-9_.%:@#\\-]{1,8}",
        ]
    }

    proptest! {
        #[test]
        fn accepted_paths_stay_inside_the_api(
            provider in prop::sample::select(vec!["openai", "anthropic", "gemini", "multi", "azure"]),
            segments in prop::collection::vec(segment(), 0..6),
            query in proptest::option::of("[ -~]{0,20}"),
        ) {
            let path = format!(
                "/v1/3f2504e0-4f89-11d3-9a0c-0305e82c3301/{provider}/{}",
                segments.join("/")
            );
            if let Ok(r) = parse(&path, query.as_deref()) {
                let p = &r.native_path;
                prop_assert!(p.starts_with('/'));
                prop_assert!(!p.contains("//"), "{}", p);
                prop_assert!(!p.split('/').any(|s| s == ".." || s == "."), "{}", p);
                prop_assert!(!p.contains('@') && !p.contains('#') && !p.contains('\\'), "{}", p);
                let lower = p.to_ascii_lowercase();
                prop_assert!(!lower.contains("%2e") && !lower.contains("%2f") && !lower.contains("%5c"), "{}", p);
                // Joined to a base URL, the authority is the base's.
                let base = url::Url::parse("https://api.example.com").unwrap();
                let joined = url::Url::parse(&format!("https://api.example.com{p}"));
                if let Ok(u) = joined {
                    prop_assert_eq!(u.host_str(), base.host_str());
                }
            }
        }

        #[test]
        fn no_path_makes_the_parser_panic(path in "[ -~]{0,60}", query in proptest::option::of("[\\x00-\\x7f]{0,10}")) {
            let _ = parse(&path, query.as_deref());
        }
    }
}
