//! Syncdesk's desktop app: a thin Tauri 2 shell over the engine (docs/desktop.md). It owns the
//! window, the tray, native notifications and the app's lifetime; everything about syncing
//! is the engine's. Secrets only ever flow inward, from a form to the keychain.

pub mod commands;
pub mod desktop;
pub mod error;
pub mod notify;
pub mod settings;
mod tray;
pub mod update;

use std::process::ExitCode;

use syncdesk_dto::{EventDto, NavigateDto, QuitRequestDto};
use syncdesk_engine::{Event, KeyringSecretStore};
use tauri::{AppHandle, Emitter, Manager, RunEvent, WindowEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::desktop::{Desktop, DesktopOptions, KEYRING_SERVICE};

/// Engine events for the UI.
pub const EVENT: &str = "syncdesk://event";
/// Requests to open a view (notification clicks, tray entries).
pub const NAVIGATE: &str = "syncdesk://navigate";
/// The admin asked to quit while runs are in progress: the window asks first.
pub const QUIT_REQUEST: &str = "syncdesk://quit-request";

/// The argument start at login passes: start with the window hidden.
pub const BACKGROUND_ARG: &str = "--background";

/// Log to stderr and to `<data dir>/logs/syncdesk-desktop.log`, private to the user (a file
/// over 5 MB at start becomes `.1`, replacing the one before). Nothing secret is ever logged.
fn init_logging(data_dir: Option<&std::path::Path>) {
    use tracing_subscriber::fmt::writer::MakeWriterExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SYNCDESK_LOG")
        .unwrap_or_else(|_| "warn,syncdesk_desktop=info,syncdesk_engine=info".into());
    let file = data_dir.and_then(|d| {
        let dir = d.join(desktop::LOGS_DIR);
        let path = dir.join("syncdesk-desktop.log");
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&dir).ok()?;
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > 5 << 20) {
            let _ = std::fs::rename(&path, dir.join("syncdesk-desktop.log.1"));
        }
        let mut o = std::fs::OpenOptions::new();
        o.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        o.open(&path).ok()
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file {
        Some(f) => builder
            .with_writer(std::io::stderr.and(std::sync::Mutex::new(f)))
            .with_ansi(false)
            .init(),
        None => builder.with_writer(std::io::stderr).init(),
    }
}

/// Everything the app runs in the background, so exit can stop it and wait for it.
#[derive(Debug, Clone, Default)]
struct Background {
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// Start the app and run it until it exits.
pub fn run() -> ExitCode {
    let opts = DesktopOptions::from_env();
    init_logging(opts.as_ref().ok().map(|o| o.data_dir.as_path()));
    let desktop = match opts.and_then(|o| tauri::async_runtime::block_on(Desktop::open(o))) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "Syncdesk cannot start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(data_dir = %desktop.data_dir().display(), "starting");
    let background = Background::default();
    let app = tauri::Builder::default()
        // First, so a second launch only brings the first one forward.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            show_main(app)
        }))
        // Started at login: in the background, the window hidden until asked for.
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec![BACKGROUND_ARG]),
        ))
        .plugin(tauri_plugin_updater::Builder::new().build())
        .manage(desktop)
        .manage(background.clone())
        .manage(update::Pending::default())
        .invoke_handler(commands::handler())
        // Closing the window only hides it: the app lives on in the tray, so schedules,
        // automatic retries and notifications go on. Quitting is the tray's "Quit".
        .on_window_event(|window, event| {
            if let WindowEvent::CloseRequested { api, .. } = event {
                if window.label() == "main" {
                    api.prevent_close();
                    if let Err(e) = window.hide() {
                        tracing::warn!(error = %e, "window not hidden");
                    }
                    tracing::info!("window closed; Syncdesk keeps running in the background");
                }
            }
        })
        .setup(|app| {
            let handle = app.handle().clone();
            if let Err(e) = tray::create(&handle) {
                // No tray host is not a reason to refuse to start; the window has it all.
                tracing::warn!(error = %e, "no tray icon");
            }
            start_background(&handle);
            if std::env::args().any(|a| a == BACKGROUND_ARG) {
                if let Some(w) = handle.get_webview_window("main") {
                    let _ = w.hide();
                }
            }
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "Syncdesk cannot open its window");
            return ExitCode::FAILURE;
        }
    };
    app.run(|app, event| {
        if let RunEvent::Exit = event {
            shutdown(app);
        }
    });
    ExitCode::SUCCESS
}

/// Spawn onto Tauri's runtime (setup and event callbacks run outside it), tracked so exit
/// can wait for it.
fn spawn<F>(tasks: &TaskTracker, fut: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let tauri::async_runtime::RuntimeHandle::Tokio(rt) = tauri::async_runtime::handle();
    tasks.spawn_on(fut, &rt);
}

fn start_background(app: &AppHandle) {
    let bg = app.state::<Background>().inner().clone();
    // The worker: schedules and automatic retries (R-A1), and crash recovery at start.
    let a = app.clone();
    let stop = bg.cancel.child_token();
    spawn(&bg.tasks, async move {
        let desktop = a.state::<Desktop>();
        desktop.set_worker_running(true);
        if let Err(e) = desktop.engine().run_worker(stop).await {
            tracing::error!(error = %e, "worker stopped");
        }
        desktop.set_worker_running(false);
    });
    // What other apps and workers on the database share (team mode): their breakers and
    // runs notify and refresh here like this app's own.
    let a = app.clone();
    let stop = bg.cancel.child_token();
    spawn(&bg.tasks, async move {
        if let Err(e) = a.state::<Desktop>().follow_shared_events(stop).await {
            tracing::error!(error = %e, "not following the events other workers share");
        }
    });
    // What the app can rely on around it: said once at start, so the UI can explain it.
    let a = app.clone();
    spawn(&bg.tasks, async move {
        let store = KeyringSecretStore::new(KEYRING_SERVICE);
        let r = tokio::task::spawn_blocking(move || store.probe())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(e) = &r {
            tracing::warn!(error = %e, "keychain unavailable");
        }
        a.state::<Desktop>().set_keychain(r);
    });
    let a = app.clone();
    spawn(&bg.tasks, async move {
        let r = notify::probe().await.map(|_| ()).map_err(|e| e.to_string());
        if let Err(e) = &r {
            tracing::warn!(error = %e, "native notifications unavailable");
        }
        a.state::<Desktop>().set_notifications(r);
        if let Err(e) = tray::refresh(&a).await {
            tracing::warn!(error = %e, "tray not refreshed");
        }
    });
    // Engine events → the UI, the tray, and native notifications.
    let a = app.clone();
    let mut rx = app.state::<Desktop>().engine().subscribe();
    let cancel = bg.cancel.clone();
    let tasks = bg.tasks.clone();
    spawn(&bg.tasks, async move {
        loop {
            let ev = tokio::select! {
                () = cancel.cancelled() => break,
                r = rx.recv() => match r {
                    Ok(ev) => ev,
                    // The UI refetches on the next event; nothing is lost but progress ticks.
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "event forwarder lagged");
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                },
            };
            on_event(&a, &ev, &cancel, &tasks).await;
        }
    });
}

async fn on_event(app: &AppHandle, ev: &Event, cancel: &CancellationToken, tasks: &TaskTracker) {
    if let Err(e) = app.emit(EVENT, EventDto::from(ev)) {
        tracing::warn!(error = %e, "event not delivered to the window");
    }
    if let Event::AlertsResolved {
        job_id,
        connection_id,
        ..
    } = ev
    {
        // Their cause cleared: the notifications about it would only send the admin to
        // something already fixed.
        app.state::<Desktop>()
            .shown()
            .withdraw(job_id.as_deref(), connection_id.as_deref());
    }
    let changes_health = matches!(
        ev,
        Event::ExecutionFinished { .. } | Event::AlertsResolved { .. } | Event::SyncsPaused { .. }
    );
    if !notify::may_notify(ev) && !changes_health {
        return;
    }
    if let Err(e) = tray::refresh(app).await {
        tracing::warn!(error = %e, "tray not refreshed");
    }
    if notify::may_notify(ev) && app.state::<Desktop>().settings().notify.allows(ev) {
        // Waiting for a click can take hours: one tracked task per notification.
        let (a, ev, cancel) = (app.clone(), ev.clone(), cancel.clone());
        spawn(tasks, async move {
            let target = notify::on_event(&a.state::<Desktop>(), &ev, &cancel).await;
            if let Some(t) = target {
                navigate(&a, &t.view, t.id.as_deref());
            }
        });
    }
}

/// Bring the main window forward.
pub fn show_main(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
}

/// Bring the window forward and ask the UI to open a view. Only ever a request to show
/// something: the UI loads what it shows through the same commands as any click.
pub fn navigate(app: &AppHandle, view: &str, id: Option<&str>) {
    show_main(app);
    let req = NavigateDto {
        view: view.to_string(),
        id: id.map(str::to_string),
    };
    if let Err(e) = app.emit(NAVIGATE, req) {
        tracing::warn!(error = %e, "navigate request not delivered");
    }
}

/// The tray's "Run due jobs now"; what came of it is in the tray and the window.
pub fn run_due_now(app: &AppHandle) {
    let a = app.clone();
    let tasks = app.state::<Background>().tasks.clone();
    spawn(&tasks, async move {
        match a.state::<Desktop>().syncs_run_due().await {
            Ok(n) => tracing::info!(due = n, "due jobs brought forward"),
            Err(e) => tracing::warn!(error = %e, "due jobs not run"),
        }
    });
}

/// The tray's "Pause all syncs" / "Resume all syncs", by what the engine says now.
pub fn toggle_pause(app: &AppHandle) {
    let a = app.clone();
    let tasks = app.state::<Background>().tasks.clone();
    spawn(&tasks, async move {
        let desktop = a.state::<Desktop>();
        let r = match desktop.health().await {
            Ok(h) if h.paused_since.is_some() => desktop.syncs_resume().await,
            Ok(_) => desktop.syncs_pause().await,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "pause or resume failed");
        }
    });
}

/// The tray's "Quit": at once when nothing runs; else the window asks first (the UI calls
/// `app_quit` when the admin confirms).
pub fn request_quit(app: &AppHandle) {
    let runs = app.state::<Desktop>().engine().runs_in_progress();
    if runs == 0 {
        app.exit(0);
        return;
    }
    show_main(app);
    let req = QuitRequestDto {
        runs_in_progress: runs as u64,
    };
    if let Err(e) = app.emit(QUIT_REQUEST, req) {
        // No window to ask in: quitting is still what was asked, and it is clean.
        tracing::warn!(error = %e, "quit request not delivered; quitting");
        app.exit(0);
    }
}

/// Exit: stop the background tasks and wait for them, stop the sandbox, then let the engine
/// finish its runs and close the database.
fn shutdown(app: &AppHandle) {
    let bg = app.state::<Background>().inner().clone();
    bg.cancel.cancel();
    bg.tasks.close();
    let desktop = app.state::<Desktop>();
    tauri::async_runtime::block_on(async {
        bg.tasks.wait().await;
        desktop.stop_sandbox().await;
        desktop.engine().shutdown().await;
    });
    tracing::info!("stopped");
}
