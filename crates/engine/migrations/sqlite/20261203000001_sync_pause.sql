-- "Pause all syncs" (issue 16): at most one row. While it exists no worker, in any process
-- on this store, starts a scheduled run or an automatic retry; due work waits and runs once
-- on resume. Runs already under way finish; "Run now" still runs.
CREATE TABLE sync_pause (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    paused_at INTEGER NOT NULL,
    actor TEXT NOT NULL
);
