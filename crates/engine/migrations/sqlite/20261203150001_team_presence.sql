-- Team mode (issue 17): who ran each execution, which engines are alive, and the events one
-- engine shares with the others on this store.

-- The owner tag (`name:pid:uuid`) of the engine that ran the execution; unlike `owner`
-- (the lease holder) it stays after the run ends.
ALTER TABLE executions ADD COLUMN ran_by TEXT;
UPDATE executions SET ran_by = owner WHERE owner IS NOT NULL;

-- One row per engine that runs syncs on this store (a desktop app, a `syncdesk worker`),
-- beaten by its worker loop; a row not beaten for a while is a stopped engine.
CREATE TABLE workers (
    owner      TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    host       TEXT NOT NULL,
    role       TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL
);

-- Events worth telling every desktop (a breaker tripped, retries exhausted, a run ended),
-- in the order they were published; each desktop reads the ones after its own cursor.
CREATE TABLE shared_events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    origin TEXT NOT NULL,
    body   TEXT NOT NULL
);
CREATE INDEX shared_events_at ON shared_events (at);
