-- Team mode (issue 17): who ran each execution, which engines are alive, and the events one
-- engine shares with the others on this store (see the SQLite migration of the same name).

ALTER TABLE executions ADD COLUMN ran_by TEXT;
UPDATE executions SET ran_by = owner WHERE owner IS NOT NULL;

CREATE TABLE workers (
    owner      TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    host       TEXT NOT NULL,
    role       TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL
);

-- Ids are drawn under a transaction-scoped advisory lock held until commit, so they become
-- visible in id order: a reader's cursor never passes an id still being written.
CREATE TABLE shared_events (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     BIGINT NOT NULL,
    origin TEXT NOT NULL,
    body   TEXT NOT NULL
);
CREATE INDEX shared_events_at ON shared_events (at);
