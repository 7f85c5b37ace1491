//! `/metrics`: the Prometheus text exposition. Served on a listener of its own
//! (`ANTIX_METRICS_LISTEN`, for a scraper on a private network) and, when a token is set
//! (`ANTIX_METRICS_TOKEN`), on the main listeners to a scraper that presents it as a bearer
//! token. With neither, the route does not exist: metrics name endpoints and models, which are
//! not for the public internet.

use std::sync::Arc;

use antix::Services;
use antix::gateway::Gateway;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

/// The content type of the text format, version 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
pub struct MetricsState {
    pub services: Services,
    pub gateway: Arc<Gateway>,
    /// Required as a bearer token, when set (the main listeners); none on the metrics listener.
    pub token: Option<Arc<secrecy::SecretString>>,
}

pub async fn metrics(State(state): State<MetricsState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.token
        && !presents(&headers, token.expose_secret())
    {
        let mut res = (StatusCode::UNAUTHORIZED, "metrics need a bearer token\n").into_response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"antix-metrics\""),
        );
        return res;
    }
    let recorder = state.gateway.recorder();
    let services = &state.services;
    let text = recorder.metrics().render(&antix::metrics::Readings {
        recorder: recorder.readings(),
        memory: &services.memory,
        pools: services.store.pool_use(),
    });
    let mut res = text.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Whether the request carries `Authorization: Bearer <token>` (scheme in any case), compared in
/// constant time.
fn presents(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, given)) = value.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn only_the_right_bearer_token_passes() {
        let token = "0123456789abcdef";
        assert!(presents(&with("Bearer 0123456789abcdef"), token));
        assert!(presents(&with("bearer 0123456789abcdef"), token));
        assert!(!presents(&with("Bearer 0123456789abcdeX"), token));
        assert!(!presents(&with("Bearer 0123456789abcde"), token));
        assert!(!presents(&with("Basic 0123456789abcdef"), token));
        assert!(!presents(&with("0123456789abcdef"), token));
        assert!(!presents(&HeaderMap::new(), token));
    }

    /// The Grafana dashboard shipped in `server/grafana/` queries only metrics this build
    /// exposes, so renaming one cannot leave the dashboard silently empty.
    #[test]
    fn the_grafana_dashboard_queries_metrics_that_exist() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../grafana/antix.json")).unwrap();
        let m = antix::metrics::Metrics::new();
        let mut draft = antix::recorder::testing::sample_draft(
            antix::domain::OrgId::new_v4(),
            antix::domain::EndpointId::new_v4(),
        );
        draft.is_stream = true;
        let mut failed = draft.clone();
        failed.status = 500;
        m.observe(&antix::recorder::finalize::finalize(draft));
        // Labelled families show once they have a sample: an error, and a pool reading.
        m.observe(&antix::recorder::finalize::finalize(failed));
        let text = m.render(&antix::metrics::Readings {
            recorder: antix::metrics::RecorderReadings::default(),
            memory: &antix::memory::MemoryBudget::new(1),
            pools: vec![antix::store::PoolUse {
                name: "write",
                in_use: 0,
                idle: 1,
                max: 1,
            }],
        });
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let mut exprs = Vec::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            for t in panel["targets"].as_array().unwrap() {
                exprs.push(t["expr"].as_str().unwrap().to_owned());
            }
        }
        assert!(exprs.len() >= 10);
        for expr in &exprs {
            let mut rest = expr.as_str();
            while let Some(at) = rest.find("antix_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let family = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name);
                assert!(
                    families.contains(&family),
                    "the dashboard queries {name}, which is not exposed ({expr})"
                );
                rest = &rest[at + name.len()..];
            }
        }
    }
}
