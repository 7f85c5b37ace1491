-- Traces: one row per request that reached the proxy. The biggest table by far, so it stays
-- narrow (bodies live in trace_bodies, compressed) and time-ordered: ids are UUIDv7 and the
-- table is WITHOUT ROWID, so rows are clustered by id = by time and new rows append.
CREATE TABLE traces (
    id BLOB PRIMARY KEY NOT NULL,
    org_id BLOB NOT NULL,
    endpoint_id BLOB NOT NULL,
    started_at INTEGER NOT NULL,
    auth_mode TEXT NOT NULL,
    virtual_key_id BLOB,
    provider TEXT,
    wire TEXT,
    model TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status_code INTEGER NOT NULL CHECK (status_code BETWEEN 0 AND 999),
    outcome TEXT NOT NULL,
    error TEXT,
    is_stream BOOLEAN NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_write_tokens INTEGER,
    reasoning_tokens INTEGER,
    usage_source TEXT NOT NULL,
    -- NULL when the model is not in the price catalog (never a guess).
    cost_nanos INTEGER,
    -- Passthrough (BYOK/OAuth) costs and costs from estimated usage are estimates.
    cost_estimated BOOLEAN NOT NULL,
    cost_detail TEXT,
    catalog_version TEXT,
    ttft_us INTEGER,
    latency_us INTEGER NOT NULL CHECK (latency_us >= 0),
    session_key TEXT,
    session_parent TEXT,
    response_id TEXT,
    request_bytes INTEGER NOT NULL,
    response_bytes INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX traces_by_endpoint_time ON traces (endpoint_id, started_at, id);
CREATE INDEX traces_by_org_time ON traces (org_id, started_at);
CREATE INDEX traces_by_key_time ON traces (virtual_key_id, started_at) WHERE virtual_key_id IS NOT NULL;
CREATE INDEX traces_by_session ON traces (endpoint_id, session_key, started_at) WHERE session_key IS NOT NULL;
CREATE INDEX traces_by_response_id ON traces (response_id) WHERE response_id IS NOT NULL;

-- Headers (redacted) and bodies (zstd-compressed, capped) of each trace.
CREATE TABLE trace_bodies (
    trace_id BLOB PRIMARY KEY NOT NULL REFERENCES traces (id) ON DELETE CASCADE,
    request_headers TEXT NOT NULL,
    response_headers TEXT NOT NULL,
    request_body BLOB,
    response_body BLOB,
    response_assembled BLOB,
    request_truncated BOOLEAN NOT NULL,
    response_truncated BOOLEAN NOT NULL
);

-- Traces that could not be written (a constraint or encoding problem), kept with the error
-- instead of being dropped with their batch.
CREATE TABLE trace_quarantine (
    trace_id BLOB PRIMARY KEY NOT NULL,
    quarantined_at INTEGER NOT NULL,
    error TEXT NOT NULL,
    record TEXT NOT NULL
);
