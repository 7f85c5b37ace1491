//! The one axum router: health, (proxy routes,) and the portal with its server functions.
//!
//! Routes that need no portal session: `/healthz`, the static files under `/pkg` and `/`, the
//! login and first-run pages and their server functions (which check for themselves), and the
//! proxy routes (which authenticate every request with an API key). Every other server
//! function starts with `require_user`.

use antix::Services;
use app::api::ApiError;
use app::{App, shell};
use axum::Router;
use std::sync::Arc;

use antix::gateway::Gateway;
use axum::routing::{any, get};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};

use crate::csrf;
use crate::state::AppState;
use crate::{Lifecycle, api, export, health, metrics, proxy};

/// A server function whose arguments cannot be read (a hand-made link, a missing field) fails
/// before its body runs, and the framework answers every such error with 500. The error is ours
/// to type: it is read back as the portal's [`ApiError`] and answered with that error's own
/// status (a 400 for unreadable arguments), never a 5xx for the caller's mistake.
async fn errors_get_their_status(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let res = next.run(req).await;
    // Every server-function error passes here (a 500 from the framework, or the status the
    // function set): each gets its own status, and a `Retry-After` when waiting helps.
    if res.status().as_u16() < 400
        || !res
            .headers()
            .contains_key(leptos::server_fn::error::SERVER_FN_ERROR_HEADER)
    {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return axum::response::Response::from_parts(parts, axum::body::Body::empty());
    };
    if let Ok(e) = serde_json::from_slice::<ApiError>(&bytes) {
        parts.status = e.status();
        let retry = match e {
            ApiError::Throttled(secs) => Some(secs.max(1)),
            ApiError::Overloaded(_) | ApiError::Unavailable => Some(1),
            _ => None,
        };
        if let Some(secs) = retry {
            parts
                .headers
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The portal's scripts, WASM and styles (`/pkg`), served precompressed (brotli or gzip,
/// written by `cargo leptos build --release --precompress`), hence `Vary: Accept-Encoding`.
/// A file whose name carries its content hash (`antix.<hash>.wasm`: a release build) never
/// changes under that name, so browsers keep it a year without asking (`immutable`); a new
/// release's pages name new files. Any other file must be asked for again before reuse
/// (`no-cache`: a 304 from its `Last-Modified` while unchanged), or a browser would guess a
/// lifetime and could run an old WASM against a new server's pages.
fn static_files(options: &LeptosOptions) -> axum::routing::MethodRouter {
    use tower_http::set_header::SetResponseHeaderLayer;
    let files = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            http::header::VARY,
            http::HeaderValue::from_static("accept-encoding"),
        ))
        .service(leptos_axum::site_pkg_dir_service(options));
    axum::routing::get_service(files).layer(axum::middleware::from_fn(cache_by_name))
}

async fn cache_by_name(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let hashed = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .is_some_and(is_content_hashed);
    let mut res = next.run(req).await;
    if res.status().is_success() || res.status() == http::StatusCode::NOT_MODIFIED {
        let policy = if hashed {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        res.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static(policy),
        );
    }
    res
}

/// `name.<hash>.ext`, the hash as cargo-leptos writes it: an MD5 in unpadded base64url
/// (22 characters).
fn is_content_hashed(file: &str) -> bool {
    let mut parts = file.rsplit('.');
    let (Some(_ext), Some(hash), Some(stem)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !stem.is_empty()
        && hash.len() == 22
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The largest request body the portal accepts (server functions take small forms).
pub const PORTAL_MAX_BODY: usize = 512 * 1024;

pub fn build(
    services: Services,
    leptos_options: LeptosOptions,
    gateway: Arc<Gateway>,
    lifecycle: Lifecycle,
) -> Router {
    let state = AppState {
        leptos_options: leptos_options.clone(),
        services: services.clone(),
    };
    let context = {
        let services = services.clone();
        let gateway = gateway.clone();
        move || {
            provide_context(services.clone());
            provide_context(gateway.clone());
            leptos::nonce::provide_nonce();
        }
    };
    let routes = generate_route_list(App);
    let origins = csrf::Origins {
        public: services.settings.public_url.origin().ascii_serialization(),
    };
    let portal = Router::new()
        // A download, not a page: streamed by a handler of its own.
        .route("/endpoints/{id}/export", get(export::export))
        // Straight to the file service, not through the portal's fallback: that one passes on
        // only `Accept-Encoding`, so a browser's `If-Modified-Since` never got its 304.
        .route_service(
            &leptos_axum::site_pkg_dir_service_route_path(&leptos_options),
            static_files(&leptos_options),
        )
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(axum::middleware::from_fn(errors_get_their_status))
        .layer(axum::middleware::from_fn_with_state(origins, csrf::guard))
        // Portal requests are small forms; nothing unauthenticated may upload more than this.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            PORTAL_MAX_BODY,
        ))
        .with_state(state);

    let serves_proxy = services.settings.portal_serves_proxy;
    // The management API: bearer tokens only, so outside the CSRF guard and the portal's
    // session handling.
    let portal = api::router(services.clone()).merge(portal);
    let health = health_router(services, &gateway, &lifecycle);
    // Proxy routes: authenticated per request by API key, so outside the CSRF guard and the
    // portal's session handling; registered before the portal's fallback can claim them.
    if serves_proxy {
        proxy_router(gateway).merge(health).merge(portal)
    } else {
        health.merge(portal)
    }
}

/// What the proxy's own address (`ANTIX_PROXY_LISTEN`) serves: the proxy and the health check,
/// nothing of the portal.
pub fn build_proxy_only(
    services: Services,
    gateway: Arc<Gateway>,
    lifecycle: &Lifecycle,
) -> Router {
    let health = health_router(services, &gateway, lifecycle);
    proxy_router(gateway).merge(health)
}

fn proxy_router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/{*rest}", any(proxy::handle))
        .with_state(gateway)
}

/// What `ANTIX_METRICS_LISTEN` serves: `/metrics` without a token (the address is the
/// protection) and the health check.
pub fn build_metrics_only(
    services: Services,
    gateway: Arc<Gateway>,
    lifecycle: &Lifecycle,
) -> Router {
    let health = health_router(services.clone(), &gateway, lifecycle);
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .with_state(metrics::MetricsState {
            services,
            gateway,
            token: None,
        })
        .merge(health)
}

/// The health check, and `/metrics` for a scraper with the token when one is configured.
fn health_router(services: Services, gateway: &Arc<Gateway>, lifecycle: &Lifecycle) -> Router {
    let token = services.settings.metrics.token.clone();
    let health = Router::new()
        .route("/healthz", get(health::healthz))
        .with_state(health::HealthState {
            recorder: gateway.recorder().clone(),
            services: services.clone(),
            stopping: lifecycle.stopping.clone(),
        });
    match token {
        Some(token) => Router::new()
            .route("/metrics", get(metrics::metrics))
            .with_state(metrics::MetricsState {
                services,
                gateway: gateway.clone(),
                token: Some(Arc::new(token)),
            })
            .merge(health),
        None => health,
    }
}

#[cfg(test)]
mod tests {
    use super::is_content_hashed;

    #[test]
    fn only_names_with_a_build_hash_are_cached_for_good() {
        assert!(is_content_hashed("antix.Yk3Ud1pc0A9vJ1zTgs2Gfw.wasm"));
        assert!(is_content_hashed("antix.a-b_c3Ud1pc0A9vJ1zTgs2.css"));
        for name in [
            "antix.wasm",
            "antix.css",
            "antix_bg.wasm.d.ts",
            "antix.d.ts",
            "antix.Yk3Ud1pc0A9vJ1zTgs2Gf.wasm",
            "antix.Yk3Ud1pc0A9vJ1zTgs2Gfw!.wasm",
            ".Yk3Ud1pc0A9vJ1zTgs2Gfw.wasm",
            "Yk3Ud1pc0A9vJ1zTgs2Gfw.wasm",
            "",
        ] {
            assert!(!is_content_hashed(name), "{name}");
        }
    }
}
