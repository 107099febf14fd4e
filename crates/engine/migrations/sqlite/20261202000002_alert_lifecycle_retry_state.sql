-- Alerts with a lifecycle (issue 14): a repeat of an open condition updates its alert
-- (occurrences, last_seen_at) instead of adding one, and an alert is resolved when its
-- cause clears (resolved_at, resolution).
ALTER TABLE alerts ADD COLUMN occurrences INTEGER NOT NULL DEFAULT 1;
ALTER TABLE alerts ADD COLUMN last_seen_at INTEGER;
ALTER TABLE alerts ADD COLUMN resolved_at INTEGER;
ALTER TABLE alerts ADD COLUMN resolution TEXT;
UPDATE alerts SET last_seen_at = created_at;
CREATE INDEX alerts_open ON alerts (kind, job_id, connection_id) WHERE resolved_at IS NULL;

-- A retry that waits for something other than time: 'reauth' (an auth failure retries right
-- after the connection is re-authenticated, not on a timer).
ALTER TABLE executions ADD COLUMN waiting_for TEXT;
-- An execution's retry is looked up by the execution it retries.
CREATE INDEX executions_retry_of ON executions (retry_of) WHERE retry_of IS NOT NULL;
-- What the end of a failed run decided about retrying when no retry row follows it:
-- 'exhausted' (attempts used up) or 'off' (the job does not retry).
ALTER TABLE executions ADD COLUMN retry_outcome TEXT;
