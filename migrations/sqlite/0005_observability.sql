-- Search over request and response bodies: an FTS5 index with the trigram tokenizer, so any
-- substring of three characters or more is found (case-insensitively) without scanning bodies.
-- Contentless (the text lives compressed in trace_bodies); trace_search maps its rowids to
-- traces, and rowids grow with time, so newest-first is index order.
CREATE TABLE trace_search (
    rowid INTEGER PRIMARY KEY,
    trace_id BLOB NOT NULL UNIQUE,
    endpoint_id BLOB NOT NULL
);
CREATE VIRTUAL TABLE trace_fts USING fts5(body, tokenize = 'trigram', content = '', contentless_delete = 1);

-- One row per agent session (calls sharing a session key on an endpoint), kept in step with the
-- traces like the daily totals, so the Activity tab lists sessions without grouping traces.
CREATE TABLE trace_sessions (
    endpoint_id BLOB NOT NULL,
    session_key TEXT NOT NULL,
    parent TEXT,
    first_at INTEGER NOT NULL,
    last_end_at INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_nanos INTEGER NOT NULL,
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
