//! Budget alerts: each organization's alert settings, the spend the evaluator compares with
//! budgets, and the alerts that fired with their webhook deliveries.

use sqlx::FromRow;

use super::{Result, Store, dispatch, dispatch_write};
use crate::domain::{Millis, OrgId};

/// An organization's alert settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    pub org_id: OrgId,
    /// Where alerts are posted; `None`: shown in the portal only.
    pub webhook_url: Option<String>,
    /// With the instance's lookup secret, derives the webhook's signing secret.
    pub secret_nonce: String,
    /// Percentages of a budget, ascending.
    pub thresholds: Vec<i64>,
    /// A monthly alert budget for the whole organization's virtual-key spend (alerts only: it
    /// refuses no call).
    pub org_monthly_budget_nanos: Option<i64>,
    pub updated_at: Millis,
}

#[derive(FromRow)]
struct SettingsRow {
    org_id: OrgId,
    webhook_url: Option<String>,
    secret_nonce: String,
    thresholds: String,
    org_monthly_budget_nanos: Option<i64>,
    updated_at: i64,
}

impl From<SettingsRow> for AlertSettings {
    fn from(r: SettingsRow) -> Self {
        AlertSettings {
            org_id: r.org_id,
            webhook_url: r.webhook_url,
            secret_nonce: r.secret_nonce,
            thresholds: r
                .thresholds
                .split(',')
                .filter_map(|t| t.trim().parse().ok())
                .collect(),
            org_monthly_budget_nanos: r.org_monthly_budget_nanos,
            updated_at: r.updated_at,
        }
    }
}

const SETTINGS_COLUMNS: &str =
    "org_id, webhook_url, secret_nonce, thresholds, org_monthly_budget_nanos, updated_at";

/// One threshold crossed, and its delivery.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AlertEvent {
    pub id: uuid::Uuid,
    pub org_id: OrgId,
    /// `key` or `org`.
    pub subject: String,
    pub subject_id: uuid::Uuid,
    pub subject_name: String,
    /// `day`, `month` or `total`.
    pub period: String,
    pub window_start: i64,
    pub threshold: i64,
    pub spent_nanos: i64,
    pub budget_nanos: i64,
    pub created_at: i64,
    pub attempts: i64,
    /// When the next delivery attempt is due; `None` once delivered, given up, or when there
    /// was no webhook to deliver to.
    pub next_attempt_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

const EVENT_COLUMNS: &str = "id, org_id, subject, subject_id, subject_name, period, window_start, \
     threshold, spent_nanos, budget_nanos, created_at, attempts, next_attempt_at, delivered_at, \
     last_status, last_error";

/// What a subject has spent in one budget window, and the budget.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct BudgetSpend {
    pub org_id: OrgId,
    pub subject_id: uuid::Uuid,
    pub subject_name: String,
    pub period: String,
    pub window_start: i64,
    pub spent_nanos: i64,
    pub budget_nanos: i64,
}

/// Which alerts exist already: (subject id, period, window start, threshold).
pub type FiredKey = (uuid::Uuid, String, i64, i64);

impl Store {
    pub async fn alert_settings(&self, org: OrgId) -> Result<Option<AlertSettings>> {
        let row: Option<SettingsRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {SETTINGS_COLUMNS} FROM alert_settings WHERE org_id = $1"
            ))
            .bind(org)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Into::into))
    }

    /// Every organization's settings (one row per organization that changed the defaults).
    pub async fn all_alert_settings(&self) -> Result<Vec<AlertSettings>> {
        let rows: Vec<SettingsRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!("SELECT {SETTINGS_COLUMNS} FROM alert_settings"))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn set_alert_settings(&self, s: &AlertSettings) -> Result<()> {
        let thresholds = s
            .thresholds
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        dispatch_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO alert_settings (org_id, webhook_url, secret_nonce, thresholds, \
                 org_monthly_budget_nanos, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (org_id) DO UPDATE SET webhook_url = excluded.webhook_url, \
                 secret_nonce = excluded.secret_nonce, thresholds = excluded.thresholds, \
                 org_monthly_budget_nanos = excluded.org_monthly_budget_nanos, \
                 updated_at = excluded.updated_at",
            )
            .bind(s.org_id)
            .bind(&s.webhook_url)
            .bind(&s.secret_nonce)
            .bind(&thresholds)
            .bind(s.org_monthly_budget_nanos)
            .bind(s.updated_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Spend against every budget of every live virtual key, in the windows that hold `day` and
    /// `month` (and all time). Keys without spend in a window have no row there.
    pub async fn key_budget_spends(&self, day: Millis, month: Millis) -> Result<Vec<BudgetSpend>> {
        let rows: Vec<BudgetSpend> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT k.org_id AS org_id, k.id AS subject_id, k.name AS subject_name, \
                 w.kind AS period, w.window_start AS window_start, w.spent_nanos AS spent_nanos, \
                 CASE w.kind WHEN 'day' THEN k.budget_daily_nanos \
                 WHEN 'month' THEN k.budget_monthly_nanos ELSE k.budget_total_nanos END \
                 AS budget_nanos \
                 FROM key_windows w JOIN virtual_keys k ON k.id = w.key_id \
                 WHERE k.revoked_at IS NULL AND w.spent_nanos > 0 AND ( \
                 (w.kind = 'day' AND w.window_start = $1 AND k.budget_daily_nanos > 0) \
                 OR (w.kind = 'month' AND w.window_start = $2 AND k.budget_monthly_nanos > 0) \
                 OR (w.kind = 'total' AND w.window_start = 0 AND k.budget_total_nanos > 0))",
            )
            .bind(day)
            .bind(month)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Each organization's virtual-key spend in the month starting at `month`, for the
    /// organizations with a monthly alert budget.
    pub async fn org_budget_spends(&self, month: Millis) -> Result<Vec<BudgetSpend>> {
        let rows: Vec<BudgetSpend> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT s.org_id AS org_id, s.org_id AS subject_id, o.name AS subject_name, \
                 'month' AS period, CAST($1 AS BIGINT) AS window_start, \
                 CAST(COALESCE((SELECT SUM(w.spent_nanos) FROM key_windows w \
                   JOIN virtual_keys k ON k.id = w.key_id \
                   WHERE k.org_id = s.org_id AND w.kind = 'month' AND w.window_start = $1), 0) \
                 AS BIGINT) AS spent_nanos, s.org_monthly_budget_nanos AS budget_nanos \
                 FROM alert_settings s JOIN organizations o ON o.id = s.org_id \
                 WHERE s.org_monthly_budget_nanos > 0",
            )
            .bind(month)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// The alerts already fired in the windows starting at `day` or `month`, or for all time.
    pub async fn fired_alerts(&self, day: Millis, month: Millis) -> Result<Vec<FiredKey>> {
        let rows: Vec<FiredKey> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT subject_id, period, window_start, threshold FROM alert_events \
                 WHERE window_start IN ($1, $2, 0)",
            )
            .bind(day)
            .bind(month)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Records an alert, once: false when this subject, window and threshold fired already
    /// (on another replica, say).
    pub async fn insert_alert_event(&self, e: &AlertEvent) -> Result<bool> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query(&format!(
                "INSERT INTO alert_events ({EVENT_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                 ON CONFLICT (org_id, subject, subject_id, period, window_start, threshold) \
                 DO NOTHING"
            ))
            .bind(e.id)
            .bind(e.org_id)
            .bind(&e.subject)
            .bind(e.subject_id)
            .bind(&e.subject_name)
            .bind(&e.period)
            .bind(e.window_start)
            .bind(e.threshold)
            .bind(e.spent_nanos)
            .bind(e.budget_nanos)
            .bind(e.created_at)
            .bind(e.attempts)
            .bind(e.next_attempt_at)
            .bind(e.delivered_at)
            .bind(e.last_status)
            .bind(&e.last_error)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Alerts whose next delivery attempt is due, oldest first.
    pub async fn due_alert_events(&self, now: Millis, limit: i64) -> Result<Vec<AlertEvent>> {
        let rows: Vec<AlertEvent> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {EVENT_COLUMNS} FROM alert_events \
                 WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1 \
                 ORDER BY next_attempt_at LIMIT $2"
            ))
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Takes an alert's delivery attempt: moves its next attempt to `lease_until` and counts
    /// the attempt, if it is still as `seen` (so two replicas never deliver it at once).
    pub async fn claim_alert_event(&self, seen: &AlertEvent, lease_until: Millis) -> Result<bool> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query(
                "UPDATE alert_events SET next_attempt_at = $3, attempts = attempts + 1 \
                 WHERE id = $1 AND next_attempt_at = $2 AND attempts = $4",
            )
            .bind(seen.id)
            .bind(seen.next_attempt_at)
            .bind(lease_until)
            .bind(seen.attempts)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Records how an attempt went: delivered, or the next attempt (`None`: given up).
    pub async fn finish_alert_attempt(
        &self,
        id: uuid::Uuid,
        delivered_at: Option<Millis>,
        next_attempt_at: Option<Millis>,
        status: Option<i64>,
        error: Option<&str>,
    ) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query(
                "UPDATE alert_events SET delivered_at = $2, next_attempt_at = $3, \
                 last_status = $4, last_error = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(delivered_at)
            .bind(next_attempt_at)
            .bind(status)
            .bind(error)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// An organization's latest alerts, newest first.
    pub async fn recent_alert_events(&self, org: OrgId, limit: i64) -> Result<Vec<AlertEvent>> {
        let rows: Vec<AlertEvent> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {EVENT_COLUMNS} FROM alert_events WHERE org_id = $1 \
                 ORDER BY created_at DESC, id LIMIT $2"
            ))
            .bind(org)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Forgets alerts of day and month windows created before `before` (housekeeping); an
    /// all-time budget's alerts stay, or they would fire again.
    pub async fn purge_alert_events(&self, before: Millis) -> Result<u64> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query(
                "DELETE FROM alert_events WHERE created_at < $1 AND next_attempt_at IS NULL \
                 AND window_start <> 0",
            )
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n)
    }
}
