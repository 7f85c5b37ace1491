//! Phase: admit. A passthrough caller (BYOK, OAuth) brings its own credential and goes through
//! as it is. A virtual key spends the organization's credential, so its rules hold here: the
//! model allow-list, the organization's credential for the target's provider, and the key's
//! limits (the call counted against its rate limits, its estimated cost reserved against its
//! budgets; see [`crate::limits`]). Fails closed: without the database, no limited call.

use super::GatewayError;
use super::caller::Caller;
use super::target::Target;
use crate::Services;
use crate::credentials::{self, UpstreamCredential};
use crate::domain::{self, OrgId, TraceId, VirtualKey};
use crate::limits::{self, Reservation};

/// What admission grants a call.
#[derive(Debug, Default)]
pub struct Grant {
    /// The organization's credential, for a virtual key.
    pub credential: Option<UpstreamCredential>,
    /// The budget reservation held for the call.
    pub reservation: Option<Reservation>,
}

pub async fn admit(
    services: &Services,
    caller: &Caller,
    org: OrgId,
    target: &Target,
    trace_id: TraceId,
    request_len: usize,
    max_output: Option<u64>,
) -> Result<Grant, GatewayError> {
    let Some(key) = caller.key() else {
        return Ok(Grant::default());
    };
    if let Some(m) = &target.model
        && !key.limits.allows_model(m)
    {
        return Err(GatewayError::ModelNotAllowed(m.clone()));
    }
    let credential = credential(services, org, target).await?;
    let reservation = reserve(services, key, trace_id, target, request_len, max_output).await?;
    Ok(Grant {
        credential: Some(credential),
        reservation,
    })
}

async fn credential(
    services: &Services,
    org: OrgId,
    target: &Target,
) -> Result<UpstreamCredential, GatewayError> {
    let provider = target.provider;
    credentials::get_cached(&services.store, &services.keys, org, provider)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, org = %org, provider = provider.as_str(), "credential unavailable");
            GatewayError::StoreUnavailable
        })?
        .ok_or(GatewayError::NoProviderCredential(provider))
}

/// Counts the call against the key's rate limits and reserves its estimated cost against its
/// budgets.
async fn reserve(
    services: &Services,
    key: &VirtualKey,
    trace_id: TraceId,
    target: &Target,
    request_len: usize,
    max_output: Option<u64>,
) -> Result<Option<Reservation>, GatewayError> {
    let now = domain::now_ms();
    let amount = if key.has_budget() && target.wire.metered() {
        let model = target.model.as_deref().unwrap_or("");
        limits::estimate_cost(model, request_len, max_output)
            .ok_or_else(|| GatewayError::UnpricedModel(model.to_owned()))?
    } else {
        0
    };
    let Some(admission) = key.admission(trace_id, now, amount) else {
        return Ok(None);
    };
    match services.store.admit(&admission).await {
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
