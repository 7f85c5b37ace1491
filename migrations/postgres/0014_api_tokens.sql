-- Organization API tokens for the management REST API (/api/v1). Only the keyed hash of a
-- token is stored (it is shown once); a token acts for its organization with the rights of the
-- admin who created it, read-only or read-write, and stops working when revoked or when that
-- admin is no longer one.
CREATE TABLE api_tokens (
    id UUID PRIMARY KEY NOT NULL,
    org_id UUID NOT NULL REFERENCES organizations (id),
    created_by UUID NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    display TEXT NOT NULL,
    can_write BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_by_org ON api_tokens (org_id);

-- `Idempotency-Key` on the API's creates: the first answer to a (token, key) is kept for a day
-- and replayed to a retry with the same request; status 0 marks a request still running.
CREATE TABLE api_idempotency (
    token_id UUID NOT NULL REFERENCES api_tokens (id),
    idem_key TEXT NOT NULL,
    request_hash BYTEA NOT NULL,
    status BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (token_id, idem_key)
);
CREATE INDEX api_idempotency_by_age ON api_idempotency (created_at);
