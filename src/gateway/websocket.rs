//! The Responses API over a WebSocket (`GET …/openai/v1/responses`, upgraded), as Codex CLI
//! speaks it: the client sends `response.create` frames, the provider answers each with the
//! stream's events, one JSON object per text frame.
//!
//! [`Gateway::open_websocket`] does what the HTTP pipeline does before a call (endpoint, caller,
//! the organization's credential for a virtual key) and opens the upstream socket first, so a
//! provider that does not speak WebSockets is answered `426 Upgrade Required`: Codex then falls
//! back to HTTPS at once, without retries and without a trace. [`WsSession::run`] relays frames
//! both ways as they come (no buffering), and records each response as its own trace: its
//! `response.create` frame as the request, the events as a stream, usage, cost, time to first
//! event, session (`previous_response_id` chains them). A virtual key's limits apply to each
//! `response.create`: a refused one gets an error frame and never reaches the provider.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::call::{Call, RequestCopy};
use super::caller::{self, Caller};
use super::route::{self, ProviderPath};
use super::target::Target;
use super::{GatewayError, ProxyBody, admit, headers};
use crate::Services;
use crate::capture::Capture;
use crate::domain::{self, Endpoint, Outcome, Provider};
use crate::metering::read;
use crate::providers::Wire;
use crate::recorder::{PendingTrace, Recorder};

mod relay;

type Upstream = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// The `Sec-WebSocket-Accept` answer to a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key)
}

/// Whether a request asks to upgrade to a WebSocket.
pub fn is_upgrade(parts: &http::request::Parts) -> bool {
    parts.method == http::Method::GET
        && parts
            .headers
            .get(http::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// An upstream socket, open, waiting for the client's side of the upgrade.
pub struct WsSession {
    upstream: Upstream,
    ctx: Context,
}

/// What each response of a session is checked and recorded with.
struct Context {
    services: Services,
    recorder: Recorder,
    cut: CancellationToken,
    parts: http::request::Parts,
    endpoint: Endpoint,
    caller: Caller,
    presented: caller::Credentials,
    path: String,
    max_frame: usize,
}

impl super::Gateway {
    /// Checks an upgrade request and opens the provider's socket. `Err` is the response to
    /// give the client instead of switching protocols.
    pub async fn open_websocket(
        &self,
        parts: &http::request::Parts,
    ) -> Result<WsSession, http::Response<ProxyBody>> {
        let family = Provider::OpenAi;
        let fail = |e: GatewayError| e.response(family);
        let route = route::parse(parts.uri.path(), parts.uri.query()).map_err(|e| match e {
            route::RouteError::NotFound { family } => {
                GatewayError::UnknownEndpoint.response(family)
            }
            route::RouteError::BadPath { family, reason } => {
                GatewayError::BadPath(reason).response(family)
            }
        })?;
        // Only the Responses API speaks WebSockets.
        let responses = matches!(
            route.provider,
            ProviderPath::One(Provider::OpenAi) | ProviderPath::Multi
        ) && route.native_path == "/v1/responses";
        if !responses {
            return Err(upgrade_refused(
                "Only the Responses API (/v1/responses) is served over WebSocket here.",
            ));
        }
        let endpoint = super::deadline(
            &self.services,
            "endpoint",
            self.services.store.endpoint_cached(route.endpoint),
        )
        .await
        .map_err(fail)?
        .ok_or_else(|| fail(GatewayError::UnknownEndpoint))?;
        if endpoint.archived_at.is_some() {
            return Err(fail(GatewayError::Archived));
        }
        if self.stopping.is_cancelled() {
            return Err(fail(GatewayError::ShuttingDown));
        }
        let presented = caller::classify(&parts.headers, route.query.as_deref());
        let caller = caller::identify(&self.services, &presented.presented, &endpoint)
            .await
            .map_err(fail)?;
        if caller.key().is_none() && !endpoint.passthrough {
            return Err(fail(GatewayError::PassthroughDisabled));
        }
        if let Some(key) = caller.key()
            && !key.limits.allows_endpoint(endpoint.id)
        {
            return Err(fail(GatewayError::EndpointNotAllowed));
        }
        let credential = match caller.key() {
            Some(_) => Some(
                super::deadline(
                    &self.services,
                    "credential",
                    crate::credentials::get_cached(
                        &self.services.store,
                        &self.services.keys,
                        endpoint.org_id,
                        Provider::OpenAi,
                    ),
                )
                .await
                .map_err(fail)?
                .ok_or_else(|| fail(GatewayError::NoProviderCredential(Provider::OpenAi)))?,
            ),
            None => None,
        };
        let upstream = self
            .connect_upstream(parts, &route, credential.as_ref(), &presented.key_carriers)
            .await?;
        Ok(WsSession {
            upstream,
            ctx: Context {
                services: self.services.clone(),
                recorder: self.recorder.clone(),
                cut: self.cut.clone(),
                parts: parts.clone(),
                endpoint,
                caller,
                presented,
                path: route.native_path,
                max_frame: self.services.settings.limits.max_request_body_bytes as usize,
            },
        })
    }

    async fn connect_upstream(
        &self,
        parts: &http::request::Parts,
        route: &route::Route,
        credential: Option<&crate::credentials::UpstreamCredential>,
        key_carriers: &[http::HeaderName],
    ) -> Result<Upstream, http::Response<ProxyBody>> {
        let family = Provider::OpenAi;
        let settings = &self.services.settings;
        let custom = credential.and_then(|c| c.base_url.clone());
        let base = custom
            .clone()
            .unwrap_or_else(|| settings.upstream.openai.clone());
        let mut url = base.clone();
        let scheme = if base.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        let path = format!(
            "{}{}",
            base.path().trim_end_matches('/'),
            crate::egress::without_repeated_version(&base, &route.native_path)
        );
        url.set_path(&path);
        let query = match (credential, route.query.as_deref()) {
            (Some(_), Some(q)) => headers::strip_credential_params(q),
            (_, q) => q.map(str::to_owned),
        };
        url.set_query(query.as_deref());
        let unreachable = |why: String| GatewayError::UpstreamUnreachable(why).response(family);
        let Ok(mut url) = url::Url::parse(url.as_str()) else {
            return Err(unreachable("the upstream URL is not valid".into()));
        };
        if url.set_scheme(scheme).is_err() {
            return Err(unreachable(
                "the upstream URL cannot take a ws scheme".into(),
            ));
        }
        let mut request = http::Request::builder()
            .method(http::Method::GET)
            .uri(url.as_str())
            .body(())
            .map_err(|_| unreachable("the upstream URL is not valid".into()))?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        {
            let h = request.headers_mut();
            *h = headers::upstream_request_headers(&parts.headers, credential.is_some());
            let ws_own: Vec<http::HeaderName> = h
                .keys()
                .filter(|k| k.as_str().starts_with("sec-websocket-"))
                .cloned()
                .collect();
            for k in ws_own {
                h.remove(k);
            }
            h.remove(http::header::ACCEPT_ENCODING);
            if let Some(c) = credential {
                for name in key_carriers {
                    h.remove(name);
                }
                let (name, value) = crate::egress::provider_auth(
                    family,
                    secrecy::ExposeSecret::expose_secret(&c.secret),
                )
                .map_err(|_| GatewayError::NoProviderCredential(family).response(family))?;
                h.insert(name, value);
            }
            let host_header = match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.clone(),
            };
            if let Ok(v) = http::HeaderValue::from_str(&host_header) {
                h.insert(http::header::HOST, v);
            }
            for (k, v) in [
                ("connection", "Upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
            ] {
                h.insert(k, http::HeaderValue::from_static(v));
            }
            if let Ok(v) = http::HeaderValue::from_str(
                &tokio_tungstenite::tungstenite::handshake::client::generate_key(),
            ) {
                h.insert("sec-websocket-key", v);
            }
        }
        // An organization's own base URL: connect only to addresses the SSRF rules allow,
        // resolved once (no second lookup between the check and the connection).
        let addrs: Vec<std::net::SocketAddr> = if custom.is_some() {
            crate::egress::check_target(&url, settings.dev_mode).map_err(unreachable)?;
            crate::egress::resolve_checked(&host, port, settings.dev_mode)
                .await
                .map_err(unreachable)?
        } else {
            tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .collect()
        };
        let connect = async {
            let mut last = None;
            for a in addrs {
                match tokio::net::TcpStream::connect(a).await {
                    Ok(s) => return Ok(s),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.map_or_else(|| "no address".to_owned(), |e| e.to_string()))
        };
        let tcp = match tokio::time::timeout(settings.timeouts.connect, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(unreachable(e)),
            Err(_) => return Err(unreachable("connect timed out".into())),
        };
        let _ = tcp.set_nodelay(true);
        let config = ws_config(settings.limits.max_request_body_bytes as usize);
        let handshake =
            tokio_tungstenite::client_async_tls_with_config(request, tcp, Some(config), None);
        match tokio::time::timeout(settings.timeouts.first_byte, handshake).await {
            Ok(Ok((ws, _))) => Ok(ws),
            // The provider speaks HTTP only (or refused this upgrade): tell the client to fall
            // back now rather than retry.
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(res))) => {
                tracing::debug!(
                    status = res.status().as_u16(),
                    "upstream refused the WebSocket upgrade"
                );
                Err(upgrade_refused(
                    "The provider does not accept WebSocket connections here; use HTTPS.",
                ))
            }
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Err(_) => Err(GatewayError::UpstreamTimeout.response(family)),
        }
    }
}

fn ws_config(max: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// `426 Upgrade Required` in OpenAI's error shape: the client should use plain HTTPS.
fn upgrade_refused(message: &str) -> http::Response<ProxyBody> {
    let body = crate::providers::error_body(Provider::OpenAi, 426, message);
    http::Response::builder()
        .status(426)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(ProxyBody::full(body))
        .unwrap_or_else(|_| http::Response::new(ProxyBody::empty()))
}
