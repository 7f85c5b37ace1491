//! Links that change the page's URL query: filters, cursors, the open trace, the open session.
//! The URL is the state of these screens, so links work before hydration, can be shared, and
//! the back button undoes the last step.

use leptos_router::params::ParamsMap;

/// `path` with the current query, some parameters set (`Some`) or removed (`None`).
pub fn href_with(path: &str, query: &ParamsMap, changes: &[(&str, Option<&str>)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .into_iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
        .map(|(k, v)| (k.to_string(), v.to_owned()))
        .collect();
    for (k, v) in changes {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            pairs.push(((*k).to_owned(), v.to_owned()));
        }
    }
    format!("{path}{}", query_string(pairs))
}

/// `?k=v&…` for the pairs in order (empty for none), percent-encoded like [`href_with`].
pub fn query_string<K: AsRef<str>, V: AsRef<str>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        out.push(if out.is_empty() { '?' } else { '&' });
        encode_into(&mut out, k.as_ref());
        out.push('=');
        encode_into(&mut out, v.as_ref());
    }
    out
}

/// Percent-encodes all but RFC 3986's unreserved characters, the same on the server and in the
/// browser (the router's own helper encodes `-` and `_` on the server only, so links to model
/// names and ids read `gpt%2D4o` in a server-rendered page and `gpt-4o` after hydration).
fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

// `ParamsMap` calls into the browser on WASM-feature builds: test on the server build.
#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn changes_replace_and_remove() {
        let q: ParamsMap = [("model", "gpt-4o"), ("trace", "x"), ("q", "a b&c")]
            .into_iter()
            .collect();
        let h = href_with(
            "/e/1/traces",
            &q,
            &[("trace", None), ("after", Some("t1_2"))],
        );
        assert!(h.starts_with("/e/1/traces?"), "{h}");
        // Values are percent-encoded, but for the characters a URL keeps as they are.
        assert_eq!(h, "/e/1/traces?model=gpt-4o&q=a%20b%26c&after=t1_2");
        let q: ParamsMap = [("q", "ünï <x>?=#+")].into_iter().collect();
        assert_eq!(
            href_with("/p", &q, &[]),
            "/p?q=%C3%BCn%C3%AF%20%3Cx%3E%3F%3D%23%2B"
        );
        assert_eq!(href_with("/p", &ParamsMap::new(), &[("x", Some(""))]), "/p");
    }
}
