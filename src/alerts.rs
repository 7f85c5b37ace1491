//! Budget alerts: when a virtual key's spend crosses a threshold of one of its budgets (daily,
//! monthly, total), or an organization's month crosses a threshold of its monthly alert budget,
//! an alert fires once for that window and is posted to the organization's webhook.
//!
//! Off the request path: [`run`] evaluates spend and delivers due alerts every
//! [`INTERVAL`]. Every replica may run it: the store's unique key makes an alert fire once, and a
//! delivery is claimed before it is sent, so it goes out once per attempt.
//!
//! A delivery is a JSON POST that Slack's incoming webhooks accept as it is (`text`), with the
//! alert's fields under `alert`, signed like Stripe's webhooks: `X-Antix-Signature:
//! t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the organization's signing
//! secret. A failed attempt (no answer, or not 2xx) is retried with growing delays
//! ([`retry_delay`]) up to [`MAX_ATTEMPTS`], and every attempt's outcome is recorded.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::Services;
use crate::crypto::Keys;
use crate::domain::{MINUTE_MS, Millis, OrgId, now_ms};
use crate::store::Store;
use crate::store::alerts::{AlertEvent, AlertSettings, BudgetSpend};

/// How often spend is compared with budgets and due deliveries are sent.
pub const INTERVAL: Duration = Duration::from_secs(15);
/// The thresholds (percent of a budget) of an organization that has not chosen its own.
pub const DEFAULT_THRESHOLDS: [i64; 3] = [50, 80, 100];
/// Attempts at delivering one alert before giving up.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long one attempt may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// A claimed attempt that never reported back (its replica died) is retried after this.
const LEASE_MS: Millis = 5 * MINUTE_MS;
/// Alerts sent per round (the rest wait for the next).
const BATCH: i64 = 100;
/// The longest wait between two attempts.
const MAX_DELAY_MS: Millis = 6 * 60 * MINUTE_MS;

/// The wait after the `attempts`-th failed attempt: 30 s, 2 min, 8 min, 32 min, … up to 6 h.
pub fn retry_delay(attempts: i64) -> Millis {
    let exp = u32::try_from(attempts.clamp(1, 10) - 1).unwrap_or(0);
    (30_000 * 4_i64.pow(exp)).min(MAX_DELAY_MS)
}

/// Reads thresholds written as `50, 80, 100`: whole percentages from 1 to 1000, at most 10,
/// returned ascending without repeats.
pub fn parse_thresholds(raw: &str) -> Result<Vec<i64>, String> {
    let hint = "Enter percentages from 1 to 1000 separated by commas, like 50, 80, 100.";
    let mut out = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let n: i64 = part
            .trim_end_matches('%')
            .trim()
            .parse()
            .map_err(|_| hint.to_owned())?;
        if !(1..=1000).contains(&n) {
            return Err(hint.into());
        }
        out.push(n);
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err(hint.into());
    }
    if out.len() > 10 {
        return Err("Use at most 10 thresholds.".into());
    }
    Ok(out)
}

/// The secret deliveries of `org` are signed with: derived from the instance's lookup secret
/// and the settings' nonce, so nothing secret is stored and a new nonce rotates it.
pub fn signing_secret(keys: &Keys, org: OrgId, nonce: &str) -> String {
    let mac = keys.token_hash(&format!("antix/alert-webhook|{org}|{nonce}"));
    format!("whsec_{}", hex::encode(mac))
}

/// The `X-Antix-Signature` value for `body` sent at unix second `t`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Dollars for a message: cents, or four significant decimals under a cent.
fn usd(nanos: i64) -> String {
    let d = nanos as f64 / 1e9;
    if nanos == 0 || d.abs() >= 0.01 {
        format!("${d:.2}")
    } else {
        let digits = (-d.abs().log10()).ceil() as usize + 3;
        let s = format!("{d:.digits$}");
        format!("${}", s.trim_end_matches('0'))
    }
}

fn period_words(period: &str) -> &'static str {
    match period {
        "day" => "daily",
        "month" => "monthly",
        _ => "total",
    }
}

/// The alert's message, as a person reads it in Slack.
pub fn message(e: &AlertEvent) -> String {
    let who = match e.subject.as_str() {
        "org" => format!("Organization \u{201c}{}\u{201d}", e.subject_name),
        _ => format!("Virtual key \u{201c}{}\u{201d}", e.subject_name),
    };
    let pct = if e.budget_nanos > 0 {
        (i128::from(e.spent_nanos) * 100 / i128::from(e.budget_nanos)) as i64
    } else {
        0
    };
    format!(
        "Antix budget alert: {who} has used {pct}% of its {} budget ({} of {}; threshold {}%).",
        period_words(&e.period),
        usd(e.spent_nanos),
        usd(e.budget_nanos),
        e.threshold
    )
}

fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The JSON posted for an alert: Slack's `text`, and the alert's fields under `alert`.
pub fn payload(e: &AlertEvent, test: bool) -> serde_json::Value {
    json!({
        "text": if test {
            format!("{} (This is a test.)", message(e))
        } else {
            message(e)
        },
        "alert": {
            "id": e.id,
            "type": "budget.threshold",
            "test": test,
            "organization_id": e.org_id.0,
            "subject": e.subject,
            "subject_id": e.subject_id,
            "subject_name": e.subject_name,
            "period": e.period,
            "window_start": rfc3339(e.window_start),
            "threshold_percent": e.threshold,
            "spent_usd": crate::export::dollars(e.spent_nanos),
            "budget_usd": crate::export::dollars(e.budget_nanos),
            "created_at": rfc3339(e.created_at),
        }
    })
}

/// How one delivery attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// What went wrong; `None` when delivered (a 2xx answer).
    pub error: Option<String>,
}

impl Attempt {
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// Sends deliveries to organization-chosen webhooks, guarded like every such target: no
/// private, loopback or metadata address (unless in dev mode), by name or by literal IP, and
/// no redirects.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_local: bool,
}

impl Sender {
    pub fn new(services: &Services) -> Result<Self, reqwest::Error> {
        let allow_local = services.settings.dev_mode;
        Ok(Sender {
            client: crate::egress::guarded_client(services.settings.timeouts.connect, allow_local)?,
            allow_local,
        })
    }

    /// Posts one alert to `url`, signed with `secret`.
    pub async fn post(&self, url: &str, secret: &str, e: &AlertEvent, test: bool) -> Attempt {
        // The resolver checks names; a literal IP is checked here (the URL was checked when
        // saved, but the instance's dev mode may have been turned off since).
        let target = url::Url::parse(url)
            .map_err(|e| e.to_string())
            .and_then(|u| crate::egress::check_target(&u, self.allow_local));
        if let Err(why) = target {
            return Attempt {
                status: None,
                error: Some(format!("the webhook URL is not allowed: {why}")),
            };
        }
        let body = serde_json::to_vec(&payload(e, test)).unwrap_or_default();
        let t = now_ms() / 1000;
        let res = self
            .client
            .post(url)
            .timeout(DELIVERY_TIMEOUT)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "Antix-Alerts/1")
            .header("x-antix-event", "budget.threshold")
            .header("x-antix-delivery", e.id.to_string())
            .header("x-antix-signature", signature(secret, t, &body))
            .body(body)
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => Attempt {
                status: Some(r.status().as_u16()),
                error: None,
            },
            Ok(r) => Attempt {
                status: Some(r.status().as_u16()),
                error: Some(format!("the webhook answered {}", r.status())),
            },
            Err(err) => Attempt {
                status: None,
                error: Some(crate::egress::describe_error(&err)),
            },
        }
    }
}

/// Compares spend with budgets at `now` and records every threshold newly crossed. Returns how
/// many alerts fired. When one round crosses several thresholds of the same budget (a big
/// call, or alerts just switched on), only the highest is delivered; the others are recorded
/// as passed over, so a channel gets one message, not three.
pub async fn evaluate(store: &Store, now: Millis) -> crate::store::Result<usize> {
    let w = crate::limits::windows(now);
    let settings: std::collections::HashMap<OrgId, AlertSettings> = store
        .all_alert_settings()
        .await?
        .into_iter()
        .map(|s| (s.org_id, s))
        .collect();
    let fired: std::collections::HashSet<_> = store
        .fired_alerts(w.day, w.month)
        .await?
        .into_iter()
        .collect();
    let mut spends: Vec<(&'static str, BudgetSpend)> = store
        .key_budget_spends(w.day, w.month)
        .await?
        .into_iter()
        .map(|s| ("key", s))
        .collect();
    spends.extend(
        store
            .org_budget_spends(w.month)
            .await?
            .into_iter()
            .map(|s| ("org", s)),
    );
    let mut count = 0;
    for (subject, s) in spends {
        let org = settings.get(&s.org_id);
        let thresholds = org.map_or(&DEFAULT_THRESHOLDS[..], |o| &o.thresholds[..]);
        let has_webhook = org.is_some_and(|o| o.webhook_url.is_some());
        let crossed: Vec<i64> = thresholds
            .iter()
            .copied()
            .filter(|t| {
                i128::from(s.spent_nanos) * 100 >= i128::from(s.budget_nanos) * i128::from(*t)
            })
            .filter(|t| !fired.contains(&(s.subject_id, s.period.clone(), s.window_start, *t)))
            .collect();
        let Some(&highest) = crossed.last() else {
            continue;
        };
        for t in crossed {
            let deliver = has_webhook && t == highest;
            let event = AlertEvent {
                id: uuid::Uuid::now_v7(),
                org_id: s.org_id,
                subject: subject.into(),
                subject_id: s.subject_id,
                subject_name: s.subject_name.clone(),
                period: s.period.clone(),
                window_start: s.window_start,
                threshold: t,
                spent_nanos: s.spent_nanos,
                budget_nanos: s.budget_nanos,
                created_at: now,
                attempts: 0,
                next_attempt_at: deliver.then_some(now),
                delivered_at: None,
                last_status: None,
                last_error: if !has_webhook {
                    Some("No webhook was set.".into())
                } else if t != highest {
                    Some(format!(
                        "Passed over: the {highest}% alert went out instead."
                    ))
                } else {
                    None
                },
            };
            if store.insert_alert_event(&event).await? {
                count += 1;
            }
        }
    }
    Ok(count)
}

/// Sends the alerts due at `now`. Returns how many were delivered.
pub async fn deliver_due(
    store: &Store,
    keys: &Keys,
    sender: &Sender,
    now: Millis,
) -> crate::store::Result<usize> {
    let due = store.due_alert_events(now, BATCH).await?;
    let mut settings: std::collections::HashMap<OrgId, Option<AlertSettings>> =
        std::collections::HashMap::new();
    let mut delivered = 0;
    for e in due {
        if !store.claim_alert_event(&e, now + LEASE_MS).await? {
            continue;
        }
        let attempts = e.attempts + 1;
        let org = match settings.get(&e.org_id) {
            Some(s) => s.clone(),
            None => {
                let s = store.alert_settings(e.org_id).await?;
                settings.insert(e.org_id, s.clone());
                s
            }
        };
        let Some((url, nonce)) = org.and_then(|o| o.webhook_url.map(|u| (u, o.secret_nonce)))
        else {
            store
                .finish_alert_attempt(e.id, None, None, None, Some("The webhook was removed."))
                .await?;
            continue;
        };
        let secret = signing_secret(keys, e.org_id, &nonce);
        let attempt = sender.post(&url, &secret, &e, false).await;
        let status = attempt.status.map(i64::from);
        if attempt.delivered() {
            delivered += 1;
            store
                .finish_alert_attempt(e.id, Some(now_ms()), None, status, None)
                .await?;
        } else {
            let next = (attempts < MAX_ATTEMPTS).then(|| now + retry_delay(attempts));
            tracing::warn!(
                alert = %e.id,
                attempts,
                error = attempt.error.as_deref().unwrap_or(""),
                "budget alert delivery failed"
            );
            store
                .finish_alert_attempt(e.id, None, next, status, attempt.error.as_deref())
                .await?;
        }
    }
    Ok(delivered)
}

/// Runs evaluation and delivery every [`INTERVAL`] until `stopping` is cancelled.
pub async fn run(services: Services, stopping: CancellationToken) {
    let sender = match Sender::new(&services) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "budget alerts are off: no HTTP client");
            return;
        }
    };
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            () = stopping.cancelled() => return,
        }
        let now = now_ms();
        if let Err(e) = evaluate(&services.store, now).await {
            tracing::warn!(error = %e, "budget alerts: evaluation failed");
        }
        if let Err(e) = deliver_due(&services.store, &services.keys, &sender, now).await {
            tracing::warn!(error = %e, "budget alerts: delivery failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_read_sorted_and_bounded() {
        assert_eq!(parse_thresholds("100, 50,80%").unwrap(), [50, 80, 100]);
        assert_eq!(parse_thresholds("80,80").unwrap(), [80]);
        for bad in ["", "0", "1001", "fifty", "50,,x", "1,2,3,4,5,6,7,8,9,10,11"] {
            assert!(parse_thresholds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts_read_like_money() {
        assert_eq!(usd(8_000_000_000), "$8.00");
        assert_eq!(usd(10_000_000), "$0.01");
        assert_eq!(usd(1_000), "$0.000001");
        assert_eq!(usd(1_150_396), "$0.00115");
        assert_eq!(usd(0), "$0.00");
    }

    #[test]
    fn retries_back_off_to_six_hours() {
        let delays: Vec<i64> = (1..=8).map(retry_delay).collect();
        assert_eq!(&delays[..4], [30_000, 120_000, 480_000, 1_920_000]);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(delays[7], MAX_DELAY_MS);
    }

    #[test]
    fn signatures_cover_time_and_body() {
        let a = signature("whsec_x", 1_700_000_000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, signature("whsec_x", 1_700_000_001, b"{}"));
        assert_ne!(a, signature("whsec_x", 1_700_000_000, b"{ }"));
        assert_ne!(a, signature("whsec_y", 1_700_000_000, b"{}"));
    }
}
