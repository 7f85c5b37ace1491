//! Phase: call upstream. The request goes to a fixed base (the configured provider host, or the
//! organization's own base URL for its credential, through the SSRF-guarded client); the client
//! contributes only the path and query, and the result must still point at the base's host.
//! The client's headers go along minus hop-by-hop ones and, for a virtual key, minus every
//! credential, replaced by the organization's.

use bytes::Bytes;
use secrecy::ExposeSecret;

use super::GatewayError;
use super::headers;
use super::inspect::Body;
use super::target::Target;
use crate::config::{Settings, Upstreams};
use crate::providers;

/// The HTTP clients calls go out with, and where they go.
pub struct Clients {
    /// For the configured provider hosts.
    pub plain: reqwest::Client,
    /// For organizations' own base URLs: every resolved address is checked (SSRF guard).
    pub guarded: reqwest::Client,
    upstream: Upstreams,
    /// Loopback and plain-http custom bases allowed (`ANTIX_DEV_MODE`).
    allow_local: bool,
}

impl Clients {
    pub fn new(settings: &Settings) -> Result<Self, reqwest::Error> {
        let connect = settings.timeouts.connect;
        Ok(Clients {
            plain: crate::egress::client(connect)?,
            guarded: crate::egress::guarded_client(connect, settings.dev_mode)?,
            upstream: settings.upstream.clone(),
            allow_local: settings.dev_mode,
        })
    }
}

/// Builds the upstream request.
pub fn request(
    clients: &Clients,
    parts: &http::request::Parts,
    query: Option<&str>,
    key_carriers: &[http::HeaderName],
    target: &Target,
    credential: Option<&crate::credentials::UpstreamCredential>,
    body: Body,
) -> Result<reqwest::RequestBuilder, GatewayError> {
    let base = credential
        .and_then(|c| c.base_url.clone())
        .unwrap_or_else(|| clients.upstream.for_provider(target.provider).clone());
    // A virtual key in `?key=` must not reach the provider.
    let query = match (credential, query) {
        (Some(_), Some(q)) => headers::strip_credential_params(q),
        (_, q) => q.map(str::to_owned),
    };
    let url = url(&base, &target.path, query.as_deref())?;
    let mut up_headers = headers::upstream_request_headers(&parts.headers, credential.is_some());
    if credential.is_some() {
        // A virtual key in any header, credential header or not, stays here.
        for name in key_carriers {
            up_headers.remove(name);
        }
    }
    if target
        .translate
        .is_some_and(|t| t.upstream == crate::domain::Provider::Anthropic)
        && !up_headers.contains_key("anthropic-version")
    {
        // Anthropic requires it; a client of another shape never sends it.
        up_headers.insert(
            "anthropic-version",
            http::HeaderValue::from_static("2023-06-01"),
        );
    }
    if let Some(c) = credential {
        let (name, value) =
            crate::egress::provider_auth(target.wire.family(), c.secret.expose_secret())
                .map_err(|_| GatewayError::NoProviderCredential(target.provider))?;
        up_headers.insert(name, value);
    }
    let custom_base = credential.is_some_and(|c| c.base_url.is_some());
    if custom_base {
        crate::egress::check_target(&url, clients.allow_local).map_err(|_| {
            GatewayError::UpstreamUnreachable("the organization's base URL is not allowed".into())
        })?;
    }
    let client = if custom_base {
        &clients.guarded
    } else {
        &clients.plain
    };
    let body = match body {
        Body::Whole(b) if target.inject_usage => reqwest::Body::from(
            providers::openai::with_include_usage(&b, target.stream_options).map_or(b, Bytes::from),
        ),
        Body::Whole(b) => reqwest::Body::from(b),
        Body::Stream(s) => s,
    };
    Ok(client
        .request(parts.method.clone(), url)
        .headers(up_headers)
        .body(body))
}

/// A failed send, and whether the request may have reached the provider (which may then bill
/// it): only a connection that was never made is certain not to have.
pub struct SendError {
    pub error: GatewayError,
    pub reached: bool,
}

/// Sends the request and waits for the answer's head, at most `first_byte`. `streamed_over`
/// says whether a streamed request body was cut for passing the size limit (the send then
/// fails, and the client is told why).
pub async fn send(
    request: reqwest::RequestBuilder,
    first_byte: std::time::Duration,
    streamed_over: impl FnOnce() -> Option<u64>,
) -> Result<reqwest::Response, SendError> {
    match tokio::time::timeout(first_byte, request.send()).await {
        Err(_) => Err(SendError {
            error: GatewayError::UpstreamTimeout,
            reached: true,
        }),
        Ok(Err(e)) => {
            let reached = !e.is_connect();
            let error = if let Some(limit) = streamed_over() {
                GatewayError::BodyTooLarge(limit)
            } else if e.is_timeout() {
                GatewayError::UpstreamTimeout
            } else {
                GatewayError::UpstreamUnreachable(crate::egress::describe_error(&e))
            };
            Err(SendError { error, reached })
        }
        Ok(Ok(r)) => Ok(r),
    }
}

/// Joins the fixed base with the client's path and query. The base's scheme, host and port are
/// kept as they are (nothing in the path can change the authority), and only the path and query
/// are parsed: parsing the whole URL again ran the host through IDNA on every call.
fn url(base: &url::Url, path: &str, query: Option<&str>) -> Result<url::Url, GatewayError> {
    let mut joined = base.path().trim_end_matches('/').to_owned();
    joined.push_str(crate::egress::without_repeated_version(base, path));
    let mut url = base.clone();
    url.set_path(&joined);
    url.set_query(query);
    url.set_fragment(None);
    if url.cannot_be_a_base() || url.host_str() != base.host_str() {
        return Err(GatewayError::BadPath("the path does not form a valid URL"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_ending_in_the_version_is_not_repeated() {
        let base = url::Url::parse("https://api.together.xyz/v1").unwrap();
        let u = url(&base, "/v1/chat/completions", None).unwrap();
        assert_eq!(u.as_str(), "https://api.together.xyz/v1/chat/completions");
        let base = url::Url::parse("https://gw.example/openai/v1/").unwrap();
        assert_eq!(
            url(&base, "/v1/models", None).unwrap().as_str(),
            "https://gw.example/openai/v1/models"
        );
        // Only a whole version segment: `/v1beta/…` under `/v1` is kept as it is.
        let base = url::Url::parse("https://gw.example/v1").unwrap();
        assert_eq!(
            url(&base, "/v1beta/models", None).unwrap().as_str(),
            "https://gw.example/v1/v1beta/models"
        );
        let base = url::Url::parse("https://gw.example/vault").unwrap();
        assert_eq!(
            url(&base, "/vault/x", None).unwrap().as_str(),
            "https://gw.example/vault/vault/x"
        );
    }

    #[test]
    fn urls_stay_on_the_configured_host() {
        let base = url::Url::parse("https://api.openai.com").unwrap();
        let u = url(&base, "/v1/chat/completions", Some("a=1")).unwrap();
        assert_eq!(u.as_str(), "https://api.openai.com/v1/chat/completions?a=1");
        let base = url::Url::parse("http://127.0.0.1:9000/prefix/").unwrap();
        let u = url(&base, "/v1/models", None).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9000/prefix/v1/models");
        assert!(
            url(&base, "@evil.com/x", None).is_err()
                || url(&base, "@evil.com/x", None).unwrap().host_str() == Some("127.0.0.1")
        );
        for path in [
            "//evil.com/x",
            "/..//evil.com",
            "\\\\evil.com/x",
            "/x/../../../y",
        ] {
            let u = url(&base, path, None).unwrap();
            assert_eq!(
                (u.host_str(), u.port()),
                (Some("127.0.0.1"), Some(9000)),
                "{path}"
            );
        }
        // A `?` or `#` that reached the path stays in the path: it cannot start a query or a
        // fragment the client did not send as one.
        let u = url(&base, "/v1/a?b#c", Some("q=1")).unwrap();
        assert_eq!(u.path(), "/prefix/v1/a%3Fb%23c");
        assert_eq!(u.query(), Some("q=1"));
        assert_eq!(u.fragment(), None);
    }
}
