//! The browser entry point. It lives in its own `cdylib` crate so that native builds (the server,
//! `cargo test`) never link a wasm-only library nor pull in browser-only dependencies.

/// Called by the script that `HydrationScripts` puts in the page: takes over the server-rendered
/// HTML and makes it interactive (see `keycard_app::hydrate`, which waits for the code of the
/// checked-in pages, lazy routes, before anything on the page may change).
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    keycard_app::hydrate();
}
