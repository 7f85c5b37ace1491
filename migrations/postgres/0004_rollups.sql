-- Daily totals per endpoint, model, key and auth mode, kept in step with the traces table (in
-- the transaction that inserts traces, and subtracted again when retention deletes them), so
-- the endpoint list and the Overview tab never scan months of traces. The key column holds the
-- all-zero UUID for calls without a virtual key.
CREATE TABLE trace_daily (
    endpoint_id UUID NOT NULL,
    day BIGINT NOT NULL,
    model TEXT NOT NULL,
    key_id UUID NOT NULL,
    auth_mode TEXT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cache_read_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    cost_billed_nanos BIGINT NOT NULL DEFAULT 0,
    cost_estimated_nanos BIGINT NOT NULL DEFAULT 0,
    unpriced BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, day, model, key_id, auth_mode)
);
