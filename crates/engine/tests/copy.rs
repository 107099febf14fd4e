//! Moving between stores (issue 17, `syncdesk store copy`): a store with jobs, connections,
//! executions, error logs, Failed Records, alerts, audit entries and a pause is copied into
//! the other backend (SQLite → PostgreSQL, or PostgreSQL → SQLite with
//! `SYNCDESK_TEST_STORE=postgres`) and back, each table's count and checksum the same at
//! every step; the copy works as a store (a new run numbers after the copied ones); a target
//! that holds data is refused and left as it was.

mod common;

use std::sync::Arc;

use syncdesk_engine::{
    Database, ExecutionStatus, MemorySecretStore, PageRequest, RunOptions, Store,
};
use syncdesk_sandbox::{BadKind, BadRecord, Entity, Faults, Sandbox, SandboxConfig};

async fn open(db: &Database) -> Store {
    match db {
        Database::File(p) => Store::open(p).await.unwrap(),
        Database::Url(u) => Store::open_url(u).await.unwrap(),
    }
}

/// A database of the other kind than `db` (PostgreSQL when the test server runs, else a second
/// SQLite file), and one more of `db`'s own kind.
async fn other_and_same(db: &Database, dir: &std::path::Path) -> (Database, Database) {
    let pg = || async {
        Database::Url(
            common::new_postgres_database(&common::postgres_server().expect("PostgreSQL")).await,
        )
    };
    match db {
        Database::File(_) if common::postgres_server().is_some() => {
            (pg().await, Database::File(dir.join("back.db")))
        }
        Database::File(_) => (
            Database::File(dir.join("other.db")),
            Database::File(dir.join("back.db")),
        ),
        Database::Url(_) => (Database::File(dir.join("other.db")), pg().await),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_copied_to_the_other_backend_and_back_keeps_every_row() {
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 120,
        faults: Faults {
            bad_records: vec![
                BadRecord {
                    entity: Entity::Customers,
                    id: "cus_00000003".into(),
                    kind: BadKind::NullRequired,
                },
                BadRecord {
                    entity: Entity::Customers,
                    id: "cus_00000007".into(),
                    kind: BadKind::InvalidDate,
                },
            ],
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = common::database(dir.path()).await;
    // The keychain is the machine's, not the store's: both sides see the same secrets.
    let secrets = Arc::new(MemorySecretStore::default());
    let engine = common::engine(&db, &secrets).await;
    engine
        .create_connection(common::sandbox_connection(sandbox.base_url()))
        .await
        .unwrap();
    let job = engine
        .create_job(common::full_pull_job("customers"))
        .await
        .unwrap();
    // Three runs: the two bad records fail in each, and move to Failed Records.
    for _ in 0..3 {
        let e = engine
            .run_job(&job.id, RunOptions::default())
            .await
            .unwrap();
        assert_eq!(e.status, ExecutionStatus::CompletedWithErrors);
    }
    let failed = engine
        .dead_letters(&job.id, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 2);
    engine.pause_syncs().await.unwrap();
    let source = engine.store().clone();
    let before = source.table_sums().await.unwrap();
    let count = |t: &str| before.iter().find(|s| s.table == t).unwrap().rows;
    assert_eq!(
        (
            count("connections"),
            count("jobs"),
            count("executions"),
            count("records")
        ),
        (1, 1, 3, 118)
    );
    assert!(count("record_errors") >= 6 && count("alerts") >= 1 && count("audit_log") >= 3);
    assert_eq!(count("sync_pause"), 1);

    // Into the other backend, and the sums read the same there.
    let (other, back) = other_and_same(&db, dir.path()).await;
    let target = open(&other).await;
    // A write that fails half-way (a full disk at the records) leaves the target empty.
    let mut faulty = common::connect(&other).await;
    common::add_fault(
        &mut faulty,
        "external_refs",
        "NEW.external_id = 'cus_00000100'",
        "disk full",
    )
    .await;
    let failed = source.copy_to(&target).await.unwrap_err();
    assert!(failed.to_string().contains("disk full"), "{failed}");
    assert!(
        target
            .table_sums()
            .await
            .unwrap()
            .iter()
            .all(|s| s.rows == 0),
        "nothing half-copied"
    );
    common::remove_fault(&mut faulty, "external_refs").await;
    assert_eq!(source.copy_to(&target).await.unwrap(), before);
    assert_eq!(target.table_sums().await.unwrap(), before);

    // A target that already holds data is refused, and keeps what it held.
    let refused = source.copy_to(&target).await.unwrap_err();
    assert!(
        refused.to_string().contains("already holds data"),
        "{refused}"
    );
    assert_eq!(target.table_sums().await.unwrap(), before);
    target.close().await;

    // The copy works as a store: a run there numbers after the copied ones.
    let copy = common::engine(&other, &secrets).await;
    assert_eq!(copy.job("customers").await.unwrap().id, job.id);
    assert!(copy.health().await.unwrap().paused.is_some());
    let copied = copy.store().table_sums().await.unwrap();
    assert_eq!(copied, before);
    // And back again, into a new store of the first kind.
    let back_store = open(&back).await;
    assert_eq!(copy.store().copy_to(&back_store).await.unwrap(), before);
    assert_eq!(back_store.table_sums().await.unwrap(), before);
    back_store.close().await;

    copy.resume_syncs().await.unwrap();
    let next = copy.run_job(&job.id, RunOptions::default()).await.unwrap();
    // The copied Failed Records are left out, as in the first store (R-D2).
    assert_eq!(
        (next.status, next.excluded),
        (ExecutionStatus::Completed, 2)
    );
    let runs = copy
        .executions(Some(&job.id), &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[0].id, next.id, "the new run is the newest");
    // Nothing was stored twice: the records are the copied ones, updated or skipped.
    assert_eq!(
        (next.counts.created, next.counts.failed),
        (0, 0),
        "{:?}",
        next.counts
    );
    copy.shutdown().await;
    engine.shutdown().await;
    sandbox.shutdown().await;
}
