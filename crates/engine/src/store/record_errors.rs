//! The `record_errors` table: the error log of executions (R-I1).

use std::collections::BTreeMap;

use sqlx::FromRow;

use super::{page_of, parse_cursor, Store};
use crate::clock::from_millis;
use crate::error::Result;
use crate::model::{Page, PageRequest, RecordError, RecordErrorKind};

#[derive(Debug, FromRow)]
struct Row {
    id: i64,
    execution_id: String,
    record_id: String,
    entity: String,
    kind: String,
    message: String,
    field: Option<String>,
    at: i64,
}

impl Row {
    fn into_model(self) -> Result<RecordError> {
        Ok(RecordError {
            kind: self.kind.parse()?,
            id: self.id,
            execution_id: self.execution_id,
            record_id: self.record_id,
            entity: self.entity,
            message: self.message,
            field: self.field,
            at: from_millis(self.at),
        })
    }
}

const COLUMNS: &str = "id, execution_id, record_id, entity, kind, message, field, at";

impl Store {
    /// An execution's error log in order, optionally of one kind.
    pub async fn record_errors(
        &self,
        execution_id: &str,
        kind: Option<RecordErrorKind>,
        page: &PageRequest,
    ) -> Result<Page<RecordError>> {
        let after = parse_cursor(&page.cursor)?.unwrap_or(0);
        let rows: Vec<Row> = match kind {
            Some(k) => on!(self.reader(), |c| {
                sqlx::query_as(sql(&format!(
                "SELECT {COLUMNS} FROM record_errors WHERE execution_id = ? AND kind = ? AND id > ? ORDER BY id LIMIT ?"
            )))
            .bind(execution_id)
            .bind(k.as_str())
            .bind(after)
            .bind(page.limit() + 1)
            .fetch_all(c).await
            })?,
            None => on!(self.reader(), |c| {
                sqlx::query_as(sql(&format!(
                "SELECT {COLUMNS} FROM record_errors WHERE execution_id = ? AND id > ? ORDER BY id LIMIT ?"
            )))
            .bind(execution_id)
            .bind(after)
            .bind(page.limit() + 1)
            .fetch_all(c).await
            })?,
        };
        let items = rows
            .into_iter()
            .map(Row::into_model)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page.limit(), |e| e.id.to_string()))
    }

    /// How many errors of each kind an execution logged.
    pub async fn error_counts(&self, execution_id: &str) -> Result<BTreeMap<RecordErrorKind, u64>> {
        let rows: Vec<(String, i64)> = on!(self.reader(), |c| sqlx::query_as(sql(
            "SELECT kind, COUNT(*) FROM record_errors WHERE execution_id = ? GROUP BY kind"
        ))
        .bind(execution_id)
        .fetch_all(c)
        .await)?;
        rows.into_iter()
            .map(|(k, n)| Ok((k.parse()?, n as u64)))
            .collect()
    }

    /// The fields a run's schema and validation errors name, most named first, at most
    /// `limit` (what a diagnosis points at).
    pub async fn error_fields(&self, execution_id: &str, limit: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = on!(self.reader(), |c| {
            sqlx::query_as(sql("SELECT field FROM record_errors
             WHERE execution_id = ? AND field IS NOT NULL AND kind IN ('SchemaMismatch', 'ValidationError', 'TransformError')
             GROUP BY field ORDER BY COUNT(*) DESC, field LIMIT ?"))
        .bind(execution_id)
        .bind(limit)
        .fetch_all(c).await
        })?;
        Ok(rows.into_iter().map(|(f,)| f).collect())
    }

    /// Every error a record had, newest first (the Failed Records drawer).
    pub async fn record_history(
        &self,
        connection_id: &str,
        entity: &str,
        record_id: &str,
        limit: i64,
    ) -> Result<Vec<RecordError>> {
        let rows: Vec<Row> = on!(self.reader(), |c| {
            sqlx::query_as(sql(&format!(
            "SELECT {COLUMNS} FROM record_errors WHERE connection_id = ? AND entity = ? AND record_id = ? ORDER BY id DESC LIMIT ?"
        )))
        .bind(connection_id)
        .bind(entity)
        .bind(record_id)
        .bind(limit)
        .fetch_all(c).await
        })?;
        rows.into_iter().map(Row::into_model).collect()
    }
}
