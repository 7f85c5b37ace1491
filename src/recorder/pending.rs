//! A call whose trace is not written yet. Whatever way the call ends, it records exactly one
//! trace: [`PendingTrace::finish`] when the caller saw the end, or its `Drop` when the call was
//! abandoned (the client hung up while the gateway waited, or the gateway is shutting down), with
//! whatever the call knew by then.

use std::ops::{Deref, DerefMut};

use tokio_util::sync::CancellationToken;

use super::{Recorder, TraceDraft};
use crate::domain::Outcome;

/// What a call knows, turned into a trace at its exit.
pub trait Recordable: Default {
    /// The trace of this call, ended with `outcome` (and `error`, when the exit names one).
    fn into_draft(self, outcome: Outcome, error: Option<String>) -> TraceDraft;
}

/// Owns a call's state until its trace is handed to the recorder. Derefs to the call, so the
/// pipeline that fills it reads as plain field assignments.
pub struct PendingTrace<C: Recordable> {
    call: C,
    recorder: Recorder,
    /// Cancelled when the gateway cuts calls short at shutdown: a call dropped after that was
    /// aborted by us, not abandoned by its client.
    shutdown: CancellationToken,
    done: bool,
}

impl<C: Recordable> PendingTrace<C> {
    pub fn new(call: C, recorder: Recorder, shutdown: CancellationToken) -> Self {
        PendingTrace {
            call,
            recorder,
            shutdown,
            done: false,
        }
    }

    /// Records the trace now.
    pub fn finish(mut self, outcome: Outcome, error: Option<String>) {
        self.record(outcome, error);
    }

    fn record(&mut self, outcome: Outcome, error: Option<String>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let call = std::mem::take(&mut self.call);
        self.recorder.submit(call.into_draft(outcome, error));
    }
}

impl<C: Recordable> Deref for PendingTrace<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.call
    }
}

impl<C: Recordable> DerefMut for PendingTrace<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.call
    }
}

impl<C: Recordable> Drop for PendingTrace<C> {
    fn drop(&mut self) {
        let (outcome, error) = if self.shutdown.is_cancelled() {
            (
                Outcome::ShutdownAborted,
                "gateway shut down before the response completed",
            )
        } else {
            (
                Outcome::ClientDisconnected,
                "client disconnected before the response completed",
            )
        };
        self.record(outcome, Some(error.into()));
    }
}
