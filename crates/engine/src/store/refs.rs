//! The `records` and `external_refs` tables: local records, their links to provider ids and
//! each record's failure memory. A page is written in one transaction (SPEC §4 decision).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{Connection, FromRow, QueryBuilder};

use super::executions::{write_progress, Progress};
use super::{push_list, shaped_chunks, Store};
use crate::clock::{from_millis, to_millis};
use crate::error::Result;
use crate::model::{DeadLetter, Page, PageRequest, RecordErrorKind};
use crate::policy::{RecordState, Strikes};

/// An external reference as stored.
#[derive(Debug, Clone, FromRow)]
pub struct RefRow {
    pub external_id: String,
    pub local_id: Option<String>,
    pub content_hash: Option<String>,
    pub last_synced_at: Option<i64>,
    /// Checked as it is read: an unknown state is an error, never taken for `ok`.
    #[sqlx(try_from = "String")]
    pub state: StoredState,
    pub strikes: i64,
    pub first_failed_at: Option<i64>,
    pub last_failed_at: Option<i64>,
    pub last_failed_execution: Option<String>,
    pub last_error: Option<String>,
    pub last_payload: Option<String>,
}

/// A record state read from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredState(pub RecordState);

impl TryFrom<String> for StoredState {
    type Error = crate::error::Error;
    fn try_from(text: String) -> Result<Self> {
        super::stored_record_state(&text).map(StoredState)
    }
}

impl RefRow {
    pub fn state(&self) -> RecordState {
        self.state.0
    }
    pub fn strikes(&self) -> Strikes {
        Strikes {
            state: self.state(),
            count: self.strikes as u32,
            last_execution: self.last_failed_execution.clone(),
        }
    }
}

/// A local record to insert or replace.
#[derive(Debug, Clone)]
pub struct RecordUpsert {
    pub id: String,
    pub natural_key: Option<String>,
    pub data: String,
    pub content_hash: String,
}

/// An external reference to insert or replace (every column, computed from the loaded row).
#[derive(Debug, Clone)]
pub struct RefUpsert {
    pub external_id: String,
    pub local_id: Option<String>,
    pub content_hash: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub strikes: Strikes,
    pub first_failed_at: Option<DateTime<Utc>>,
    pub last_failed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_payload: Option<String>,
}

/// One error-log row.
#[derive(Debug, Clone)]
pub struct ErrorInsert {
    pub record_id: String,
    pub kind: RecordErrorKind,
    pub message: String,
    pub field: Option<String>,
}

/// Everything one page changes, written atomically.
#[derive(Debug, Default)]
pub struct PageWrite {
    pub records: Vec<RecordUpsert>,
    pub refs: Vec<RefUpsert>,
    pub errors: Vec<ErrorInsert>,
}

impl Store {
    /// The references of these provider ids, read on the writer: a run's lookups, which must
    /// see what its last page wrote.
    pub async fn refs_for(
        &self,
        connection_id: &str,
        entity: &str,
        ids: &[String],
    ) -> Result<HashMap<String, RefRow>> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in shaped_chunks(ids) {
            let rows: Vec<RefRow> = on!(self.writer().await?.conn(), |c| refs_query(
                connection_id,
                entity,
                chunk
            )
            .build_query_as()
            .fetch_all(c)
            .await)?;
            out.extend(rows.into_iter().map(|r| (r.external_id.clone(), r)));
        }
        Ok(out)
    }

    /// Local ids of linked records of `entity` (reference resolution, R-R3).
    pub async fn local_ids(
        &self,
        connection_id: &str,
        entity: &str,
        ids: &[String],
    ) -> Result<HashMap<String, String>> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in shaped_chunks(ids) {
            let rows: Vec<(String, String)> = on!(self.writer().await?.conn(), |c| {
                let mut q =
                    QueryBuilder::new("SELECT external_id, local_id FROM external_refs WHERE local_id IS NOT NULL AND connection_id = ");
                q.push_bind(connection_id)
                    .push(" AND entity = ")
                    .push_bind(entity)
                    .push(" AND external_id IN ");
                push_list(&mut q, chunk);
                q.build_query_as().fetch_all(c).await?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// Which of these natural keys already exist among local records of `entity` (R-R2).
    pub async fn existing_natural_keys(
        &self,
        entity: &str,
        keys: &[String],
    ) -> Result<HashSet<String>> {
        let mut out = HashSet::new();
        for chunk in shaped_chunks(keys) {
            let rows: Vec<(String,)> = on!(self.writer().await?.conn(), |c| {
                let mut q = QueryBuilder::new("SELECT natural_key FROM records WHERE entity = ");
                q.push_bind(entity).push(" AND natural_key IN ");
                push_list(&mut q, chunk);
                q.build_query_as().fetch_all(c).await?
            });
            out.extend(rows.into_iter().map(|(k,)| k));
        }
        Ok(out)
    }

    /// Dead letters of each `(connection id, entity)` pair, in one query.
    pub async fn dead_letter_counts(
        &self,
        pairs: &[(String, String)],
    ) -> Result<HashMap<(String, String), u64>> {
        let mut out = HashMap::with_capacity(pairs.len());
        for chunk in shaped_chunks(pairs) {
            let rows: Vec<(String, String, i64)> = on!(self.reader(), |c| {
                let mut q = QueryBuilder::new(concat!(
                "SELECT connection_id, entity, COUNT(*) FROM external_refs WHERE state = 'dead_letter' AND ",
                failed_refs!(),
                " AND (connection_id, entity) IN (VALUES "
            ));
                let mut sep = q.separated(", ");
                for (conn, entity) in chunk {
                    sep.push("(")
                        .push_bind_unseparated(conn)
                        .push_unseparated(", ")
                        .push_bind_unseparated(entity)
                        .push_unseparated(")");
                }
                q.push(") GROUP BY connection_id, entity");
                q.build_query_as().fetch_all(c).await?
            });
            out.extend(
                rows.into_iter()
                    .map(|(c, e, n)| ((c, e), u64::try_from(n).unwrap_or(0))),
            );
        }
        Ok(out)
    }

    /// Provider ids of records that failed and are not dead letters yet: the next run
    /// attempts them again even if incremental mode would not fetch them (R-D1 decision).
    pub async fn failing_ids(
        &self,
        connection_id: &str,
        entity: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = on!(self.reader(), |c| {
            sqlx::query_as(sql("SELECT external_id FROM external_refs WHERE connection_id = ? AND entity = ? AND state = 'failing' ORDER BY external_id LIMIT ?"))
        .bind(connection_id)
        .bind(entity)
        .bind(limit)
        .fetch_all(c).await
        })?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Write a page's records, references, errors and the execution's progress in one
    /// transaction: a record is never stored without its link, nor counted without its row.
    /// Runs on a writer the caller took (`Store::page_writer`), so a run can hand the write
    /// to a task and go on mapping its next page.
    pub(crate) async fn write_page(
        conn: super::Conn<'_>,
        connection_id: &str,
        entity: &str,
        execution_id: &str,
        now: DateTime<Utc>,
        page: &PageWrite,
        progress: &Progress,
    ) -> Result<()> {
        let now_ms = to_millis(now);
        on!(conn, |c| {
            let mut tx = c.begin().await?;
            for chunk in shaped_chunks(&page.records) {
                let mut q = QueryBuilder::new(
                "INSERT INTO records (id, entity, natural_key, data, content_hash, created_at, updated_at) ",
            );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(&r.id)
                        .push_bind(entity)
                        .push_bind(&r.natural_key)
                        .push_bind(&r.data)
                        .push_bind(&r.content_hash)
                        .push_bind(now_ms)
                        .push_bind(now_ms);
                });
                q.push(
                " ON CONFLICT (id) DO UPDATE SET natural_key = excluded.natural_key, data = excluded.data,
                  content_hash = excluded.content_hash, updated_at = excluded.updated_at",
            );
                q.build().execute(&mut *tx).await?;
            }
            for chunk in shaped_chunks(&page.refs) {
                let mut q = QueryBuilder::new(
                "INSERT INTO external_refs (connection_id, entity, external_id, local_id, content_hash, last_synced_at, state, strikes,
                 first_failed_at, last_failed_at, last_failed_execution, last_error, last_payload) ",
            );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(connection_id)
                        .push_bind(entity)
                        .push_bind(&r.external_id)
                        .push_bind(&r.local_id)
                        .push_bind(&r.content_hash)
                        .push_bind(r.last_synced_at.map(to_millis))
                        .push_bind(r.strikes.state.as_str())
                        .push_bind(i64::from(r.strikes.count))
                        .push_bind(r.first_failed_at.map(to_millis))
                        .push_bind(r.last_failed_at.map(to_millis))
                        .push_bind(&r.strikes.last_execution)
                        .push_bind(&r.last_error)
                        .push_bind(&r.last_payload);
                });
                q.push(
                " ON CONFLICT (connection_id, entity, external_id) DO UPDATE SET local_id = excluded.local_id,
                  content_hash = excluded.content_hash, last_synced_at = excluded.last_synced_at, state = excluded.state,
                  strikes = excluded.strikes, first_failed_at = excluded.first_failed_at, last_failed_at = excluded.last_failed_at,
                  last_failed_execution = excluded.last_failed_execution, last_error = excluded.last_error,
                  last_payload = excluded.last_payload",
            );
                q.build().execute(&mut *tx).await?;
            }
            for chunk in shaped_chunks(&page.errors) {
                let mut q = QueryBuilder::new(
                "INSERT INTO record_errors (execution_id, connection_id, entity, record_id, kind, message, field, at) ",
            );
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(execution_id)
                        .push_bind(connection_id)
                        .push_bind(entity)
                        .push_bind(&e.record_id)
                        .push_bind(e.kind.as_str())
                        .push_bind(&e.message)
                        .push_bind(&e.field)
                        .push_bind(now_ms);
                });
                q.build().execute(&mut *tx).await?;
            }
            write_progress((&mut *tx).into(), execution_id, progress).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Failed records of a job's connection and entity in `state`, most recently failed first.
    /// Keyset-paginated on `(last_failed_at, external_id)`, which `external_refs_failed`
    /// indexes, so a deep page costs what the first does.
    pub async fn failed_records(
        &self,
        connection_id: &str,
        entity: &str,
        state: RecordState,
        page: &PageRequest,
    ) -> Result<Page<DeadLetter>> {
        let bad = || crate::Error::invalid("cursor", "not a cursor from this list");
        // Cursor: "<last_failed_ms>:<external id>" of the last row shown.
        let after = match &page.cursor {
            Some(c) => {
                let (ms, id) = c.split_once(':').ok_or_else(bad)?;
                Some((ms.parse::<i64>().map_err(|_| bad())?, id.to_string()))
            }
            None => None,
        };
        let limit = page.limit() + 1;
        let rows: Vec<RefRow> = on!(self.reader(), |c| failed_records_query(
            "",
            connection_id,
            entity,
            state,
            after,
            limit
        )
        .build_query_as()
        .fetch_all(c)
        .await)?;
        let items: Vec<DeadLetter> = rows.into_iter().map(|r| dead_letter(r, entity)).collect();
        Ok(super::page_of(items, page.limit(), |d| {
            format!(
                "{}:{}",
                d.last_failed_at.map(to_millis).unwrap_or(0),
                d.record_id
            )
        }))
    }

    /// One record's failure memory.
    pub async fn failed_record(
        &self,
        connection_id: &str,
        entity: &str,
        external_id: &str,
    ) -> Result<Option<DeadLetter>> {
        // On a reader, unlike a run's lookups: the Failed Records drawer does not wait for
        // running jobs' page writes.
        let ids = [external_id.to_string()];
        let row: Option<RefRow> = on!(self.reader(), |c| refs_query(connection_id, entity, &ids)
            .build_query_as()
            .fetch_optional(c)
            .await)?;
        Ok(row.map(|r| dead_letter(r, entity)))
    }

    /// Set the state of records (Dismiss, R-D5), only those currently in `from`.
    pub async fn set_record_state(
        &self,
        connection_id: &str,
        entity: &str,
        ids: &[String],
        from: &[RecordState],
        to: RecordState,
    ) -> Result<Vec<String>> {
        let mut changed = Vec::new();
        for chunk in shaped_chunks(ids) {
            let rows: Vec<(String,)> = on!(self.writer().await?.conn(), |c| {
                let mut q = QueryBuilder::new("UPDATE external_refs SET state = ");
                q.push_bind(to.as_str())
                    .push(" WHERE connection_id = ")
                    .push_bind(connection_id);
                q.push(" AND entity = ")
                    .push_bind(entity)
                    .push(" AND state IN ");
                push_list(&mut q, from.iter().map(|s| s.as_str()));
                q.push(" AND external_id IN ");
                push_list(&mut q, chunk);
                q.push(" RETURNING external_id");
                q.build_query_as().fetch_all(c).await?
            });
            changed.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(changed)
    }

    /// A local record's data by id.
    pub async fn local_record(&self, id: &str) -> Result<Option<serde_json::Value>> {
        let row: Option<(String,)> = on!(self.reader(), |c| sqlx::query_as(sql(
            "SELECT data FROM records WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(c)
        .await)?;
        Ok(row.and_then(|(d,)| serde_json::from_str(&d).ok()))
    }

    /// Count local records of an entity (tests, demo, benchmarks).
    pub async fn count_records(&self, entity: &str) -> Result<u64> {
        let (n,): (i64,) = on!(self.reader(), |c| sqlx::query_as(sql(
            "SELECT COUNT(*) FROM records WHERE entity = ?"
        ))
        .bind(entity)
        .fetch_one(c)
        .await)?;
        Ok(n as u64)
    }

    /// Count references of a connection's entity in a state.
    pub async fn count_refs(
        &self,
        connection_id: &str,
        entity: &str,
        state: RecordState,
    ) -> Result<u64> {
        let (n,): (i64,) = on!(self.reader(), |c| {
            sqlx::query_as(sql("SELECT COUNT(*) FROM external_refs WHERE connection_id = ? AND entity = ? AND state = ?"))
        .bind(connection_id)
        .bind(entity)
        .bind(state.as_str())
        .fetch_one(c).await
        })?;
        Ok(n as u64)
    }
}

/// A `RefRow`'s columns, up to the connection id's placeholder.
const SELECT_REFS: &str =
    "SELECT external_id, local_id, content_hash, last_synced_at, state, strikes, \
     first_failed_at, last_failed_at, last_failed_execution, last_error, last_payload \
     FROM external_refs WHERE connection_id = ";

/// The references of these provider ids (at most `CHUNK`).
fn refs_query<'a, DB>(
    connection_id: &'a str,
    entity: &'a str,
    ids: &'a [String],
) -> QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut q = QueryBuilder::new(SELECT_REFS);
    q.push_bind(connection_id)
        .push(" AND entity = ")
        .push_bind(entity)
        .push(" AND external_id IN ");
    push_list(&mut q, ids);
    q
}

/// The Failed Records page query, after `prefix` (`EXPLAIN QUERY PLAN ` in a test).
fn failed_records_query<'a, DB>(
    prefix: &str,
    connection_id: &'a str,
    entity: &'a str,
    state: RecordState,
    after: Option<(i64, String)>,
    limit: i64,
) -> QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut q = QueryBuilder::new(prefix);
    q.push(SELECT_REFS)
        .push_bind(connection_id)
        .push(" AND entity = ")
        .push_bind(entity)
        .push(" AND state = ")
        .push_bind(state.as_str());
    if state != RecordState::Ok {
        q.push(concat!(" AND ", failed_refs!()));
    }
    if let Some((ms, id)) = after {
        q.push(" AND (last_failed_at, external_id) < (")
            .push_bind(ms)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY last_failed_at DESC, external_id DESC LIMIT ")
        .push_bind(limit);
    q
}

/// `failed_records_query`'s plan, for the test that keeps it on its index.
#[cfg(test)]
pub(crate) async fn failed_records_plan(
    store: &Store,
    state: RecordState,
    after: Option<(i64, String)>,
) -> Vec<String> {
    let rows: Vec<(i64, i64, i64, String)> =
        failed_records_query("EXPLAIN QUERY PLAN ", "c", "customers", state, after, 51)
            .build_query_as()
            .fetch_all(store.sqlite_reader())
            .await
            .expect("plan");
    rows.into_iter().map(|r| r.3).collect()
}

fn dead_letter(r: RefRow, entity: &str) -> DeadLetter {
    DeadLetter {
        state: r.state(),
        record_id: r.external_id,
        local_id: r.local_id,
        entity: entity.to_string(),
        first_failed_at: r.first_failed_at.map(from_millis),
        last_failed_at: r.last_failed_at.map(from_millis),
        attempts: r.strikes as u32,
        last_error: r.last_error,
        last_payload: r.last_payload.and_then(|p| serde_json::from_str(&p).ok()),
    }
}
