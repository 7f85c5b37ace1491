-- Daily counts of calls that needed another try at the provider, and of calls served by a
-- fallback target (the Overview shows both). Counted from here on: traces written before
-- this migration are not re-read.
ALTER TABLE trace_daily ADD COLUMN retried INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trace_daily ADD COLUMN fell_back INTEGER NOT NULL DEFAULT 0;
