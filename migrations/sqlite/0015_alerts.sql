-- Budget alerts. An organization's settings: where alerts are posted (a Slack-compatible
-- webhook), the thresholds (percent of a budget), and an optional monthly alert budget for the
-- whole organization. The webhook's signing secret is not stored: it is derived from the
-- instance's lookup secret and `secret_nonce` (a new nonce rotates it).
CREATE TABLE alert_settings (
    org_id BLOB PRIMARY KEY NOT NULL REFERENCES organizations (id),
    webhook_url TEXT,
    secret_nonce TEXT NOT NULL,
    thresholds TEXT NOT NULL,
    org_monthly_budget_nanos INTEGER,
    updated_at INTEGER NOT NULL
);

-- Each threshold crossed, once per subject (a virtual key or the organization), budget period,
-- window and threshold (the unique key makes replicas agree), with its delivery: attempts, the
-- next one (NULL once delivered, given up, or with no webhook), and the last answer.
CREATE TABLE alert_events (
    id BLOB PRIMARY KEY NOT NULL,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    subject TEXT NOT NULL CHECK (subject IN ('key', 'org')),
    subject_id BLOB NOT NULL,
    subject_name TEXT NOT NULL,
    period TEXT NOT NULL CHECK (period IN ('day', 'month', 'total')),
    window_start INTEGER NOT NULL,
    threshold INTEGER NOT NULL,
    spent_nanos INTEGER NOT NULL,
    budget_nanos INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    delivered_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    UNIQUE (org_id, subject, subject_id, period, window_start, threshold)
);
CREATE INDEX alert_events_due ON alert_events (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX alert_events_by_org ON alert_events (org_id, created_at);
