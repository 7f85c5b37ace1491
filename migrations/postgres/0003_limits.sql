-- Usage of each virtual key per window: spend (day, month, total) for budgets, requests and
-- tokens (minute) for rate limits. Only ever changed by atomic conditional statements, so
-- concurrent requests (and replicas, on Postgres) cannot overshoot a limit through lost updates.
CREATE TABLE key_windows (
    key_id UUID NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('minute', 'day', 'month', 'total')),
    window_start BIGINT NOT NULL,
    spent_nanos BIGINT NOT NULL DEFAULT 0,
    reserved_nanos BIGINT NOT NULL DEFAULT 0 CHECK (reserved_nanos >= 0),
    requests BIGINT NOT NULL DEFAULT 0,
    tokens BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, kind, window_start)
);

-- Estimated cost held for calls in flight on budgeted keys; settled (deleted) when the call's
-- trace is written, or released by the sweep if the call never finished (a crashed replica).
CREATE TABLE key_reservations (
    id UUID PRIMARY KEY NOT NULL,
    key_id UUID NOT NULL,
    amount_nanos BIGINT NOT NULL CHECK (amount_nanos >= 0),
    day_start BIGINT NOT NULL,
    month_start BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX key_reservations_by_age ON key_reservations (created_at);
