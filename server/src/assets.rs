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
//!
//! Built with `--split`, the bundle has more hashed files: the lazy pages' wasm chunks, the
//! `__wasm_split` loader script and the manifest that says which chunks each lazy page needs.
//! The hash file names the last two; the manifest names the chunks.
//!
//! A name is trusted only once checked: at start the server hashes each named file (cargo-leptos
//! uses the MD5 of the content, URL-safe base64) and lets browsers keep only the files whose
//! content matches their name. That is not pedantry: with `--split`, cargo-leptos 0.3.10 names
//! the main wasm, the main script and the manifest before it rewrites the loader's name into
//! them, so those names can stay the same while their content changes. Kept for a year, an old
//! main wasm would then ask for a loader a new deployment no longer has. Those files are
//! revalidated instead (a 304 while unchanged).

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
    /// `/pkg/keycard.<hash>.js`: the script that loads the wasm and hydrates.
    script: String,
    /// `/pkg/keycard.<hash>.wasm`: the main wasm.
    wasm: String,
    /// The paths the hash file and the manifest name with a hash.
    hashed: Vec<String>,
    /// Those whose content was found to match their name: kept for a year.
    immutable: Vec<String>,
    /// The manifest of lazy-loaded chunks (`/pkg/__wasm_split_manifest.<hash>.json`), when the
    /// bundle was built with `--split`.
    split_manifest: Option<String>,
}

impl Bundle {
    /// The hash file cargo-leptos wrote beside the running executable, the same file Leptos reads
    /// (`LeptosOptions::hash_file`, default `hash.txt`).
    pub fn hash_file_path(file_name: &str) -> Option<PathBuf> {
        let exe = std::env::current_exe().ok()?;
        Some(exe.parent()?.join(file_name))
    }

    /// Reads the bundle's names from `hash_file` and, for a split bundle, the chunks' names from
    /// its manifest under `site_root`; a missing hash file means a build without hashes. A file
    /// that exists but cannot be read stops the server at start, not on a page; a missing
    /// manifest is left to [`Bundle::missing_from`].
    pub fn load(
        hash_file: Option<&Path>,
        site_root: &Path,
        pkg_dir: &str,
        output_name: &str,
    ) -> std::io::Result<Self> {
        let mut bundle = match hash_file {
            Some(path) if path.exists() => {
                Self::from_hashes(&std::fs::read_to_string(path)?, pkg_dir, output_name)
            }
            _ => return Ok(Self::unhashed(pkg_dir, output_name)),
        };
        if let Some(manifest) = &bundle.split_manifest {
            let file = site_root.join(manifest.trim_start_matches('/'));
            if file.is_file() {
                let text = std::fs::read_to_string(&file)?;
                bundle.add_chunks(&text, pkg_dir).map_err(std::io::Error::other)?;
            }
        }
        bundle.immutable = bundle
            .hashed
            .iter()
            .filter(|path| content_matches_name(site_root, path))
            .cloned()
            .collect();
        Ok(bundle)
    }

    /// A bundle built without `hash-files`.
    pub fn unhashed(pkg_dir: &str, output_name: &str) -> Self {
        Self {
            stylesheet: format!("/{pkg_dir}/{output_name}.css"),
            script: format!("/{pkg_dir}/{output_name}.js"),
            wasm: format!("/{pkg_dir}/{output_name}.wasm"),
            hashed: Vec::new(),
            immutable: Vec::new(),
            split_manifest: None,
        }
    }

    /// Parses cargo-leptos' hash file: one `kind: hash` line per file, `js`, `wasm` and `css`
    /// named `<output_name>.<hash>.<kind>` in the package folder, and with `--split` the loader
    /// (`split`: `__wasm_split.<hash>.js`) and the chunks' manifest (`manifest`:
    /// `__wasm_split_manifest.<hash>.json`). Lines it does not know are skipped. Nothing is
    /// immutable yet: [`Bundle::load`] checks the files.
    pub fn from_hashes(text: &str, pkg_dir: &str, output_name: &str) -> Self {
        let mut bundle = Self::unhashed(pkg_dir, output_name);
        for (kind, hash) in text.lines().filter_map(|line| line.split_once(':')) {
            let (kind, hash) = (kind.trim(), hash.trim());
            if !is_plain_hash(hash) {
                continue;
            }
            let path = match kind {
                "js" | "wasm" | "css" => format!("/{pkg_dir}/{output_name}.{hash}.{kind}"),
                "split" => format!("/{pkg_dir}/__wasm_split.{hash}.js"),
                "manifest" => format!("/{pkg_dir}/__wasm_split_manifest.{hash}.json"),
                _ => continue,
            };
            match kind {
                "css" => bundle.stylesheet.clone_from(&path),
                "js" => bundle.script.clone_from(&path),
                "wasm" => bundle.wasm.clone_from(&path),
                "manifest" => bundle.split_manifest = Some(path.clone()),
                _ => {}
            }
            bundle.hashed.push(path);
        }
        bundle
    }

    /// Adds the chunks a split bundle's manifest names (`{"lazy fn": ["chunk_5.<hash>", …]}`,
    /// each `/<pkg_dir>/<name>.wasm`). A name without a hash in it is not fixed by its name and
    /// stays revalidated.
    fn add_chunks(&mut self, manifest: &str, pkg_dir: &str) -> Result<(), serde_json::Error> {
        let lazy: std::collections::BTreeMap<String, Vec<String>> = serde_json::from_str(manifest)?;
        let mut chunks: Vec<&String> = lazy.values().flatten().collect();
        chunks.sort();
        chunks.dedup();
        for chunk in chunks {
            let hashed = chunk.rsplit_once('.').is_some_and(|(stem, hash)| {
                is_plain_hash(hash) && !stem.is_empty() && is_plain_hash(stem)
            });
            if hashed {
                self.hashed.push(format!("/{pkg_dir}/{chunk}.wasm"));
            }
        }
        Ok(())
    }

    /// Whether the bundle was built with `cargo leptos … --split`. Keycard's checked-in pages are
    /// lazy routes: a hashed bundle without it has no loader, and those pages never hydrate.
    pub fn is_split(&self) -> bool {
        self.split_manifest.is_some()
    }

    /// Whether the bundle's names carry hashes.
    pub fn is_hashed(&self) -> bool {
        !self.hashed.is_empty()
    }

    /// Where the stylesheet is, for pages rendered outside Leptos (the error page).
    pub fn stylesheet(&self) -> &str {
        &self.stylesheet
    }

    /// Where the main script is (it loads the wasm and hydrates the page).
    pub fn script(&self) -> &str {
        &self.script
    }

    /// Where the main wasm is.
    pub fn wasm(&self) -> &str {
        &self.wasm
    }

    /// The hashed paths that have no file under `site_root`.
    pub fn missing_from(&self, site_root: &Path) -> Vec<&str> {
        let exists = |path: &str| site_root.join(path.trim_start_matches('/')).is_file();
        self.hashed.iter().map(String::as_str).filter(|path| !exists(path)).collect()
    }

    /// How long a cache may keep a successful static answer for `path`.
    pub fn cache_control(&self, path: &str) -> HeaderValue {
        if self.immutable.iter().any(|checked| checked == path) {
            IMMUTABLE
        } else {
            REVALIDATE
        }
    }
}

/// Whether the file at `path` (under `site_root`) has the content its name's hash says:
/// `<stem>.<hash>.<extension>`, the hash being the URL-safe base64 of the content's MD5, as
/// cargo-leptos computes it. A missing or unreadable file does not match.
fn content_matches_name(site_root: &Path, path: &str) -> bool {
    use base64::Engine;
    use md5::{Digest, Md5};
    let Some(hash) = path.rsplit('.').nth(1) else { return false };
    let Ok(content) = std::fs::read(site_root.join(path.trim_start_matches('/'))) else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Md5::digest(&content)) == hash
}

/// A hash as cargo-leptos writes it (URL-safe base64), or a chunk's stem: nothing that could
/// leave the package folder or change a path's meaning.
fn is_plain_hash(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    // Names as cargo-leptos gives them: the URL-safe base64 MD5 of the content, here of
    // `export{}`, `\0asm`, `body{}` and `{}` (computed outside this code).
    const JS: &str = "RYbHFa6rEmBxpECNyxUkCw";
    const WASM: &str = "IS2n5HG9lhVtyVNQI64Dgw";
    const CSS: &str = "qmdpcrvSto6U746R6B0gvg";
    const EMPTY_JSON: &str = "mZFLkyvTelC5g8XnyQrpOw";

    fn hashes() -> String {
        format!("js: {JS}\nwasm: {WASM}\ncss: {CSS}\n")
    }

    /// A site folder holding `files` (path under the site, content), and the bundle loaded from
    /// it with `hash_file` as cargo-leptos' hash file.
    fn load(hash_file: &str, files: &[(String, Vec<u8>)]) -> (tempfile::TempDir, Bundle) {
        let site = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(site.path().join("pkg")).unwrap();
        for (path, content) in files {
            std::fs::write(site.path().join(path), content).unwrap();
        }
        let hash_path = site.path().join("hash.txt");
        std::fs::write(&hash_path, hash_file).unwrap();
        let bundle = Bundle::load(Some(&hash_path), site.path(), "pkg", "keycard").unwrap();
        (site, bundle)
    }

    fn the_three() -> Vec<(String, Vec<u8>)> {
        vec![
            (format!("pkg/keycard.{JS}.js"), b"export{}".to_vec()),
            (format!("pkg/keycard.{WASM}.wasm"), b"\0asm".to_vec()),
            (format!("pkg/keycard.{CSS}.css"), b"body{}".to_vec()),
        ]
    }

    #[test]
    fn names_come_from_the_hash_file_and_matching_files_are_immutable() {
        let (_site, bundle) = load(&hashes(), &the_three());
        assert!(bundle.is_hashed());
        assert!(!bundle.is_split());
        assert_eq!(bundle.stylesheet(), format!("/pkg/keycard.{CSS}.css"));
        assert_eq!(bundle.script(), format!("/pkg/keycard.{JS}.js"));
        assert_eq!(bundle.wasm(), format!("/pkg/keycard.{WASM}.wasm"));
        for path in [
            format!("/pkg/keycard.{JS}.js"),
            format!("/pkg/keycard.{WASM}.wasm"),
            format!("/pkg/keycard.{CSS}.css"),
        ] {
            assert_eq!(bundle.cache_control(&path), IMMUTABLE, "{path}");
        }
    }

    #[test]
    fn a_file_whose_content_does_not_match_its_name_is_revalidated() {
        let mut files = the_three();
        files[1].1 = b"\0asm, rewritten after it was named".to_vec();
        let (_site, bundle) = load(&hashes(), &files);
        assert_eq!(bundle.cache_control(&format!("/pkg/keycard.{WASM}.wasm")), REVALIDATE);
        assert_eq!(bundle.cache_control(&format!("/pkg/keycard.{JS}.js")), IMMUTABLE);
        // Named but absent: revalidated too (and reported at start).
        let (site, bundle) = load(&hashes(), &the_three()[..1]);
        assert_eq!(bundle.cache_control(&format!("/pkg/keycard.{CSS}.css")), REVALIDATE);
        assert_eq!(
            bundle.missing_from(site.path()),
            [format!("/pkg/keycard.{WASM}.wasm"), format!("/pkg/keycard.{CSS}.css")]
        );
    }

    #[test]
    fn only_the_exact_hashed_names_are_immutable() {
        let (_site, bundle) = load(&hashes(), &the_three());
        for path in [
            "/pkg/keycard.wasm".to_owned(),
            format!("/pkg/keycard.{WASM}.wasm.br"),
            format!("/pkg/keycard.{JS}.js/"),
            "/favicon.svg".to_owned(),
            format!("/pkg/other.{WASM}.wasm"),
        ] {
            assert_eq!(bundle.cache_control(&path), REVALIDATE, "{path}");
        }
    }

    #[test]
    fn without_a_hash_file_nothing_is_immutable() {
        let bundle = Bundle::load(
            Some(Path::new("/nonexistent/hash.txt")),
            Path::new("/nonexistent"),
            "pkg",
            "keycard",
        )
        .expect("a missing file is a build without hashes");
        assert!(!bundle.is_hashed());
        assert_eq!(bundle.stylesheet(), "/pkg/keycard.css");
        assert_eq!((bundle.script(), bundle.wasm()), ("/pkg/keycard.js", "/pkg/keycard.wasm"));
        assert_eq!(bundle.cache_control("/pkg/keycard.wasm"), REVALIDATE);
    }

    #[test]
    fn unknown_or_odd_lines_are_skipped() {
        let bundle =
            Bundle::from_hashes("map: abc\ncss: ../../etc\nwasm:\nnonsense\n", "pkg", "kc");
        assert!(!bundle.is_hashed());
        assert_eq!(bundle.stylesheet(), "/pkg/kc.css");
    }

    #[test]
    fn a_split_bundle_names_its_loader_manifest_and_chunks() {
        let manifest = format!(
            r#"{{"__room_page_view_1": ["chunk_5.{WASM}", "split___room_page_view_1.{JS}"],
                "__sessions_page_view_2": ["chunk_5.{WASM}", "chunk_6"]}}"#
        );
        let mut files = the_three();
        files.extend([
            (format!("pkg/__wasm_split.{JS}.js"), b"export{}".to_vec()),
            (format!("pkg/chunk_5.{WASM}.wasm"), b"\0asm".to_vec()),
            (format!("pkg/split___room_page_view_1.{JS}.wasm"), b"\0asm".to_vec()),
            ("pkg/chunk_6.wasm".to_owned(), b"\0asm".to_vec()),
            (format!("pkg/__wasm_split_manifest.{EMPTY_JSON}.json"), manifest.into_bytes()),
        ]);
        let (site, bundle) =
            load(&format!("{}manifest: {EMPTY_JSON}\nsplit: {JS}\n", hashes()), &files);
        assert!(bundle.is_split());
        for path in [format!("/pkg/__wasm_split.{JS}.js"), format!("/pkg/chunk_5.{WASM}.wasm")] {
            assert_eq!(bundle.cache_control(&path), IMMUTABLE, "{path}");
        }
        for path in [
            // Its content is not what its name says: the room chunk holds `\0asm`, named for
            // `export{}`; the manifest was named before its chunk names were written in.
            format!("/pkg/split___room_page_view_1.{JS}.wasm"),
            format!("/pkg/__wasm_split_manifest.{EMPTY_JSON}.json"),
            // No hash in the name, or not a name the manifest gives.
            "/pkg/chunk_6.wasm".to_owned(),
            format!("/pkg/chunk_7.{WASM}.wasm"),
        ] {
            assert_eq!(bundle.cache_control(&path), REVALIDATE, "{path}");
        }
        assert!(bundle.missing_from(site.path()).is_empty());
    }

    #[test]
    fn a_manifest_that_is_not_json_stops_the_start() {
        let site = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(site.path().join("pkg")).unwrap();
        std::fs::write(site.path().join("pkg/__wasm_split_manifest.Mf.json"), "not json").unwrap();
        let hash_file = site.path().join("hash.txt");
        std::fs::write(&hash_file, "manifest: Mf\n").unwrap();
        assert!(Bundle::load(Some(&hash_file), site.path(), "pkg", "keycard").is_err());
    }
}
