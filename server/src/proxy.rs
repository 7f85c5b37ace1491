//! The axum side of the proxy: hands `/v1/…` requests to `antix::gateway` and its response
//! back. Everything the proxy decides (routing, auth, errors, tracing) lives in the core; this
//! adapter only converts body types.

use std::sync::Arc;

use antix::gateway::{ClientBodyError, Gateway};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http_body_util::BodyExt;

pub async fn handle(State(gateway): State<Arc<Gateway>>, req: Request) -> Response {
    let req = req.map(|b| b.map_err(|e| ClientBodyError(e.to_string())).boxed_unsync());
    gateway.handle(req).await.map(Body::new)
}
