-- Which master key encrypted each credential (NULL: the instance's first key, before ids were
-- recorded), so a master key rotation can move rows one by one and resume where it stopped.
ALTER TABLE provider_credentials ADD COLUMN key_id TEXT;

-- Master keys wrapped under another master key: during a rotation the next key is stored here
-- wrapped under the current one, so every server still running with the current key can read
-- credentials already moved to the next.
CREATE TABLE keyring (
    key_id TEXT PRIMARY KEY NOT NULL,
    wrapped BYTEA NOT NULL,
    wrapped_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The lookup secrets that outlive master keys (token pepper, session and CSRF keys), wrapped
-- under the current master key: rotating it keeps every virtual key, session and invitation.
CREATE TABLE instance_secrets (
    purpose TEXT PRIMARY KEY NOT NULL,
    key_id TEXT NOT NULL,
    wrapped BYTEA NOT NULL
);
