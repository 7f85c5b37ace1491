//! The proxy core, framework-free: takes an `http::Request` for an endpoint URL, authenticates
//! it, forwards it to the provider, and returns the provider's response as it streams in, while
//! the trace is assembled and handed to the recorder.
//!
//! Hot-path rules: no database round trip that a cache can answer (endpoints, keys and
//! credentials are cached for a few seconds with single-flight loading), no buffering of
//! response bodies, trace writes off the request path, and every way out (success, refusal,
//! upstream failure, client hang-up) records exactly one trace once the endpoint is known.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::header::{self, HeaderValue};
use http_body_util::BodyExt;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::Services;
use crate::credentials::{self, UpstreamCredential};
use crate::crypto::{self, TokenHash};
use crate::domain::{self, AuthMode, Endpoint, EndpointId, OrgId, Provider, TraceId, VirtualKey};
use crate::providers::{self, Wire, multi};
use crate::recorder::{Recorder, TraceDraft};
use crate::store::traces::Outcome;

pub mod auth;
pub mod body;
pub mod cache;
pub mod error;
pub mod headers;
pub mod route;

pub use body::ProxyBody;
use body::{Capture, CapturedBytes, PendingTrace, TracedBody, TracedBodyParts};
use cache::TtlCache;
pub use error::GatewayError;
use route::ProviderPath;

/// Request bodies, as the server adapter hands them over.
pub type RequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, ClientBodyError>;

/// An error reading the client's request body (the connection broke, say). A concrete type:
/// boxed trait-object errors flowing through the async pipeline trip rustc's higher-ranked
/// lifetime inference in the server's handler.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientBodyError(pub String);

/// How long cached endpoints, keys and credentials are trusted. Bounds how long a revocation
/// or archival made on another replica takes to be seen here.
pub const CACHE_TTL: Duration = Duration::from_secs(3);
/// Upstream error bodies are read whole (to check they are JSON) up to this size.
const MAX_ERROR_BODY: usize = 1024 * 1024;

pub struct Gateway {
    services: Services,
    http: reqwest::Client,
    /// For organizations' own base URLs: every resolved address is checked (SSRF guard).
    guarded_http: reqwest::Client,
    recorder: Recorder,
    /// Cancelled when shutdown begins: new requests are refused with 503.
    stopping: CancellationToken,
    /// Cancelled when the shutdown grace period ends: streams still open are cut.
    cut: CancellationToken,
    endpoints: TtlCache<EndpointId, Option<Endpoint>>,
    keys: TtlCache<TokenHash, Option<VirtualKey>>,
    credentials: TtlCache<(OrgId, Provider), Option<UpstreamCredential>>,
    routes: multi::Routes,
}

/// What the JSON body says about routing and streaming; everything else is skipped unparsed.
#[derive(serde::Deserialize, Default)]
struct Peek {
    model: Option<String>,
    stream: Option<bool>,
    stream_options: Option<serde::de::IgnoredAny>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    #[serde(rename = "generationConfig")]
    generation_config: Option<GenerationConfig>,
}

#[derive(serde::Deserialize, Default)]
struct GenerationConfig {
    #[serde(rename = "maxOutputTokens")]
    max_output_tokens: Option<u64>,
}

impl Peek {
    /// The most output the request allows, whatever the API calls it.
    fn max_output(&self) -> Option<u64> {
        self.max_tokens
            .or(self.max_completion_tokens)
            .or(self.max_output_tokens)
            .or(self
                .generation_config
                .as_ref()
                .and_then(|g| g.max_output_tokens))
    }
}

impl Gateway {
    pub fn new(
        services: Services,
        recorder: Recorder,
        stopping: CancellationToken,
        cut: CancellationToken,
    ) -> Result<Arc<Self>, reqwest::Error> {
        let t = services.settings.timeouts;
        let http = reqwest::Client::builder()
            .connect_timeout(t.connect)
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        let guarded_http = crate::egress::guarded_client(t.connect, services.settings.dev_mode)?;
        Ok(Arc::new(Gateway {
            guarded_http,
            routes: services.settings.multi_routes.clone(),
            services,
            http,
            recorder,
            stopping,
            cut,
            endpoints: TtlCache::new(CACHE_TTL, 100_000),
            keys: TtlCache::new(CACHE_TTL, 100_000),
            credentials: TtlCache::new(CACHE_TTL, 10_000),
        }))
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Forgets cached state about a key (after a revoke on this replica).
    pub fn invalidate_key(&self, hash: &TokenHash) {
        self.keys.invalidate(hash);
    }

    /// Forgets every cached key (after a revoke or an edit made where only the key's id is
    /// known: the cache is keyed by hash).
    pub fn invalidate_all_keys(&self) {
        self.keys.clear();
    }

    pub fn invalidate_endpoint(&self, id: EndpointId) {
        self.endpoints.invalidate(&id);
    }

    pub fn invalidate_credentials(&self, org: OrgId, provider: Provider) {
        self.credentials.invalidate(&(org, provider));
    }

    async fn endpoint(&self, id: EndpointId) -> Result<Option<Endpoint>, GatewayError> {
        let store = &self.services.store;
        self.endpoints
            .get_or_load(&id, || async { store.endpoint(id).await })
            .await
            .map_err(|_| GatewayError::StoreUnavailable)
    }

    async fn virtual_key(&self, key: &str) -> Result<VirtualKey, GatewayError> {
        // A malformed key is refused before any lookup: typos and fuzzing cost no query.
        if !crypto::virtual_key_checksum_ok(key) {
            return Err(GatewayError::UnknownVirtualKey);
        }
        let hash = self.services.keys.token_hash(key);
        let store = &self.services.store;
        self.keys
            .get_or_load(&hash, || async { store.virtual_key_by_hash(&hash).await })
            .await
            .map_err(|_| GatewayError::StoreUnavailable)?
            .ok_or(GatewayError::UnknownVirtualKey)
    }

    async fn credential(
        &self,
        org: OrgId,
        provider: Provider,
    ) -> Result<UpstreamCredential, GatewayError> {
        let (store, keys) = (&self.services.store, &self.services.keys);
        self.credentials
            .get_or_load(&(org, provider), || async {
                credentials::get(store, keys, org, provider).await
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, org = %org, provider = provider.as_str(), "credential unavailable");
                GatewayError::StoreUnavailable
            })?
            .ok_or(GatewayError::NoProviderCredential(provider))
    }

    /// Checks the key's rate limits and reserves the call's estimated cost against its budgets
    /// (see [`crate::limits`]). Fails closed: no database, no budgeted call.
    async fn admit(
        &self,
        key: &VirtualKey,
        trace_id: Option<TraceId>,
        wire: Wire,
        model: Option<&str>,
        request_len: usize,
        max_output: Option<u64>,
    ) -> Result<Option<crate::limits::Reservation>, GatewayError> {
        let now = domain::now_ms();
        let reserve = if key.has_budget() && wire.metered() {
            let model = model.unwrap_or("");
            crate::limits::estimate_cost(model, request_len, max_output)
                .ok_or_else(|| GatewayError::UnpricedModel(model.to_owned()))?
        } else {
            0
        };
        let Some(admission) = key.admission(trace_id.unwrap_or_else(TraceId::new_v7), now, reserve)
        else {
            return Ok(None);
        };
        match self.services.store.admit(&admission).await {
            Err(_) => Err(GatewayError::StoreUnavailable),
            Ok(Err(denied)) if denied.is_budget() => Err(GatewayError::BudgetExceeded {
                message: denied.message(),
                retry_after_secs: denied.retry_after_secs(now),
            }),
            Ok(Err(denied)) => Err(GatewayError::RateLimited {
                message: denied.message(),
                retry_after_secs: denied.retry_after_secs(now),
            }),
            Ok(Ok(reservation)) => Ok(reservation),
        }
    }

    /// Handles one proxied request.
    pub async fn handle(&self, req: http::Request<RequestBody>) -> http::Response<ProxyBody> {
        let started = Instant::now();
        let started_at = domain::now_ms();
        let (parts, body) = req.into_parts();
        let route = match route::parse(parts.uri.path(), parts.uri.query()) {
            Ok(r) => r,
            Err(route::RouteError::NotFound { family }) => {
                return GatewayError::UnknownEndpoint.response(family);
            }
            Err(route::RouteError::BadPath { family, reason }) => {
                return GatewayError::BadPath(reason).response(family);
            }
        };
        // The shape of the API the client speaks decides how errors look.
        let family = match route.provider {
            ProviderPath::One(p) => p,
            ProviderPath::Multi => multi::wire_family(&route.native_path),
        };
        let endpoint = match self.endpoint(route.endpoint).await {
            Ok(Some(e)) => e,
            Ok(None) => return GatewayError::UnknownEndpoint.response(family),
            Err(e) => return e.response(family),
        };
        let stored_path = match &route.query {
            Some(q) => format!("{}?{}", route.native_path, headers::redact_query(q)),
            None => route.native_path.clone(),
        };
        let draft = TraceDraft {
            id: TraceId::new_v7(),
            org_id: endpoint.org_id,
            endpoint_id: endpoint.id,
            started_at,
            started,
            auth_mode: None,
            virtual_key_id: None,
            provider: None,
            wire: None,
            requested_model: None,
            method: parts.method.as_str().to_owned(),
            path: stored_path,
            request_headers: parts.headers.clone(),
            request_body: CapturedBytes::default(),
            request_stream_capture: None,
            status: 0,
            response_headers: http::HeaderMap::new(),
            response_body: CapturedBytes::default(),
            is_stream: false,
            ttft: None,
            latency: Duration::ZERO,
            outcome: Outcome::Rejected,
            error: None,
            passthrough: false,
            session_hint: parts
                .headers
                .get("x-claude-code-session-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            secrets: Vec::new(),
            reservation: None,
        };
        let trace_id = draft.id;
        let mut pending = PendingTrace::new(draft, self.recorder.clone(), self.cut.clone());
        match self
            .forward(&parts, body, &route, family, &endpoint, &mut pending)
            .await
        {
            Ok(response) => response,
            Err(e) => {
                let body = e.body(family);
                let captured = Capture::of(&body, body.len());
                pending.finish(|d| {
                    d.outcome = e.outcome();
                    d.status = e.status();
                    d.error = Some(e.to_string());
                    d.response_body = captured;
                    d.response_headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                });
                let mut res = e.response(family);
                res.headers_mut()
                    .insert("x-antix-trace-id", trace_header(&trace_id.to_string()));
                res
            }
        }
    }

    #[expect(
        clippy::too_many_lines,
        reason = "the request pipeline reads best as one sequence"
    )]
    async fn forward(
        &self,
        parts: &http::request::Parts,
        body: RequestBody,
        route: &route::Route,
        family: Provider,
        endpoint: &Endpoint,
        pending: &mut PendingTrace,
    ) -> Result<http::Response<ProxyBody>, GatewayError> {
        let settings = &self.services.settings;
        let trace_id = pending.draft_mut().map(|d| d.id);
        if endpoint.archived_at.is_some() {
            return Err(GatewayError::Archived);
        }
        if self.stopping.is_cancelled() {
            return Err(GatewayError::ShuttingDown);
        }

        // Who is calling.
        let creds = auth::classify(&parts.headers, route.query.as_deref());
        if let Some(d) = pending.draft_mut() {
            d.secrets = creds.secrets.clone();
        }
        let (auth_mode, vk) = match &creds.presented {
            auth::Presented::VirtualKey(k) => {
                let key = self.virtual_key(k).await?;
                match key.unusable_reason(domain::now_ms()) {
                    Some("revoked") => return Err(GatewayError::RevokedVirtualKey),
                    Some(_) => return Err(GatewayError::ExpiredVirtualKey),
                    None => {}
                }
                if key.org_id != endpoint.org_id {
                    return Err(GatewayError::WrongOrganization);
                }
                if let Some(d) = pending.draft_mut() {
                    d.virtual_key_id = Some(key.id);
                }
                if !key.limits.allows_endpoint(endpoint.id) {
                    return Err(GatewayError::EndpointNotAllowed);
                }
                (AuthMode::VirtualKey, Some(key))
            }
            auth::Presented::OAuth => (AuthMode::OAuth, None),
            auth::Presented::Byok => (AuthMode::Byok, None),
            auth::Presented::None => return Err(GatewayError::NoCredentials),
            auth::Presented::Malformed => return Err(GatewayError::MalformedCredentials),
        };
        if let Some(d) = pending.draft_mut() {
            d.auth_mode = Some(auth_mode);
            d.passthrough = auth_mode != AuthMode::VirtualKey;
        }

        // The body: JSON is read whole (it is needed to route and is small next to the
        // response); anything else streams through with a capped copy kept.
        let limit = settings.limits.max_request_body_bytes;
        let capture_limit = settings.limits.max_stored_body_bytes as usize;
        let is_json = is_json_request(parts);
        let (json_body, upstream_body): (Option<Bytes>, Option<reqwest::Body>) = if is_json {
            let bytes = read_limited(body, limit).await?;
            (Some(bytes), None)
        } else {
            (
                None,
                Some(capped_stream(body, limit, capture_limit, pending)),
            )
        };
        let peek: Peek = json_body
            .as_ref()
            .filter(|b| !b.is_empty())
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        let path_model = gemini_path_model(&route.native_path);
        let model = path_model.clone().or(peek.model.clone());

        // Which provider.
        let provider = match route.provider {
            ProviderPath::One(p) => p,
            ProviderPath::Multi => match parts.headers.get("x-antix-provider") {
                Some(h) => {
                    let v = h.to_str().unwrap_or("").trim().to_ascii_lowercase();
                    Provider::parse(&v).ok_or(GatewayError::UnknownProviderHeader(v))?
                }
                None => match &model {
                    Some(m) => self
                        .routes
                        .provider_for_model(m)
                        .ok_or_else(|| GatewayError::UnroutableModel(m.clone()))?,
                    None if family != Provider::OpenAi => family,
                    None => return Err(GatewayError::NoModel),
                },
            },
        };
        let upstream_path = if route.provider == ProviderPath::Multi
            && family == Provider::OpenAi
            && provider != Provider::OpenAi
        {
            multi::openai_compatible_path(provider, &route.native_path)
        } else {
            route.native_path.clone()
        };
        let wire = Wire::classify(family, &upstream_path);
        let is_stream =
            peek.stream == Some(true) || upstream_path.ends_with(":streamGenerateContent");
        if let Some(d) = pending.draft_mut() {
            d.provider = Some(provider);
            d.wire = Some(wire);
            d.requested_model = model.clone();
            d.is_stream = is_stream;
            if let Some(b) = &json_body {
                d.request_body = Capture::of(b, capture_limit);
            }
        }

        // A virtual key: its model allow-list, and the organization's credential.
        let credential = match &vk {
            Some(key) => {
                if let Some(m) = &model
                    && !key.limits.allows_model(m)
                {
                    return Err(GatewayError::ModelNotAllowed(m.clone()));
                }
                let credential = self.credential(endpoint.org_id, provider).await?;
                let request_len = json_body.as_ref().map_or(0, Bytes::len);
                let reservation = self
                    .admit(
                        key,
                        trace_id,
                        wire,
                        model.as_deref(),
                        request_len,
                        peek.max_output(),
                    )
                    .await?;
                if let Some(d) = pending.draft_mut() {
                    d.reservation = reservation;
                }
                Some(credential)
            }
            None => None,
        };

        // Usage for OpenAI chat streams that did not ask for it: ask, and hide the answer.
        let hide_usage = wire == Wire::OpenAiChat
            && is_stream
            && peek.stream_options.is_none()
            && json_body.is_some();
        let upstream_body = match (json_body, upstream_body) {
            (Some(b), _) if hide_usage => reqwest::Body::from(
                providers::openai::with_include_usage(&b).unwrap_or_else(|| b.to_vec()),
            ),
            (Some(b), _) => reqwest::Body::from(b),
            (None, Some(s)) => s,
            (None, None) => reqwest::Body::from(Bytes::new()),
        };

        // Where it goes. The base is fixed (configuration, or the organization's own custom
        // base for its credential); the client only contributes the path and query.
        let base = credential
            .as_ref()
            .and_then(|c| c.base_url.clone())
            .unwrap_or_else(|| settings.upstream.for_provider(provider).clone());
        let query = match (&vk, &route.query) {
            (Some(_), Some(q)) => headers::strip_credential_params(q),
            (_, q) => q.clone(),
        };
        let url = upstream_url(&base, &upstream_path, query.as_deref())?;
        let mut up_headers = headers::upstream_request_headers(&parts.headers, vk.is_some());
        if let Some(c) = &credential {
            let secret = c.secret.expose_secret();
            let (name, value) = match family {
                Provider::OpenAi => (header::AUTHORIZATION, format!("Bearer {secret}")),
                Provider::Anthropic => (
                    header::HeaderName::from_static("x-api-key"),
                    secret.to_owned(),
                ),
                Provider::Gemini => (
                    header::HeaderName::from_static("x-goog-api-key"),
                    secret.to_owned(),
                ),
            };
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| GatewayError::NoProviderCredential(provider))?;
            value.set_sensitive(true);
            up_headers.insert(name, value);
            if let Some(d) = pending.draft_mut() {
                d.secrets.push(secret.to_owned());
            }
        }

        let custom_base = credential.as_ref().is_some_and(|c| c.base_url.is_some());
        if custom_base {
            crate::egress::check_target(&url, settings.dev_mode).map_err(|_| {
                GatewayError::UpstreamUnreachable(
                    "the organization's base URL is not allowed".into(),
                )
            })?;
        }
        let client = if custom_base {
            &self.guarded_http
        } else {
            &self.http
        };
        let request = client
            .request(parts.method.clone(), url)
            .headers(up_headers)
            .body(upstream_body);
        let response =
            match tokio::time::timeout(settings.timeouts.first_byte, request.send()).await {
                Err(_) => return Err(GatewayError::UpstreamTimeout),
                Ok(Err(e)) => {
                    let streamed_too_much = pending.draft_mut().is_some_and(|d| {
                        d.request_stream_capture
                            .as_ref()
                            .and_then(|c| c.lock().ok().map(|c| c.total > limit))
                            .unwrap_or(false)
                    });
                    if streamed_too_much {
                        return Err(GatewayError::BodyTooLarge(limit));
                    }
                    if e.is_timeout() {
                        return Err(GatewayError::UpstreamTimeout);
                    }
                    return Err(GatewayError::UpstreamUnreachable(describe_reqwest_error(
                        &e,
                    )));
                }
                Ok(Ok(r)) => r,
            };

        let status = response.status();
        let upstream_headers = response.headers().clone();
        if let Some(d) = pending.draft_mut() {
            d.status = status.as_u16();
            d.response_headers = upstream_headers.clone();
        }
        let trace_value = trace_header(&trace_id.map(|t| t.to_string()).unwrap_or_default());

        if status.as_u16() >= 400 {
            return self
                .relay_error(
                    response,
                    status,
                    &upstream_headers,
                    family,
                    pending,
                    trace_value,
                )
                .await;
        }

        let sse = upstream_headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let hide_usage = hide_usage && sse;
        let mut out_headers = headers::client_response_headers(&upstream_headers, hide_usage);
        out_headers.insert("x-antix-trace-id", trace_value);
        let expected_len = response.content_length();
        let stream = response.bytes_stream().boxed();
        let Some(pending_owned) = take_pending(pending) else {
            return Err(GatewayError::ShuttingDown);
        };
        let body = TracedBody::new(TracedBodyParts {
            upstream: stream,
            idle_timeout: settings.timeouts.idle,
            shutdown: self.cut.clone(),
            hide_usage,
            capture_limit,
            family,
            sse: sse || is_stream,
            expected_len: if hide_usage { None } else { expected_len },
            pending: pending_owned,
        });
        let mut res = http::Response::new(ProxyBody::Traced(Box::new(body)));
        *res.status_mut() = status;
        *res.headers_mut() = out_headers;
        Ok(res)
    }

    /// An upstream error answer: passed through when it is a JSON body (the provider's own error,
    /// which the SDK knows how to read), replaced by a JSON error in the provider's shape when it
    /// is HTML, malformed or empty. `Retry-After` survives either way.
    async fn relay_error(
        &self,
        response: reqwest::Response,
        status: http::StatusCode,
        upstream_headers: &http::HeaderMap,
        family: Provider,
        pending: &mut PendingTrace,
        trace_value: HeaderValue,
    ) -> Result<http::Response<ProxyBody>, GatewayError> {
        let idle = self.services.settings.timeouts.idle;
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        let mut cut = false;
        loop {
            match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_ERROR_BODY {
                        cut = true;
                        break;
                    }
                }
                Ok(None) => break,
                Ok(Some(Err(_))) | Err(_) => {
                    cut = true;
                    break;
                }
            }
        }
        let body = Bytes::from(bytes);
        let is_json_error =
            !cut && serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| v.is_object());
        let retry_after = upstream_headers.get(header::RETRY_AFTER).cloned();
        let (res, recorded_status) = if is_json_error {
            let mut out_headers = headers::client_response_headers(upstream_headers, false);
            out_headers.insert("x-antix-trace-id", trace_value);
            let mut res = http::Response::new(ProxyBody::full(body.clone()));
            *res.status_mut() = status;
            *res.headers_mut() = out_headers;
            (res, status.as_u16())
        } else {
            let e = GatewayError::UpstreamBadResponse {
                status: status.as_u16(),
            };
            let mut res = e.response(family);
            res.headers_mut().insert("x-antix-trace-id", trace_value);
            if let Some(ra) = retry_after {
                res.headers_mut().insert(header::RETRY_AFTER, ra);
            }
            for name in [
                "x-request-id",
                "request-id",
                "anthropic-ratelimit-requests-remaining",
            ] {
                if let Some(v) = upstream_headers.get(name) {
                    res.headers_mut().insert(name, v.clone());
                }
            }
            let code = res.status().as_u16();
            (res, code)
        };
        let capture_limit = self.services.settings.limits.max_stored_body_bytes as usize;
        let captured = Capture::of(&body, capture_limit);
        if let Some(p) = take_pending(pending) {
            p.finish(|d| {
                d.status = recorded_status;
                d.outcome = if is_json_error {
                    Outcome::Ok
                } else {
                    Outcome::UpstreamError
                };
                if !is_json_error {
                    d.error = Some(format!(
                        "upstream answered HTTP {} with a non-JSON body",
                        status.as_u16()
                    ));
                }
                d.response_body = captured;
            });
        }
        Ok(res)
    }
}

/// Moves the pending trace out of the `&mut` slot (leaving an empty one that records nothing).
fn take_pending(slot: &mut PendingTrace) -> Option<PendingTrace> {
    slot.take()
}

fn trace_header(id: &str) -> HeaderValue {
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn is_json_request(parts: &http::request::Parts) -> bool {
    match parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        Some(ct) => {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("application/json") || ct.contains("+json")
        }
        // SDKs always label JSON; an unlabelled small body (or none) is read whole too.
        None => true,
    }
}

async fn read_limited(body: RequestBody, limit: u64) -> Result<Bytes, GatewayError> {
    let limited = http_body_util::Limited::new(body, limit as usize);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(GatewayError::BodyTooLarge(limit))
        }
        Err(e) => Err(GatewayError::BadRequestBody(e.to_string())),
    }
}

/// A non-JSON body streamed upstream as it arrives, with a capped copy for the trace and the
/// size limit enforced on the stream itself (a chunked body has no length to check up front).
fn capped_stream(
    body: RequestBody,
    limit: u64,
    capture_limit: usize,
    pending: &mut PendingTrace,
) -> reqwest::Body {
    let capture = Arc::new(std::sync::Mutex::new(Capture::new(capture_limit)));
    let sink = capture.clone();
    let mut seen: u64 = 0;
    let stream = body
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.0))
        .and_then(move |chunk| {
            seen += chunk.len() as u64;
            if let Ok(mut c) = sink.lock() {
                c.push(&chunk);
            }
            let over = seen > limit;
            async move {
                if over {
                    Err(std::io::Error::other(GatewayError::BodyTooLarge(limit)))
                } else {
                    Ok(chunk)
                }
            }
        });
    if let Some(d) = pending.draft_mut() {
        d.request_stream_capture = Some(capture);
    }
    reqwest::Body::wrap_stream(stream)
}

/// `/v1beta/models/{model}:method` → the model.
fn gemini_path_model(path: &str) -> Option<String> {
    let rest = path.split("/models/").nth(1)?;
    let model = rest.split(':').next()?;
    (!model.is_empty() && !model.contains('/')).then(|| model.to_owned())
}

/// Joins the fixed base with the client's path and query, and checks the result still points
/// at the base's host and port (nothing in the path may change the authority).
fn upstream_url(
    base: &url::Url,
    path: &str,
    query: Option<&str>,
) -> Result<url::Url, GatewayError> {
    let mut s = base.as_str().trim_end_matches('/').to_owned();
    s.push_str(path);
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    let url = url::Url::parse(&s)
        .map_err(|_| GatewayError::BadPath("the path does not form a valid URL"))?;
    if url.host_str() != base.host_str()
        || url.port_or_known_default() != base.port_or_known_default()
        || url.scheme() != base.scheme()
    {
        return Err(GatewayError::BadPath(
            "the path would change the upstream host",
        ));
    }
    Ok(url)
}

/// A reqwest error in words, without the URL (which may carry a `?key=`).
pub fn describe_reqwest_error(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut msg = if e.is_connect() {
        "connection failed".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_body() || e.is_decode() {
        "the response body broke off".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.contains("://") && !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_url_stays_on_the_configured_host() {
        let base = url::Url::parse("https://api.openai.com").unwrap();
        let u = upstream_url(&base, "/v1/chat/completions", Some("a=1")).unwrap();
        assert_eq!(u.as_str(), "https://api.openai.com/v1/chat/completions?a=1");
        let base = url::Url::parse("http://127.0.0.1:9000/prefix/").unwrap();
        let u = upstream_url(&base, "/v1/models", None).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9000/prefix/v1/models");
        assert!(
            upstream_url(&base, "@evil.com/x", None).is_err()
                || upstream_url(&base, "@evil.com/x", None).unwrap().host_str()
                    == Some("127.0.0.1")
        );
    }

    #[test]
    fn gemini_model_from_path() {
        assert_eq!(
            gemini_path_model("/v1beta/models/gemini-2.5-pro:streamGenerateContent").as_deref(),
            Some("gemini-2.5-pro")
        );
        assert_eq!(gemini_path_model("/v1beta/models"), None);
        assert_eq!(gemini_path_model("/v1/chat/completions"), None);
    }
}
