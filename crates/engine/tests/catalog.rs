//! Issue 15, points 1 and 5: a connection and its jobs made in one engine call, the way the
//! connection wizard and `connection add --connector` make them, over real HTTP on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use syncdesk_engine::{
    ConnectorSpec, Engine, EngineOptions, ExecutionStatus, ManualClock, Mode, NewConnection,
    NewSetup, PageRequest, RunOptions, Schedule, Secret, SecretKind, SecretStore,
};
use syncdesk_sandbox::{Sandbox, SandboxConfig};

const SANDBOX_SPEC: &str = include_str!("../../sandbox/connector.toml");

/// A keychain that can say how many secrets it holds: "nothing saved" includes secrets.
#[derive(Debug, Default)]
struct CountingSecrets(Mutex<HashMap<(String, SecretKind), Secret>>);

impl CountingSecrets {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl SecretStore for CountingSecrets {
    fn get(&self, id: &str, kind: SecretKind) -> syncdesk_engine::Result<Option<Secret>> {
        Ok(self.0.lock().unwrap().get(&(id.to_string(), kind)).cloned())
    }
    fn set(&self, id: &str, kind: SecretKind, value: &Secret) -> syncdesk_engine::Result<()> {
        self.0
            .lock()
            .unwrap()
            .insert((id.to_string(), kind), value.clone());
        Ok(())
    }
    fn delete(&self, id: &str, kind: SecretKind) -> syncdesk_engine::Result<()> {
        self.0.lock().unwrap().remove(&(id.to_string(), kind));
        Ok(())
    }
}

struct H {
    sandbox: Sandbox,
    engine: Engine,
    secrets: Arc<CountingSecrets>,
    _dir: tempfile::TempDir,
}

async fn harness() -> H {
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 30,
        products: 10,
        invoices: 20,
        payments: 10,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(CountingSecrets::default());
    let engine = Engine::open(EngineOptions {
        database: common::database(dir.path()).await,
        secrets: secrets.clone(),
        clock: Arc::new(ManualClock::new(
            chrono::DateTime::from_timestamp(1_796_083_200, 0).unwrap(),
        )),
        actor: "admin@test".into(),
    })
    .await
    .unwrap();
    H {
        sandbox,
        engine,
        secrets,
        _dir: dir,
    }
}

impl H {
    fn setup(&self, secret: &str, entities: &[&str], schedule: Option<&str>) -> NewSetup {
        NewSetup {
            connection: NewConnection {
                base_url: Some(self.sandbox.base_url()),
                client_id: Some("sandbox-client".into()),
                secrets: vec![(SecretKind::ClientSecret, Secret::new(secret))],
                ..NewConnection::new("Books", ConnectorSpec::parse(SANDBOX_SPEC).unwrap())
            },
            entities: entities.iter().map(|e| e.to_string()).collect(),
            schedule: schedule.map(str::to_string),
        }
    }

    async fn nothing_stored(&self) {
        assert!(self.engine.connections().await.unwrap().is_empty());
        assert!(self
            .engine
            .jobs(&PageRequest::first(50))
            .await
            .unwrap()
            .items
            .is_empty());
        assert_eq!(self.secrets.len(), 0, "no secret left in the keychain");
    }
}

#[tokio::test]
async fn i15_setup_makes_a_checked_connection_and_jobs_with_the_catalog_defaults() {
    let h = harness().await;
    let spec = ConnectorSpec::parse(SANDBOX_SPEC).unwrap();
    let made = h
        .engine
        .create_setup(h.setup("sandbox-secret", &["customers", "payments"], None))
        .await
        .unwrap();
    assert_eq!(
        made.connection.status,
        syncdesk_engine::ConnectionStatus::Active
    );
    assert_eq!(made.jobs.len(), 2);
    let customers = &made.jobs[0];
    assert_eq!(customers.name, "Books customers");
    assert_eq!(customers.entity, "customers");
    assert_eq!(customers.connection_id, made.connection.id);
    assert_eq!(
        customers.mode,
        Mode::Incremental,
        "the spec filters by change time"
    );
    assert_eq!(customers.schedule, Schedule::parse("every 1h").unwrap());
    assert!(customers.next_run_at.is_some(), "scheduled");
    assert!(customers.enabled);
    let entity = spec.entity("customers").unwrap();
    assert_eq!(customers.settings.mappings, entity.mappings);
    assert_eq!(customers.settings.natural_keys, entity.natural_keys);
    assert!(customers.settings.duplicate_detection);
    let payments = &made.jobs[1];
    assert!(
        payments.settings.natural_keys.is_empty() && !payments.settings.duplicate_detection,
        "no natural key: duplicate detection off"
    );
    // The probe was a real data request.
    let stats = h.sandbox.stats();
    assert_eq!(stats.token_grants, 1);
    assert_eq!(
        stats.data_requests, 1,
        "one page of the first chosen entity"
    );

    // They run clean, the first time in full.
    let e = h
        .engine
        .run_job(&customers.id, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(e.status, ExecutionStatus::Completed);
    assert_eq!(e.mode, Mode::Full);
    assert_eq!(e.counts.created, 30);
}

#[tokio::test]
async fn i15_refused_credentials_store_nothing_no_connection_no_job_no_secret() {
    let h = harness().await;
    let err = h
        .engine
        .create_setup(h.setup("not-the-secret", &["customers"], None))
        .await
        .unwrap_err();
    assert_eq!(err.class(), syncdesk_engine::ErrorClass::Auth, "{err}");
    assert!(err.to_string().contains("nothing was saved"), "{err}");
    h.nothing_stored().await;
}

#[tokio::test]
async fn i15_a_bad_choice_is_refused_before_the_provider_is_asked() {
    let h = harness().await;
    let before = h.sandbox.stats();
    for (entities, schedule, field) in [
        (&["customers", "refunds"][..], None, "entity"),
        (&["customers", "customers"][..], None, "entities"),
        (&["customers"][..], Some("every 5s"), "schedule"),
    ] {
        let err = h
            .engine
            .create_setup(h.setup("sandbox-secret", entities, schedule))
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some(field), "{err}");
    }
    let after = h.sandbox.stats();
    assert_eq!(
        (after.token_grants, after.data_requests),
        (before.token_grants, before.data_requests),
        "no request was sent"
    );
    h.nothing_stored().await;
}

#[tokio::test]
async fn i15_jobs_chosen_after_connecting_get_free_names_and_a_chosen_schedule() {
    let h = harness().await;
    let made = h
        .engine
        .create_setup(h.setup("sandbox-secret", &[], None))
        .await
        .unwrap();
    assert!(made.jobs.is_empty());
    let first = h
        .engine
        .create_default_jobs("Books", &["products".into()], Some("manual"))
        .await
        .unwrap();
    assert_eq!(first[0].name, "Books products");
    assert_eq!(first[0].schedule, Schedule::Manual);
    // Chosen again: a second job, named apart.
    let again = h
        .engine
        .create_default_jobs(&made.connection.id, &["products".into()], None)
        .await
        .unwrap();
    assert_eq!(again[0].name, "Books products 2");
    let err = h
        .engine
        .create_default_jobs("Books", &[], None)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("entities"));
}

// ---- the catalog's own specs, against the sandbox's provider personas ------------------

async fn persona(p: syncdesk_sandbox::Persona) -> H {
    let mut h = harness().await;
    h.sandbox.shutdown().await;
    h.sandbox = Sandbox::start(SandboxConfig {
        customers: 30,
        products: 10,
        invoices: 20,
        payments: 10,
        persona: Some(p),
        ..Default::default()
    })
    .await
    .unwrap();
    h
}

fn catalog_setup(h: &H, key: &str, token: &str, entities: &[&str]) -> NewSetup {
    NewSetup {
        connection: NewConnection {
            base_url: Some(h.sandbox.base_url()),
            secrets: vec![(SecretKind::AccessToken, Secret::new(token))],
            ..NewConnection::new(
                key,
                syncdesk_engine::catalog::get(key).unwrap().spec.clone(),
            )
        },
        entities: entities.iter().map(|e| e.to_string()).collect(),
        schedule: None,
    }
}

#[tokio::test]
async fn i15_stripe_from_the_catalog_a_wrong_key_saves_nothing_the_right_one_syncs() {
    let h = persona(syncdesk_sandbox::Persona::Stripe).await;
    let err = h
        .engine
        .create_setup(catalog_setup(&h, "stripe", "sk_test_wrong", &["customers"]))
        .await
        .unwrap_err();
    assert_eq!(err.class(), syncdesk_engine::ErrorClass::Auth, "{err}");
    h.nothing_stored().await;

    let made = h
        .engine
        .create_setup(catalog_setup(
            &h,
            "stripe",
            "sk_test_syncdesk_sandbox",
            &["customers", "invoices"],
        ))
        .await
        .unwrap();
    assert_eq!(
        made.connection.status,
        syncdesk_engine::ConnectionStatus::Active
    );
    assert_eq!(made.connection.provider, "Stripe");
    assert!(made.jobs.iter().all(|j| j.mode == Mode::Incremental));
    let run = h
        .engine
        .run_job(&made.jobs[0].id, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Completed, "{:?}", run.note);
    assert_eq!(run.counts.created, 30);
}

#[tokio::test]
async fn i15_hubspot_private_app_token_from_the_catalog_syncs_contacts() {
    let h = persona(syncdesk_sandbox::Persona::Hubspot).await;
    let made = h
        .engine
        .create_setup(catalog_setup(
            &h,
            "hubspot",
            "pat-na1-syncdesk-sandbox",
            &["contacts"],
        ))
        .await
        .unwrap();
    let run = h
        .engine
        .run_job(&made.jobs[0].id, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Completed, "{:?}", run.note);
    assert!(run.counts.created > 0);
}
