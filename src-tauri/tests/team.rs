//! Team mode on the desktop (issue 17): the app chooses a shared PostgreSQL database in
//! Settings (its password into the keychain, never the settings file), opens it on its next
//! start, and a breaker that trips in a run of a separate headless `syncdesk worker` process
//! raises a native notification here (dunst under Xvfb), whose click opens that execution;
//! the execution says which worker ran it, and the workers list shows that worker alive.
//! Needs the PostgreSQL server of scripts/with-postgres.sh and the keychain of
//! scripts/with-keyring.sh, which scripts/test-desktop.sh runs these tests under.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use syncdesk_desktop::desktop::{Desktop, DesktopOptions, THIS_COMPUTER};
use syncdesk_dto::{ErrorCode, NavigateDto, SharedDatabaseDto};
use syncdesk_engine::{Database, Event, MemorySecretStore, SecretKind, SecretStore};
use syncdesk_sandbox::{Entity, Faults, Sandbox, SandboxConfig, SchemaDrift};
use syncdesk_system_tests::{new_postgres_database, queue_run_now, setup_with, syncdesk_bin};
use tokio_util::sync::CancellationToken;

async fn open(dir: &std::path::Path, secrets: &Arc<MemorySecretStore>) -> Desktop {
    Desktop::open(DesktopOptions {
        data_dir: dir.to_path_buf(),
        secrets: secrets.clone(),
        database: None,
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_b2_a_breaker_on_a_headless_worker_notifies_the_desktop_of_a_shared_database() {
    syncdesk_system_tests::require_keyring();
    // The keychain's bus, for the CLI processes; notifications go to a private bus below.
    let keyring_bus = std::env::var("DBUS_SESSION_BUS_ADDRESS").expect("a session bus");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("desktop");
    let url = new_postgres_database("desk").await;
    let secrets = Arc::new(MemorySecretStore::default());

    // 1. Settings → "Use a shared database": a wrong address and an unreachable server are
    //    refused with nothing saved; a good one is checked, its password goes to the
    //    keychain, and the app uses it from its next start.
    let desktop = open(&data, &secrets).await;
    let refused = desktop
        .shared_database_use(SharedDatabaseDto {
            url: "mysql://db.example/syncdesk".into(),
            password: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Invalid);
    let unreachable = desktop
        .shared_database_use(SharedDatabaseDto {
            url: "postgres://syncdesk@127.0.0.1:1/syncdesk".into(),
            password: None,
        })
        .await
        .unwrap_err();
    assert!(
        unreachable.to_string().contains("cannot reach"),
        "{unreachable}"
    );
    assert_eq!(desktop.settings().shared_database, None);
    let password = "team-db-password-7f3a";
    let saved = desktop
        .shared_database_use(SharedDatabaseDto {
            url: url.clone(),
            password: Some(password.into()),
        })
        .await
        .unwrap();
    assert_eq!(saved.shared_database.as_deref(), Some(url.as_str()));
    let id = Database::Url(url.clone()).secret_id().unwrap();
    assert_eq!(
        secrets
            .get(&id, SecretKind::DatabasePassword)
            .unwrap()
            .map(|s| s.expose().to_string()),
        Some(password.to_string())
    );
    let file = std::fs::read_to_string(data.join("settings.json")).unwrap();
    assert!(file.contains(&url) && !file.contains(password), "{file}");
    let dto = desktop.settings_dto(Ok(false));
    assert_eq!(
        (dto.database_in_use.as_str(), dto.database_restart_needed),
        (THIS_COMPUTER, true),
        "until the restart"
    );
    desktop.engine().shutdown().await;
    let desktop = Arc::new(open(&data, &secrets).await);
    let dto = desktop.settings_dto(Ok(false));
    assert_eq!(
        (dto.database_in_use, dto.database_restart_needed),
        (Database::Url(url.clone()).to_string(), false)
    );

    // 2. A headless worker, another process with the connection's secret in its keychain,
    //    runs a job of that database whose records all fail.
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
    let cli_dir = dir.path().join("worker");
    let env = [
        ("SYNCDESK_DATABASE", url.as_str()),
        ("DBUS_SESSION_BUS_ADDRESS", keyring_bus.as_str()),
    ];
    setup_with(&cli_dir, &sandbox.base_url(), &["--mode", "full"], &env).await;
    let follow = {
        let (d, stop) = (desktop.clone(), CancellationToken::new());
        let task = tokio::spawn({
            let stop = stop.clone();
            async move { d.follow_shared_events(stop).await }
        });
        (stop, task)
    };
    let mut events = desktop.engine().subscribe();
    let job = desktop.engine().store().job("customers").await.unwrap();
    let queued = queue_run_now(desktop.engine().store(), &job.id, "night-run-1").await;
    let mut worker = tokio::process::Command::new(syncdesk_bin())
        .arg("--data-dir")
        .arg(&cli_dir)
        .args(["worker", "--name", "night-box"])
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("syncdesk worker starts");

    // 3. The desktop hears the worker's breaker, and notifies; a click opens the execution.
    let tripped = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match events.recv().await.expect("events") {
                e @ Event::BreakerTripped { .. } => return e,
                _ => continue,
            }
        }
    })
    .await
    .expect("the worker's breaker reaches the desktop");
    let Event::BreakerTripped { execution_id, .. } = &tripped else {
        unreachable!()
    };
    assert_eq!(execution_id, &queued);
    let detail = desktop.execution_get(queued.clone()).await.unwrap();
    assert_eq!(detail.execution.ran_by.as_deref(), Some("night-box"));
    let workers = desktop.workers_list().await.unwrap();
    assert!(
        workers
            .iter()
            .any(|w| w.name == "night-box" && w.role == "worker" && w.alive && !w.this_one),
        "{workers:?}"
    );

    let (_bus, bus) = session_bus(dir.path());
    let (_x, display) = xvfb();
    // notify-rust talks to the session bus in the environment; the CLI processes were given
    // the keychain's explicitly.
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &bus);
    std::env::set_var("DISPLAY", &display);
    let _dunst = dunst(dir.path(), &bus, &display).await;
    let cancel = CancellationToken::new();
    let shown = notify_on_screen(&desktop, &tripped, &cancel, &bus, &display).await;
    let target = click_notification(shown, &bus, &display).await;
    assert_eq!(
        target,
        Some(NavigateDto {
            view: "execution".into(),
            id: Some(queued.clone()),
        })
    );

    // The worker stops cleanly and leaves the list.
    let status = syncdesk_system_tests::interrupt(&mut worker).await;
    assert!(status.success(), "{status:?}");
    assert!(desktop.workers_list().await.unwrap().is_empty());
    follow.0.cancel();
    follow.1.await.unwrap().unwrap();
    cancel.cancel();
    desktop.engine().shutdown().await;
    sandbox.shutdown().await;
}
