//! When the browser starts the wasm: after the server's HTML has been painted.
//!
//! Leptos' `HydrationScripts` starts the download of the bundle (the main script and wasm, and
//! a lazy page's chunks) from the page's `<head>`, and runs it as soon as it arrives. On a slow
//! phone that puts the wasm's compilation and the hydration before the first paint: the page
//! the server already rendered stays blank while its own code takes over, and Lighthouse counts
//! every byte of the bundle in the page's Largest Contentful Paint (its model includes each
//! request that ended before the paint; `scripts/lighthouse` measures it). [`Bootstrap`] lets
//! the page paint first: one animation frame and one task later it fetches the main script and
//! wasm and hydrates; a lazy page's chunks follow from the split loader. Starting the wasm and
//! hydrating are two tasks, not one: the browser may paint and answer input between them, and
//! neither is as long as both (Lighthouse's Total Blocking Time counts what a task takes beyond
//! 50 ms).
//!
//! A tab opened in the background runs no animation frames: the timer starts it anyway.

use leptos::prelude::*;

/// The bundle's main script and wasm as served (`/pkg/keycard.<hash>.js`, `.wasm`), which the
/// server provides as context from the hash file it read once at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleFiles {
    /// The wasm-bindgen script that loads the wasm and exports `hydrate`.
    pub script: std::sync::Arc<str>,
    /// The main wasm.
    pub wasm: std::sync::Arc<str>,
}

/// The script that hydrates the page once it has been painted (see the module's comment).
#[component]
pub fn Bootstrap(files: BundleFiles) -> impl IntoView {
    let nonce = leptos::nonce::use_nonce();
    // The names are the server's own (hash-file names: letters, digits, `-`, `_`, `.`, `/`);
    // written as JSON strings all the same.
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let script = format!(
        "(function (script, wasm) {{\
           let started = false;\
           const start = () => {{\
             if (started) return;\
             started = true;\
             import(script).then(m => m.default({{ module_or_path: wasm }}).then(() => setTimeout(() => m.hydrate(), 0)));\
           }};\
           requestAnimationFrame(() => setTimeout(start, 0));\
           setTimeout(start, 1000);\
         }})({}, {});",
        quote(&files.script),
        quote(&files.wasm)
    );
    view! { <script type="module" nonce=nonce>{script}</script> }
}
