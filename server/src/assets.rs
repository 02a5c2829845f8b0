//! The browser bundle as served: the names cargo-leptos gave its files and how long a cache may
//! keep each answer.
//!
//! With `hash-files = true` (Cargo.toml, `[[workspace.metadata.leptos]]`) cargo-leptos puts a hash
//! of each file's content in its name (`/pkg/keycard.5f1c…9a.wasm`) and writes the hashes to
//! `hash.txt` beside the server's executable, where Leptos' `HydrationScripts` and
//! `HashedStylesheet` read them too. A hashed name never changes content, so a browser may keep it
//! for a year without asking again (`immutable`); a new build has new names, which the pages
//! (never cached without asking, `no-cache`) point to. Release builds with `--precompress` also
//! leave `.br` and `.gz` copies beside each file, which the server's file server for the package
//! folder (tower-http's `ServeDir`) sends to a browser that accepts them.

use std::path::{Path, PathBuf};

use axum::http::HeaderValue;

/// A hashed file's answer: kept for a year, never revalidated (RFC 8246).
pub const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
/// Any other static file (the favicon, a bundle built without hashes): kept, but checked with
/// the server (`Last-Modified`) before each use, so a new build is never hidden by an old copy.
pub const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");
/// A page: rendered for the cookie that came with it, so checked with the server each time and
/// never kept by a shared cache (a proxy or CDN would otherwise hand one guest's room to another).
pub const PAGE: HeaderValue = HeaderValue::from_static("no-cache, private");

/// The bundle's file names, as `HydrationScripts` links them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// `/pkg/keycard.<hash>.css` (or `/pkg/keycard.css` without hashes).
    stylesheet: String,
    /// The paths whose content is fixed by their name.
    hashed: Vec<String>,
}

impl Bundle {
    /// The hash file cargo-leptos wrote beside the running executable, the same file Leptos reads
    /// (`LeptosOptions::hash_file`, default `hash.txt`).
    pub fn hash_file_path(file_name: &str) -> Option<PathBuf> {
        let exe = std::env::current_exe().ok()?;
        Some(exe.parent()?.join(file_name))
    }

    /// Reads the bundle's names from `hash_file`; a missing file means a build without hashes.
    /// A file that exists but cannot be read stops the server at start, not on a page.
    pub fn load(
        hash_file: Option<&Path>,
        pkg_dir: &str,
        output_name: &str,
    ) -> std::io::Result<Self> {
        match hash_file {
            Some(path) if path.exists() => {
                Ok(Self::from_hashes(&std::fs::read_to_string(path)?, pkg_dir, output_name))
            }
            _ => Ok(Self::unhashed(pkg_dir, output_name)),
        }
    }

    /// A bundle built without `hash-files`.
    pub fn unhashed(pkg_dir: &str, output_name: &str) -> Self {
        Self { stylesheet: format!("/{pkg_dir}/{output_name}.css"), hashed: Vec::new() }
    }

    /// Parses cargo-leptos' hash file: one `kind: hash` line per file (`js`, `wasm`, `css`), named
    /// `<output_name>.<hash>.<kind>` in the package folder. Lines it does not know are skipped.
    pub fn from_hashes(text: &str, pkg_dir: &str, output_name: &str) -> Self {
        let mut bundle = Self::unhashed(pkg_dir, output_name);
        for (kind, hash) in text.lines().filter_map(|line| line.split_once(':')) {
            let (kind, hash) = (kind.trim(), hash.trim());
            let hash_is_plain = !hash.is_empty()
                && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !matches!(kind, "js" | "wasm" | "css") || !hash_is_plain {
                continue;
            }
            let path = format!("/{pkg_dir}/{output_name}.{hash}.{kind}");
            if kind == "css" {
                bundle.stylesheet.clone_from(&path);
            }
            bundle.hashed.push(path);
        }
        bundle
    }

    /// Whether the bundle's names carry hashes.
    pub fn is_hashed(&self) -> bool {
        !self.hashed.is_empty()
    }

    /// Where the stylesheet is, for pages rendered outside Leptos (the error page).
    pub fn stylesheet(&self) -> &str {
        &self.stylesheet
    }

    /// The hashed paths that have no file under `site_root`.
    pub fn missing_from(&self, site_root: &Path) -> Vec<&str> {
        let exists = |path: &str| site_root.join(path.trim_start_matches('/')).is_file();
        self.hashed.iter().map(String::as_str).filter(|path| !exists(path)).collect()
    }

    /// How long a cache may keep a successful static answer for `path`.
    pub fn cache_control(&self, path: &str) -> HeaderValue {
        if self.hashed.iter().any(|hashed| hashed == path) {
            IMMUTABLE
        } else {
            REVALIDATE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASHES: &str = "js: eg4i_-IXOJMbgQ\nwasm: tQ1YvUHnsxuM6Y\ncss: XybNZf9hAuTX2C\n";

    #[test]
    fn names_come_from_the_hash_file() {
        let bundle = Bundle::from_hashes(HASHES, "pkg", "keycard");
        assert!(bundle.is_hashed());
        assert_eq!(bundle.stylesheet(), "/pkg/keycard.XybNZf9hAuTX2C.css");
        for path in ["/pkg/keycard.eg4i_-IXOJMbgQ.js", "/pkg/keycard.tQ1YvUHnsxuM6Y.wasm"] {
            assert_eq!(bundle.cache_control(path), IMMUTABLE, "{path}");
        }
    }

    #[test]
    fn only_the_exact_hashed_names_are_immutable() {
        let bundle = Bundle::from_hashes(HASHES, "pkg", "keycard");
        for path in [
            "/pkg/keycard.wasm",
            "/pkg/keycard.tQ1YvUHnsxuM6Y.wasm.br",
            "/pkg/keycard.tQ1YvUHnsxuM6Y.js/",
            "/favicon.svg",
            "/pkg/other.tQ1YvUHnsxuM6Y.wasm",
        ] {
            assert_eq!(bundle.cache_control(path), REVALIDATE, "{path}");
        }
    }

    #[test]
    fn without_a_hash_file_nothing_is_immutable() {
        let bundle = Bundle::load(Some(Path::new("/nonexistent/hash.txt")), "pkg", "keycard")
            .expect("a missing file is a build without hashes");
        assert!(!bundle.is_hashed());
        assert_eq!(bundle.stylesheet(), "/pkg/keycard.css");
        assert_eq!(bundle.cache_control("/pkg/keycard.wasm"), REVALIDATE);
    }

    #[test]
    fn files_a_hash_file_names_but_the_site_lacks_are_found() {
        let site = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(site.path().join("pkg")).unwrap();
        std::fs::write(site.path().join("pkg/keycard.tQ1YvUHnsxuM6Y.wasm"), b"\0asm").unwrap();
        let bundle = Bundle::from_hashes(HASHES, "pkg", "keycard");
        assert_eq!(
            bundle.missing_from(site.path()),
            ["/pkg/keycard.eg4i_-IXOJMbgQ.js", "/pkg/keycard.XybNZf9hAuTX2C.css"]
        );
    }

    #[test]
    fn unknown_or_odd_lines_are_skipped() {
        let bundle =
            Bundle::from_hashes("map: abc\ncss: ../../etc\nwasm:\nnonsense\n", "pkg", "kc");
        assert!(!bundle.is_hashed());
        assert_eq!(bundle.stylesheet(), "/pkg/kc.css");
    }
}
