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
