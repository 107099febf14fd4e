//! The `connections` table.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::jobs::{pick, prefix_end, MIN_PREFIX};
use super::{Store, StoreKind};
use crate::clock::{from_millis, to_millis};
use crate::connector::{ConnectorSpec, TokenTimes};
use crate::error::{Error, Result};
use crate::model::{AuthKind, Connection, ConnectionStatus, ObservedFields};

#[derive(Debug, FromRow)]
struct Row {
    id: String,
    name: String,
    provider: String,
    base_url: String,
    auth_kind: String,
    status: String,
    status_note: Option<String>,
    token_expires_at: Option<i64>,
    refresh_expires_at: Option<i64>,
    last_checked_at: Option<i64>,
    created_at: i64,
    values: String,
}

impl Row {
    fn into_model(self) -> Result<Connection> {
        let values = serde_json::from_str(&self.values).map_err(|e| {
            Error::Store(format!(
                "the values of connection {} are unreadable: {e}",
                self.name
            ))
        })?;
        Ok(Connection {
            auth_kind: self
                .auth_kind
                .parse()
                .map_err(|_| Error::Store(format!("unknown auth kind '{}'", self.auth_kind)))?,
            status: self.status.parse::<ConnectionStatus>()?,
            id: self.id,
            name: self.name,
            provider: self.provider,
            base_url: self.base_url,
            status_note: self.status_note,
            token_expires_at: self.token_expires_at.map(from_millis),
            refresh_expires_at: self.refresh_expires_at.map(from_millis),
            last_checked_at: self.last_checked_at.map(from_millis),
            created_at: from_millis(self.created_at),
            values,
        })
    }
}

#[derive(Debug, FromRow)]
struct Ranked {
    rank: i64,
    #[sqlx(flatten)]
    row: Row,
}

const COLUMNS: &str = "id, name, provider, base_url, auth_kind, status, status_note, token_expires_at, refresh_expires_at, last_checked_at, created_at, \"values\"";

/// A connection about to be stored.
#[derive(Debug)]
pub struct NewConnectionRow {
    pub id: String,
    pub name: String,
    pub provider: String,
    pub base_url: String,
    pub auth_kind: AuthKind,
    pub client_id: Option<String>,
    pub spec: ConnectorSpec,
    pub values: BTreeMap<String, String>,
    pub now: DateTime<Utc>,
}

impl Store {
    pub async fn insert_connection(&self, c: NewConnectionRow) -> Result<Connection> {
        let spec = serde_json::to_string(&c.spec).map_err(|e| Error::Store(e.to_string()))?;
        let values = serde_json::to_string(&c.values).map_err(|e| Error::Store(e.to_string()))?;
        let res = on!(self.writer().await?.conn(), |db| {
            sqlx::query(sql("INSERT INTO connections (id, name, provider, base_url, auth_kind, client_id, spec, \"values\", status, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)"))
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.provider)
        .bind(&c.base_url)
        .bind(c.auth_kind.as_str())
        .bind(&c.client_id)
        .bind(spec)
        .bind(values)
        .bind(to_millis(c.now))
        .bind(to_millis(c.now))
        .execute(db).await.map(|r| r.rows_affected())
        });
        match res {
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(Error::Conflict(format!(
                    "a connection named '{}' already exists",
                    c.name
                )))
            }
            other => other?,
        };
        self.connection(&c.id).await
    }

    /// A connection by id, name, or a unique id prefix of at least
    /// [`MIN_PREFIX`](super::jobs::MIN_PREFIX) characters.
    pub async fn connection(&self, id_or_name: &str) -> Result<Connection> {
        let rows: Vec<Ranked> = on!(self.reader(), |c| {
            sqlx::query_as(sql(&format!(
            "SELECT CAST(0 AS BIGINT) AS rank, {COLUMNS} FROM connections WHERE id = ?1
             UNION ALL SELECT CAST(1 AS BIGINT) AS rank, {COLUMNS} FROM connections WHERE name = ?1
             UNION ALL SELECT CAST(2 AS BIGINT) AS rank, {COLUMNS} FROM connections WHERE length(?1) >= ?3 AND id >= ?1 AND id < ?2
             ORDER BY rank LIMIT 6"
        )))
        .bind(id_or_name)
        .bind(prefix_end(id_or_name))
        .bind(MIN_PREFIX as i64)
        .fetch_all(c).await
        })?;
        pick(
            "connection",
            id_or_name,
            rows.into_iter().map(|r| (r.rank, r.row)).collect(),
            |r| format!("{} ({})", r.id, r.name),
        )?
        .into_model()
    }

    pub async fn connections(&self) -> Result<Vec<Connection>> {
        let rows: Vec<Row> = on!(self.reader(), |c| sqlx::query_as(sql(&format!(
            "SELECT {COLUMNS} FROM connections ORDER BY name"
        )))
        .fetch_all(c)
        .await)?;
        rows.into_iter().map(Row::into_model).collect()
    }

    /// The connector spec and client id of a connection.
    pub async fn connection_spec(&self, id: &str) -> Result<(ConnectorSpec, Option<String>)> {
        let (spec, client_id): (String, Option<String>) = on!(self.reader(), |c| sqlx::query_as(
            sql("SELECT spec, client_id FROM connections WHERE id = ?")
        )
        .bind(id)
        .fetch_optional(c)
        .await)?
        .ok_or_else(|| Error::NotFound {
            what: "connection",
            id: id.to_string(),
        })?;
        let spec = serde_json::from_str(&spec)
            .map_err(|e| Error::Store(format!("stored connector spec is unreadable: {e}")))?;
        Ok((spec, client_id))
    }

    /// Remove a connection that has no jobs (one whose credentials were refused as it was
    /// created). `false` when it has jobs or does not exist.
    pub async fn delete_unused_connection(&self, id: &str) -> Result<bool> {
        on!(self.writer().await?.conn(), |c| {
            let mut tx = sqlx::Connection::begin(c).await?;
            sqlx::query(sql("DELETE FROM observed_fields WHERE connection_id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let r = sqlx::query(sql(
                "DELETE FROM connections WHERE id = ? AND NOT EXISTS (SELECT 1 FROM jobs WHERE connection_id = ?)",
            ))
            .bind(id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(r.rows_affected() == 1)
        })
    }

    pub async fn set_connection_status(
        &self,
        id: &str,
        status: ConnectionStatus,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        set_connection_status_on(self.writer().await?.conn(), id, status, note, now).await
    }

    /// How the connection authenticates from now on (a browser sign-in leaves a refresh
    /// token where a client secret was).
    pub async fn set_connection_auth_kind(
        &self,
        id: &str,
        kind: AuthKind,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on!(self.writer().await?.conn(), |c| sqlx::query(sql(
            "UPDATE connections SET auth_kind = ?, updated_at = ? WHERE id = ?"
        ))
        .bind(kind.as_str())
        .bind(to_millis(now))
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Set (or, with `None`, remove) one connection-level value.
    pub async fn set_connection_value(
        &self,
        id: &str,
        name: &str,
        value: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        // One statement: a concurrent change of another value is not lost.
        let (text, key) = match (self.kind(), value) {
            (StoreKind::Sqlite, Some(_)) => ("UPDATE connections SET \"values\" = json_set(\"values\", ?, ?), updated_at = ? WHERE id = ?", true),
            (StoreKind::Sqlite, None) => ("UPDATE connections SET \"values\" = json_remove(\"values\", ?), updated_at = ? WHERE id = ?", true),
            (StoreKind::Postgres, Some(_)) => ("UPDATE connections SET \"values\" = jsonb_set(\"values\"::jsonb, ARRAY[?::text], to_jsonb(?::text))::text, updated_at = ? WHERE id = ?", false),
            (StoreKind::Postgres, None) => ("UPDATE connections SET \"values\" = (\"values\"::jsonb - ?::text)::text, updated_at = ? WHERE id = ?", false),
        };
        // SQLite names the member by a JSON path, PostgreSQL by the key itself.
        let path = if key {
            format!("$.{}", serde_json::Value::String(name.to_string()))
        } else {
            name.to_string()
        };
        let r = on!(self.writer().await?.conn(), |c| {
            let mut q = sqlx::query(sql(text)).bind(path);
            if let Some(v) = value {
                q = q.bind(v);
            }
            q.bind(to_millis(now))
                .bind(id)
                .execute(c)
                .await?
                .rows_affected()
        });
        if r == 0 {
            return Err(Error::NotFound {
                what: "connection",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    /// Point a connection at another base URL.
    pub async fn set_connection_base_url(
        &self,
        id: &str,
        base_url: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on!(self.writer().await?.conn(), |c| sqlx::query(sql(
            "UPDATE connections SET base_url = ?, updated_at = ? WHERE id = ?"
        ))
        .bind(base_url)
        .bind(to_millis(now))
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn set_connection_tokens(
        &self,
        id: &str,
        t: TokenTimes,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on!(self.writer().await?.conn(), |c| {
            sqlx::query(sql("UPDATE connections SET token_expires_at = ?, refresh_expires_at = COALESCE(?, refresh_expires_at),
             status = 'active', status_note = NULL, last_checked_at = ?, updated_at = ? WHERE id = ?"))
        .bind(t.expires_at.map(to_millis))
        .bind(t.refresh_expires_at.map(to_millis))
        .bind(to_millis(now))
        .bind(to_millis(now))
        .bind(id)
        .execute(c).await?.rows_affected()
        });
        Ok(())
    }

    /// Remember the fields the provider sent for an entity (R-E5). A set that differs from the
    /// stored one keeps the stored one as `previous_fields` and stamps `changed_at`, so the UI
    /// can show what changed; the same set again only moves `observed_at`.
    pub async fn set_observed_fields(
        &self,
        id: &str,
        entity: &str,
        fields: &[String],
        now: DateTime<Utc>,
    ) -> Result<()> {
        set_observed_fields_on(self.writer().await?.conn(), id, entity, fields, now).await
    }

    /// Entity → fields last seen and their last change, for one connection.
    pub async fn observed_fields(&self, id: &str) -> Result<BTreeMap<String, ObservedFields>> {
        #[derive(FromRow)]
        struct Observed {
            entity: String,
            fields: String,
            observed_at: i64,
            previous_fields: Option<String>,
            changed_at: Option<i64>,
        }
        let rows: Vec<Observed> = on!(self.reader(), |c| sqlx::query_as(sql(
            "SELECT entity, fields, observed_at, previous_fields, changed_at
             FROM observed_fields WHERE connection_id = ? ORDER BY entity"
        ))
        .bind(id)
        .fetch_all(c)
        .await)?;
        let list = |json: &str, entity: &str| {
            serde_json::from_str::<Vec<String>>(json).map_err(|e| {
                Error::Store(format!("observed fields of {entity} are not a list: {e}"))
            })
        };
        rows.into_iter()
            .map(|r| {
                let o = ObservedFields {
                    fields: list(&r.fields, &r.entity)?,
                    observed_at: from_millis(r.observed_at),
                    previous: (r.previous_fields.as_deref())
                        .map(|p| list(p, &r.entity))
                        .transpose()?,
                    changed_at: r.changed_at.map(from_millis),
                };
                Ok((r.entity, o))
            })
            .collect()
    }
}

pub(crate) async fn set_connection_status_on(
    conn: super::Conn<'_>,
    id: &str,
    status: ConnectionStatus,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    on!(conn, |c| {
        sqlx::query(sql("UPDATE connections SET status = ?, status_note = ?, last_checked_at = ?, updated_at = ? WHERE id = ?"))
        .bind(status.as_str())
        .bind(note)
        .bind(to_millis(now))
        .bind(to_millis(now))
        .bind(id)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

pub(crate) async fn set_observed_fields_on(
    conn: super::Conn<'_>,
    id: &str,
    entity: &str,
    fields: &[String],
    now: DateTime<Utc>,
) -> Result<()> {
    // Both databases evaluate every SET expression against the row as it was, so `fields` on
    // the right-hand side is the stored set.
    let fields = serde_json::to_string(fields).map_err(|e| Error::Store(e.to_string()))?;
    on!(conn, |c| {
        sqlx::query(sql(
        "INSERT INTO observed_fields (connection_id, entity, fields, observed_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (connection_id, entity) DO UPDATE SET
             previous_fields = CASE WHEN observed_fields.fields <> excluded.fields
                 THEN observed_fields.fields ELSE observed_fields.previous_fields END,
             changed_at = CASE WHEN observed_fields.fields <> excluded.fields
                 THEN excluded.observed_at ELSE observed_fields.changed_at END,
             fields = excluded.fields,
             observed_at = excluded.observed_at",
    ))
    .bind(id)
    .bind(entity)
    .bind(&fields)
    .bind(to_millis(now))
    .execute(c)
    .await?
    .rows_affected()
    });
    Ok(())
}
