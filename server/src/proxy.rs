//! The axum side of the proxy: hands `/v1/…` requests to `antix::gateway` and its response
//! back. Everything the proxy decides (routing, auth, errors, tracing) lives in the core; this
//! adapter only converts body types, and for a WebSocket upgrade (the Responses API as Codex
//! speaks it) completes the handshake once the core has opened the provider's side.

use std::sync::Arc;

use antix::gateway::websocket;
use antix::gateway::{ClientBodyError, Gateway};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http_body_util::BodyExt;

pub async fn handle(State(gateway): State<Arc<Gateway>>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    if websocket::is_upgrade(&parts) {
        return upgrade(gateway, &mut parts).await;
    }
    let req = Request::from_parts(parts, body)
        .map(|b| b.map_err(|e| ClientBodyError(e.to_string())).boxed_unsync());
    gateway.handle(req).await.map(Body::new)
}

async fn upgrade(gateway: Arc<Gateway>, parts: &mut http::request::Parts) -> Response {
    let key = parts
        .headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes().to_vec());
    let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let (Some(key), Some(on_upgrade)) = (key, on_upgrade) else {
        return http::Response::builder()
            .status(http::StatusCode::BAD_REQUEST)
            .body(Body::from("not a WebSocket handshake"))
            .unwrap_or_default();
    };
    let session = match gateway.open_websocket(parts).await {
        Ok(s) => s,
        Err(refused) => return gateway.inert(refused).map(Body::new),
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => session.run(hyper_util::rt::TokioIo::new(upgraded)).await,
            Err(e) => tracing::debug!(error = %e, "client upgrade failed"),
        }
    });
    let accept = websocket::accept_key(&key);
    http::Response::builder()
        .status(http::StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::CONNECTION, "upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header(http::header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_default()
}
