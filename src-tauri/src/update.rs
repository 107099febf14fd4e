//! Updates through `tauri-plugin-updater`: look for a newer release at the update address,
//! download it and verify its minisign signature against the release key built into the app
//! (and that it is the version announced), and install it only when the admin says so. A
//! download that fails verification is dropped; the running app is untouched.

use syncdesk_dto::UpdateDto;
use tauri::AppHandle;
use tauri_plugin_updater::{Error as UpdaterError, Update, Updater, UpdaterExt};

use crate::error::{DesktopError, Result};

/// What the admin has been shown: the update found, and its verified bytes once downloaded.
#[derive(Default)]
pub struct Pending {
    found: tokio::sync::Mutex<Option<(Update, Option<Vec<u8>>)>>,
}

// The plugin's `Update` does not implement `Debug`.
impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

/// The updater for this app: the update address and release key of its configuration. A
/// debug build (the tests') also takes them from `SYNCDESK_UPDATE_ENDPOINT` and
/// `SYNCDESK_UPDATE_PUBKEY`; a release build never does, so only Syncdesk's release key can
/// vouch for what it installs.
fn updater(app: &AppHandle) -> Result<Updater> {
    #[allow(unused_mut)]
    let mut b = app.updater_builder();
    #[cfg(debug_assertions)]
    {
        if let Ok(url) = std::env::var("SYNCDESK_UPDATE_ENDPOINT") {
            let url = url.parse().map_err(|e| {
                DesktopError::UpdateUnavailable(format!("the update address is not a URL: {e}"))
            })?;
            b = b.endpoints(vec![url]).map_err(unavailable)?;
        }
        if let Ok(key) = std::env::var("SYNCDESK_UPDATE_PUBKEY") {
            b = b.pubkey(key);
        }
    }
    b.build().map_err(|e| match e {
        UpdaterError::EmptyEndpoints => DesktopError::UpdateUnavailable(
            "This copy of Syncdesk has no update address: it is updated with the package it \
             was installed from (your package manager)."
                .into(),
        ),
        e => unavailable(e),
    })
}

fn unavailable(e: UpdaterError) -> DesktopError {
    DesktopError::UpdateUnavailable(format!("Could not look for updates: {e}"))
}

/// Verification failures are refusals, in words; anything else means no update was had.
fn refused_or_unavailable(e: UpdaterError) -> DesktopError {
    match e {
        UpdaterError::Minisign(_) | UpdaterError::Base64(_) | UpdaterError::SignatureUtf8(_) => {
            DesktopError::UpdateRefused(
                "The update was refused: its signature does not match Syncdesk's release key, \
                 so it may have been tampered with. Nothing was installed; this version keeps \
                 running."
                    .into(),
            )
        }
        e @ (UpdaterError::SignedVersionMismatch { .. } | UpdaterError::MissingSignedVersion) => {
            DesktopError::UpdateRefused(format!(
                "The update was refused: {e} Nothing was installed; this version keeps running."
            ))
        }
        e => DesktopError::UpdateUnavailable(format!("Could not download the update: {e}")),
    }
}

fn dto(current: &str, u: Option<&Update>, verified: bool) -> UpdateDto {
    UpdateDto {
        current_version: current.to_string(),
        version: u.map(|u| u.version.clone()),
        notes: u.and_then(|u| u.body.clone()),
        date: u.and_then(|u| u.date).map(|d| d.to_string()),
        verified,
    }
}

impl Pending {
    /// Look for a newer release; forget what an earlier check found.
    pub async fn check(&self, app: &AppHandle) -> Result<UpdateDto> {
        let current = app.package_info().version.to_string();
        let found = updater(app)?.check().await.map_err(unavailable)?;
        let out = dto(&current, found.as_ref(), false);
        *self.found.lock().await = found.map(|u| (u, None));
        Ok(out)
    }

    /// Download the release found and verify it. Only verified bytes are kept.
    pub async fn download(&self, app: &AppHandle) -> Result<UpdateDto> {
        let current = app.package_info().version.to_string();
        let mut found = self.found.lock().await;
        let Some((update, bytes)) = found.as_mut() else {
            return Err(DesktopError::UpdateUnavailable(
                "No update to download: check for updates first.".into(),
            ));
        };
        match update.download(|_, _| {}, || {}).await {
            Ok(b) => {
                *bytes = Some(b);
                Ok(dto(&current, Some(update), true))
            }
            Err(e) => {
                tracing::warn!(version = %update.version, error = %e, "update refused or not downloaded");
                let e = refused_or_unavailable(e);
                *found = None;
                Err(e)
            }
        }
    }

    /// Install the verified download (the admin confirmed) and restart into it.
    pub async fn install(&self, app: &AppHandle) -> Result<()> {
        let found = self.found.lock().await.take();
        let Some((update, Some(bytes))) = found else {
            return Err(DesktopError::UpdateUnavailable(
                "No verified update to install: download it first.".into(),
            ));
        };
        // `install` verifies again: the bytes are installed only if they still match.
        update.install(&bytes).map_err(refused_or_unavailable)?;
        tracing::info!(version = %update.version, "update installed; restarting");
        app.restart();
    }
}
