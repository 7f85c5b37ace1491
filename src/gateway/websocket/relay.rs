//! One upgraded session: frames relayed both ways as they come, each `response.create` admitted
//! against the caller's limits and recorded as its own trace (see the parent module).

use super::*;

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
