//! Budget alerts (admins): the webhook, thresholds and organization budget, the signing
//! secret, the latest alerts, and a test delivery. The rules are [`antix::manage::alerts`].

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::ApiError;
use crate::model::{AlertTest, AlertsPage};

#[server(endpoint = "alerts", input = GetUrl)]
pub async fn get_alerts() -> Result<AlertsPage, ApiError> {
    use super::ssr::*;
    use crate::model::AlertEventView;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        let v = antix::manage::alerts::get(&s.store, &s.keys, &actor).await?;
        let events = v
            .recent
            .iter()
            .map(|e| {
                let state = if e.delivered_at.is_some() {
                    "delivered"
                } else if e.next_attempt_at.is_some() {
                    "retrying"
                } else if e.attempts > 0 {
                    "failed"
                } else {
                    "not sent"
                };
                AlertEventView {
                    id: e.id,
                    created_at: e.created_at,
                    message: antix::alerts::message(e),
                    state: state.into(),
                    attempts: e.attempts,
                    detail: e.last_error.clone().or_else(|| {
                        e.last_status
                            .map(|st| format!("The webhook answered {st}."))
                    }),
                }
            })
            .collect();
        Ok(AlertsPage {
            webhook_url: v.settings.webhook_url.unwrap_or_default(),
            thresholds: v
                .settings
                .thresholds
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            org_monthly_budget: v
                .settings
                .org_monthly_budget_nanos
                .map(crate::format::usd_exact)
                .unwrap_or_default(),
            signing_secret: v.signing_secret,
            events,
        })
    })
    .await
}

#[server(endpoint = "update_alerts")]
pub async fn update_alerts(
    webhook_url: String,
    thresholds: String,
    org_monthly_budget: String,
) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        let budget = crate::format::parse_usd(&org_monthly_budget)
            .map_err(|m| ApiError::invalid("org_monthly_budget", m))?;
        let input = antix::manage::alerts::AlertInput {
            webhook_url,
            thresholds,
            org_monthly_budget_nanos: budget,
        };
        antix::manage::alerts::update(&s.store, &s.settings, &actor, &input).await?;
        Ok(())
    })
    .await
}

/// Replaces the signing secret (receivers must be given the new one).
#[server(endpoint = "rotate_alert_secret")]
pub async fn rotate_alert_secret() -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        antix::manage::alerts::rotate_secret(&s.store, &s.keys, &actor).await?;
        Ok(())
    })
    .await
}

/// Posts a sample alert to the saved webhook now.
#[server(endpoint = "test_alert")]
pub async fn test_alert() -> Result<AlertTest, ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        let sender = antix::alerts::Sender::new(&s).map_err(internal)?;
        let a = antix::manage::alerts::send_test(&s.store, &s.keys, &sender, &actor).await?;
        Ok(AlertTest {
            delivered: a.delivered(),
            status: a.status,
            error: a.error,
        })
    })
    .await
}
