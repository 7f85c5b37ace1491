-- Organization API tokens for the management REST API (/api/v1). Only the keyed hash of a
-- token is stored (it is shown once); a token acts for its organization with the rights of the
-- admin who created it, read-only or read-write, and stops working when revoked or when that
-- admin is no longer one.
CREATE TABLE api_tokens (
    id BLOB PRIMARY KEY NOT NULL,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    created_by BLOB NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    display TEXT NOT NULL,
    can_write BOOLEAN NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX api_tokens_by_org ON api_tokens (org_id);

-- `Idempotency-Key` on the API's creates: the first answer to a (token, key) is kept for a day
-- and replayed to a retry with the same request; status 0 marks a request still running.
CREATE TABLE api_idempotency (
    token_id BLOB NOT NULL REFERENCES api_tokens (id),
    idem_key TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (token_id, idem_key)
);
CREATE INDEX api_idempotency_by_age ON api_idempotency (created_at);
