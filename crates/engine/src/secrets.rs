//! Where secrets live: the OS keychain (keyring, Secret Service on Linux) or, for tests and
//! throwaway demos, memory. Never the database, logs or errors.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use zeroize::Zeroize;

use crate::error::{Error, Result};

/// A secret value. Its `Debug` and `Display` never show the value, and its memory is
/// zeroed when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for the one place that must send it (an HTTP header or token request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Check a secret before it is stored: it goes into an HTTP header or a form as it is, so
/// a line break (a value pasted with its newline, or an attempt to add a header) or another
/// control character is refused with a message saying so, never sent.
pub fn check_secret_value(kind: SecretKind, value: &Secret) -> Result<()> {
    let v = value.expose();
    if v.is_empty() {
        return Err(Error::invalid(kind.as_str(), "must not be empty"));
    }
    if v.contains(['\r', '\n']) {
        return Err(Error::invalid(
            kind.as_str(),
            format!(
                "the {} contains a line break; give the value alone, on one line",
                kind.label()
            ),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid(
            kind.as_str(),
            format!("the {} contains a control character", kind.label()),
        ));
    }
    Ok(())
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Which secret of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    ClientSecret,
    AccessToken,
    RefreshToken,
    ApiKey,
    /// The password of a shared database (team mode), filed under
    /// [`crate::Database::secret_id`] rather than a connection.
    DatabasePassword,
}

impl SecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::ClientSecret => "client_secret",
            SecretKind::AccessToken => "access_token",
            SecretKind::RefreshToken => "refresh_token",
            SecretKind::ApiKey => "api_key",
            SecretKind::DatabasePassword => "database_password",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            SecretKind::ClientSecret => "client secret",
            SecretKind::AccessToken => "access token",
            SecretKind::RefreshToken => "refresh token",
            SecretKind::ApiKey => "API key",
            SecretKind::DatabasePassword => "database password",
        }
    }
}

/// Storage for connection secrets. Calls may block (D-Bus); the engine calls them from
/// blocking threads.
pub trait SecretStore: Send + Sync + fmt::Debug {
    fn get(&self, connection_id: &str, kind: SecretKind) -> Result<Option<Secret>>;
    fn set(&self, connection_id: &str, kind: SecretKind, value: &Secret) -> Result<()>;
    fn delete(&self, connection_id: &str, kind: SecretKind) -> Result<()>;
}

/// Secrets in process memory only; gone when the process ends.
#[derive(Debug, Default)]
pub struct MemorySecretStore {
    map: Mutex<HashMap<(String, SecretKind), Secret>>,
}

impl SecretStore for MemorySecretStore {
    fn get(&self, connection_id: &str, kind: SecretKind) -> Result<Option<Secret>> {
        Ok(self
            .map
            .lock()
            .expect("secrets lock")
            .get(&(connection_id.to_string(), kind))
            .cloned())
    }
    fn set(&self, connection_id: &str, kind: SecretKind, value: &Secret) -> Result<()> {
        self.map
            .lock()
            .expect("secrets lock")
            .insert((connection_id.to_string(), kind), value.clone());
        Ok(())
    }
    fn delete(&self, connection_id: &str, kind: SecretKind) -> Result<()> {
        self.map
            .lock()
            .expect("secrets lock")
            .remove(&(connection_id.to_string(), kind));
        Ok(())
    }
}

/// The OS keychain. Entries are service `syncdesk` (or the given service), account
/// `<connection id>/<secret kind>`.
#[derive(Debug, Clone)]
pub struct KeyringSecretStore {
    service: String,
}

impl KeyringSecretStore {
    pub fn new(service: impl Into<String>) -> Self {
        KeyringSecretStore {
            service: service.into(),
        }
    }

    fn entry(&self, connection_id: &str, kind: SecretKind) -> Result<keyring::Entry> {
        keyring::Entry::new(&self.service, &format!("{connection_id}/{}", kind.as_str()))
            .map_err(keychain_error)
    }

    /// Store and read back a probe value, so a missing or locked keychain is reported before
    /// anything depends on it.
    pub fn probe(&self) -> Result<()> {
        let e = self.entry("probe", SecretKind::AccessToken)?;
        patient(|| e.set_password("probe")).map_err(keychain_error)?;
        let back = patient(|| e.get_password()).map_err(keychain_error)?;
        let _ = patient(|| e.delete_credential());
        if back != "probe" {
            return Err(Error::Keychain(
                "the keychain did not return what was stored".into(),
            ));
        }
        Ok(())
    }
}

impl SecretStore for KeyringSecretStore {
    fn get(&self, connection_id: &str, kind: SecretKind) -> Result<Option<Secret>> {
        let entry = self.entry(connection_id, kind)?;
        match patient(|| entry.get_password()) {
            Ok(v) => Ok(Some(Secret(v))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keychain_error(e)),
        }
    }
    fn set(&self, connection_id: &str, kind: SecretKind, value: &Secret) -> Result<()> {
        let entry = self.entry(connection_id, kind)?;
        patient(|| entry.set_password(value.expose())).map_err(keychain_error)
    }
    fn delete(&self, connection_id: &str, kind: SecretKind) -> Result<()> {
        let entry = self.entry(connection_id, kind)?;
        match patient(|| entry.delete_credential()) {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keychain_error(e)),
        }
    }
}

/// How many times one keychain operation is tried while the Secret Service does not answer.
const NO_REPLY_ATTEMPTS: u32 = 3;

/// Run a keychain operation, again while the Secret Service does not answer in time.
///
/// The Secret Service client gives every D-Bus call 2 s, a limit it does not let callers
/// change. A healthy gnome-keyring on a busy machine (seen beside a parallel build) can miss
/// it, and the call then fails as if the keychain were broken. Each operation used here is
/// idempotent (set replaces, reading is harmless, deleting what is gone is fine), so trying
/// again is safe; other failures are not retried.
fn patient<T>(mut op: impl FnMut() -> keyring::Result<T>) -> keyring::Result<T> {
    let mut attempt = 1;
    loop {
        match op() {
            Err(e) if attempt < NO_REPLY_ATTEMPTS && no_reply(&e) => {
                tracing::debug!(attempt, "the keychain did not answer in time; trying again");
                attempt += 1;
            }
            r => return r,
        }
    }
}

/// Whether the Secret Service left a call unanswered (D-Bus `NoReply`).
fn no_reply(e: &keyring::Error) -> bool {
    #[cfg(target_os = "linux")]
    if let keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) = e {
        if let Some(dbus_secret_service::Error::Dbus(d)) =
            inner.downcast_ref::<dbus_secret_service::Error>()
        {
            return d.name() == Some("org.freedesktop.DBus.Error.NoReply");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = e;
    false
}

/// Turn keyring's errors into what an admin can act on (RECIPES lists what each means).
fn keychain_error(e: keyring::Error) -> Error {
    let text = e.to_string();
    let msg = match &e {
        _ if no_reply(&e) => format!(
            "the keychain (Secret Service) did not answer in time, {NO_REPLY_ATTEMPTS} times; it may be busy or stuck: try again, or restart gnome-keyring/KWallet"
        ),
        keyring::Error::NoStorageAccess(_) if text.contains("IsLocked") || text.contains("locked") => {
            "the keychain is locked; unlock it (log in to the desktop session) and try again".into()
        }
        keyring::Error::NoStorageAccess(_) => {
            "no keychain collection is available; is a Secret Service (gnome-keyring, KWallet) running and set up?".to_string()
        }
        keyring::Error::PlatformFailure(_) if text.contains("ServiceUnknown") || text.contains("org.freedesktop.secrets") => {
            "no Secret Service is running on the session bus (start gnome-keyring-daemon or KWallet)".into()
        }
        keyring::Error::PlatformFailure(_) if text.contains("DISPLAY") || text.contains("dbus") || text.contains("D-Bus") => {
            "no D-Bus session bus is available (run inside a desktop session or dbus-run-session)".into()
        }
        _ => format!("keychain error: {text}"),
    };
    Error::Keychain(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s5_secrets_with_line_breaks_or_control_characters_are_refused() {
        for bad in ["key\r\nX-Injected: 1", "key\n", "k\u{0}ey", "k\u{7f}"] {
            let err = check_secret_value(SecretKind::ApiKey, &Secret::new(bad)).unwrap_err();
            assert_eq!(err.field(), Some("api_key"), "{bad:?}");
            assert!(
                !err.to_string().contains("key\r"),
                "the value is not echoed"
            );
        }
        let err = check_secret_value(SecretKind::ApiKey, &Secret::new("a\nb")).unwrap_err();
        assert!(err.to_string().contains("line break"), "{err}");
        assert!(check_secret_value(SecretKind::ApiKey, &Secret::new("sk_live_ok-1.2")).is_ok());
        assert!(check_secret_value(SecretKind::ApiKey, &Secret::new("")).is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("at_topsecret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let store = MemorySecretStore::default();
        store.set("c1", SecretKind::AccessToken, &s).unwrap();
        assert!(!format!("{store:?}").contains("topsecret"));
        assert_eq!(store.get("c1", SecretKind::AccessToken).unwrap(), Some(s));
        store.delete("c1", SecretKind::AccessToken).unwrap();
        assert_eq!(store.get("c1", SecretKind::AccessToken).unwrap(), None);
    }

    /// What the Secret Service client (Linux) reports for a call left unanswered.
    #[cfg(target_os = "linux")]
    mod no_reply {
        use super::super::*;

        fn dbus_failure(name: &str) -> keyring::Error {
            let e = dbus_secret_service::Error::Dbus(dbus::Error::new_custom(name, "no answer"));
            keyring::Error::PlatformFailure(Box::new(e))
        }

        const NO_REPLY: &str = "org.freedesktop.DBus.Error.NoReply";

        #[test]
        fn an_unanswered_keychain_call_is_tried_again_until_it_answers() {
            let mut calls = 0;
            let got = patient(|| {
                calls += 1;
                if calls < 3 {
                    Err(dbus_failure(NO_REPLY))
                } else {
                    Ok("at_value")
                }
            });
            assert_eq!(got.unwrap(), "at_value");
            assert_eq!(calls, 3);
        }

        #[test]
        fn a_keychain_that_never_answers_fails_clearly_after_three_tries() {
            let mut calls = 0;
            let got: keyring::Result<()> = patient(|| {
                calls += 1;
                Err(dbus_failure(NO_REPLY))
            });
            assert_eq!(calls, NO_REPLY_ATTEMPTS);
            let msg = keychain_error(got.unwrap_err()).to_string();
            assert!(msg.contains("did not answer in time, 3 times"), "{msg}");
        }

        #[test]
        fn other_keychain_failures_are_not_retried() {
            for e in [
                || dbus_failure("org.freedesktop.DBus.Error.ServiceUnknown"),
                || keyring::Error::NoEntry,
                || keyring::Error::NoStorageAccess(Box::new(dbus_secret_service::Error::Locked)),
            ] {
                let mut calls = 0;
                let got: keyring::Result<()> = patient(|| {
                    calls += 1;
                    Err(e())
                });
                assert!(got.is_err());
                assert_eq!(calls, 1);
            }
        }
    }
}
