//! Copying a whole store into another, SQLite ↔ PostgreSQL (`syncdesk store copy`): jobs,
//! connections (their secrets stay in the keychain, under the same ids), executions, error
//! logs, Failed Records and records, verified by each table's row count and checksum on both
//! sides before the copy is committed.

use futures::TryStreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column as _, Connection, Postgres, QueryBuilder, Row, Sqlite, TypeInfo, ValueRef};

use super::{Backend, Conn, Store, StoreKind};
use crate::error::{Error, Result};

/// The tables a copy carries, in an order that keeps every foreign key satisfied, each with
/// the column its rows are read in order of (a retry after the execution it retries).
const COPIED: &[(&str, &str)] = &[
    ("connections", "id"),
    ("observed_fields", "connection_id"),
    ("jobs", "id"),
    ("executions", "seq"),
    ("record_errors", "id"),
    ("records", "id"),
    ("external_refs", "connection_id"),
    ("alerts", "id"),
    ("audit_log", "id"),
    ("sync_pause", "id"),
];

/// What a copy leaves behind: the migrations' bookkeeping (the target has its own), and the
/// presence of workers and the events they shared, which belong to the store they ran on.
const NOT_COPIED: &[&str] = &[
    "_sqlx_migrations",
    "sqlite_sequence",
    "workers",
    "shared_events",
];

/// PostgreSQL's counters, moved past the copied rows so new rows do not collide with them.
const PG_COUNTERS: &[&str] = &[
    "SELECT setval(pg_get_serial_sequence('jobs', 'rowid'), COALESCE(MAX(rowid), 0) + 1, false) FROM jobs",
    "SELECT setval(pg_get_serial_sequence('record_errors', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM record_errors",
    "SELECT setval(pg_get_serial_sequence('alerts', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM alerts",
    "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM audit_log",
    "SELECT setval('execution_seq', COALESCE(MAX(seq), 0) + 1, false) FROM executions",
];

/// Bound values per insert statement: under SQLite's limit of 32,766 (PostgreSQL's is 65,535).
const BINDS_PER_INSERT: usize = 30_000;

/// One table's size and fingerprint: the same on both sides of a faithful copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSum {
    pub table: &'static str,
    pub rows: u64,
    /// 128 bits, hex: the sum of each row's SHA-256 (first 16 bytes), so neither the order
    /// rows come in nor the backend's way of storing a value changes it.
    pub checksum: String,
}

/// A value as both backends can hold it; a boolean is the integer 0 or 1.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// What a target column takes, for PostgreSQL's typed parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Bool,
    Real,
    Text,
    Blob,
}

/// A table to copy: its name, the column its rows are read in order of, and its columns.
type Planned = (&'static str, &'static str, Vec<Column>);

#[derive(Debug, Clone)]
struct Column {
    name: String,
    kind: Kind,
}

/// A running checksum of a table.
#[derive(Debug, Default)]
struct Sum {
    rows: u64,
    sum: u128,
}

impl Sum {
    fn add(&mut self, row: &[V]) {
        let mut h = Sha256::new();
        for v in row {
            match v {
                V::Null => h.update([0u8]),
                V::Int(i) => {
                    h.update([1u8]);
                    h.update(i.to_le_bytes());
                }
                V::Real(f) => {
                    h.update([2u8]);
                    h.update(f.to_bits().to_le_bytes());
                }
                V::Text(t) => {
                    h.update([3u8]);
                    h.update((t.len() as u64).to_le_bytes());
                    h.update(t.as_bytes());
                }
                V::Blob(b) => {
                    h.update([4u8]);
                    h.update((b.len() as u64).to_le_bytes());
                    h.update(b);
                }
            }
        }
        let digest = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        self.rows += 1;
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(first));
    }

    fn finish(&self, table: &'static str) -> TableSum {
        TableSum {
            table,
            rows: self.rows,
            checksum: format!("{:032x}", self.sum),
        }
    }
}

fn sqlite_values(row: &SqliteRow) -> Result<Vec<V>> {
    (0..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(V::Null);
            }
            // SQLite types values, not columns: read each as what it is stored as.
            let class = raw.type_info().name().to_string();
            Ok(match class.as_str() {
                "INTEGER" | "BOOLEAN" => V::Int(row.try_get(i)?),
                "REAL" => V::Real(row.try_get(i)?),
                "TEXT" => V::Text(row.try_get(i)?),
                "BLOB" => V::Blob(row.try_get(i)?),
                other => {
                    return Err(Error::Store(format!(
                        "a value of type {other} in column {} cannot be copied",
                        row.column(i).name()
                    )))
                }
            })
        })
        .collect()
}

fn pg_values(row: &PgRow) -> Result<Vec<V>> {
    (0..row.len())
        .map(|i| {
            if row.try_get_raw(i)?.is_null() {
                return Ok(V::Null);
            }
            let column = row.column(i);
            Ok(match column.type_info().name() {
                "INT8" => V::Int(row.try_get(i)?),
                "INT4" => V::Int(row.try_get::<i32, _>(i)?.into()),
                "INT2" => V::Int(row.try_get::<i16, _>(i)?.into()),
                "BOOL" => V::Int(row.try_get::<bool, _>(i)?.into()),
                "FLOAT8" => V::Real(row.try_get(i)?),
                "TEXT" | "VARCHAR" => V::Text(row.try_get(i)?),
                "BYTEA" => V::Blob(row.try_get(i)?),
                other => {
                    return Err(Error::Store(format!(
                        "a value of type {other} in column {} cannot be copied",
                        column.name()
                    )))
                }
            })
        })
        .collect()
}

fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

impl Store {
    /// Every table a copy carries, with its rows counted and fingerprinted (`syncdesk store
    /// summary`), read in one snapshot.
    pub async fn table_sums(&self) -> Result<Vec<TableSum>> {
        self.check_tables().await?;
        let mut plan: Vec<Planned> = Vec::with_capacity(COPIED.len());
        for (table, key) in COPIED {
            plan.push((table, key, self.columns(table).await?));
        }
        Ok(on!(self.reader(), |pool| {
            let mut snapshot = pool.begin().await?;
            let sums = sums_on((&mut *snapshot).into(), &plan).await?;
            snapshot.commit().await?;
            sums
        }))
    }

    /// Copy everything into `target`, a store with no jobs, connections, executions or
    /// records yet: one snapshot of this store read, one transaction written, committed only
    /// when each table's row count and checksum read back from the target match. Returns the
    /// tables' sums; on any failure the target is left as it was.
    pub async fn copy_to(&self, target: &Store) -> Result<Vec<TableSum>> {
        self.check_tables().await?;
        target.check_tables().await?;
        target.check_empty().await?;
        let mut plan: Vec<Planned> = Vec::with_capacity(COPIED.len());
        for (table, key) in COPIED {
            let from = self.columns(table).await?;
            let to = target.columns(table).await?;
            let mut a: Vec<&str> = from.iter().map(|c| c.name.as_str()).collect();
            let mut b: Vec<&str> = to.iter().map(|c| c.name.as_str()).collect();
            a.sort_unstable();
            b.sort_unstable();
            if a != b {
                return Err(Error::Store(format!(
                    "the two databases' {table} tables differ ({} against {}): update Syncdesk \
                     on both sides first",
                    a.join(", "),
                    b.join(", ")
                )));
            }
            // The target's kinds, in the source's column order.
            let cols: Vec<Column> = from
                .iter()
                .map(|c| {
                    to.iter()
                        .find(|t| t.name == c.name)
                        .cloned()
                        .expect("same columns")
                })
                .collect();
            plan.push((*table, *key, cols));
        }

        let mut writer = target.writer().await?;
        let sums = match writer.conn() {
            Backend::Sqlite(w) => {
                let mut tx = w.begin().await?;
                let sums = self.copy_rows(&plan, &mut Writing::Sqlite(&mut tx)).await?;
                let back = sums_on((&mut *tx).into(), &plan).await?;
                verify(&sums, &back)?;
                tx.commit().await?;
                sums
            }
            Backend::Pg(w) => {
                let mut tx = w.begin().await?;
                let sums = self.copy_rows(&plan, &mut Writing::Pg(&mut tx)).await?;
                for counter in PG_COUNTERS {
                    sqlx::query(counter).execute(&mut *tx).await?;
                }
                let back = sums_on((&mut *tx).into(), &plan).await?;
                verify(&sums, &back)?;
                tx.commit().await?;
                sums
            }
        };
        Ok(sums)
    }

    /// Read each planned table from one snapshot of this store into `to`; the sums of what
    /// was read.
    async fn copy_rows(&self, plan: &[Planned], to: &mut Writing<'_, '_>) -> Result<Vec<TableSum>> {
        let mut out = Vec::with_capacity(plan.len());
        on!(self.reader(), |pool| {
            let mut snapshot = pool.begin().await?;
            for (table, key, cols) in plan {
                let text = select(table, key, cols);
                let per_insert = (BINDS_PER_INSERT / cols.len().max(1)).max(1);
                let mut rows = sqlx::query(&text).fetch(&mut *snapshot);
                let mut sum = Sum::default();
                let mut batch = Vec::with_capacity(per_insert);
                while let Some(row) = rows.try_next().await? {
                    let v = values(&row)?;
                    sum.add(&v);
                    batch.push(v);
                    if batch.len() == per_insert {
                        to.insert(table, cols, std::mem::take(&mut batch)).await?;
                    }
                }
                drop(rows);
                if !batch.is_empty() {
                    to.insert(table, cols, batch).await?;
                }
                out.push(sum.finish(table));
            }
            snapshot.commit().await?;
        });
        Ok(out)
    }

    /// The tables of this store, checked against what a copy knows: a table added by a
    /// migration must be placed in [`COPIED`] or [`NOT_COPIED`], never silently left out.
    async fn check_tables(&self) -> Result<()> {
        let names: Vec<(String,)> = on!(self.reader(), |c| {
            match self.kind() {
            StoreKind::Sqlite => sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(c)
                .await,
            StoreKind::Postgres => sqlx::query_as(
                "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = current_schema()"
            )
            .fetch_all(c)
            .await,
        }
        })?;
        let unknown: Vec<String> = names
            .into_iter()
            .map(|(n,)| n)
            .filter(|n| !COPIED.iter().any(|(t, _)| t == n) && !NOT_COPIED.contains(&n.as_str()))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(Error::Store(format!(
                "the database has tables this version of Syncdesk cannot copy: {}",
                unknown.join(", ")
            )))
        }
    }

    /// Refuse a target that already holds data: a copy never merges into one.
    async fn check_empty(&self) -> Result<()> {
        let mut held = Vec::new();
        for (table, _) in COPIED {
            let text = format!("SELECT COUNT(*) FROM {table}");
            let (n,): (i64,) = on!(self.reader(), |c| sqlx::query_as(&text).fetch_one(c).await)?;
            if n > 0 {
                held.push(format!("{n} in {table}"));
            }
        }
        if held.is_empty() {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "the target database already holds data ({}); copy into a new, empty one",
                held.join(", ")
            )))
        }
    }

    /// A table's columns and what each takes. SQLite's jobs keep their creation order in the
    /// implicit `rowid`, which PostgreSQL has as a column: it is copied as one.
    async fn columns(&self, table: &str) -> Result<Vec<Column>> {
        let rows: Vec<(String, String)> = on!(self.reader(), |c| {
            match self.kind() {
            StoreKind::Sqlite => sqlx::query_as("SELECT name, type FROM pragma_table_info(?) ORDER BY cid")
                .bind(table)
                .fetch_all(c)
                .await,
            StoreKind::Postgres => sqlx::query_as(
                "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
            )
            .bind(table)
            .fetch_all(c)
            .await,
        }
        })?;
        let mut cols: Vec<Column> = rows
            .into_iter()
            .map(|(name, ty)| {
                let ty = ty.to_ascii_lowercase();
                let kind = if ty == "boolean" {
                    Kind::Bool
                } else if ty.contains("int") {
                    Kind::Int
                } else if ty.contains("real") || ty.contains("double") || ty.contains("float") {
                    Kind::Real
                } else if ty.contains("blob") || ty == "bytea" {
                    Kind::Blob
                } else {
                    Kind::Text
                };
                Column { name, kind }
            })
            .collect();
        if table == "jobs" && !cols.iter().any(|c| c.name == "rowid") {
            cols.insert(
                0,
                Column {
                    name: "rowid".into(),
                    kind: Kind::Int,
                },
            );
        }
        Ok(cols)
    }
}

fn select(table: &str, key: &str, cols: &[Column]) -> String {
    let names: Vec<String> = cols.iter().map(|c| quoted(&c.name)).collect();
    format!("SELECT {} FROM {table} ORDER BY {key}", names.join(", "))
}

/// The row's values, whichever backend it came from.
trait Values {
    fn values(&self) -> Result<Vec<V>>;
}

impl Values for SqliteRow {
    fn values(&self) -> Result<Vec<V>> {
        sqlite_values(self)
    }
}

impl Values for PgRow {
    fn values(&self) -> Result<Vec<V>> {
        pg_values(self)
    }
}

fn values(row: &impl Values) -> Result<Vec<V>> {
    row.values()
}

/// The target's transaction.
enum Writing<'a, 'c> {
    Sqlite(&'a mut sqlx::Transaction<'c, Sqlite>),
    Pg(&'a mut sqlx::Transaction<'c, Postgres>),
}

impl Writing<'_, '_> {
    async fn insert(&mut self, table: &str, cols: &[Column], rows: Vec<Vec<V>>) -> Result<()> {
        let names: Vec<String> = cols.iter().map(|c| quoted(&c.name)).collect();
        let head = format!("INSERT INTO {table} ({}) ", names.join(", "));
        match self {
            Writing::Sqlite(tx) => {
                let mut q = QueryBuilder::<Sqlite>::new(head);
                q.push_values(rows, |mut b, row| {
                    for v in row {
                        match v {
                            V::Null => b.push_bind(None::<i64>),
                            V::Int(i) => b.push_bind(i),
                            V::Real(f) => b.push_bind(f),
                            V::Text(t) => b.push_bind(t),
                            V::Blob(x) => b.push_bind(x),
                        };
                    }
                });
                q.build().execute(&mut ***tx).await?;
            }
            Writing::Pg(tx) => {
                let mut q = QueryBuilder::<Postgres>::new(head);
                let mut bad = None;
                q.push_values(rows, |mut b, row| {
                    for (v, c) in row.into_iter().zip(cols) {
                        match (c.kind, v) {
                            (Kind::Bool, V::Int(i)) => b.push_bind(i != 0),
                            (Kind::Bool, V::Null) => b.push_bind(None::<bool>),
                            (Kind::Int, V::Null) => b.push_bind(None::<i64>),
                            (Kind::Real, V::Null) => b.push_bind(None::<f64>),
                            (Kind::Blob, V::Null) => b.push_bind(None::<Vec<u8>>),
                            (_, V::Null) => b.push_bind(None::<String>),
                            (Kind::Int, V::Int(i)) => b.push_bind(i),
                            (Kind::Real, V::Real(f)) => b.push_bind(f),
                            (Kind::Text, V::Text(t)) => b.push_bind(t),
                            (Kind::Blob, V::Blob(x)) => b.push_bind(x),
                            (kind, v) => {
                                bad.get_or_insert(format!(
                                    "{table}.{}: {v:?} does not fit a {kind:?} column",
                                    c.name
                                ));
                                b.push_bind(None::<String>)
                            }
                        };
                    }
                });
                if let Some(why) = bad {
                    return Err(Error::Store(format!("cannot copy {why}")));
                }
                q.build().execute(&mut ***tx).await?;
            }
        }
        Ok(())
    }
}

/// Each planned table's rows and checksum, read on `conn` (a snapshot of the source, or the
/// target's transaction before it commits).
async fn sums_on(conn: Conn<'_>, plan: &[Planned]) -> Result<Vec<TableSum>> {
    let mut out = Vec::with_capacity(plan.len());
    on!(conn, |c| {
        for (table, key, cols) in plan {
            let text = select(table, key, cols);
            let mut rows = sqlx::query(&text).fetch(&mut *c);
            let mut sum = Sum::default();
            while let Some(row) = rows.try_next().await? {
                sum.add(&values(&row)?);
            }
            out.push(sum.finish(table));
        }
    });
    Ok(out)
}

/// Refuse a copy whose target does not read back as what was read.
fn verify(read: &[TableSum], back: &[TableSum]) -> Result<()> {
    for (a, b) in read.iter().zip(back) {
        if a != b {
            return Err(Error::Store(format!(
                "the copy of {} does not match (read {} rows, {}; the target holds {} rows, {}); \
                 nothing was written",
                a.table, a.rows, a.checksum, b.rows, b.checksum
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tables_sum_ignores_row_order_and_tells_values_apart() {
        let rows = [
            vec![V::Int(1), V::Text("a".into()), V::Null],
            vec![V::Int(2), V::Text("b".into()), V::Int(0)],
        ];
        let (mut a, mut b) = (Sum::default(), Sum::default());
        a.add(&rows[0]);
        a.add(&rows[1]);
        b.add(&rows[1]);
        b.add(&rows[0]);
        assert_eq!(a.finish("t"), b.finish("t"));
        // NULL, 0 and "" are three different values; so are "ab"+"" and "a"+"b".
        let one = |row: Vec<V>| {
            let mut s = Sum::default();
            s.add(&row);
            s.finish("t").checksum
        };
        let null = one(vec![V::Null]);
        assert_ne!(null, one(vec![V::Int(0)]));
        assert_ne!(null, one(vec![V::Text(String::new())]));
        assert_ne!(
            one(vec![V::Text("ab".into()), V::Text(String::new())]),
            one(vec![V::Text("a".into()), V::Text("b".into())])
        );
    }
}
