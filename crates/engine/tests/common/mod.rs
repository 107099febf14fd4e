//! What the engine's test files share: the store each test runs on. By default a new SQLite
//! file in the test's directory; with `SYNCDESK_TEST_STORE=postgres` a new database on the
//! PostgreSQL server of scripts/with-postgres.sh (`SYNCDESK_TEST_POSTGRES`), so the same tests
//! prove both stores.

#![allow(dead_code)]

use std::path::Path;

use sqlx::{Connection, Executor};
use syncdesk_engine::Database;

/// The PostgreSQL server the tests run on, if any.
pub fn postgres_server() -> Option<String> {
    std::env::var("SYNCDESK_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A new, empty store for one test.
pub async fn database(dir: &Path) -> Database {
    match std::env::var("SYNCDESK_TEST_STORE").as_deref() {
        Ok("postgres") => {
            let server = postgres_server().expect(
                "SYNCDESK_TEST_STORE=postgres needs scripts/with-postgres.sh around the tests",
            );
            Database::Url(new_postgres_database(&server).await)
        }
        Ok("sqlite") | Err(_) => Database::File(dir.join("syncdesk.db")),
        Ok(other) => panic!("SYNCDESK_TEST_STORE is sqlite or postgres, not {other}"),
    }
}

/// Create a database of its own on `server`; its URL.
pub async fn new_postgres_database(server: &str) -> String {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut c = sqlx::PgConnection::connect(server)
        .await
        .expect("the test PostgreSQL server answers");
    c.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create a test database");
    let _ = c.close().await;
    let mut url = url::Url::parse(server).expect("server URL");
    url.set_path(&name);
    url.to_string()
}

/// A connection of the test's own to `db`, for what no API does (a fault in the store, an
/// id made to collide). Statements use `$1`-style placeholders, which both databases take.
pub async fn connect(db: &Database) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    let url = match db {
        Database::File(path) => format!("sqlite://{}", path.display()),
        Database::Url(url) => url.clone(),
    };
    sqlx::AnyConnection::connect(&url)
        .await
        .expect("the test's own connection")
}

/// Make inserts into `table` fail with `message` when `condition` (on the new row, `NEW.…`)
/// holds: a full disk or a corrupt page, as the engine would meet it. `remove_fault` undoes it.
pub async fn add_fault(db: &mut sqlx::AnyConnection, table: &str, condition: &str, message: &str) {
    if db.backend_name() == "PostgreSQL" {
        db.execute(
            format!(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN IF {condition} THEN RAISE EXCEPTION '{message}'; END IF; RETURN NEW; END $$"
            )
            .as_str(),
        )
        .await
        .unwrap();
        db.execute(
            format!("CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse()")
                .as_str(),
        )
        .await
        .unwrap();
    } else {
        db.execute(
            format!(
                "CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN {condition}
                 BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
            .as_str(),
        )
        .await
        .unwrap();
    }
}

pub async fn remove_fault(db: &mut sqlx::AnyConnection, table: &str) {
    if db.backend_name() == "PostgreSQL" {
        db.execute(format!("DROP TRIGGER refuse ON {table}; DROP FUNCTION refuse()").as_str())
            .await
            .unwrap();
    } else {
        db.execute("DROP TRIGGER refuse").await.unwrap();
    }
}

/// Everything `db` stores, as bytes to search: the SQLite file and its WAL, or every row of
/// every PostgreSQL table as text.
pub async fn stored_bytes(db: &Database) -> Vec<u8> {
    let mut bytes = Vec::new();
    match db {
        Database::File(path) => {
            for suffix in ["", "-wal"] {
                let mut p = path.as_os_str().to_os_string();
                p.push(suffix);
                if let Ok(b) = std::fs::read(p) {
                    bytes.extend(b);
                }
            }
        }
        Database::Url(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            let tables: Vec<(String,)> = sqlx::query_as(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            for (t,) in tables {
                let rows: Vec<(String,)> =
                    sqlx::query_as(&format!("SELECT r::text FROM \"{t}\" r"))
                        .fetch_all(&mut c)
                        .await
                        .unwrap();
                for (r,) in rows {
                    bytes.extend(r.into_bytes());
                }
            }
        }
    }
    bytes
}

/// The sandbox connection `sandbox` to `base_url`, with the sandbox's client secret.
pub fn sandbox_connection(base_url: String) -> syncdesk_engine::NewConnection {
    use syncdesk_engine::{ConnectorSpec, Secret, SecretKind};
    syncdesk_engine::NewConnection {
        name: "sandbox".into(),
        spec: ConnectorSpec::parse(include_str!("../../../sandbox/connector.toml")).unwrap(),
        base_url: Some(base_url),
        client_id: Some("sandbox-client".into()),
        secrets: vec![(SecretKind::ClientSecret, Secret::new("sandbox-secret"))],
        auth_base_url: None,
        auth_kind: None,
        values: Default::default(),
    }
}

/// A full pull of the sandbox connection's customers, run on demand.
pub fn full_pull_job(name: &str) -> syncdesk_engine::NewJob {
    syncdesk_engine::NewJob {
        name: name.into(),
        connection: "sandbox".into(),
        entity: "customers".into(),
        direction: syncdesk_engine::Direction::Pull,
        mode: syncdesk_engine::Mode::Full,
        schedule: None,
        enabled: true,
        settings: Default::default(),
    }
}

/// Queue a run of `job_id` due at `now`, for a worker to take; its id.
pub async fn queue_run(
    store: &syncdesk_engine::Store,
    job_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    use syncdesk_engine::{ExecutionStatus, Mode, Trigger};
    let id = uuid::Uuid::new_v4().to_string();
    let row = syncdesk_engine::store::NewExecution {
        id: id.clone(),
        job_id: job_id.to_string(),
        trigger: Trigger::Scheduled,
        attempt: 1,
        retry_of: None,
        status: ExecutionStatus::Queued,
        mode: Mode::Full,
        record_id: None,
        due_at: now,
        owner: None,
        waits_for_reauth: false,
    };
    store.insert_execution(row, now).await.unwrap();
    id
}

/// An engine on `db` with the real clock, its secrets in `secrets` (the machine's keychain:
/// engines of one test that share it see the same secrets).
pub async fn engine(
    db: &Database,
    secrets: &std::sync::Arc<syncdesk_engine::MemorySecretStore>,
) -> syncdesk_engine::Engine {
    syncdesk_engine::Engine::open(syncdesk_engine::EngineOptions {
        database: db.clone(),
        secrets: secrets.clone(),
        clock: std::sync::Arc::new(syncdesk_engine::SystemClock),
        actor: "admin@test".into(),
    })
    .await
    .unwrap()
}
