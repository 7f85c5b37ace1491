//! Cross-site request forgery guard for the portal. Leptos server functions do no origin check
//! of their own, and a form POST from another site carries the victim's `SameSite=Lax` cookie
//! on top-level navigations, so every state-changing request to the portal must prove it comes
//! from our own pages: `Sec-Fetch-Site: same-origin`, or an `Origin` equal to ours.
//!
//! The proxy routes are not behind this guard: they authenticate each request with an API key,
//! never with a cookie.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Our own origins: the configured public URL, plus the Host the request was sent to (a browser
/// always sets Host to the site it is talking to, so an attacker's page cannot choose it).
#[derive(Clone)]
pub struct Origins {
    pub public: String,
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub fn same_origin(headers: &HeaderMap, public_origin: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        // `none` is a user-initiated navigation (typed URL, bookmark), never a cross-site form.
        return site == "same-origin" || site == "none";
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if origin == public_origin {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin.split_once("://"), host) {
        (Some((_, origin_host)), Some(host)) => origin_host == host,
        _ => false,
    }
}

pub async fn guard(State(origins): State<Origins>, req: Request, next: Next) -> Response {
    if is_safe(req.method()) || same_origin(req.headers(), &origins.public) {
        return next.run(req).await;
    }
    tracing::warn!(
        method = %req.method(),
        path = %req.uri().path(),
        "cross-site request refused"
    );
    (
        StatusCode::FORBIDDEN,
        "Cross-site request refused: this action must come from the Antix portal itself.",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn origin_rules() {
        let public = "http://127.0.0.1:3000";
        assert!(same_origin(
            &h(&[("sec-fetch-site", "same-origin")]),
            public
        ));
        assert!(!same_origin(
            &h(&[("sec-fetch-site", "cross-site")]),
            public
        ));
        assert!(!same_origin(&h(&[("sec-fetch-site", "same-site")]), public));
        assert!(same_origin(&h(&[("origin", public)]), public));
        assert!(same_origin(
            &h(&[
                ("origin", "http://localhost:3000"),
                ("host", "localhost:3000")
            ]),
            public
        ));
        assert!(!same_origin(
            &h(&[
                ("origin", "https://evil.example"),
                ("host", "127.0.0.1:3000")
            ]),
            public
        ));
        assert!(!same_origin(&h(&[("origin", "null")]), public));
        assert!(!same_origin(&h(&[]), public));
    }
}
