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
    let many: Vec<(&'static str, &str)> = (0..20).map(|_| ("x-api-key", "sk-proj-123")).collect();
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
