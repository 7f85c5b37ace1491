//! Phase 7: call upstream, with retries ([`super::retry`]) and fallbacks ([`super::fallback`]).
//!
//! A call goes to its target; when the provider is rate-limited, overloaded, failing (429,
//! 5xx, 529) or unreachable before anything reached the client, it is tried again (on another
//! of the organization's credentials when it has several; else after a backoff), within the
//! attempts and the deadline allowed. When that target's tries are exhausted, or its answer
//! says the model cannot serve the call, the next fallback target gets the same treatment.
//! Never once the answer has started: a 2xx head is relayed whatever happens next. Each try is
//! recorded in the call's attempts.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use secrecy::ExposeSecret;

use super::call::Call;
use super::route::Route;
use super::upstream::SendError;
use super::{
    Gateway, GatewayError, Plan, ProxyBody, admit, balance, fallback, inspect, relay, retry,
    target, upstream,
};
use crate::credentials::UpstreamCredential;
use crate::domain::{Attempt, CredentialId, OrgId};
use crate::recorder::PendingTrace;

/// How one target's tries ended.
enum Tried {
    /// An answer to relay.
    Answer(reqwest::Response),
    /// No answer to relay: the client gets this error.
    Error(SendError),
}

/// One target, the credentials it may use, and the body it sends.
struct Leg {
    target: target::Target,
    credentials: Vec<UpstreamCredential>,
    body: Option<inspect::Body>,
    fallback: bool,
}

/// Where the request goes, and with what, the same for every leg.
struct Outbound<'a> {
    parts: &'a http::request::Parts,
    route: &'a Route,
    org: OrgId,
    key_carriers: &'a [http::HeaderName],
    started: Instant,
}

impl Gateway {
    pub(super) async fn dispatch(
        &self,
        parts: &http::request::Parts,
        route: &Route,
        org: OrgId,
        plan: Plan,
        mut call: PendingTrace<Call>,
    ) -> http::Response<ProxyBody> {
        let Plan {
            target,
            credentials,
            body,
            key_carriers,
            mut relay,
            fallbacks,
            original,
        } = plan;
        let family = relay.family;
        let out = Outbound {
            parts,
            route,
            org,
            key_carriers: &key_carriers,
            started: Instant::now(),
        };
        // A virtual key always comes with the organization's credentials; a caller's own
        // key with none.
        let keyed = !credentials.is_empty();
        let mut leg = Leg {
            target,
            credentials,
            body,
            fallback: false,
        };
        let mut fallbacks = fallbacks.into_iter();
        loop {
            let can_fall_back = original.is_some() && fallbacks.len() > 0;
            let (tried, worth) = self.try_leg(&out, &mut leg, &mut call, can_fall_back).await;
            let next = match &original {
                Some(o) if worth && can_fall_back => {
                    self.next_leg(&mut fallbacks, o, &out, keyed, &mut call)
                        .await
                }
                _ => None,
            };
            if let Some((next, translation)) = next {
                relay.translation = translation;
                relay.hide_usage = next.target.inject_usage;
                leg = next;
                continue;
            }
            return match tried {
                Tried::Answer(r) => relay::response(relay, r, call).await,
                Tried::Error(e) => {
                    call.sent_unanswered = e.reached;
                    relay::refusal(&e.error, family, call)
                }
            };
        }
    }

    /// Tries one target until it answers, its tries run out, or it fails in a way the next
    /// target may fix (then `true`: worth falling back, when `can_fall_back`).
    async fn try_leg(
        &self,
        out: &Outbound<'_>,
        leg: &mut Leg,
        call: &mut PendingTrace<Call>,
        can_fall_back: bool,
    ) -> (Tried, bool) {
        let settings = &self.services.settings;
        let retries = &settings.retries;
        let first_byte = settings.timeouts.first_byte;
        let limit = settings.limits.max_request_body_bytes;
        let target = &leg.target;
        let credentials = &leg.credentials;
        let mut tried: Vec<CredentialId> = Vec::new();
        self.balancer
            .refresh(&self.services.store, out.org, target.provider, credentials)
            .await;
        let mut n = 0;
        loop {
            n += 1;
            let credential = self.balancer.pick(credentials, &tried, rand::random());
            let Some(this_body) = leg.body.take() else {
                let error = GatewayError::UpstreamUnreachable(
                    "the request body cannot be sent again".into(),
                );
                return (
                    Tried::Error(SendError {
                        error,
                        reached: false,
                    }),
                    false,
                );
            };
            leg.body = this_body.again();
            let request = match upstream::request(
                &self.clients,
                out.parts,
                target.query.as_deref().or(out.route.query.as_deref()),
                out.key_carriers,
                target,
                credential,
                this_body,
            ) {
                Ok(r) => r,
                Err(error) => {
                    let e = SendError {
                        error,
                        reached: false,
                    };
                    return (Tried::Error(e), false);
                }
            };
            if let Some(c) = credential {
                let tokens = call
                    .facts
                    .as_deref()
                    .map_or(0, |f| f.request_bytes / 4 + f.max_output.unwrap_or(0));
                self.balancer.count(c, tokens);
            }
            call.sent_unanswered = true;
            let t0 = Instant::now();
            let sent = upstream::send(request, first_byte, || {
                call.request_body.exceeded(limit).then_some(limit)
            })
            .await;
            let attempt = |status: u16, error: Option<String>| Attempt {
                provider: target.provider.as_str().to_owned(),
                model: target.model.clone(),
                credential: credential.map(|c| c.name.clone()),
                status,
                latency_ms: t0.elapsed().as_millis() as u64,
                error,
                translated: target.translate.map(target::Translation::label),
                fallback: leg.fallback,
                skipped: false,
            };
            let room = leg.body.is_some()
                && n < retries.attempts as usize
                && out.started.elapsed() < retries.deadline;
            match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let why = retry::failure(status, response.headers());
                    match (why, credential) {
                        (Some(f), Some(c)) => self.balancer.failed(&self.services.store, c, f),
                        (None, Some(c)) if status < 500 => {
                            self.balancer.succeeded(&self.services.store, c)
                        }
                        _ => {}
                    }
                    let response = if can_fall_back && fallback::worth_reading(status) {
                        match read_error(response, first_byte).await {
                            Ok((r, true)) => {
                                let e = format!("HTTP {status}: the model cannot serve this call");
                                call.attempts.push(attempt(status, Some(e)));
                                return (Tried::Answer(r), true);
                            }
                            Ok((r, false)) => r,
                            Err(error) => {
                                call.attempts.push(attempt(status, Some(error.to_string())));
                                let e = SendError {
                                    error,
                                    reached: true,
                                };
                                return (Tried::Error(e), true);
                            }
                        }
                    } else {
                        response
                    };
                    if let Some(f) = why
                        && room
                        && let Some(wait) =
                            retry::wait(f, n, credentials, credential, &tried, retries, out.started)
                    {
                        call.attempts
                            .push(attempt(status, Some(format!("HTTP {status}"))));
                        if let Some(c) = credential {
                            tried.push(c.id);
                        }
                        drop(response);
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    let falls = why.is_some() && can_fall_back;
                    if falls || !call.attempts.is_empty() || target.translate.is_some() {
                        let error = falls.then(|| format!("HTTP {status}"));
                        call.attempts.push(attempt(status, error));
                    }
                    return (Tried::Answer(response), falls);
                }
                Err(e) => {
                    // Only a connection never made is certain not to have reached (and been
                    // billed by) the provider: nothing else is tried again.
                    if !e.reached {
                        if let Some(c) = credential {
                            self.balancer.failed(
                                &self.services.store,
                                c,
                                balance::Failure::Unavailable,
                            );
                        }
                        if room
                            && let Some(wait) = retry::wait(
                                balance::Failure::Unavailable,
                                n,
                                credentials,
                                credential,
                                &tried,
                                retries,
                                out.started,
                            )
                        {
                            call.attempts.push(attempt(0, Some(e.error.to_string())));
                            if let Some(c) = credential {
                                tried.push(c.id);
                            }
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                    }
                    let falls = !e.reached && can_fall_back;
                    if falls || !call.attempts.is_empty() {
                        call.attempts.push(attempt(0, Some(e.error.to_string())));
                    }
                    return (Tried::Error(e), falls);
                }
            }
        }
    }

    /// The next fallback the call can use, within the deadline; those it cannot (no
    /// credential, a request that does not translate) are recorded as skipped.
    async fn next_leg(
        &self,
        fallbacks: &mut impl Iterator<Item = fallback::Planned>,
        original: &fallback::Original,
        out: &Outbound<'_>,
        keyed: bool,
        call: &mut PendingTrace<Call>,
    ) -> Option<(Leg, Option<relay::Translated>)> {
        for p in fallbacks.by_ref() {
            if out.started.elapsed() >= self.services.settings.retries.deadline {
                return None;
            }
            let f = &p.fallback;
            let skipped = |reason: String| Attempt {
                provider: f.provider.as_str().to_owned(),
                model: Some(f.model.clone()),
                credential: f.credential.clone(),
                status: 0,
                latency_ms: 0,
                error: Some(format!("skipped: {reason}")),
                translated: None,
                fallback: true,
                skipped: true,
            };
            let created = u64::try_from(call.started_at / 1000).unwrap_or_default();
            let leg = match p.leg(original, &call.id.to_string(), created) {
                Ok(l) => l,
                Err(reason) => {
                    call.attempts.push(skipped(reason));
                    continue;
                }
            };
            let credentials = if keyed {
                match admit::credentials_for(&self.services, out.org, f.provider).await {
                    Ok(all) => {
                        let named: Vec<UpstreamCredential> = all
                            .into_iter()
                            .filter(|c| f.credential.as_ref().is_none_or(|n| &c.name == n))
                            .collect();
                        if named.is_empty() {
                            let name = f.credential.as_deref().unwrap_or_default();
                            call.attempts.push(skipped(format!(
                                "no enabled {} credential named {name}",
                                f.provider
                            )));
                            continue;
                        }
                        named
                    }
                    Err(e) => {
                        call.attempts.push(skipped(e.to_string()));
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            for c in &credentials {
                call.secrets.push(c.secret.expose_secret().to_owned());
            }
            call.provider = Some(leg.target.provider);
            call.wire = Some(leg.target.wire);
            call.model.clone_from(&leg.target.model);
            if let Some(facts) = call.facts.as_mut() {
                facts.models = vec![f.model.clone()];
            }
            let next = Leg {
                target: leg.target,
                credentials,
                body: Some(inspect::Body::Whole(leg.body)),
                fallback: true,
            };
            return Some((next, leg.translation));
        }
        None
    }
}

/// Reads the start of an error answer (at most [`fallback::MAX_ERROR_BODY`]) to learn whether
/// it says the model cannot serve the call; gives back the answer whole, to relay as it came.
async fn read_error(
    mut response: reqwest::Response,
    within: Duration,
) -> Result<(reqwest::Response, bool), GatewayError> {
    let status = response.status();
    let headers = response.headers().clone();
    let version = response.version();
    let mut head = Vec::new();
    let mut ended = false;
    while head.len() < fallback::MAX_ERROR_BODY {
        match tokio::time::timeout(within, response.chunk()).await {
            Ok(Ok(Some(c))) => head.extend_from_slice(&c),
            Ok(Ok(None)) => {
                ended = true;
                break;
            }
            Ok(Err(e)) => {
                return Err(GatewayError::UpstreamUnreachable(
                    crate::egress::describe_error(&e),
                ));
            }
            Err(_) => return Err(GatewayError::UpstreamTimeout),
        }
    }
    let says = fallback::model_cannot_serve(status.as_u16(), &head);
    let head = Bytes::from(head);
    let body = if ended {
        reqwest::Body::from(head)
    } else {
        let first = futures_util::stream::once(async move { Ok::<_, reqwest::Error>(head) });
        reqwest::Body::wrap_stream(first.chain(response.bytes_stream()))
    };
    let mut rebuilt = http::Response::new(body);
    *rebuilt.status_mut() = status;
    *rebuilt.headers_mut() = headers;
    *rebuilt.version_mut() = version;
    Ok((reqwest::Response::from(rebuilt), says))
}
