//! What every Keycard page takes from Leptos, and nothing of Keycard: a router, a title, a
//! resource under Suspense loaded from a server function, an action form calling it, a signal.
//! Its wasm is the floor under Keycard's main bundle (README, "Performance", the bundle floor).

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

#[server]
pub async fn whoami(n: u32) -> Result<String, ServerFnError> {
    Ok(format!("guest {n}"))
}

#[component]
fn Home() -> impl IntoView {
    let (count, set_count) = signal(0u32);
    let who = Resource::new(move || count.get(), whoami);
    let ask = ServerAction::<Whoami>::new();
    view! {
        <Title text="floor" />
        <button on:click=move |_| set_count.update(|c| *c += 1)>{count}</button>
        <Suspense fallback=|| "…">{move || who.get().map(|r| r.unwrap_or_default())}</Suspense>
        <ActionForm action=ask><input name="n" /></ActionForm>
    }
}

#[component]
fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Router>
            <Routes fallback=|| "not found">
                <Route path=path!("/") view=Home />
            </Routes>
        </Router>
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
