//! The engine's one error type, classified where failures happen (SPEC §3, STYLE "errors are data").

use std::fmt;

/// How a failure should be treated by whoever receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Trying again later may work (5xx, network, 429, timeouts).
    Retryable,
    /// Credentials are expired or invalid; the admin must re-authenticate.
    Auth,
    /// Trying again will fail the same way (other 4xx, malformed responses, bad input).
    Permanent,
    /// Stopped on purpose.
    Cancelled,
}

/// Every failure the engine reports. Record-level failures (validation, duplicates, missing
/// references, transforms, schema) are not errors: they are data ([`crate::RecordErrorKind`])
/// and never stop an execution.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting, argument or spec file is not valid; `field` names what to fix.
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    /// A connection, job, execution or record that does not exist.
    #[error("{what} not found: {id}")]
    NotFound { what: &'static str, id: String },
    /// The request conflicts with what is stored (a name already taken, a job already running).
    #[error("{0}")]
    Conflict(String),
    /// The local store failed. The driver's detail is logged, not shown.
    #[error("local store error: {0}")]
    Store(String),
    /// The OS keychain could not be reached or refused access.
    #[error("keychain unavailable: {0}")]
    Keychain(String),
    /// A secret the connection needs is not in the keychain.
    #[error("no {what} stored for connection '{connection}'; set it again")]
    MissingSecret {
        connection: String,
        what: &'static str,
    },
    /// The provider kept answering 5xx, refusing connections or timing out after every retry (R-E2).
    #[error("provider unavailable after {attempts} attempts: {detail}")]
    ProviderUnavailable { attempts: u32, detail: String },
    /// The provider kept rate limiting beyond what the engine will wait for (R-E3).
    #[error("rate limited: {detail}")]
    RateLimited { detail: String },
    /// Authentication failed even after one refresh (R-E1); the connection is now `expired`.
    #[error("authentication failed: {detail}")]
    AuthExpired { detail: String },
    /// The provider rejected the request with a 4xx other than 401/429.
    #[error("provider rejected {path} with HTTP {status}: {excerpt}")]
    ProviderRejected {
        status: u16,
        path: String,
        excerpt: String,
    },
    /// The provider answered something that is not the documented shape.
    #[error("malformed response from {path}: {detail}")]
    MalformedResponse { path: String, detail: String },
    /// A browser sign-in (authorization code + PKCE) did not complete: the user or the
    /// provider refused, or the redirect was not this sign-in's. Nothing was stored.
    #[error("sign-in failed: {0}")]
    SignInFailed(String),
    /// The execution ran out of its configured time (R-E4).
    #[error("timed out: {0}")]
    TimedOut(String),
    /// Cancelled by the admin or by shutdown.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// The input field an [`Error::Invalid`] is about, so a form can show the message next
    /// to it.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Retryable, auth, permanent or cancelled.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::ProviderUnavailable { .. }
            | Error::RateLimited { .. }
            | Error::TimedOut(_)
            | Error::Store(_) => ErrorClass::Retryable,
            Error::AuthExpired { .. }
            | Error::MissingSecret { .. }
            | Error::Keychain(_)
            | Error::SignInFailed(_) => ErrorClass::Auth,
            Error::Cancelled => ErrorClass::Cancelled,
            Error::Invalid { .. }
            | Error::NotFound { .. }
            | Error::Conflict(_)
            | Error::ProviderRejected { .. }
            | Error::MalformedResponse { .. } => ErrorClass::Permanent,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        // The driver's text can hold paths and SQL; keep it in the log, give callers the gist.
        tracing::error!(error = %e, "store error");
        match e {
            sqlx::Error::RowNotFound => Error::NotFound {
                what: "row",
                id: String::new(),
            },
            sqlx::Error::PoolTimedOut => Error::Store("the database is busy".into()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::Conflict("already exists".into())
            }
            other => Error::Store(short_store_message(&other)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        tracing::error!(error = %e, "migration error");
        Error::Store(format!("could not migrate the database: {e}"))
    }
}

fn short_store_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => format!("I/O error: {}", io.kind()),
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::ColumnDecode { index, .. } => {
            format!("stored value in column {index} is corrupt")
        }
        _ => "unexpected database failure (see log)".into(),
    }
}

/// Engine result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
