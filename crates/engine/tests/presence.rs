//! Team mode's presence (issue 17): engines sharing one store (SQLite by default, PostgreSQL
//! with `SYNCDESK_TEST_STORE=postgres`) see which of them ran each execution, which are alive,
//! and hear the events the others share: a breaker tripped on a headless worker reaches each
//! desktop once, and once more never, even across a restart of its follower.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::Executor;
use syncdesk_engine::{Engine, Event, FailureKind, MemorySecretStore, RunOptions, WorkerRole};
use syncdesk_sandbox::{Entity, Faults, Sandbox, SandboxConfig, SchemaDrift};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Events received until the end of `execution` is among them (bounded: 30 s).
async fn heard_until_end(rx: &mut broadcast::Receiver<Event>, execution: &str) -> Vec<Event> {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let e = rx.recv().await.expect("events");
            let end = matches!(&e, Event::ExecutionFinished { execution_id, .. } if execution_id == execution);
            got.push(e);
            if end {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the end of {execution} was not heard; heard {got:?}"));
    got
}

fn about(events: &[Event], execution: &str) -> Vec<&'static str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ExecutionStarted { execution_id, .. } if execution_id == execution => {
                Some("started")
            }
            Event::BreakerTripped { execution_id, .. } if execution_id == execution => {
                Some("breaker")
            }
            Event::ExecutionFinished { execution_id, .. } if execution_id == execution => {
                Some("finished")
            }
            _ => None,
        })
        .collect()
}

/// A follower of the shared events, with the cursor it was last told.
struct Follower {
    rx: broadcast::Receiver<Event>,
    cursor: Arc<Mutex<i64>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn follow(e: &Engine, from: Option<i64>) -> Follower {
    let rx = e.subscribe();
    let start = match from {
        Some(c) => c,
        None => e.shared_events_head().await.unwrap(),
    };
    let cursor = Arc::new(Mutex::new(start));
    let stop = CancellationToken::new();
    let task = {
        let (e, stop, cursor) = (e.clone(), stop.clone(), cursor.clone());
        tokio::spawn(async move {
            e.follow_shared_events(Some(start), stop, move |c| *cursor.lock().unwrap() = c)
                .await
                .unwrap()
        })
    };
    Follower {
        rx,
        cursor,
        stop,
        task,
    }
}

/// SPEC §9 / issue 17: a breaker tripped by a headless worker reaches each desktop once;
/// the worker's own events are not heard back; a follower restarted from its cursor hears
/// only what is new; the execution says which worker ran it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_b2_a_workers_breaker_reaches_each_desktop_once_and_names_the_worker() {
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 40,
        faults: Faults {
            schema_drift: vec![SchemaDrift {
                entity: Entity::Customers,
                rename: Some(("email".into(), "email_address".into())),
                retype: None,
            }],
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = common::database(dir.path()).await;
    let secrets = Arc::new(MemorySecretStore::default());
    let alice = common::engine(&db, &secrets).await;
    let bob = common::engine(&db, &secrets).await;
    let night = common::engine(&db, &secrets)
        .await
        .as_worker(Some("night-box"), None)
        .unwrap();
    night
        .create_connection(common::sandbox_connection(sandbox.base_url()))
        .await
        .unwrap();
    let job = night
        .create_job(common::full_pull_job("customers"))
        .await
        .unwrap();
    let mut a = follow(&alice, None).await;
    let mut b = follow(&bob, None).await;
    let mut own = night.subscribe();

    let first = night.run_job(&job.id, RunOptions::default()).await.unwrap();
    assert_eq!(first.failure_kind, Some(FailureKind::CircuitBreaker));
    assert_eq!(first.ran_by.as_deref(), Some("night-box"));
    let seen_by_alice = alice.execution(&first.id).await.unwrap();
    assert_eq!(seen_by_alice.ran_by.as_deref(), Some("night-box"));

    let want = ["started", "breaker", "finished"];
    assert_eq!(
        about(&heard_until_end(&mut a.rx, &first.id).await, &first.id),
        want
    );
    assert_eq!(
        about(&heard_until_end(&mut b.rx, &first.id).await, &first.id),
        want
    );
    // The worker hears its own events once, from itself, not again from the store.
    let mine = heard_until_end(&mut own, &first.id).await;
    assert_eq!(about(&mine, &first.id), want);
    let tripped = mine
        .iter()
        .find(|e| matches!(e, Event::BreakerTripped { .. }))
        .unwrap();
    assert!(a.rx.try_recv().is_err(), "nothing more after the run's end");
    assert!(tripped.notifies());

    // Bob's desktop restarts: its follower resumes from the cursor it kept, and hears the
    // second run only.
    b.stop.cancel();
    b.task.await.unwrap();
    let kept = *b.cursor.lock().unwrap();
    assert!(kept > 0, "the cursor moved past the first run's events");
    let mut b = follow(&bob, Some(kept)).await;
    let second = night.run_job(&job.id, RunOptions::default()).await.unwrap();
    let heard = heard_until_end(&mut b.rx, &second.id).await;
    assert_eq!(about(&heard, &first.id), Vec::<&str>::new(), "{heard:?}");
    assert_eq!(about(&heard, &second.id), want);
    assert_eq!(
        about(&heard_until_end(&mut a.rx, &second.id).await, &second.id),
        want
    );

    // A follower's own runs are heard once: from itself, not again from the store. Bob's run
    // after Alice's reaches her through the store after anything of hers would have.
    let hers = alice.run_job(&job.id, RunOptions::default()).await.unwrap();
    let his = bob.run_job(&job.id, RunOptions::default()).await.unwrap();
    let mut heard = heard_until_end(&mut a.rx, &hers.id).await;
    heard.extend(heard_until_end(&mut a.rx, &his.id).await);
    assert_eq!(about(&heard, &hers.id), want, "{heard:?}");
    assert_eq!(about(&heard, &his.id), want);

    for f in [a, b] {
        f.stop.cancel();
        f.task.await.unwrap();
    }
    for e in [alice, bob, night] {
        e.shutdown().await;
    }
    sandbox.shutdown().await;
}

/// Issue 17: a running worker is listed as alive with its name and role; one whose beats
/// stopped is listed as not alive; one that stops cleanly leaves the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_workers_are_listed_alive_and_leave_the_list_when_they_stop() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::database(dir.path()).await;
    let secrets = Arc::new(MemorySecretStore::default());
    let desk = common::engine(&db, &secrets).await;
    let night = common::engine(&db, &secrets)
        .await
        .as_worker(Some("night-box"), None)
        .unwrap();
    assert!(desk.workers().await.unwrap().is_empty());

    let stop = CancellationToken::new();
    let run = {
        let (night, stop) = (night.clone(), stop.clone());
        tokio::spawn(async move { night.run_worker(stop).await })
    };
    let listed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let w = desk.workers().await.unwrap();
            if !w.is_empty() {
                return w;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the worker's first beat");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let w = &listed[0];
    assert_eq!(
        (w.name.as_str(), w.role, w.alive, w.this_engine),
        ("night-box", WorkerRole::Worker, true, false)
    );
    assert!(night.workers().await.unwrap()[0].this_engine);

    // Its beats stop (a frozen machine): after three missed beats it is not alive.
    let mut c = common::connect(&db).await;
    c.execute("UPDATE workers SET seen_at = seen_at - 46000")
        .await
        .unwrap();
    let w = desk.workers().await.unwrap();
    assert_eq!((w.len(), w[0].alive), (1, false), "{w:?}");

    stop.cancel();
    run.await.unwrap().unwrap();
    assert!(desk.workers().await.unwrap().is_empty());
    for e in [desk, night] {
        e.shutdown().await;
    }
}
