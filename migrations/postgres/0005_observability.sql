-- Search over request and response bodies: the searchable text of each trace with a pg_trgm GIN
-- index, so ILIKE '%…%' on any substring of three characters or more uses the index.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE TABLE trace_search (
    trace_id UUID PRIMARY KEY NOT NULL,
    endpoint_id UUID NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX trace_search_by_text ON trace_search USING gin (body public.gin_trgm_ops);

-- One row per agent session (calls sharing a session key on an endpoint), kept in step with the
-- traces like the daily totals, so the Activity tab lists sessions without grouping traces.
CREATE TABLE trace_sessions (
    endpoint_id UUID NOT NULL,
    session_key TEXT NOT NULL,
    parent TEXT,
    first_at BIGINT NOT NULL,
    last_end_at BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_nanos BIGINT NOT NULL,
    preview TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, session_key)
);
CREATE INDEX trace_sessions_by_recent ON trace_sessions (endpoint_id, last_end_at);

-- The Traces tab's filters, each with time order for keyset pagination.
CREATE INDEX traces_by_endpoint_model ON traces (endpoint_id, model, started_at, id);
CREATE INDEX traces_by_endpoint_auth ON traces (endpoint_id, auth_mode, started_at, id);
CREATE INDEX traces_by_endpoint_key ON traces (endpoint_id, virtual_key_id, started_at, id);
CREATE INDEX traces_by_endpoint_errors ON traces (endpoint_id, started_at, id)
    WHERE status_code >= 400 OR outcome <> 'ok';
-- Sub-agent sessions listed beside their parent.
CREATE INDEX trace_sessions_by_parent ON trace_sessions (endpoint_id, parent) WHERE parent IS NOT NULL;
