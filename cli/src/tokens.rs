//! Where the CLI keeps its stay between commands: one JSON file, `tokens.json`, in the user's
//! config folder (`$KEYCARD_CLI_DIR`, else `$XDG_CONFIG_HOME/keycard`, else
//! `~/.config/keycard`), created `0600` in a `0700` folder and replaced whole on every change.
//!
//! Not the OS keyring: a keyring needs a desktop session (D-Bus, a login keychain) that servers,
//! containers and CI runners lack, and its crates pull in per-OS code for a teaching client.
//! The file holds a DPoP-bound refresh token and the key it is bound to, so a copy is worth
//! exactly what a copy of the key is, which is what `~/.ssh` files are trusted with too.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::CliError;

/// The stay: the hotel, the tokens and the DPoP key. Neither `Debug` nor printed: it holds
/// secrets. `Serialize` writes it to its file only.
#[derive(Serialize, Deserialize)]
pub struct Stay {
    /// The hotel's public URL (its origin).
    pub hotel: String,
    /// The client id the tokens were issued to.
    pub client_id: String,
    /// The key card.
    pub access_token: String,
    /// `DPoP` (bound to `dpop_key`) or `Bearer`.
    pub token_type: String,
    /// When the key card expires (Unix seconds).
    pub expires_at: i64,
    /// The booking confirmation (refresh token).
    pub refresh_token: String,
    /// The DPoP key's 32-byte Ed25519 secret, base64url.
    pub dpop_key: String,
}

/// The folder the file lives in.
fn folder() -> Result<PathBuf, CliError> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("KEYCARD_CLI_DIR")
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("keycard")))
        .or_else(|| var("HOME").map(|d| d.join(".config").join("keycard")))
        .or_else(|| var("APPDATA").map(|d| d.join("keycard")))
        .ok_or(CliError::NoConfigFolder)
}

/// The file's path.
pub fn path() -> Result<PathBuf, CliError> {
    Ok(folder()?.join("tokens.json"))
}

/// The stay on file, if any.
pub fn load() -> Result<Option<Stay>, CliError> {
    let path = path()?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CliError::File(path.display().to_string(), e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::File(path.display().to_string(), e.to_string())),
    }
}

/// Writes the stay: a new file, private from its first byte, renamed over the old one (a crash
/// leaves the old stay or the new, never half of one).
pub fn save(stay: &Stay) -> Result<(), CliError> {
    save_in(&folder()?, stay)
}

fn save_in(folder: &std::path::Path, stay: &Stay) -> Result<(), CliError> {
    let path = folder.join("tokens.json");
    let failed = |e: std::io::Error| CliError::File(path.display().to_string(), e.to_string());
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(folder).map_err(failed)?;
    let temporary = folder.join(format!("tokens.json.{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(failed)?;
    let json = serde_json::to_vec_pretty(stay).expect("a stay is plain JSON");
    file.write_all(&json).and_then(|()| file.sync_all()).map_err(failed)?;
    std::fs::rename(&temporary, &path).map_err(failed)
}

/// Deletes the file (after a check-out, or a booking the hotel ended).
pub fn forget() -> Result<(), CliError> {
    let path = path()?;
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(CliError::File(path.display().to_string(), e.to_string()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_private_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("keycard");
        let stay = |n: i64| Stay {
            hotel: "http://127.0.0.1:3000".into(),
            client_id: "keycard-cli".into(),
            access_token: "a".into(),
            token_type: "DPoP".into(),
            expires_at: n,
            refresh_token: "r".into(),
            dpop_key: "k".into(),
        };
        save_in(&folder, &stay(1)).unwrap();
        save_in(&folder, &stay(2)).unwrap();
        let path = folder.join("tokens.json");
        let read: Stay = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(read.expires_at, 2);
        // Nothing left beside it (the temporary file was renamed over it).
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&folder), 0o700);
        }
    }
}
