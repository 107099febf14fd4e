//! The desktop shell's one error type, and how every failure reaches the UI: an `ErrorDto`
//! whose `code` the UI matches on (docs/desktop.md). Messages never carry secrets: the
//! engine's own messages are already scrubbed, and the shell adds none of its own values.

use serde::Serialize;
use syncdesk_dto::{ErrorCode, ErrorDto};
use syncdesk_engine as engine;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DesktopError {
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// A command argument the engine never sees is wrong (e.g. a re-auth with no secret).
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The built-in sandbox could not start or is not running.
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// A native notification could not be shown (no session bus, no daemon).
    #[error("notifications unavailable: {0}")]
    Notification(String),
    /// The system browser could not be opened for a sign-in.
    #[error("could not open the system browser: {0}")]
    Browser(String),
    /// The app could not start (data directory, database).
    #[error("{0}")]
    Startup(String),
    /// A file of the app's own (settings, logs folder) could not be written or opened.
    #[error("{0}")]
    Io(String),
    /// The OS's start-at-login entry could not be read or changed.
    #[error("start at login: {0}")]
    Autostart(String),
    /// No update could be looked for or fetched (no update address, server unreachable or
    /// answering nonsense, nothing downloaded yet).
    #[error("{0}")]
    UpdateUnavailable(String),
    /// An update failed its verification (signature, announced version); nothing installed.
    #[error("{0}")]
    UpdateRefused(String),
}

impl DesktopError {
    /// The stable code the UI switches on: the one vocabulary of `syncdesk_dto::ErrorCode`,
    /// which the CLI sends too.
    pub fn code(&self) -> ErrorCode {
        match self {
            DesktopError::Engine(e) => e.into(),
            DesktopError::Invalid { .. } => ErrorCode::Invalid,
            DesktopError::Sandbox(_) => ErrorCode::Sandbox,
            DesktopError::Notification(_) => ErrorCode::NotificationsUnavailable,
            DesktopError::Browser(_) => ErrorCode::BrowserUnavailable,
            DesktopError::Startup(_) => ErrorCode::Store,
            DesktopError::Io(_) | DesktopError::Autostart(_) => ErrorCode::Io,
            DesktopError::UpdateUnavailable(_) => ErrorCode::UpdateUnavailable,
            DesktopError::UpdateRefused(_) => ErrorCode::UpdateRefused,
        }
    }

    pub fn to_dto(&self) -> ErrorDto {
        match self {
            DesktopError::Engine(e) => e.into(),
            DesktopError::Invalid { field, .. } => ErrorDto {
                code: self.code(),
                message: self.to_string(),
                field: Some((*field).to_string()),
            },
            _ => ErrorDto {
                code: self.code(),
                message: self.to_string(),
                field: None,
            },
        }
    }
}

/// Tauri serialises a command's error into the rejected promise: send the `ErrorDto` shape.
impl Serialize for DesktopError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_dto().serialize(s)
    }
}

pub type Result<T, E = DesktopError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_get_stable_codes_and_keep_their_message() {
        let e: DesktopError = engine::Error::NotFound {
            what: "job",
            id: "nightly".into(),
        }
        .into();
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "not_found");
        assert_eq!(v["message"], "job not found: nightly");
        assert!(v.get("field").is_none(), "{v}");
        let e: DesktopError = engine::Error::Invalid {
            field: "mappings[2].target".into(),
            message: "must not be empty".into(),
        }
        .into();
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "invalid");
        assert_eq!(v["field"], "mappings[2].target");
        let e: DesktopError = engine::Error::Keychain("locked".into()).into();
        assert_eq!(e.code(), ErrorCode::KeychainUnavailable);
        let e: DesktopError = engine::Error::AuthExpired {
            detail: "refresh refused".into(),
        }
        .into();
        assert_eq!(e.code(), ErrorCode::Auth);
        let e: DesktopError = engine::Error::Store("the database is read-only".into()).into();
        assert_eq!(serde_json::to_value(&e).unwrap()["code"], "store");
    }
}
