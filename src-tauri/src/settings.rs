//! The desktop's own preferences (`settings.json` in the data directory): which events raise a
//! native notification, the theme, and whether start at login was offered. Start at login
//! itself is the OS's autostart entry, read from there, never copied here. A file that cannot
//! be read is reported and left alone until the admin saves new settings over it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use syncdesk_engine::{Event, ExecutionStatus};

/// The file, in the data directory.
pub const FILE: &str = "settings.json";

/// Which kinds of event raise a native notification (the alert is recorded either way, and a
/// job's own alert settings still apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyKinds {
    pub circuit_breaker: bool,
    pub retries_exhausted: bool,
    pub connection_expired: bool,
    pub dead_letters: bool,
    pub completed_with_errors: bool,
}

impl Default for NotifyKinds {
    fn default() -> Self {
        NotifyKinds {
            circuit_breaker: true,
            retries_exhausted: true,
            connection_expired: true,
            dead_letters: true,
            completed_with_errors: true,
        }
    }
}

impl NotifyKinds {
    /// Whether the admin wants a native notification for this kind of event.
    pub fn allows(&self, event: &Event) -> bool {
        match event {
            Event::BreakerTripped { .. } => self.circuit_breaker,
            Event::RetriesExhausted { .. } => self.retries_exhausted,
            Event::ConnectionExpired { .. } => self.connection_expired,
            Event::RecordsDeadLettered { .. } => self.dead_letters,
            Event::ExecutionFinished {
                status: ExecutionStatus::CompletedWithErrors,
                ..
            } => self.completed_with_errors,
            _ => true,
        }
    }
}

/// The window's colours: the OS's choice, or always light or dark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

impl Theme {
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    pub fn parse(s: &str) -> Option<Theme> {
        match s {
            "system" => Some(Theme::System),
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            _ => None,
        }
    }
}

/// What `settings.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub notify: NotifyKinds,
    pub theme: Theme,
    /// Start at login was offered (once, after the first successful sync).
    pub start_at_login_offered: bool,
    /// The shared database (team mode) the app opens at start, without its password (that
    /// is in the keychain); `None`: the file in the data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_database: Option<String>,
}

impl Settings {
    /// Read the file; defaults when there is none. A file that cannot be read or parsed gives
    /// the defaults and why, in words, and is not touched.
    pub fn load(dir: &Path) -> (Settings, Option<String>) {
        let path = dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (Settings::default(), None)
            }
            Err(e) => return (Settings::default(), Some(problem(&path, &e.to_string()))),
        };
        match serde_json::from_str(&text) {
            Ok(s) => (s, None),
            Err(e) => (Settings::default(), Some(problem(&path, &e.to_string()))),
        }
    }

    /// Write the file whole (a temporary file renamed over it, so a crash leaves the old or
    /// the new one), private to the user.
    pub fn save(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join(FILE);
        let tmp = dir.join(format!(".{FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

fn problem(path: &Path, why: &str) -> String {
    format!(
        "The settings file {} could not be read ({why}); the defaults are in use until you \
         save your settings, which replaces it.",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_a_broken_file_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Settings::load(dir.path()), (Settings::default(), None));
        let mut s = Settings::default();
        s.notify.completed_with_errors = false;
        s.theme = Theme::Dark;
        s.start_at_login_offered = true;
        let path = s.save(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "private to the user");
        }
        assert_eq!(Settings::load(dir.path()), (s, None));

        std::fs::write(&path, "{\"theme\": \"purple\"}").unwrap();
        let (loaded, why) = Settings::load(dir.path());
        assert_eq!(loaded, Settings::default());
        let why = why.expect("a reason");
        assert!(
            why.contains("settings.json") && why.contains("purple"),
            "{why}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"theme\": \"purple\"}",
            "left alone"
        );
    }

    #[test]
    fn notify_kinds_filter_only_their_own_events() {
        let tripped = Event::BreakerTripped {
            execution_id: "e".into(),
            job_id: "j".into(),
            job_name: "J".into(),
            note: "n".into(),
        };
        let mut k = NotifyKinds::default();
        assert!(k.allows(&tripped));
        k.circuit_breaker = false;
        assert!(!k.allows(&tripped));
        let expired = Event::ConnectionExpired {
            connection_id: "c".into(),
            connection_name: "C".into(),
            detail: "d".into(),
        };
        assert!(k.allows(&expired));
    }
}
