//! Headers across the proxy: hop-by-hop headers dropped per RFC 9110 §7.6.1 in both directions,
//! the client's own headers (provider versions, betas, organization, request ids) passed
//! upstream and the provider's (request ids, rate limits) passed back. (Redaction of what gets
//! stored is [`crate::redact`]'s.)

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Connection-specific headers that a proxy must not forward (RFC 9110 §7.6.1, plus the
/// legacy `proxy-connection` and `keep-alive`).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including any the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The client's headers as they go upstream: minus hop-by-hop and framing headers (the client
/// library recomputes them), minus cookies, forwarding headers and our own `x-antix-*`, and
/// minus every credential when the gateway substitutes the organization's (virtual keys).
pub fn upstream_request_headers(client: &HeaderMap, strip_credentials: bool) -> HeaderMap {
    let mut h = client.clone();
    strip_hop_by_hop(&mut h);
    for name in [
        header::HOST,
        header::CONTENT_LENGTH,
        header::COOKIE,
        header::ACCEPT_ENCODING,
        HeaderName::from_static("forwarded"),
        HeaderName::from_static("x-forwarded-for"),
        HeaderName::from_static("x-forwarded-host"),
        HeaderName::from_static("x-forwarded-proto"),
        HeaderName::from_static("x-real-ip"),
    ] {
        h.remove(name);
    }
    let ours: Vec<HeaderName> = h
        .keys()
        .filter(|k| k.as_str().starts_with("x-antix-"))
        .cloned()
        .collect();
    for k in ours {
        h.remove(k);
    }
    if strip_credentials {
        for name in super::caller::CREDENTIAL_HEADERS {
            h.remove(name);
        }
    }
    // The gateway reads what it records; ask for plain bytes.
    h.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    h
}

/// The upstream's response headers as they go to the client. When the gateway changes the
/// body (hiding injected usage) the length is no longer the upstream's.
pub fn client_response_headers(upstream: &HeaderMap, body_changed: bool) -> HeaderMap {
    let mut h = upstream.clone();
    strip_hop_by_hop(&mut h);
    if body_changed {
        h.remove(header::CONTENT_LENGTH);
    }
    h
}

/// Makes a proxied response inert on the portal's origin (which the proxy shares unless it has
/// its own address): an upstream, or a custom base URL pointing anywhere, cannot set cookies on
/// it, redirect the browser, or have its body run as a page there. SDKs read none of this.
pub fn make_inert(h: &mut HeaderMap) {
    for name in [
        header::SET_COOKIE,
        header::LOCATION,
        header::CONTENT_LOCATION,
        header::REFRESH,
        HeaderName::from_static("set-cookie2"),
        HeaderName::from_static("clear-site-data"),
        HeaderName::from_static("link"),
        HeaderName::from_static("service-worker-allowed"),
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    ] {
        h.remove(name);
    }
    // A sandboxed, script-less unique origin, whatever the content type says.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; frame-ancestors 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // HTML is offered as a download, never rendered.
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim_start().to_ascii_lowercase();
            v.starts_with("text/html") || v.contains("xml") || v.starts_with("image/svg")
        });
    if html {
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
}

/// The query string without the credential parameters and without any parameter that holds a
/// virtual key (a virtual key must not reach the provider).
pub fn strip_credential_params(query: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let k = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !super::caller::is_credential_param(k)
                && !pair.is_empty()
                && super::caller::query_virtual_key(Some(pair)).is_none()
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut m = h(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("anthropic-version", "2023-06-01"),
        ]);
        strip_hop_by_hop(&mut m);
        assert_eq!(m.len(), 1);
        assert!(m.contains_key("anthropic-version"));
    }

    #[test]
    fn upstream_headers_keep_provider_headers_and_drop_ours() {
        let client = h(&[
            ("host", "gateway"),
            ("authorization", "Bearer sk-vk-x"),
            ("x-api-key", "sk-vk-x"),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "prompt-caching-2024-07-31"),
            ("openai-organization", "org-1"),
            ("x-antix-provider", "anthropic"),
            ("cookie", "a=b"),
            ("x-forwarded-for", "1.2.3.4"),
            ("accept-encoding", "gzip"),
            ("content-length", "10"),
        ]);
        let up = upstream_request_headers(&client, true);
        assert!(!up.contains_key("authorization") && !up.contains_key("x-api-key"));
        assert!(!up.contains_key("x-antix-provider") && !up.contains_key("cookie"));
        assert!(!up.contains_key("host") && !up.contains_key("x-forwarded-for"));
        assert_eq!(up["anthropic-version"], "2023-06-01");
        assert_eq!(up["anthropic-beta"], "prompt-caching-2024-07-31");
        assert_eq!(up["openai-organization"], "org-1");
        assert_eq!(up["accept-encoding"], "identity");
        // Pass-through keeps the client's own key.
        let up = upstream_request_headers(&client, false);
        assert_eq!(up["x-api-key"], "sk-vk-x");
    }

    #[test]
    fn proxied_responses_are_inert() {
        let mut up = h(&[
            ("content-type", "text/html; charset=utf-8"),
            ("set-cookie", "antix_session=evil; Path=/"),
            ("location", "https://evil.example/"),
            ("refresh", "0; url=https://evil.example/"),
            ("x-request-id", "req_1"),
        ]);
        make_inert(&mut up);
        for gone in ["set-cookie", "location", "refresh"] {
            assert!(!up.contains_key(gone), "{gone}");
        }
        assert_eq!(
            up["content-security-policy"],
            "sandbox; default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(up["x-content-type-options"], "nosniff");
        assert_eq!(up["content-disposition"], "attachment");
        assert_eq!(up["x-request-id"], "req_1");
        let mut json = h(&[("content-type", "application/json")]);
        make_inert(&mut json);
        assert!(!json.contains_key("content-disposition"));
    }

    #[test]
    fn credential_params_are_stripped() {
        assert_eq!(
            strip_credential_params("alt=sse&key=sk-vk-1").as_deref(),
            Some("alt=sse")
        );
        assert_eq!(strip_credential_params("key=sk-vk-1"), None);
        for q in [
            "alt=sse&sk-vk-bare",
            "alt=sse&sk-vk-name=1",
            "alt=sse&%6Bey=AIza",
            "alt=sse&x=sk%2Dvk%2D1",
        ] {
            assert_eq!(
                strip_credential_params(q).as_deref(),
                Some("alt=sse"),
                "{q}"
            );
        }
    }
}

#[cfg(test)]
mod properties {
    //! Header handling as a property: whatever a client sends, what goes upstream carries no
    //! hop-by-hop, cookie, forwarding or `x-antix-` header (nor credentials when the gateway
    //! substitutes its own), and what comes back to a browser carries nothing that acts on the
    //! portal's origin.
    use proptest::prelude::*;

    use super::*;

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "Connection",
                "Keep-Alive",
                "TE",
                "Trailer",
                "Transfer-Encoding",
                "Upgrade",
                "Proxy-Authorization",
                "Cookie",
                "Host",
                "X-Forwarded-For",
                "Forwarded",
                "X-Antix-Provider",
                "x-antix-trace-id",
                "Authorization",
                "X-Api-Key",
                "x-goog-api-key",
                "Set-Cookie",
                "Location",
                "Refresh",
                "Content-Type",
                "anthropic-version",
                "Access-Control-Allow-Origin",
                "Link",
            ])
            .prop_map(str::to_owned),
            "[a-zA-Z][a-zA-Z0-9-]{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn forbidden_headers_never_pass(
            pairs in prop::collection::vec((name(), "[ -~]{0,20}"), 0..12),
            strip in any::<bool>(),
        ) {
            let mut client = HeaderMap::new();
            for (k, v) in &pairs {
                if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                    client.append(k, v);
                }
            }
            // A client naming any of its headers in Connection gets them dropped too.
            let up = upstream_request_headers(&client, strip);
            for gone in ["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
                         "proxy-authorization", "cookie", "host", "x-forwarded-for", "forwarded"] {
                prop_assert!(!up.contains_key(gone), "{}", gone);
            }
            prop_assert!(up.keys().all(|k| !k.as_str().starts_with("x-antix-")));
            if strip {
                for c in crate::gateway::caller::CREDENTIAL_HEADERS {
                    prop_assert!(!up.contains_key(c), "{}", c);
                }
            }
            let mut down = client.clone();
            make_inert(&mut down);
            for gone in ["set-cookie", "location", "refresh", "access-control-allow-origin", "link"] {
                prop_assert!(!down.contains_key(gone), "{}", gone);
            }
            prop_assert_eq!(down.get_all("content-security-policy").iter().count(), 1);
        }
    }
}
