//! Secrets go to the real OS keychain (gnome-keyring's Secret Service, through
//! scripts/with-keyring.sh) and nowhere else: not the database, not anything the UI receives.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::pull_job;
use syncdesk_desktop::desktop::{Desktop, DesktopOptions, KEYRING_SERVICE};
use syncdesk_dto::NewConnectionDto;
use syncdesk_engine::KeyringSecretStore;
use syncdesk_sandbox::{Sandbox, SandboxConfig};
use syncdesk_system_tests::secret_tool_values;

fn stored(found: &[(String, String)], account: &str) -> Option<String> {
    found
        .iter()
        .find(|(a, _)| a == account)
        .map(|(_, s)| s.clone())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_secrets_live_in_the_keychain_only() {
    assert!(
        std::env::var_os("SYNCDESK_KEYRING_READY").is_some(),
        "this test needs a real Secret Service: run it through scripts/test.sh \
         (dbus-run-session + gnome-keyring, see scripts/with-keyring.sh)"
    );
    // A provider whose client secret is unique to this run, so finding it means something.
    let client_secret = format!("kc-{}-{}", std::process::id(), line!());
    let sandbox = Sandbox::start(SandboxConfig {
        client_secret: client_secret.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let desktop = Desktop::open(DesktopOptions {
        data_dir: dir.path().to_path_buf(),
        secrets: Arc::new(KeyringSecretStore::new(KEYRING_SERVICE)),
        database: None,
    })
    .await
    .unwrap();

    let conn = desktop
        .connection_create(NewConnectionDto {
            name: "acme books".into(),
            spec: "sandbox".into(),
            base_url: Some(sandbox.base_url()),
            client_id: Some("sandbox-client".into()),
            client_secret: Some(client_secret.clone()),
            api_key: None,
            refresh_token: None,
            access_token: None,
            auth_kind: None,
            auth_base_url: None,
            values: None,
        })
        .await
        .unwrap();
    // A run makes the engine fetch and keep an access token too.
    let job = desktop
        .job_create(pull_job(&conn.id, "customers"))
        .await
        .unwrap();
    let started = desktop.job_run(job.id.clone()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let done = loop {
        let d = desktop.execution_get(started.id.clone()).await.unwrap();
        if !matches!(d.execution.status.as_str(), "running" | "queued") {
            break d;
        }
        assert!(tokio::time::Instant::now() < deadline, "the run ends");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done.execution.status, "completed", "{:?}", done.execution);

    let search = secret_tool_values(KEYRING_SERVICE);
    let found = stored(&search, &format!("{}/client_secret", conn.id));
    assert_eq!(found.as_deref(), Some(client_secret.as_str()), "{search:?}");
    let token = stored(&search, &format!("{}/access_token", conn.id))
        .unwrap_or_else(|| panic!("an access token in the keychain: {search:?}"));
    assert!(token.len() > 8);

    // Nothing the UI receives carries a secret.
    let outward = serde_json::to_string(&(
        desktop.connections_list().await.unwrap(),
        desktop.connection_get(conn.id.clone()).await.unwrap(),
        desktop.jobs_list().await.unwrap(),
        desktop.execution_get(started.id.clone()).await.unwrap(),
        desktop.audit_list(None).await.unwrap(),
        desktop.health().await.unwrap(),
    ))
    .unwrap();
    assert!(!outward.contains(&client_secret) && !outward.contains(&token));

    desktop.engine().shutdown().await;
    // Nor does the database, its WAL or anything else in the data directory.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !contains(&bytes, &client_secret),
            "{} holds the client secret",
            path.display()
        );
        assert!(
            !contains(&bytes, &token),
            "{} holds the access token",
            path.display()
        );
    }
    sandbox.shutdown().await;
}
