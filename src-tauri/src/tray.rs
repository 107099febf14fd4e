//! The tray icon: its menu says how things are (failing jobs, unread alerts) and opens the
//! window, on the alerts when there are some.

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Wry};

use crate::desktop::Desktop;
use crate::error::Result;

/// The menu entries whose text follows the app's health.
pub struct TrayItems {
    health: MenuItem<Wry>,
    alerts: MenuItem<Wry>,
}

// Tauri's menu items do not implement `Debug`.
impl std::fmt::Debug for TrayItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrayItems").finish_non_exhaustive()
    }
}

pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let health = MenuItem::with_id(app, "health", "Checking jobs…", true, None::<&str>)?;
    let alerts = MenuItem::with_id(app, "alerts", "No unread alerts", true, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Syncdesk", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &health,
            &alerts,
            &PredefinedMenuItem::separator(app)?,
            &open,
            &quit,
        ],
    )?;
    let mut tray = TrayIconBuilder::with_id("main")
        .tooltip("Syncdesk")
        .menu(&menu)
        .on_menu_event(|app, ev| match ev.id().as_ref() {
            "open" => crate::show_main(app),
            "health" => crate::navigate(app, "dashboard", None),
            "alerts" => crate::navigate(app, "alerts", None),
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    app.manage(TrayItems { health, alerts });
    Ok(())
}

/// Rewrite the menu from the current health.
pub async fn refresh(app: &AppHandle) -> Result<()> {
    let h = app.state::<Desktop>().health().await?;
    let Some(items) = app.try_state::<TrayItems>() else {
        return Ok(());
    };
    let health = match h.failing_jobs {
        0 if h.expired_connections == 0 => format!("All {} jobs healthy", h.jobs),
        0 => {
            plural(
                h.expired_connections,
                "connection needs",
                "connections need",
            ) + " re-authentication"
        }
        n => plural(n, "failing job", "failing jobs"),
    };
    let alerts = match h.unread_alerts {
        0 => "No unread alerts".to_string(),
        n => plural(n, "unread alert", "unread alerts"),
    };
    // Menu changes go through the event loop; a failure only means a stale label.
    let _ = items.health.set_text(health);
    let _ = items.alerts.set_text(alerts);
    Ok(())
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
