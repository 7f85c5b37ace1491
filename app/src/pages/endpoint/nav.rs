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
    let map: ParamsMap = pairs.into_iter().collect();
    format!("{path}{}", map.to_query_string())
}

// Encoding goes through the browser's URL functions on WASM builds: test the server side.
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
        // Values are percent-encoded (`-` and `_` included).
        assert!(
            h.contains("model=gpt%2D4o") && h.contains("after=t1%5F2"),
            "{h}"
        );
        assert!(h.contains("q=a%20b%26c") && !h.contains("trace="), "{h}");
        assert_eq!(href_with("/p", &ParamsMap::new(), &[("x", Some(""))]), "/p");
    }
}
