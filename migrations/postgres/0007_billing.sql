-- A virtual key may use APIs the gateway cannot meter only when an admin says so.
ALTER TABLE virtual_keys ADD COLUMN allow_unmetered BOOLEAN NOT NULL DEFAULT FALSE;

-- Whether an endpoint passes through the client's own provider keys and OAuth tokens (1), or
-- takes Antix virtual keys only (0).
ALTER TABLE endpoints ADD COLUMN passthrough BOOLEAN NOT NULL DEFAULT TRUE;

-- A reservation held past the usual sweep (a batch's, until its results are read back).
ALTER TABLE key_reservations ADD COLUMN expires_at BIGINT;

-- Batches created through the gateway. A virtual key's estimate stays reserved until the
-- results are read back through the gateway (the batch is then charged what its results say,
-- at the batch price, once) or the hold expires (it is then charged its estimate: a batch is
-- never free).
CREATE TABLE batch_holds (
    org_id UUID NOT NULL,
    provider TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    endpoint_id UUID NOT NULL,
    key_id UUID,
    reservation_id UUID,
    estimate_nanos BIGINT NOT NULL,
    output_file TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    settled_at BIGINT,
    settled_by UUID,
    PRIMARY KEY (org_id, provider, batch_id)
);
CREATE INDEX batch_holds_by_output ON batch_holds (org_id, output_file);
CREATE INDEX batch_holds_open ON batch_holds (expires_at) WHERE settled_at IS NULL;

-- OpenAI batch input files uploaded through the gateway: their requests, read on the way, so
-- the batch that uses the file can be checked against the key's models and priced.
CREATE TABLE batch_inputs (
    org_id UUID NOT NULL,
    file_id TEXT NOT NULL,
    key_id UUID,
    items TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, file_id)
);
