-- Any number of credentials per organization and provider, each with a name, a weight for load
-- balancing, optional per-credential rate limits, and an on/off switch. Existing credentials
-- keep their ciphertext (key_version 1: sealed to the organization and provider; new ones,
-- version 2, are sealed to their own id too) and are named "default".
CREATE TABLE provider_credentials_v2 (
    id BLOB PRIMARY KEY NOT NULL,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider TEXT NOT NULL CHECK (provider IN ('openai', 'anthropic', 'gemini')),
    name TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    key_version INTEGER NOT NULL DEFAULT 1,
    last4 TEXT NOT NULL,
    base_url TEXT,
    updated_by BLOB NOT NULL REFERENCES users (id),
    updated_at INTEGER NOT NULL,
    key_id TEXT,
    weight INTEGER NOT NULL DEFAULT 1 CHECK (weight BETWEEN 0 AND 1000),
    rpm INTEGER,
    tpm INTEGER,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    UNIQUE (org_id, provider, name)
);
INSERT INTO provider_credentials_v2 (id, org_id, provider, name, ciphertext, key_version, last4,
    base_url, updated_by, updated_at, key_id)
SELECT randomblob(16), org_id, provider, 'default', ciphertext, key_version, last4, base_url,
    updated_by, updated_at, key_id FROM provider_credentials;
DROP TABLE provider_credentials;
ALTER TABLE provider_credentials_v2 RENAME TO provider_credentials;

-- A credential that answered 429 or 5xx, or could not be reached, rests until `cooldown_until`
-- (shared by every replica on Postgres); `failures` in a row lengthen the rest.
CREATE TABLE credential_health (
    credential_id BLOB PRIMARY KEY NOT NULL REFERENCES provider_credentials (id) ON DELETE CASCADE,
    cooldown_until INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Every try at the upstream when there was more than one (retries, fallbacks): JSON.
ALTER TABLE traces ADD COLUMN attempts TEXT;
ALTER TABLE traces ADD COLUMN attempt_count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE traces ADD COLUMN fallback BOOLEAN NOT NULL DEFAULT FALSE;
-- An endpoint's ordered fallback targets (JSON: provider, model, optional credential).
ALTER TABLE endpoints ADD COLUMN fallbacks TEXT;
