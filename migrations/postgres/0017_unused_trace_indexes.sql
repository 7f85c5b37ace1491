-- Two indexes of the first traces schema that no query reads: organization-wide and per-key
-- figures come from the daily totals (trace_daily), and the Traces tab's key filter uses
-- traces_by_endpoint_key. Each was one more B-tree insert for every trace recorded.
DROP INDEX IF EXISTS traces_by_org_time;
DROP INDEX IF EXISTS traces_by_key_time;
