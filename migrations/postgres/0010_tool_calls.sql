-- The tools the model called in each response (names, comma-separated), shown on the
-- Activity tab between the calls of an agent session.
ALTER TABLE traces ADD COLUMN tool_calls TEXT;
