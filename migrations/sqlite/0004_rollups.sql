-- Daily totals per endpoint, model, key and auth mode, kept in step with the traces table (in
-- the transaction that inserts traces, and subtracted again when retention deletes them), so
-- the endpoint list and the Overview tab never scan months of traces. The key column holds the
-- all-zero UUID for calls without a virtual key.
CREATE TABLE trace_daily (
    endpoint_id BLOB NOT NULL,
    day INTEGER NOT NULL,
    model TEXT NOT NULL,
    key_id BLOB NOT NULL,
    auth_mode TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cost_billed_nanos INTEGER NOT NULL DEFAULT 0,
    cost_estimated_nanos INTEGER NOT NULL DEFAULT 0,
    unpriced INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, day, model, key_id, auth_mode)
);
