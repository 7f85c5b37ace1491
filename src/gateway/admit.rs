//! Phase: admit. A passthrough caller (BYOK, OAuth) brings its own credential and goes through
//! as it is. A virtual key spends the organization's credential, so its rules hold here, on
//! every API (see [`crate::providers::apis`]): a key with limits (a budget, a model allow-list,
//! a token rate limit) may not call an API the gateway cannot meter unless an admin allowed it;
//! every model the call names (the body's, the path's, each request of a batch, a form's) must
//! be allowed; then the organization's credential for the target's provider, and the key's
//! limits: the call counted against its rate limits, its estimated cost ([`crate::metering`])
//! reserved against its budgets ([`crate::limits`]). Fails closed: without the database, no
//! limited call.

use super::GatewayError;
use super::caller::Caller;
use super::target::Target;
use crate::Services;
use crate::credentials::{self, UpstreamCredential};
use crate::domain::{self, OrgId, TraceId, VirtualKey};
use crate::limits::Reservation;
use crate::metering::{self, EstimateError, Facts};
use crate::providers::{Billing, Wire};

/// What admission grants a call.
#[derive(Debug, Default)]
pub struct Grant {
    /// The organization's enabled credentials for the target's provider, for a virtual key
    /// (the balancer picks one per attempt).
    pub credentials: Vec<UpstreamCredential>,
    /// The budget reservation held for the call.
    pub reservation: Option<Reservation>,
}

/// The call being admitted.
pub struct Admitting<'a> {
    pub org: OrgId,
    pub target: &'a Target,
    pub method: &'a http::Method,
    pub trace_id: TraceId,
    /// Reserve at least this much (the dearest fallback the call may end on).
    pub at_least: i64,
}

pub async fn admit(
    services: &Services,
    caller: &Caller,
    call: &Admitting<'_>,
    facts: &mut Facts,
) -> Result<Grant, GatewayError> {
    let Some(key) = caller.key() else {
        return Ok(Grant::default());
    };
    let target = call.target;
    let limits = &key.limits;
    let strict = limits.limited() && !limits.allow_unmetered;
    let billing = target.wire.billing();
    let api = || format!("{} {}", call.method, target.path);
    if strict && billing == Billing::Unmetered {
        return Err(GatewayError::UnmeteredApi(api()));
    }
    if strict && let Some(feature) = &facts.unpriced_feature {
        return Err(GatewayError::UnmeteredApi(format!(
            "{} with {feature}",
            api()
        )));
    }
    if target.wire == Wire::GeminiBatch && facts.batch_file.is_some() && strict {
        return Err(GatewayError::UnmeteredApi(format!(
            "{} (a batch whose requests are in a file)",
            api()
        )));
    }
    if target.wire == Wire::OpenAiBatch
        && let Some(file) = facts.batch_file.clone()
    {
        // An OpenAI batch names its requests by file: the one read when it was uploaded.
        let found = super::deadline(
            services,
            "batch input",
            services.store.batch_input(call.org, &file),
        )
        .await;
        match found {
            Ok(Some(items)) => {
                for i in &items {
                    if !facts.models.contains(&i.model) {
                        facts.models.push(i.model.clone());
                    }
                }
                facts.batch = items;
            }
            Ok(None) if strict => return Err(GatewayError::UnknownBatchInput(file)),
            Ok(None) => {}
            Err(e) => return Err(e),
        }
    }
    if limits.limited()
        && billing.metered()
        && billing != Billing::BatchCreate
        && facts.models.is_empty()
    {
        return Err(GatewayError::ModelRequired);
    }
    if let Some(m) = facts.models.iter().find(|m| !limits.allows_model(m)) {
        return Err(GatewayError::ModelNotAllowed(m.clone()));
    }
    let credentials = credentials_for(services, call.org, target.provider).await?;
    let reservation = reserve(services, key, call, facts).await?;
    Ok(Grant {
        credentials,
        reservation,
    })
}

/// The organization's enabled credentials for a provider (at least one, or the call cannot
/// go out).
pub async fn credentials_for(
    services: &Services,
    org: OrgId,
    provider: crate::domain::Provider,
) -> Result<Vec<UpstreamCredential>, GatewayError> {
    let all = super::deadline(
        services,
        "credential",
        credentials::all_cached(&services.store, &services.keys, org, provider),
    )
    .await?;
    let enabled: Vec<UpstreamCredential> = all.into_iter().filter(|c| c.enabled).collect();
    if enabled.is_empty() {
        return Err(GatewayError::NoProviderCredential(provider));
    }
    Ok(enabled)
}

/// Counts the call against the key's rate limits and reserves its estimated cost against its
/// budgets.
async fn reserve(
    services: &Services,
    key: &VirtualKey,
    call: &Admitting<'_>,
    facts: &Facts,
) -> Result<Option<Reservation>, GatewayError> {
    let now = domain::now_ms();
    let amount = if key.has_budget() {
        metering::estimate(call.target.wire, facts)
            .map_err(|e| match e {
                EstimateError::Unpriced(m) => GatewayError::UnpricedModel(m),
                EstimateError::NoModel => GatewayError::ModelRequired,
            })?
            .max(call.at_least)
    } else {
        0
    };
    let Some(mut admission) = key.admission(call.trace_id, now, amount) else {
        return Ok(None);
    };
    admission.owner = Some(services.instance.clone());
    match super::deadline(services, "admission", services.store.admit(&admission)).await {
        Err(e) => Err(e),
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
