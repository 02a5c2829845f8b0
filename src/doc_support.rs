//! What the documentation's examples start from: a front desk on a throwaway SQLite database
//! and key ring. Not part of the API (hidden from the docs); examples only.

use std::path::{Path, PathBuf};

use crate::{Config, FrontDesk};

/// A folder removed when dropped.
pub struct TempFolder(PathBuf);

impl TempFolder {
    /// Creates an empty folder under the system's temporary directory.
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("keycard-doc-{}", crate::jwt::random_id()));
        std::fs::create_dir_all(&path).expect("the temporary directory is writable");
        Self(path)
    }

    /// Where the folder is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempFolder {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The configuration of a development server whose data lives in `folder`, with `settings`
/// (`KEYCARD_*` names and values) on top of the defaults.
pub fn config(folder: &TempFolder, settings: &[(&str, &str)]) -> Config {
    let data_dir = folder.path().display().to_string();
    Config::from_lookup(|name| match name {
        "KEYCARD_DATA_DIR" => Some(data_dir.clone()),
        _ => settings.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()),
    })
    .expect("the example's settings are valid")
}

/// A front desk on a fresh database; keep the folder alive as long as the desk.
pub async fn front_desk() -> (FrontDesk, TempFolder) {
    let folder = TempFolder::new();
    let desk = FrontDesk::open(&config(&folder, &[])).await.expect("the front desk opens");
    (desk, folder)
}
