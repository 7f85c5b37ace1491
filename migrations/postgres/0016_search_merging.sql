-- Kept in step with the SQLite migrations (there: FTS5 merge tuning). Postgres's trigram index
-- needs no counterpart.
SELECT 1;
