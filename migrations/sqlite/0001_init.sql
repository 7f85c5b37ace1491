-- Antix schema, SQLite dialect. Mirrors ../postgres/0001_init.sql column for column; times are
-- integer milliseconds since the Unix epoch and ids are 16-byte UUID blobs on both backends.

-- Exactly one row once the first admin exists. Its primary key makes first-run setup race-free
-- even when two processes (server and CLI) try at once.
CREATE TABLE instance (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    initialized_at INTEGER NOT NULL
);

CREATE TABLE organizations (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    max_personal_endpoints INTEGER NOT NULL DEFAULT 10,
    members_can_create_keys BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE users (
    id BLOB PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE memberships (
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

-- Portal sessions. Only a keyed hash of the cookie value is stored.
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Failed logins, for throttling per account and per client address.
CREATE TABLE login_failures (
    subject TEXT NOT NULL,
    failed_at INTEGER NOT NULL
);
CREATE INDEX login_failures_by_subject ON login_failures (subject, failed_at);

CREATE TABLE invites (
    id BLOB PRIMARY KEY NOT NULL,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    created_by BLOB NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    accepted_at INTEGER
);
CREATE INDEX invites_by_org ON invites (org_id);

CREATE TABLE endpoints (
    id BLOB PRIMARY KEY NOT NULL,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    owner_id BLOB NOT NULL REFERENCES users (id),
    scope TEXT NOT NULL CHECK (scope IN ('personal', 'org_shared')),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    archived_at INTEGER
);
CREATE INDEX endpoints_by_org ON endpoints (org_id, scope, owner_id);

-- Virtual keys: only an HMAC of the key (for lookup) and a display form are stored.
CREATE TABLE virtual_keys (
    id BLOB PRIMARY KEY NOT NULL,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    created_by BLOB NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    key_hash BLOB NOT NULL UNIQUE,
    display TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    last_used_at INTEGER,
    -- Limits; NULL means none.
    budget_daily_nanos INTEGER,
    budget_monthly_nanos INTEGER,
    budget_total_nanos INTEGER,
    rpm_limit INTEGER,
    tpm_limit INTEGER,
    -- JSON arrays; empty means no restriction.
    allowed_models TEXT NOT NULL DEFAULT '[]',
    allowed_endpoints TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX virtual_keys_by_org ON virtual_keys (org_id);

-- One platform credential per organization and provider, AES-256-GCM encrypted with the row's
-- identity as associated data.
CREATE TABLE provider_credentials (
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider TEXT NOT NULL CHECK (provider IN ('openai', 'anthropic', 'gemini')),
    ciphertext BLOB NOT NULL,
    key_version INTEGER NOT NULL DEFAULT 1,
    last4 TEXT NOT NULL,
    base_url TEXT,
    updated_by BLOB NOT NULL REFERENCES users (id),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, provider)
);
