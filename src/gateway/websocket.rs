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

/// A response under way: its trace, and the events seen so far (kept as a stream of SSE
/// `data:` lines, the shape the Responses stream parser reads).
struct Pending {
    call: PendingTrace<Call>,
    events: Capture,
    first_event: Option<Instant>,
}

/// The kind of an event or frame, read without parsing the rest.
#[derive(serde::Deserialize)]
struct Kind<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    status: Option<u16>,
}

fn kind_of(text: &str) -> (Option<String>, Option<u16>) {
    serde_json::from_str::<Kind>(text)
        .map(|k| (k.kind.map(|c| c.into_owned()), k.status))
        .unwrap_or((None, None))
}

impl WsSession {
    /// Relays frames both ways until either side closes, recording each response.
    pub async fn run<S>(self, client_io: S)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let WsSession { upstream, ctx } = self;
        let client = WebSocketStream::from_raw_socket(
            client_io,
            Role::Server,
            Some(ws_config(ctx.max_frame)),
        )
        .await;
        let (mut c_tx, mut c_rx) = client.split();
        let (mut u_tx, mut u_rx) = upstream.split();
        let idle = ctx.services.settings.timeouts.idle;
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let cut = ctx.cut.clone();
        loop {
            // Silence is only a problem while a response is awaited.
            let waiting = !pending.is_empty();
            tokio::select! {
                msg = c_rx.next() => {
                    let Some(Ok(msg)) = msg else { break };
                    match msg {
                        Message::Text(text) => {
                            match ctx.begin(text.as_str()).await {
                                Ok(Some(p)) => pending.push_back(p),
                                Ok(None) => {}
                                Err(refusal) => {
                                    if c_tx.send(Message::text(refusal)).await.is_err() {
                                        break;
                                    }
                                    continue;
                                }
                            }
                            if u_tx.send(Message::Text(text)).await.is_err() {
                                end_all(&mut pending, Outcome::UpstreamError, "the provider closed the WebSocket");
                                break;
                            }
                        }
                        Message::Binary(b) => {
                            if u_tx.send(Message::Binary(b)).await.is_err() {
                                break;
                            }
                        }
                        Message::Close(frame) => {
                            let _ = u_tx.send(Message::Close(frame)).await;
                            break;
                        }
                        // Pings are answered by each side's own library.
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                msg = u_rx.next() => {
                    let Some(Ok(msg)) = msg else {
                        end_all(&mut pending, Outcome::UpstreamError, "the provider closed the WebSocket before the response completed");
                        break;
                    };
                    match msg {
                        Message::Text(text) => {
                            observe(&mut pending, text.as_str());
                            if c_tx.send(Message::Text(text)).await.is_err() {
                                break;
                            }
                        }
                        Message::Binary(b) => {
                            if c_tx.send(Message::Binary(b)).await.is_err() {
                                break;
                            }
                        }
                        Message::Close(frame) => {
                            end_all(&mut pending, Outcome::UpstreamError, "the provider closed the WebSocket before the response completed");
                            let _ = c_tx.send(Message::Close(frame)).await;
                            break;
                        }
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                () = tokio::time::sleep(idle), if waiting => {
                    end_all(&mut pending, Outcome::Timeout, "the provider sent nothing within the idle timeout");
                    let _ = c_tx.send(Message::Close(None)).await;
                    break;
                }
                () = cut.cancelled() => {
                    let _ = c_tx.send(Message::Close(None)).await;
                    break;
                }
            }
        }
        let _ = u_tx.close().await;
        // Responses still pending when the client left are recorded as such when dropped.
        drop(pending);
    }
}

impl Context {
    /// A client frame: a `response.create` starts a traced response (after a virtual key's
    /// checks); anything else passes as it is. `Err` is the error frame for a refused one.
    async fn begin(&self, text: &str) -> Result<Option<Pending>, String> {
        let (kind, _) = kind_of(text);
        if kind.as_deref() != Some("response.create") {
            return Ok(None);
        }
        let started = Instant::now();
        let mut call = Call::new(
            &self.parts,
            &self.endpoint,
            self.path.clone(),
            started,
            domain::now_ms(),
        );
        call.method = "WS".into();
        call.secrets.clone_from(&self.presented.secrets);
        call.auth = Some(self.caller.auth_mode());
        call.key_id = self.caller.key().map(|k| k.id);
        call.provider = Some(Provider::OpenAi);
        call.wire = Some(Wire::OpenAiResponses);
        call.is_stream = true;
        let bytes = Bytes::copy_from_slice(text.as_bytes());
        let capture_limit = self.services.settings.limits.max_stored_body_bytes as usize;
        call.request_body = RequestCopy::Whole(Capture::of(&bytes, capture_limit));
        let mut call = PendingTrace::new(call, self.recorder.clone(), self.cut.clone());
        let strict = self.caller.key().is_some_and(|k| k.limits.limited());
        let decided = self.admit(&mut call, &bytes, strict).await;
        if let Err(e) = decided {
            let frame = error_frame(&e);
            call.status = e.status();
            call.response_body = Capture::of(&Bytes::from(frame.clone()), capture_limit);
            call.finish(e.outcome(), Some(e.to_string()));
            return Err(frame);
        }
        call.sent_unanswered = true;
        Ok(Some(Pending {
            call,
            events: Capture::within(capture_limit, self.services.memory.empty()),
            first_event: None,
        }))
    }

    async fn admit(
        &self,
        call: &mut PendingTrace<Call>,
        body: &[u8],
        strict: bool,
    ) -> Result<(), GatewayError> {
        let mut facts = read::json(Wire::OpenAiResponses, body, None, strict)
            .map_err(|e| GatewayError::UnreadableBody(e.0))?;
        facts.stream = true;
        call.model = facts.model().map(str::to_owned);
        let target = Target {
            provider: Provider::OpenAi,
            path: self.path.clone(),
            wire: Wire::OpenAiResponses,
            model: call.model.clone(),
            is_stream: true,
            inject_usage: false,
            stream_options: false,
            translate: None,
            query: None,
        };
        let admitting = admit::Admitting {
            org: self.endpoint.org_id,
            target: &target,
            method: &http::Method::POST,
            trace_id: call.id,
            at_least: 0,
        };
        let grant = admit::admit(&self.services, &self.caller, &admitting, &mut facts).await;
        call.facts = Some(Box::new(facts));
        let mut grant = grant?;
        call.reservation = grant.reservation.take();
        for c in &grant.credentials {
            call.secrets
                .push(secrecy::ExposeSecret::expose_secret(&c.secret).to_owned());
        }
        Ok(())
    }
}

fn end_all(pending: &mut VecDeque<Pending>, outcome: Outcome, why: &str) {
    while let Some(p) = pending.pop_front() {
        finish(p, 502, outcome, Some(why.to_owned()));
    }
}

/// A provider frame: part of the oldest response under way; its last event ends it.
fn observe(pending: &mut VecDeque<Pending>, text: &str) {
    let Some(p) = pending.front_mut() else {
        return;
    };
    p.first_event.get_or_insert_with(Instant::now);
    p.events.push(b"data: ");
    p.events.push(text.as_bytes());
    p.events.push(b"\n\n");
    let (kind, status) = kind_of(text);
    let done = match kind.as_deref() {
        Some("response.completed" | "response.incomplete") => Some((200, Outcome::Ok, None)),
        Some("response.failed") => Some((200, Outcome::Ok, None)),
        Some("error") => Some((
            status.unwrap_or(500),
            Outcome::Ok,
            Some("the provider answered with an error frame".to_owned()),
        )),
        _ => None,
    };
    if let Some((status, outcome, error)) = done
        && let Some(p) = pending.pop_front()
    {
        finish(p, status, outcome, error);
    }
}

fn finish(mut p: Pending, status: u16, outcome: Outcome, error: Option<String>) {
    p.call.status = status;
    p.call.sent_unanswered = p.first_event.is_none() && outcome != Outcome::Ok;
    p.call.response_headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    p.call.mark_first_byte(p.first_event);
    p.call.response_body = std::mem::take(&mut p.events).finish();
    p.call.finish(outcome, error);
}

/// The gateway's refusal as a Responses WebSocket error frame.
fn error_frame(e: &GatewayError) -> String {
    let mut v: serde_json::Value =
        serde_json::from_slice(&e.body(Provider::OpenAi)).unwrap_or_else(|_| serde_json::json!({}));
    v["type"] = serde_json::json!("error");
    v["status"] = serde_json::json!(e.status());
    v.to_string()
}
