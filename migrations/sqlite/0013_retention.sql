-- Trace retention per organization and per endpoint, in days: NULL inherits (the endpoint its
-- organization's, the organization the instance's ANTIX_TRACE_RETENTION_DAYS), 0 keeps traces
-- forever. Daily totals are kept whatever the retention.
ALTER TABLE organizations ADD COLUMN trace_retention_days INTEGER;
ALTER TABLE endpoints ADD COLUMN trace_retention_days INTEGER;
