//! Response bodies on their way to the client (the relay phase's streaming half). [`TracedBody`]
//! forwards every upstream chunk the moment it arrives (no buffering beyond one SSE event when usage is being hidden), keeps a
//! capped copy for the trace, measures time to first byte, enforces the idle timeout, and
//! turns upstream breaks, timeouts and shutdown into a provider-shaped error event. Whatever
//! way it ends (completion, error, or the client going away and dropping it) it hands exactly
//! one trace to the recorder.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use http_body::Frame;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::call::Call;
use crate::capture::Capture;
use crate::domain::{Outcome, Provider};
use crate::providers::openai::HiddenUsageFilter;
use crate::recorder::PendingTrace;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub String);

/// The body of every proxy response.
pub enum ProxyBody {
    Full(Option<Bytes>),
    Traced(Box<TracedBody>),
}

impl ProxyBody {
    pub fn full(b: Bytes) -> Self {
        ProxyBody::Full(Some(b))
    }

    pub fn empty() -> Self {
        ProxyBody::Full(None)
    }
}

impl http_body::Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ProxyBody::Full(b) => Poll::Ready(
                b.take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            ProxyBody::Traced(t) => Pin::new(t.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(b) => b.as_ref().is_none_or(Bytes::is_empty),
            ProxyBody::Traced(t) => matches!(t.state, State::Done),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            ProxyBody::Full(Some(b)) => http_body::SizeHint::with_exact(b.len() as u64),
            ProxyBody::Full(None) => http_body::SizeHint::with_exact(0),
            ProxyBody::Traced(t) => match t.expected_len {
                Some(n) => http_body::SizeHint::with_exact(n.saturating_sub(t.delivered)),
                None => http_body::SizeHint::default(),
            },
        }
    }
}

enum State {
    Streaming,
    /// An error event to send before failing the body.
    ErrorEvent(Bytes),
    /// The error event is out; wait a moment so the server flushes it (it flushes when the body
    /// is pending) before the body fails and the connection is dropped.
    Flushing(Pin<Box<tokio::time::Sleep>>),
    Failed(String),
    Done,
}

/// Long enough for the server to flush the error event, short enough to go unnoticed.
const FLUSH_BEFORE_FAIL: Duration = Duration::from_millis(20);

pub struct TracedBody {
    upstream: BoxStream<'static, Result<Bytes, reqwest::Error>>,
    idle_timeout: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    filter: Option<HiddenUsageFilter>,
    /// The answer of a provider of another shape, rewritten into the client's as it streams.
    translator: Option<crate::translate::StreamTranslator>,
    capture: Capture,
    family: Provider,
    sse: bool,
    first_byte: Option<Instant>,
    /// The upstream's Content-Length: a server stops reading a body once that many bytes went
    /// out, so the trace must complete on the last byte, not on an end-of-stream poll.
    expected_len: Option<u64>,
    delivered: u64,
    pending: Option<PendingTrace<Call>>,
    state: State,
}

pub struct TracedBodyParts {
    pub translator: Option<crate::translate::StreamTranslator>,
    pub upstream: BoxStream<'static, Result<Bytes, reqwest::Error>>,
    pub idle_timeout: Duration,
    pub shutdown: CancellationToken,
    pub hide_usage: bool,
    pub capture_limit: usize,
    pub capture_memory: crate::memory::Held,
    pub family: Provider,
    pub sse: bool,
    pub expected_len: Option<u64>,
    pub pending: PendingTrace<Call>,
}

impl TracedBody {
    pub fn new(p: TracedBodyParts) -> Self {
        TracedBody {
            upstream: p.upstream,
            idle_timeout: p.idle_timeout,
            idle: Box::pin(tokio::time::sleep(p.idle_timeout)),
            shutdown: Box::pin(p.shutdown.cancelled_owned()),
            filter: p.hide_usage.then(HiddenUsageFilter::default),
            translator: p.translator,
            capture: Capture::within(p.capture_limit, p.capture_memory),
            family: p.family,
            sse: p.sse,
            first_byte: None,
            expected_len: p.expected_len,
            delivered: 0,
            pending: Some(p.pending),
            state: State::Streaming,
        }
    }

    fn finish(&mut self, outcome: Outcome, error: Option<String>) {
        if let Some(mut p) = self.pending.take() {
            self.hand_over(&mut p);
            p.finish(outcome, error);
        }
    }

    /// What reached the client, into the call's trace.
    fn hand_over(&mut self, call: &mut Call) {
        call.response_body = std::mem::take(&mut self.capture).finish();
        call.mark_first_byte(self.first_byte);
    }

    /// Ends the body with an error: an error event first when the client is reading SSE.
    fn fail(&mut self, outcome: Outcome, status: u16, message: String) {
        self.finish(outcome, Some(message.clone()));
        self.state = if self.sse {
            State::ErrorEvent(crate::providers::stream_error_event(
                self.family,
                status,
                &message,
            ))
        } else {
            State::Failed(message)
        };
    }

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.state, State::Streaming) {
                State::Done => {
                    this.state = State::Done;
                    return Poll::Ready(None);
                }
                State::Failed(msg) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(BodyError(msg))));
                }
                State::ErrorEvent(ev) => {
                    this.state = State::Flushing(Box::pin(tokio::time::sleep(FLUSH_BEFORE_FAIL)));
                    return Poll::Ready(Some(Ok(Frame::data(ev))));
                }
                State::Flushing(mut sleep) => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        this.state = State::Flushing(sleep);
                        return Poll::Pending;
                    }
                    this.state = State::Failed("stream ended with an error".into());
                    continue;
                }
                State::Streaming => {}
            }
            if this.shutdown.as_mut().poll(cx).is_ready() {
                this.fail(
                    Outcome::ShutdownAborted,
                    503,
                    "The gateway is shutting down; the response was cut short.".into(),
                );
                continue;
            }
            match Pin::new(&mut this.upstream).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if this.first_byte.is_none() {
                        this.first_byte = Some(Instant::now());
                    }
                    this.idle
                        .as_mut()
                        .reset(tokio::time::Instant::now() + this.idle_timeout);
                    this.capture.push(&chunk);
                    this.delivered += chunk.len() as u64;
                    let out = match (this.translator.as_mut(), this.filter.as_mut()) {
                        (Some(t), _) => t.push(&chunk),
                        (None, Some(f)) => f.push(&chunk),
                        (None, None) => chunk,
                    };
                    if this.expected_len.is_some_and(|n| this.delivered >= n) {
                        this.finish(Outcome::Ok, None);
                        this.state = State::Done;
                    }
                    if out.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                Poll::Ready(Some(Err(e))) => {
                    let msg = format!(
                        "The upstream provider's response broke off: {}",
                        crate::egress::describe_error(&e)
                    );
                    this.fail(Outcome::UpstreamCut, 502, msg);
                    continue;
                }
                Poll::Ready(None) => {
                    let rest = match (this.translator.as_mut(), this.filter.as_mut()) {
                        (Some(t), _) => Some(t.finish()),
                        (None, Some(f)) => Some(f.finish()),
                        (None, None) => None,
                    };
                    this.finish(Outcome::Ok, None);
                    this.state = State::Done;
                    match rest {
                        Some(r) if !r.is_empty() => return Poll::Ready(Some(Ok(Frame::data(r)))),
                        _ => return Poll::Ready(None),
                    }
                }
                Poll::Pending => {
                    if this.idle.as_mut().poll(cx).is_ready() {
                        let secs = this.idle_timeout.as_secs_f64();
                        this.fail(
                            Outcome::Timeout,
                            504,
                            format!(
                                "The upstream provider sent nothing for {secs:.0} s (idle timeout)."
                            ),
                        );
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for TracedBody {
    fn drop(&mut self) {
        // Still streaming when dropped: the client went away (or the server is stopping).
        // `PendingTrace`'s own drop records that, with what was captured so far.
        if let Some(mut p) = self.pending.take() {
            self.hand_over(&mut p);
        }
    }
}
