//! The IPC commands of docs/desktop.md. Each is a one-line forward to the [`Desktop`] method
//! of the same name (one engine call mapped to a DTO); Tauri turns snake_case arguments into
//! the camelCase keys the UI passes, and a failure into a rejected promise with an `ErrorDto`.

use syncdesk_dto::*;
use tauri::State;

use crate::desktop::Desktop;
use crate::error::Result;

macro_rules! commands {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $(
            #[tauri::command]
            pub async fn $name(desktop: State<'_, Desktop>, $($arg: $ty),*) -> Result<$ret> {
                desktop.$name($($arg),*).await
            }
        )*
        /// The invoke handler with every command above and the shell's own below (and nothing else).
        pub fn handler() -> impl Fn(tauri::ipc::Invoke<tauri::Wry>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$($name,)* app_quit, app_restart, settings_get, settings_update, shared_database_use, shared_database_stop, logs_open, update_check, update_download, update_install]
        }
    };
}

commands! {
    health() -> HealthDto;
    syncs_pause() -> HealthDto;
    syncs_resume() -> HealthDto;
    syncs_run_due() -> u64;
    connections_list() -> Vec<ConnectionDto>;
    connection_get(id: String) -> ConnectionDto;
    connection_create(input: NewConnectionDto) -> ConnectionDto;
    connection_reauth(id: String, input: ReauthDto) -> ConnectionDto;
    connection_sign_in(input: NewConnectionDto) -> ConnectionDto;
    connection_sign_in_again(id: String) -> ConnectionDto;
    sign_in_cancel() -> ();
    connectors_list() -> Vec<ConnectorDto>;
    connection_connect(input: ConnectDto) -> SetupDto;
    connection_connect_sign_in(input: ConnectDto) -> ConnectionDto;
    connection_value_choices(id: String, name: String) -> Vec<ValueChoiceDto>;
    connection_set_value(id: String, name: String, value: String) -> ConnectionDto;
    jobs_create_defaults(connection: String, entities: Vec<String>, schedule: Option<String>) -> Vec<JobDto>;
    jobs_list() -> Vec<JobSummaryDto>;
    job_get(id: String) -> JobDto;
    job_create(input: NewJobDto) -> JobDto;
    job_update(id: String, input: NewJobDto) -> JobDto;
    job_run(id: String) -> ExecutionDto;
    executions_list(job_id: String, cursor: Option<String>) -> PageDto<ExecutionDto>;
    execution_get(id: String) -> ExecutionDetailDto;
    execution_cancel(id: String) -> ExecutionDto;
    record_errors(execution_id: String, kind: Option<String>, cursor: Option<String>) -> PageDto<RecordErrorDto>;
    failed_records(job_id: String, cursor: Option<String>) -> PageDto<DeadLetterDto>;
    failing_records(job_id: String, cursor: Option<String>) -> PageDto<DeadLetterDto>;
    record_history(job_id: String, record_id: String) -> Vec<RecordErrorDto>;
    failed_records_retry(job_id: String, record_ids: Vec<String>) -> Vec<RecordRetryDto>;
    failed_records_dismiss(job_id: String, record_ids: Vec<String>, note: String) -> usize;
    connection_test(id: String) -> ConnectionDto;
    alerts_list(unread_only: bool, cursor: Option<String>) -> PageDto<AlertDto>;
    alert_mark_read(id: i64) -> ();
    alerts_mark_all_read() -> u64;
    audit_list(cursor: Option<String>) -> PageDto<AuditDto>;
    sandbox_status() -> SandboxDto;
    sandbox_start() -> SandboxDto;
    sandbox_set_faults(faults: SandboxFaultsDto) -> SandboxDto;
    workers_list() -> Vec<WorkerDto>;
}

/// Quit, confirmed by the admin: runs in progress stop and end interrupted (retried as after
/// a crash), then the app exits cleanly. The shell's own command: it is about the app, not the
/// engine.
#[tauri::command]
pub fn app_quit(app: tauri::AppHandle) {
    app.exit(0);
}

/// Restart the app (to open the database chosen in Settings), as the admin asked: runs in
/// progress end as on quit.
#[tauri::command]
pub fn app_restart(app: tauri::AppHandle) {
    app.restart();
}

/// Whether the OS starts the app at login, or why that cannot be told.
fn start_at_login(app: &tauri::AppHandle) -> std::result::Result<bool, String> {
    use tauri_plugin_autostart::ManagerExt;
    app.autolaunch().is_enabled().map_err(|e| e.to_string())
}

/// The Settings view.
#[tauri::command]
pub async fn settings_get(
    app: tauri::AppHandle,
    desktop: State<'_, Desktop>,
) -> Result<SettingsDto> {
    Ok(desktop.settings_dto(start_at_login(&app)))
}

/// Change settings: the desktop's preferences (checked, then saved), then start at login
/// through the OS when asked.
#[tauri::command]
pub async fn settings_update(
    app: tauri::AppHandle,
    desktop: State<'_, Desktop>,
    input: SettingsUpdateDto,
) -> Result<SettingsDto> {
    use tauri_plugin_autostart::ManagerExt;
    desktop.settings_update(&input)?;
    if let Some(on) = input.start_at_login {
        let l = app.autolaunch();
        let r = if on { l.enable() } else { l.disable() };
        r.map_err(|e| crate::error::DesktopError::Autostart(e.to_string()))?;
    }
    Ok(desktop.settings_dto(start_at_login(&app)))
}

/// "Use a shared database": checked (it opens), its password filed in the keychain, and
/// remembered for the next start.
#[tauri::command]
pub async fn shared_database_use(
    app: tauri::AppHandle,
    desktop: State<'_, Desktop>,
    input: SharedDatabaseDto,
) -> Result<SettingsDto> {
    desktop.shared_database_use(input).await?;
    Ok(desktop.settings_dto(start_at_login(&app)))
}

/// Go back to this computer's database from the next start.
#[tauri::command]
pub async fn shared_database_stop(
    app: tauri::AppHandle,
    desktop: State<'_, Desktop>,
) -> Result<SettingsDto> {
    desktop.shared_database_stop().await?;
    Ok(desktop.settings_dto(start_at_login(&app)))
}

/// Open the folder of the app's log in the file manager.
#[tauri::command]
pub async fn logs_open(desktop: State<'_, Desktop>) -> Result<()> {
    let dir = desktop.data_dir().join(crate::desktop::LOGS_DIR);
    std::fs::create_dir_all(&dir)
        .and_then(|()| open::that_detached(&dir))
        .map_err(|e| {
            crate::error::DesktopError::Io(format!("could not open {}: {e}", dir.display()))
        })
}

/// Look for a newer release at the update address.
#[tauri::command]
pub async fn update_check(
    app: tauri::AppHandle,
    pending: State<'_, crate::update::Pending>,
) -> Result<UpdateDto> {
    pending.check(&app).await
}

/// Download the release found and verify its signature; nothing is installed.
#[tauri::command]
pub async fn update_download(
    app: tauri::AppHandle,
    pending: State<'_, crate::update::Pending>,
) -> Result<UpdateDto> {
    pending.download(&app).await
}

/// Install the verified download and restart, as the admin confirmed.
#[tauri::command]
pub async fn update_install(
    app: tauri::AppHandle,
    pending: State<'_, crate::update::Pending>,
) -> Result<()> {
    pending.install(&app).await
}
