//! The tray icon: with the window closed it is the app. Its icon and tooltip say how things
//! are (all good, N failing, paused), its menu opens the window (on the alerts when there are
//! some), runs what is due, pauses or resumes all syncs, and quits.

use syncdesk_dto::HealthDto;
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Wry};

use crate::desktop::Desktop;
use crate::error::Result;

const TRAY: &str = "main";

/// The menu entries whose text follows the app's health.
pub struct TrayItems {
    health: MenuItem<Wry>,
    alerts: MenuItem<Wry>,
    run_due: MenuItem<Wry>,
    pause: MenuItem<Wry>,
}

// Tauri's menu items do not implement `Debug`.
impl std::fmt::Debug for TrayItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrayItems").finish_non_exhaustive()
    }
}

/// The state the icon shows at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Glance {
    AllGood,
    NeedsAttention,
    Paused,
}

impl Glance {
    fn icon(self) -> Image<'static> {
        match self {
            Glance::AllGood => tauri::include_image!("../icons/tray/ok.png"),
            Glance::NeedsAttention => tauri::include_image!("../icons/tray/attention.png"),
            Glance::Paused => tauri::include_image!("../icons/tray/paused.png"),
        }
    }
}

/// What the tray says about `h`: the icon, the tooltip, the health entry. Decided from the
/// engine's health only, as the dashboard shows it.
pub fn describe(h: &HealthDto) -> (Glance, String, String) {
    let problems = match h.failing_jobs {
        0 if h.expired_connections == 0 => None,
        0 => Some(
            plural(
                h.expired_connections,
                "connection needs",
                "connections need",
            ) + " re-authentication",
        ),
        n => Some(plural(n, "failing job", "failing jobs")),
    };
    let health = problems
        .clone()
        .unwrap_or_else(|| format!("All {} jobs healthy", h.jobs));
    let (glance, tooltip) = match (&h.paused_since, problems) {
        (Some(_), Some(p)) => (Glance::Paused, format!("Syncdesk: syncs paused; {p}")),
        (Some(_), None) => (Glance::Paused, "Syncdesk: syncs paused".to_string()),
        (None, Some(p)) => (Glance::NeedsAttention, format!("Syncdesk: {p}")),
        (None, None) => (Glance::AllGood, "Syncdesk: all good".to_string()),
    };
    (glance, tooltip, health)
}

pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let item = |id: &str, text: &str| MenuItem::with_id(app, id, text, true, None::<&str>);
    let health = item("health", "Checking jobs…")?;
    let alerts = item("alerts", "No unread alerts")?;
    let open = item("open", "Open Syncdesk")?;
    let run_due = item("run_due", "Run due jobs now")?;
    let pause = item("pause", "Pause all syncs")?;
    let quit = item("quit", "Quit Syncdesk")?;
    let menu = Menu::with_items(
        app,
        &[
            &health,
            &alerts,
            &PredefinedMenuItem::separator(app)?,
            &open,
            &run_due,
            &pause,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    TrayIconBuilder::with_id(TRAY)
        .tooltip("Syncdesk")
        .icon(Glance::AllGood.icon())
        .menu(&menu)
        .on_menu_event(|app, ev| match ev.id().as_ref() {
            "open" => crate::show_main(app),
            "health" => crate::navigate(app, "dashboard", None),
            "alerts" => crate::navigate(app, "alerts", None),
            "run_due" => crate::run_due_now(app),
            "pause" => crate::toggle_pause(app),
            "quit" => crate::request_quit(app),
            _ => {}
        })
        .build(app)?;
    app.manage(TrayItems {
        health,
        alerts,
        run_due,
        pause,
    });
    Ok(())
}

/// Rewrite the icon, tooltip and menu from the current health.
pub async fn refresh(app: &AppHandle) -> Result<()> {
    let h = app.state::<Desktop>().health().await?;
    let Some(items) = app.try_state::<TrayItems>() else {
        return Ok(());
    };
    let (glance, tooltip, health) = describe(&h);
    let alerts = match h.unread_alerts {
        0 => "No unread alerts".to_string(),
        n => plural(n, "unread alert", "unread alerts"),
    };
    let paused = h.paused_since.is_some();
    // Menu and icon changes go through the event loop; a failure only means a stale label.
    let _ = items.health.set_text(health);
    let _ = items.alerts.set_text(alerts);
    let _ = items.run_due.set_enabled(!paused);
    let _ = items.pause.set_text(if paused {
        "Resume all syncs"
    } else {
        "Pause all syncs"
    });
    if let Some(tray) = app.tray_by_id(TRAY) {
        let _ = tray.set_tooltip(Some(&tooltip));
        let _ = tray.set_icon(Some(glance.icon()));
    }
    Ok(())
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(failing: u64, expired: u64, paused: bool) -> HealthDto {
        HealthDto {
            jobs: 4,
            failing_jobs: failing,
            unread_alerts: 0,
            expired_connections: expired,
            dead_letters: 0,
            notifications_available: true,
            notifications_message: None,
            keychain_available: true,
            keychain_message: None,
            worker_running: true,
            paused_since: paused.then(|| "2026-12-03T07:00:00Z".into()),
            paused_by: paused.then(|| "admin".into()),
        }
    }

    #[test]
    fn the_tray_says_all_good_failing_or_paused_from_the_engines_health() {
        assert_eq!(
            describe(&health(0, 0, false)),
            (
                Glance::AllGood,
                "Syncdesk: all good".into(),
                "All 4 jobs healthy".into()
            )
        );
        assert_eq!(
            describe(&health(2, 1, false)),
            (
                Glance::NeedsAttention,
                "Syncdesk: 2 failing jobs".into(),
                "2 failing jobs".into()
            )
        );
        assert_eq!(
            describe(&health(0, 1, false)).1,
            "Syncdesk: 1 connection needs re-authentication"
        );
        assert_eq!(
            describe(&health(1, 0, true)),
            (
                Glance::Paused,
                "Syncdesk: syncs paused; 1 failing job".into(),
                "1 failing job".into()
            )
        );
    }
}
