//! Team mode (issue 17): several workers, each an engine with its own connections, share one
//! PostgreSQL database. Needs the PostgreSQL server of scripts/with-postgres.sh (which
//! scripts/test.sh runs the tests under).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use syncdesk_engine::{Database, Engine, Event, ExecutionStatus, MemorySecretStore};
use syncdesk_sandbox::{Sandbox, SandboxConfig};

fn server() -> String {
    common::postgres_server()
        .expect("team mode tests need PostgreSQL: run them through scripts/with-postgres.sh")
}

async fn worker(db: &Database, secrets: &Arc<MemorySecretStore>, name: &str) -> Engine {
    common::engine(db, secrets)
        .await
        .as_worker(Some(name), None)
        .unwrap()
}

/// SPEC §9: four workers on one database, 1,000 due executions: each runs exactly once,
/// none is lost, and every worker takes a share.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_run_1000_due_executions_exactly_once() {
    const DUE: usize = 1000;
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let db = Database::Url(common::new_postgres_database(&server()).await);
    // Every worker has the connection's secret in its own keychain.
    let secrets = Arc::new(MemorySecretStore::default());
    let first = worker(&db, &secrets, "w0").await;
    first
        .create_connection(common::sandbox_connection(sandbox.base_url()))
        .await
        .unwrap();
    let now = first.clock().now();
    let mut queued = Vec::with_capacity(DUE);
    for i in 0..DUE {
        let job = first
            .create_job(common::full_pull_job(&format!("job-{i:04}")))
            .await
            .unwrap();
        queued.push(common::queue_run(first.store(), &job.id, now).await);
    }

    let mut workers = vec![first];
    for n in 1..4 {
        workers.push(worker(&db, &secrets, &format!("w{n}")).await);
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = Vec::new();
    for w in &workers {
        // What each worker says it finished, from its own events.
        let mut events = w.subscribe();
        let collect = tokio::spawn(async move {
            let mut finished = Vec::new();
            loop {
                match events.recv().await {
                    Ok(Event::ExecutionFinished { execution_id, .. }) => {
                        finished.push(execution_id)
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        panic!("the test missed {n} events")
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return finished,
                }
            }
        });
        let (w2, stop2) = (w.clone(), stop.clone());
        tasks.push((
            tokio::spawn(async move { w2.run_worker(stop2).await }),
            collect,
        ));
    }
    // Until every queued row has ended (bounded: a lost row fails the test, not hangs it).
    let store = workers[0].store().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let open = count_open(&store).await;
        if open == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} executions still queued or running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let mut collectors = Vec::new();
    for (i, (run, collect)) in tasks.into_iter().enumerate() {
        run.await.unwrap().unwrap();
        workers[i].shutdown().await;
        collectors.push(collect);
    }
    // The last engine gone, the event streams close and the collectors return.
    drop(workers);
    let mut by_worker: HashMap<usize, Vec<String>> = HashMap::new();
    for (i, collect) in collectors.into_iter().enumerate() {
        by_worker.insert(i, collect.await.unwrap());
    }
    let Database::Url(url) = &db else {
        unreachable!()
    };
    let store = syncdesk_engine::Store::open_url(url).await.unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for ids in by_worker.values() {
        for id in ids {
            *seen.entry(id.clone()).or_default() += 1;
        }
    }
    for id in &queued {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "execution {id} ran {:?} times",
            seen.get(id)
        );
        let e = store.execution(id).await.unwrap();
        assert_eq!(e.status, ExecutionStatus::Completed, "{id}: {:?}", e.note);
    }
    assert_eq!(seen.len(), DUE, "only the queued executions ran");
    for (i, ids) in &by_worker {
        assert!(!ids.is_empty(), "worker w{i} took a share: {by_worker:?}");
    }
    // The one-running rule held throughout: each job ran once, and nothing was stored twice.
    assert_eq!(store.count_records("customers").await.unwrap(), 3);
    store.close().await;
}

/// Issue 17: a worker whose keychain lacks a connection's secret takes none of its runs
/// (and so never marks the connection expired for everyone); a worker that has it runs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_a_connections_secret_leaves_its_runs_to_one_that_has_it() {
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let db = Database::Url(common::new_postgres_database(&server()).await);
    let here = Arc::new(MemorySecretStore::default());
    let with = worker(&db, &here, "with-secret").await;
    with.create_connection(common::sandbox_connection(sandbox.base_url()))
        .await
        .unwrap();
    let now = with.clock().now();
    for i in 0..20 {
        let job = with
            .create_job(common::full_pull_job(&format!("job-{i}")))
            .await
            .unwrap();
        common::queue_run(with.store(), &job.id, now).await;
    }
    // Another machine: the same database, a keychain of its own without the secret.
    let without = worker(&db, &Arc::default(), "without-secret").await;
    let r = without.runnable_connections().await.unwrap();
    assert!(r.can.is_empty());
    assert_eq!(r.cannot.len(), 1);
    assert_eq!(
        (r.cannot[0].0.name.as_str(), r.cannot[0].1),
        ("sandbox", "client secret")
    );
    assert!(
        without.run_due().await.unwrap().is_empty(),
        "it took nothing"
    );
    assert_eq!(count_open(without.store()).await, 20);
    let conn = without.connection("sandbox").await.unwrap();
    assert_eq!(conn.status, syncdesk_engine::ConnectionStatus::Active);

    let ran = with.run_due().await.unwrap();
    assert_eq!(ran.len(), 20);
    assert!(ran.iter().all(|e| e.status == ExecutionStatus::Completed));
    assert_eq!(count_open(with.store()).await, 0);
    without.shutdown().await;
    with.shutdown().await;
}

async fn count_open(store: &syncdesk_engine::Store) -> usize {
    let mut open = 0;
    let mut page = syncdesk_engine::PageRequest::first(500);
    loop {
        let p = store.executions(None, &page).await.unwrap();
        open += p
            .items
            .iter()
            .filter(|e| matches!(e.status, ExecutionStatus::Queued | ExecutionStatus::Running))
            .count();
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return open,
        }
    }
}
