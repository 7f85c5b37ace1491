//! The proxy core, framework-free: takes an `http::Request` for an endpoint URL, authenticates
//! it, forwards it to the provider, and returns the provider's response as it streams in, while
//! the trace is assembled and handed to the recorder.
//!
//! One proxied call flows one way through named phases, each in a module of its own:
//!
//! 1. [`route`]: parse the endpoint URL (endpoint, provider, native path);
//! 2. resolve the endpoint ([`Gateway::handle`]): unknown is 404, archived is 410;
//! 3. [`caller`]: identify the caller (virtual key, BYOK, OAuth);
//! 4. [`inspect`]: read and inspect the body (model, streaming, output limit);
//! 5. [`target`]: choose the provider, path and wire format;
//! 6. [`admit`]: a virtual key's allow-lists, credential and limits;
//! 7. [`dispatch`]: call the provider (each request built by [`upstream`]), with retries
//!    ([`retry`]), load balancing ([`balance`]) and fallbacks ([`fallback`]);
//! 8. [`relay`]: relay the response (streamed through [`body::TracedBody`]) or the error.
//!
//! Their decisions travel in one [`call::Call`], from which the trace is filled at whichever
//! exit the call takes; the call records exactly one trace once its endpoint is known, however
//! it ends (success, refusal, upstream failure, client hang-up).
//!
//! Hot-path rules: no database round trip that a cache can answer (the store caches endpoints,
//! keys and credentials for a few seconds with single-flight loading), no buffering of response
//! bodies, trace writes off the request path.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::Services;
use crate::domain::{self, Endpoint, Provider};
use crate::providers::{Wire, multi};
use crate::recorder::{PendingTrace, Recorder};

pub mod admit;
pub mod balance;
pub mod body;
pub mod call;
pub mod caller;
mod dispatch;
pub mod error;
pub mod fallback;
pub mod headers;
pub mod inspect;
pub mod relay;
pub mod retry;
pub mod route;
pub mod target;
pub mod upstream;
pub mod websocket;

pub use body::ProxyBody;
use call::Call;
pub use call::TRACE_HEADER;
pub use error::GatewayError;
use route::{ProviderPath, Route};

/// Request bodies, as the server adapter hands them over.
pub type RequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, ClientBodyError>;

/// An error reading the client's request body (the connection broke, say). A concrete type:
/// boxed trait-object errors flowing through the async pipeline trip rustc's higher-ranked
/// lifetime inference in the server's handler.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientBodyError(pub String);

pub struct Gateway {
    services: Services,
    clients: upstream::Clients,
    recorder: Recorder,
    /// Cancelled when shutdown begins: new requests are refused with 503.
    stopping: CancellationToken,
    /// Cancelled when the shutdown grace period ends: streams still open are cut.
    cut: CancellationToken,
    routes: multi::Routes,
    balancer: balance::Balancer,
}

impl Gateway {
    pub fn new(
        services: Services,
        recorder: Recorder,
        stopping: CancellationToken,
        cut: CancellationToken,
    ) -> Result<Arc<Self>, reqwest::Error> {
        Ok(Arc::new(Gateway {
            clients: upstream::Clients::new(&services.settings)?,
            routes: services.settings.multi_routes.clone(),
            services,
            recorder,
            stopping,
            cut,
            balancer: balance::Balancer::default(),
        }))
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Handles one proxied request. Whatever answers it (the provider, the gateway), the
    /// response is inert in a browser (see [`headers::make_inert`]).
    pub async fn handle(&self, req: http::Request<RequestBody>) -> http::Response<ProxyBody> {
        self.inert(self.handle_call(req).await)
    }

    /// A response made inert in a browser (see [`headers::make_inert`]).
    pub fn inert(&self, mut res: http::Response<ProxyBody>) -> http::Response<ProxyBody> {
        headers::make_inert(res.headers_mut());
        res
    }

    async fn handle_call(&self, req: http::Request<RequestBody>) -> http::Response<ProxyBody> {
        let started = Instant::now();
        let started_at = domain::now_ms();
        // Backpressure: a request waits here while the trace queue is full (never in the
        // usual case), so every call stays recorded and memory stays bounded.
        self.recorder.room().await;
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
        let lookup = deadline(
            &self.services,
            "endpoint",
            self.services.store.endpoint_cached(route.endpoint),
        );
        let endpoint = match lookup.await {
            Ok(Some(e)) => e,
            Ok(None) => return GatewayError::UnknownEndpoint.response(family),
            Err(e) => return e.response(family),
        };
        if is_probe(&parts, &endpoint, route.query.as_deref()) {
            return probe_response();
        }
        let stored_path = match &route.query {
            Some(q) => format!("{}?{}", route.native_path, crate::redact::query(q)),
            None => route.native_path.clone(),
        };
        let mut call = Call::new(&parts, &endpoint, stored_path, started, started_at);
        call.memory = self.services.memory.empty();
        let mut call = PendingTrace::new(call, self.recorder.clone(), self.cut.clone());
        match self
            .prepare(&parts, body, &route, family, &endpoint, &mut call)
            .await
        {
            Ok(plan) => {
                self.dispatch(&parts, &route, endpoint.org_id, plan, call)
                    .await
            }
            Err(e) => relay::refusal(&e, family, call),
        }
    }

    /// Phases 3 to 6, each recording its decision in the call: who is calling, what the body
    /// says, where it goes, whether it may. Ends with the upstream request, ready to send.
    async fn prepare(
        &self,
        parts: &http::request::Parts,
        body: RequestBody,
        route: &Route,
        family: Provider,
        endpoint: &Endpoint,
        call: &mut Call,
    ) -> Result<Plan, GatewayError> {
        let settings = &self.services.settings;
        if endpoint.archived_at.is_some() {
            return Err(GatewayError::Archived);
        }
        if self.stopping.is_cancelled() {
            return Err(GatewayError::ShuttingDown);
        }

        let presented = caller::classify(&parts.headers, route.query.as_deref());
        call.secrets.clone_from(&presented.secrets);
        call.auth = presented.presented.auth_mode();
        call.key_hint = presented.presented.key_hint();
        let caller = caller::identify(&self.services, &presented.presented, endpoint).await?;
        call.key_id = caller.key().map(|k| k.id);
        if caller.key().is_none() && !endpoint.passthrough {
            return Err(GatewayError::PassthroughDisabled);
        }
        if let Some(key) = caller.key()
            && !key.limits.allows_endpoint(endpoint.id)
        {
            return Err(GatewayError::EndpointNotAllowed);
        }

        let capture_limit = settings.limits.max_stored_body_bytes as usize;
        let path_model = target::path_model(&route.native_path);
        let mut request = inspect::read(
            parts,
            body,
            &inspect::Reading {
                // The API as the path tells it; `multi` may still pick another provider for
                // the model, but not another kind of API.
                wire: Wire::classify(family, &parts.method, &route.native_path),
                path_model: path_model.as_deref(),
                strict: caller.key().is_some_and(|k| k.limits.limited()),
                limit: settings.limits.max_request_body_bytes,
                capture_limit,
                memory: &self.services.memory,
            },
            &mut call.memory,
        )
        .await?;
        call.request_body = std::mem::take(&mut request.copy);

        let target = target::choose(route, parts, family, &self.routes, &request)?;
        let (mut fallbacks, original) =
            self.fallbacks(parts, route, family, endpoint, &caller, &target, &request)?;
        let mut translation = None;
        if let Some(t) = target.translate {
            if caller.key().is_none() {
                return Err(GatewayError::TranslationNeedsKey(t.upstream));
            }
            let inspect::Body::Whole(b) = &request.body else {
                return Err(GatewayError::BadRequestBody(
                    "a request translated for another provider must be JSON".into(),
                ));
            };
            let gemini_stream = route.native_path.ends_with(":streamGenerateContent");
            let model = target.model.as_deref().unwrap_or_default();
            let model = model.strip_prefix("models/").unwrap_or(model);
            let out = crate::translate::request(t.client, t.upstream, b, model, gemini_stream)
                .map_err(GatewayError::Translation)?;
            let created = u64::try_from(call.started_at / 1000).unwrap_or_default();
            let ctx = out.context(model, created, &call.id.to_string());
            request.body = inspect::Body::Whole(Bytes::from(out.body));
            translation = Some((t, ctx));
        }
        call.provider = Some(target.provider);
        call.wire = Some(target.wire);
        call.model.clone_from(&target.model);
        call.is_stream = target.is_stream;

        let admitting = admit::Admitting {
            org: endpoint.org_id,
            target: &target,
            method: &parts.method,
            trace_id: call.id,
            // The reservation covers the dearest target the call may end on.
            at_least: match caller.key() {
                Some(k) if k.has_budget() => fallback::price(&mut fallbacks, &request.facts),
                _ => 0,
            },
        };
        let grant = admit::admit(&self.services, &caller, &admitting, &mut request.facts).await;
        call.facts = Some(Box::new(std::mem::take(&mut request.facts)));
        let mut grant = grant?;
        call.reservation = grant.reservation.take();
        for c in &grant.credentials {
            call.secrets.push(c.secret.expose_secret().to_owned());
        }
        let relay = relay::Relay {
            family,
            idle_timeout: settings.timeouts.idle,
            // A batch's results are read whole to settle it, up to the largest body taken in.
            capture_limit: if target.wire.billing() == crate::providers::Billing::BatchResults {
                capture_limit.max(settings.limits.max_request_body_bytes as usize)
            } else {
                capture_limit
            },
            shutdown: self.cut.clone(),
            memory: self.services.memory.clone(),
            hide_usage: target.inject_usage,
            is_stream: target.is_stream,
            batch_input: call
                .facts
                .as_deref()
                .and_then(|f| self.batch_input(&target, f, endpoint, &caller)),
            translation,
        };
        Ok(Plan {
            target,
            credentials: grant.credentials,
            body: Some(request.body),
            key_carriers: presented.key_carriers,
            relay,
            fallbacks,
            original,
        })
    }

    /// The fallbacks this call may use, and the client's request they are built from (kept
    /// only when there are some, and the body was read whole).
    #[expect(clippy::too_many_arguments, reason = "the phases' decisions so far")]
    fn fallbacks(
        &self,
        parts: &http::request::Parts,
        route: &Route,
        family: Provider,
        endpoint: &Endpoint,
        caller: &caller::Caller,
        target: &target::Target,
        request: &inspect::Inspected,
    ) -> Result<(Vec<fallback::Planned>, Option<fallback::Original>), GatewayError> {
        let listed = fallback::list(&parts.headers, endpoint)?;
        let inspect::Body::Whole(body) = &request.body else {
            return Ok((Vec::new(), None));
        };
        if listed.is_empty() {
            return Ok((Vec::new(), None));
        }
        let original = fallback::Original {
            family,
            wire: Wire::classify(family, &parts.method, &route.native_path),
            method: parts.method.clone(),
            path: route.native_path.clone(),
            body: body.clone(),
            is_stream: target.is_stream,
            include_usage: request.facts.include_usage,
            stream_options: request.facts.stream_options,
        };
        let key = caller.key();
        let planned = fallback::plan(&listed, &original, target, key.is_some(), |m| {
            key.is_none_or(|k| k.limits.allows_model(m))
        });
        Ok((planned, Some(original)))
    }
}

/// What phases 3 to 6 decided: where the call goes, with which credentials, the body to send
/// (again, for a retry, when it was read whole), and how to relay the answer.
struct Plan {
    target: target::Target,
    credentials: Vec<crate::credentials::UpstreamCredential>,
    body: Option<inspect::Body>,
    key_carriers: Vec<http::HeaderName>,
    relay: relay::Relay,
    /// Where the call may go when its target cannot serve it.
    fallbacks: Vec<fallback::Planned>,
    /// The client's request, for the fallbacks.
    original: Option<fallback::Original>,
}

impl Gateway {
    /// A batch input file uploaded with a virtual key: its requests are recorded when the
    /// provider accepts it, so the batch that uses it can be checked and priced.
    fn batch_input(
        &self,
        target: &target::Target,
        facts: &crate::metering::Facts,
        endpoint: &Endpoint,
        caller: &caller::Caller,
    ) -> Option<relay::BatchInput> {
        (target.wire == Wire::OpenAiFileUpload && !facts.batch.is_empty()).then(|| {
            relay::BatchInput {
                store: self.services.store.clone(),
                org: endpoint.org_id,
                key: caller.key().map(|k| k.id),
                items: facts.batch.clone(),
            }
        })
    }
}

/// A database call on the request path, bounded by `ANTIX_DATABASE_TIMEOUT_MS`: a database
/// that hangs or fails gives the client a 503 with Retry-After, never a hang (and never a 401).
pub(crate) async fn deadline<T, E: std::fmt::Display>(
    services: &Services,
    what: &'static str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, GatewayError> {
    match tokio::time::timeout(services.settings.timeouts.database, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, what, "database call failed on the request path");
            Err(GatewayError::StoreUnavailable)
        }
        Err(_) => {
            tracing::warn!(what, "database call past its deadline on the request path");
            Err(GatewayError::StoreUnavailable)
        }
    }
}

/// A connectivity probe: `HEAD` with no credential at all, at an active endpoint (Claude Code
/// sends one to its base URL at every start). Answered here as a reachable API answers it, and
/// not recorded: it is not a model call and no provider would bill it.
fn is_probe(parts: &http::request::Parts, endpoint: &Endpoint, query: Option<&str>) -> bool {
    parts.method == http::Method::HEAD
        && endpoint.archived_at.is_none()
        && caller::classify(&parts.headers, query).presented == caller::Presented::None
}

fn probe_response() -> http::Response<ProxyBody> {
    let mut res = http::Response::new(ProxyBody::empty());
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}
