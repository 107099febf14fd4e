//! How PostgreSQL plans a run's lookups (issue 17): a run filling `external_refs` and
//! `records` gathers their statistics as they grow, so the lookup of a page's references
//! stays an index search on the whole key instead of a walk over every reference of the
//! connection (which made a 100,000-record pull fall from 18,000 to 5,500 records/s). Needs
//! the server of scripts/with-postgres.sh.

mod common;

use std::sync::Arc;

use sqlx::Connection;
use syncdesk_engine::{Database, ExecutionStatus, MemorySecretStore, RunOptions};
use syncdesk_sandbox::{Sandbox, SandboxConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_run_keeps_its_lookups_on_the_whole_index_key() {
    let server = common::postgres_server()
        .expect("plan tests need PostgreSQL: run them through scripts/with-postgres.sh");
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 3000,
        ..Default::default()
    })
    .await
    .unwrap();
    let url = common::new_postgres_database(&server).await;
    let engine = common::engine(
        &Database::Url(url.clone()),
        &Arc::new(MemorySecretStore::default()),
    )
    .await;
    let conn = engine
        .create_connection(common::sandbox_connection(sandbox.base_url()))
        .await
        .unwrap();
    let mut job = common::full_pull_job("customers");
    job.settings.batch_size = 100;
    let job = engine.create_job(job).await.unwrap();
    let e = engine
        .run_job(&job.id, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (e.status, e.counts.created),
        (ExecutionStatus::Completed, 3000)
    );

    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let analyzed: Vec<(String,)> = sqlx::query_as(
        "SELECT relname::TEXT FROM pg_stat_user_tables
         WHERE relname IN ('external_refs', 'records') AND last_analyze IS NOT NULL ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(
        analyzed,
        [("external_refs".to_string(),), ("records".to_string(),)],
        "the run gathered their statistics"
    );
    // A page's lookup, as the run makes it: the ids are part of the index search.
    let plan: Vec<(String,)> = sqlx::query_as(&format!(
        "EXPLAIN SELECT local_id FROM external_refs WHERE connection_id = '{}' AND entity = 'customers'
           AND external_id IN ('cus_00000001', 'cus_00000002', 'cus_00000003')",
        conn.id
    ))
    .fetch_all(&mut c)
    .await
    .unwrap();
    let plan: Vec<String> = plan.into_iter().map(|(l,)| l).collect();
    let text = plan.join("\n");
    assert!(
        plan.iter()
            .any(|l| l.contains("Index Cond") && l.contains("external_id = ANY")),
        "{text}"
    );
    assert!(!text.contains("Filter: (external_id"), "{text}");
    let _ = c.close().await;
    engine.shutdown().await;
    sandbox.shutdown().await;
}
