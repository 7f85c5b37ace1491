-- Any number of credentials per organization and provider, each with a name, a weight for load
-- balancing, optional per-credential rate limits, and an on/off switch. Existing credentials
-- keep their ciphertext (key_version 1: sealed to the organization and provider; new ones,
-- version 2, are sealed to their own id too) and are named "default".
ALTER TABLE provider_credentials ADD COLUMN id UUID NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE provider_credentials ADD COLUMN name TEXT NOT NULL DEFAULT 'default';
ALTER TABLE provider_credentials ADD COLUMN weight BIGINT NOT NULL DEFAULT 1 CHECK (weight BETWEEN 0 AND 1000);
ALTER TABLE provider_credentials ADD COLUMN rpm BIGINT;
ALTER TABLE provider_credentials ADD COLUMN tpm BIGINT;
ALTER TABLE provider_credentials ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE provider_credentials DROP CONSTRAINT provider_credentials_pkey;
ALTER TABLE provider_credentials ADD PRIMARY KEY (id);
ALTER TABLE provider_credentials ADD CONSTRAINT provider_credentials_name UNIQUE (org_id, provider, name);

-- A credential that answered 429 or 5xx, or could not be reached, rests until `cooldown_until`
-- (shared by every replica on Postgres); `failures` in a row lengthen the rest.
CREATE TABLE credential_health (
    credential_id UUID PRIMARY KEY NOT NULL REFERENCES provider_credentials (id) ON DELETE CASCADE,
    cooldown_until BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every try at the upstream when there was more than one (retries, fallbacks): JSON.
ALTER TABLE traces ADD COLUMN attempts TEXT;
ALTER TABLE traces ADD COLUMN attempt_count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE traces ADD COLUMN fallback BOOLEAN NOT NULL DEFAULT FALSE;
-- An endpoint's ordered fallback targets (JSON: provider, model, optional credential).
ALTER TABLE endpoints ADD COLUMN fallbacks TEXT;
