//! An organization's budget alert settings (admins): the webhook, its signing secret, the
//! thresholds and the organization's monthly alert budget; the latest alerts; a test delivery.

use super::{Actor, ManageError, Result};
use crate::alerts::{self, Attempt, DEFAULT_THRESHOLDS};
use crate::config::Settings;
use crate::crypto::{self, Keys};
use crate::domain::{FieldError, now_ms};
use crate::store::Store;
use crate::store::alerts::{AlertEvent, AlertSettings};

/// The alerts the portal lists.
pub const RECENT: i64 = 50;

/// What an admin sees: the settings in force (defaults until changed), the signing secret,
/// and the latest alerts.
pub struct AlertsView {
    pub settings: AlertSettings,
    pub signing_secret: String,
    pub recent: Vec<AlertEvent>,
}

/// New settings, as typed by an admin.
#[derive(Debug, Clone, Default)]
pub struct AlertInput {
    /// Empty: no webhook (alerts show in the portal only).
    pub webhook_url: String,
    /// Like `50, 80, 100`.
    pub thresholds: String,
    /// `None`: no organization budget.
    pub org_monthly_budget_nanos: Option<i64>,
}

fn defaults(org: crate::domain::OrgId) -> AlertSettings {
    AlertSettings {
        org_id: org,
        webhook_url: None,
        secret_nonce: crypto::random_base62(22),
        thresholds: DEFAULT_THRESHOLDS.to_vec(),
        org_monthly_budget_nanos: None,
        updated_at: 0,
    }
}

/// The settings in force; the first read stores the defaults, so the signing secret shown is
/// the one deliveries will use.
async fn current(store: &Store, actor: &Actor) -> Result<AlertSettings> {
    if let Some(s) = store.alert_settings(actor.org()).await? {
        return Ok(s);
    }
    let mut s = defaults(actor.org());
    s.updated_at = now_ms();
    store.set_alert_settings(&s).await?;
    Ok(store.alert_settings(actor.org()).await?.unwrap_or(s))
}

pub async fn get(store: &Store, keys: &Keys, actor: &Actor) -> Result<AlertsView> {
    actor.require_admin()?;
    let settings = current(store, actor).await?;
    Ok(AlertsView {
        signing_secret: alerts::signing_secret(keys, actor.org(), &settings.secret_nonce),
        recent: store.recent_alert_events(actor.org(), RECENT).await?,
        settings,
    })
}

/// Saves the settings, or says what is wrong with each field.
pub async fn update(
    store: &Store,
    config: &Settings,
    actor: &Actor,
    input: &AlertInput,
) -> Result<AlertSettings> {
    actor.require_admin()?;
    actor.may_write()?;
    let mut errors = Vec::new();
    let url = input.webhook_url.trim();
    let webhook_url = if url.is_empty() {
        None
    } else {
        match crate::egress::validate_webhook_url(url, config.dev_mode) {
            Ok(u) => Some(u.to_string()),
            Err(m) => {
                errors.push(FieldError::new("webhook_url", m));
                None
            }
        }
    };
    let thresholds = alerts::parse_thresholds(&input.thresholds)
        .map_err(|m| errors.push(FieldError::new("thresholds", m)))
        .unwrap_or_default();
    if input
        .org_monthly_budget_nanos
        .is_some_and(|n| !(1..=super::keys::MAX_BUDGET_NANOS).contains(&n))
    {
        errors.push(FieldError::new(
            "org_monthly_budget",
            "Enter an amount above $0 and at most $1,000,000,000.",
        ));
    }
    if !errors.is_empty() {
        return Err(ManageError::Invalid(errors));
    }
    let mut s = current(store, actor).await?;
    s.webhook_url = webhook_url;
    s.thresholds = thresholds;
    s.org_monthly_budget_nanos = input.org_monthly_budget_nanos;
    s.updated_at = now_ms();
    store.set_alert_settings(&s).await?;
    Ok(s)
}

/// Makes a new signing secret (the old one stops being used at once).
pub async fn rotate_secret(store: &Store, keys: &Keys, actor: &Actor) -> Result<String> {
    actor.require_admin()?;
    actor.may_write()?;
    let mut s = current(store, actor).await?;
    s.secret_nonce = crypto::random_base62(22);
    s.updated_at = now_ms();
    store.set_alert_settings(&s).await?;
    Ok(alerts::signing_secret(keys, actor.org(), &s.secret_nonce))
}

/// Posts a sample alert (marked as a test) to the webhook now, and says how it went. Nothing
/// is recorded.
pub async fn send_test(
    store: &Store,
    keys: &Keys,
    sender: &alerts::Sender,
    actor: &Actor,
) -> Result<Attempt> {
    actor.require_admin()?;
    actor.may_write()?;
    let s = current(store, actor).await?;
    let Some(url) = s.webhook_url.as_deref() else {
        return Err(ManageError::invalid(
            "webhook_url",
            "Save a webhook URL first.",
        ));
    };
    let now = now_ms();
    let sample = AlertEvent {
        id: uuid::Uuid::now_v7(),
        org_id: actor.org(),
        subject: "org".into(),
        subject_id: actor.org().0,
        subject_name: actor.membership.org.name.clone(),
        period: "month".into(),
        window_start: crate::limits::windows(now).month,
        threshold: s
            .thresholds
            .iter()
            .copied()
            .find(|t| *t >= 80)
            .unwrap_or(80),
        spent_nanos: 80_000_000_000,
        budget_nanos: 100_000_000_000,
        created_at: now,
        attempts: 0,
        next_attempt_at: None,
        delivered_at: None,
        last_status: None,
        last_error: None,
    };
    let secret = alerts::signing_secret(keys, actor.org(), &s.secret_nonce);
    Ok(sender.post(url, &secret, &sample, true).await)
}
