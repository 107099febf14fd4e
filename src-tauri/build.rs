//! Generates the Tauri context and the app's command permissions: every command below gets
//! an `allow-<command>` permission, and only those named in capabilities/ are callable.

const COMMANDS: &[&str] = &[
    "health",
    "syncs_pause",
    "syncs_resume",
    "syncs_run_due",
    "app_quit",
    "settings_get",
    "settings_update",
    "logs_open",
    "shared_database_use",
    "shared_database_stop",
    "app_restart",
    "workers_list",
    "update_check",
    "update_download",
    "update_install",
    "connections_list",
    "connection_get",
    "connection_create",
    "connection_reauth",
    "connection_sign_in",
    "connection_sign_in_again",
    "sign_in_cancel",
    "connectors_list",
    "connection_connect",
    "connection_connect_sign_in",
    "connection_value_choices",
    "connection_set_value",
    "jobs_create_defaults",
    "connection_test",
    "jobs_list",
    "job_get",
    "job_create",
    "job_update",
    "job_run",
    "executions_list",
    "execution_get",
    "execution_cancel",
    "record_errors",
    "failed_records",
    "failing_records",
    "record_history",
    "failed_records_retry",
    "failed_records_dismiss",
    "alerts_list",
    "alert_mark_read",
    "alerts_mark_all_read",
    "audit_list",
    "sandbox_status",
    "sandbox_start",
    "sandbox_set_faults",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri build step");
}
