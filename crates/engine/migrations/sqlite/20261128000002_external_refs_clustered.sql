-- external_refs is read and written by its primary key on every page of every run: store
-- the rows in primary-key order (WITHOUT ROWID) so a lookup or an upsert touches one b-tree
-- instead of an index and then the table.
CREATE TABLE external_refs_new (
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
) WITHOUT ROWID;
INSERT INTO external_refs_new SELECT connection_id, entity, external_id, local_id, content_hash,
    last_synced_at, state, strikes, first_failed_at, last_failed_at, last_failed_execution,
    last_error, last_payload FROM external_refs;
DROP TABLE external_refs;
ALTER TABLE external_refs_new RENAME TO external_refs;
CREATE INDEX external_refs_state ON external_refs (connection_id, entity, state, external_id) WHERE state <> 'ok';
CREATE INDEX external_refs_local ON external_refs (local_id);

-- Failed Records (R-D3) pages by most recently failed: index that order so deep pages are
-- as cheap as the first. Every record that is not 'ok' has failed at least once.
UPDATE external_refs SET last_failed_at = COALESCE(first_failed_at, 0)
    WHERE state <> 'ok' AND last_failed_at IS NULL;
CREATE INDEX external_refs_failed ON external_refs (connection_id, entity, state, last_failed_at, external_id)
    WHERE state <> 'ok';
