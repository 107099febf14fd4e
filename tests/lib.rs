//! Support for the system tests: finding and running the real `syncdesk` binary.

use std::path::{Path, PathBuf};
use std::process::Output;

/// The `syncdesk` binary built next to the test executable (`cargo build --workspace`
/// builds it; `scripts/test.sh` does so before the tests).
pub fn syncdesk_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SYNCDESK_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    let bin = dir.join("syncdesk");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Fail loudly, not silently skip, when the keychain is not set up.
pub fn require_keyring() {
    assert!(
        std::env::var_os("SYNCDESK_KEYRING_READY").is_some(),
        "these tests need a real Secret Service: run them through scripts/test.sh \
         (dbus-run-session + gnome-keyring, see scripts/with-keyring.sh)"
    );
}

/// Run `syncdesk --data-dir <dir> <args>` with extra environment, and return its output.
pub async fn syncdesk(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(syncdesk_bin());
    cmd.arg("--data-dir").arg(dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    });
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("syncdesk starts");
    if let Some(input) = stdin {
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(input.as_bytes()).await.expect("write stdin");
        drop(s);
    }
    child.wait_with_output().await.expect("syncdesk finishes")
}

/// Stdout as text, or a panic showing both streams when the exit status is not `want`.
pub fn expect_status(out: &Output, want: i32) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(want),
        "unexpected exit status\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Whether `needle` occurs in any of the SQLite files of a data directory.
pub fn database_contains(dir: &Path, needle: &str) -> bool {
    ["syncdesk.db", "syncdesk.db-wal", "syncdesk.db-shm"]
        .iter()
        .any(|f| {
            std::fs::read(dir.join(f))
                .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        })
}

/// Parse `--json` output.
pub fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// What `secret-tool` finds stored under `service`: (account, secret) pairs.
pub fn secret_tool_values(service: &str) -> Vec<(String, String)> {
    let out = std::process::Command::new("secret-tool")
        .args(["search", "--all", "--unlock", "service", service])
        .output()
        .expect("secret-tool runs");
    // secret-tool prints each item's secret on stdout and its attributes on stderr, items in
    // the same order on both: pair them up.
    let secrets = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("secret = ").map(str::to_string))
        .collect::<Vec<_>>();
    let users = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("attribute.username = ").map(str::to_string))
        .collect::<Vec<_>>();
    assert_eq!(
        secrets.len(),
        users.len(),
        "secret-tool output:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    users.into_iter().zip(secrets).collect()
}

/// Add the sandbox connection `sb` and the job `customers` with `job_args`.
pub async fn setup(dir: &Path, base_url: &str, job_args: &[&str]) {
    setup_with(dir, base_url, job_args, &[]).await
}

/// [`setup`], with `env` for every command (`SYNCDESK_DATABASE` for a shared store).
pub async fn setup_with(dir: &Path, base_url: &str, job_args: &[&str], env: &[(&str, &str)]) {
    require_keyring();
    let mut conn_env = vec![("SB_SECRET", "sandbox-secret")];
    conn_env.extend_from_slice(env);
    let out = syncdesk(
        dir,
        &[
            "connection",
            "add",
            "--name",
            "sb",
            "--spec",
            "sandbox",
            "--base-url",
            base_url,
            "--client-id",
            "sandbox-client",
            "--client-secret-env",
            "SB_SECRET",
        ],
        &conn_env,
        None,
    )
    .await;
    expect_status(&out, 0);
    let mut args = vec![
        "job",
        "add",
        "--name",
        "customers",
        "--connection",
        "sb",
        "--entity",
        "customers",
    ];
    args.extend_from_slice(job_args);
    expect_status(&syncdesk(dir, &args, env, None).await, 0);
}

/// A new database of its own on the test PostgreSQL server (scripts/with-postgres.sh, which
/// scripts/test.sh and scripts/test-desktop.sh run the tests under); its URL.
pub async fn new_postgres_database(prefix: &str) -> String {
    use sqlx::Connection;
    let server = std::env::var("SYNCDESK_TEST_POSTGRES").expect(
        "team mode tests need PostgreSQL: run them through scripts/with-postgres.sh \
         (scripts/test.sh does)",
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("{prefix}_{}_{nanos}", std::process::id());
    let mut c = sqlx::PgConnection::connect(&server).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let _ = c.close().await;
    let (base, _) = server.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// Queue a run of `job_id` due now, for a worker to take (`syncs run-due` would run it in
/// its own process); its id.
pub async fn queue_run_now(store: &syncdesk_engine::Store, job_id: &str, id: &str) -> String {
    use syncdesk_engine::{Clock, ExecutionStatus, Mode, SystemClock, Trigger};
    // The workers that take it read the real clock too.
    let now = SystemClock.now();
    store
        .insert_execution(
            syncdesk_engine::store::NewExecution {
                id: id.to_string(),
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
            },
            now,
        )
        .await
        .unwrap();
    id.to_string()
}

/// Poll the store's newest executions (bounded: 60 s) until one matches `pred`; a panic
/// naming `what` when none does.
pub async fn wait_for_execution(
    store: &syncdesk_engine::Store,
    what: &str,
    pred: impl Fn(&syncdesk_engine::Execution) -> bool,
) -> syncdesk_engine::Execution {
    for _ in 0..600 {
        let page = store
            .executions(None, &syncdesk_engine::PageRequest::first(5))
            .await
            .unwrap();
        if let Some(e) = page.items.into_iter().find(|e| pred(e)) {
            return e;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 60 s");
}

/// Stop a `syncdesk` process as Ctrl-C does (SIGINT), and its exit status (bounded: 20 s).
pub async fn interrupt(child: &mut tokio::process::Child) -> std::process::ExitStatus {
    let pid = child.id().expect("a running process").to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("it stops on SIGINT")
        .unwrap()
}
