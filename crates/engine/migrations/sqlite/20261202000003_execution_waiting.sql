-- What a running execution is waiting for and until when (issue 14, live progress): a
-- backoff after a provider error, a rate-limit pause, pacing. Cleared by the next committed
-- page and by the run's end.
ALTER TABLE executions ADD COLUMN wait_reason TEXT;
ALTER TABLE executions ADD COLUMN wait_until INTEGER;
