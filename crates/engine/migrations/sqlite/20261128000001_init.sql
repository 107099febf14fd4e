-- Syncdesk local store. Instants are INTEGER milliseconds since the epoch (UTC), so the
-- same columns work on SQLite and PostgreSQL (BIGINT) and sort correctly.

CREATE TABLE connections (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    provider           TEXT NOT NULL,
    base_url           TEXT NOT NULL,
    auth_kind          TEXT NOT NULL,
    client_id          TEXT,
    spec               TEXT NOT NULL,          -- connector spec, JSON (no secrets)
    status             TEXT NOT NULL DEFAULT 'active',
    status_note        TEXT,
    token_expires_at   INTEGER,
    refresh_expires_at INTEGER,
    last_checked_at    INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

-- The fields a provider last sent for an entity (R-E5), so a schema change can be shown.
CREATE TABLE observed_fields (
    connection_id TEXT NOT NULL REFERENCES connections(id),
    entity        TEXT NOT NULL,
    fields        TEXT NOT NULL,               -- JSON array of field names
    observed_at   INTEGER NOT NULL,
    PRIMARY KEY (connection_id, entity)
);

CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    connection_id TEXT NOT NULL REFERENCES connections(id),
    entity        TEXT NOT NULL,
    direction     TEXT NOT NULL,
    mode          TEXT NOT NULL,
    schedule      TEXT NOT NULL,               -- JSON Schedule
    settings      TEXT NOT NULL,               -- JSON JobSettings
    enabled       INTEGER NOT NULL DEFAULT 1,
    watermark     TEXT,
    next_run_at   INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (next_run_at) WHERE next_run_at IS NOT NULL AND enabled = 1;

CREATE TABLE executions (
    id                TEXT PRIMARY KEY,
    job_id            TEXT NOT NULL REFERENCES jobs(id),
    seq               INTEGER NOT NULL,        -- creation order, for keyset pagination
    trigger           TEXT NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 1,
    retry_of          TEXT REFERENCES executions(id),
    status            TEXT NOT NULL,
    mode              TEXT NOT NULL,
    record_id         TEXT,
    created_at        INTEGER NOT NULL,
    due_at            INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    processed         INTEGER NOT NULL DEFAULT 0,
    created           INTEGER NOT NULL DEFAULT 0,
    updated           INTEGER NOT NULL DEFAULT 0,
    skipped           INTEGER NOT NULL DEFAULT 0,
    failed            INTEGER NOT NULL DEFAULT 0,
    excluded          INTEGER NOT NULL DEFAULT 0,
    batch_in_progress TEXT,
    failure_kind      TEXT,
    note              TEXT,
    next_retry_at     INTEGER,
    request_retries   INTEGER NOT NULL DEFAULT 0,
    rate_limit_waits  INTEGER NOT NULL DEFAULT 0,
    owner             TEXT,
    lease_until       INTEGER,
    CHECK (processed = created + updated + skipped + failed)
);
CREATE UNIQUE INDEX executions_seq ON executions (seq);
CREATE INDEX executions_job ON executions (job_id, seq);
CREATE INDEX executions_queue ON executions (due_at) WHERE status = 'queued';
CREATE INDEX executions_running ON executions (status) WHERE status = 'running';

CREATE TABLE record_errors (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL REFERENCES executions(id),
    connection_id TEXT NOT NULL,
    entity       TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    message      TEXT NOT NULL,
    field        TEXT,
    at           INTEGER NOT NULL
);
CREATE INDEX record_errors_execution ON record_errors (execution_id, id);
CREATE INDEX record_errors_execution_kind ON record_errors (execution_id, kind, id);
CREATE INDEX record_errors_record ON record_errors (connection_id, entity, record_id, id);

-- Local entity records (the "local store" side of a sync).
CREATE TABLE records (
    id           TEXT PRIMARY KEY,
    entity       TEXT NOT NULL,
    natural_key  TEXT,
    data         TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX records_natural_key ON records (entity, natural_key) WHERE natural_key IS NOT NULL;

-- ExternalReference: provider id <-> local id, plus the record's failure memory (R-D1).
CREATE TABLE external_refs (
    connection_id         TEXT NOT NULL,
    entity                TEXT NOT NULL,
    external_id           TEXT NOT NULL,
    local_id              TEXT REFERENCES records(id),
    content_hash          TEXT,
    last_synced_at        INTEGER,
    state                 TEXT NOT NULL DEFAULT 'ok',
    strikes               INTEGER NOT NULL DEFAULT 0,
    first_failed_at       INTEGER,
    last_failed_at        INTEGER,
    last_failed_execution TEXT,
    last_error            TEXT,
    last_payload          TEXT,
    PRIMARY KEY (connection_id, entity, external_id)
);
CREATE INDEX external_refs_state ON external_refs (connection_id, entity, state, external_id) WHERE state <> 'ok';
CREATE INDEX external_refs_local ON external_refs (local_id);

CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL,
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    job_id        TEXT,
    execution_id  TEXT,
    connection_id TEXT,
    created_at    INTEGER NOT NULL,
    read_at       INTEGER
);
CREATE INDEX alerts_unread ON alerts (id) WHERE read_at IS NULL;

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    note    TEXT
);
