//! The HTTP server loop: hyper with the protections axum's `serve` does not configure. A client
//! gets `ANTIX_HEADER_TIMEOUT_MS` (30 s by default) to send its request headers (slow or silent connections are closed, not kept
//! forever), headers are capped (larger ones get 431), a client that stops reading is cut off
//! after `ANTIX_WRITE_TIMEOUT_MS`, and on shutdown connections are closed gracefully: idle ones
//! at once, busy ones when their response ends.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

/// The most header bytes read before answering 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Serves `router` until `stop` resolves; then stops accepting, lets open connections finish
/// (returning when the last one closes) — the caller bounds that wait.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    write_timeout: Duration,
    stop: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    // HTTP/1.1 only: plain-text HTTP/2 (prior knowledge) is not something SDKs speak, and
    // protocol detection would read the first bytes with no timeout at all.
    let mut builder = Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    // Connections still open, and the signal that asks them to finish.
    let connections = tokio_util::task::TaskTracker::new();
    let closing = tokio_util::sync::CancellationToken::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            router.clone().oneshot(req.map(Body::new))
        });
        // A client that stops reading blocks our writes: after `write_timeout` without progress
        // the connection is closed (its call is recorded as a client disconnect) instead of
        // holding a task, a buffer and an upstream stream forever. No read timeout: a client
        // may rightly send nothing while a long answer is being generated.
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(write_timeout));
        // Upgrades: the Responses API over WebSocket (see `proxy::upgrade`).
        let conn = builder
            .serve_connection(TokioIo::new(Box::pin(stream)), service)
            .with_upgrades();
        let closing = closing.clone();
        connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                () = closing.cancelled() => {
                    // Idle connections close at once, busy ones when their response ends.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    closing.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
}
