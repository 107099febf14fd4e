//! The desktop shell's one error type, and how every failure reaches the UI: an `ErrorDto`
//! whose `code` the UI matches on (docs/desktop.md). Messages never carry secrets: the
//! engine's own messages are already scrubbed, and the shell adds none of its own values.

use serde::Serialize;
use syncdesk_dto::ErrorDto;
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
}

impl DesktopError {
    /// The stable code the UI switches on. Engine variants are grouped by what the admin can
    /// do about them, not by where they happened.
    pub fn code(&self) -> &'static str {
        use engine::Error as E;
        match self {
            DesktopError::Engine(e) => match e {
                E::Invalid { .. } => "invalid",
                E::NotFound { .. } => "not_found",
                E::Conflict(_) => "conflict",
                E::Keychain(_) => "keychain_unavailable",
                E::MissingSecret { .. } | E::AuthExpired { .. } => "auth",
                E::ProviderUnavailable { .. }
                | E::RateLimited { .. }
                | E::ProviderRejected { .. }
                | E::MalformedResponse { .. } => "provider",
                E::SignInFailed(_) => "sign_in_failed",
                E::TimedOut(_) => "timed_out",
                E::Cancelled => "cancelled",
                E::Store(_) => "engine",
            },
            DesktopError::Invalid { .. } => "invalid",
            DesktopError::Sandbox(_) => "sandbox",
            DesktopError::Notification(_) => "notifications_unavailable",
            DesktopError::Browser(_) => "browser_unavailable",
            DesktopError::Startup(_) => "engine",
        }
    }

    pub fn to_dto(&self) -> ErrorDto {
        let field = match self {
            DesktopError::Engine(e) => e.field().map(str::to_string),
            DesktopError::Invalid { field, .. } => Some((*field).to_string()),
            _ => None,
        };
        ErrorDto {
            code: self.code().to_string(),
            message: self.to_string(),
            field,
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
        assert_eq!(e.code(), "keychain_unavailable");
        let e: DesktopError = engine::Error::AuthExpired {
            detail: "refresh refused".into(),
        }
        .into();
        assert_eq!(e.code(), "auth");
    }
}
