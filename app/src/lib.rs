//! # keycard-app: the pages of the hotel
//!
//! The Leptos UI, rendered on the server and hydrated in the browser: the pages and components,
//! and the thin server functions of the HTTP contract ([`api`]). Everything about tokens is
//! decided by the `keycard` core on the server; this crate only shows it.

#![recursion_limit = "256"]

pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod components;
pub mod dpop;
pub mod error;
#[cfg(feature = "ssr")]
pub mod guard;
mod pages;
#[cfg(feature = "test-probes")]
pub mod probes;
pub mod redirect;
pub mod request;
pub mod sequence;
pub mod wire;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::{provide_meta_context, HashedStylesheet, Link, MetaTags};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::{Lazy, SsrMode, StaticSegment};

use crate::auth::{provide_auth, use_auth};

/// The stylesheet's address as served (`/pkg/keycard.<hash>.css`), which the server provides as
/// context from the hash file it read once at start. Without it the shell asks Leptos'
/// `HashedStylesheet`, which reads that file from disk at every render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StylesheetHref(pub std::sync::Arc<str>);

/// The HTML document around [`App`], rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // Hashed names (cargo-leptos `hash-files`): see keycard_server::assets.
    let stylesheet = match use_context::<StylesheetHref>() {
        Some(href) => {
            view! { <link id="leptos" rel="stylesheet" href=href.0.to_string() /> }.into_any()
        }
        None => view! { <HashedStylesheet options=options.clone() id="leptos" /> }.into_any(),
    };
    // The server names the bundle's files; without them (a shell rendered elsewhere), Leptos'
    // own scripts, which start the wasm before the first paint.
    let hydration = match use_context::<bootstrap::BundleFiles>() {
        Some(files) => view! { <bootstrap::Bootstrap files /> }.into_any(),
        None => view! { <HydrationScripts options=options.clone() /> }.into_any(),
    };
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <AutoReload options=options.clone() />
                {stylesheet}
                {hydration}
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// A page's Content-Security-Policy: scripts only from this origin or carrying `nonce` (the
/// hydration bootstrap), WebAssembly allowed to compile, nothing framed. The server's middleware
/// sets it on every HTML answer and puts the same nonce in the page's context (see
/// `keycard_server::middleware`), so that header and page cannot disagree.
#[cfg(feature = "ssr")]
pub fn content_security_policy(nonce: &str, options: &LeptosOptions) -> String {
    // Live reload (`cargo leptos watch`, which sets LEPTOS_WATCH, the variable `AutoReload` itself
    // reads) talks to its own websocket port; no other build may connect there.
    static LIVE_RELOAD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let live_reload = *LIVE_RELOAD.get_or_init(|| std::env::var_os("LEPTOS_WATCH").is_some());
    let reload = if live_reload && options.reload_port > 0 {
        format!(" ws://{}:{}", options.site_addr.ip(), options.reload_port)
    } else {
        String::new()
    };
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'{reload}; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )
}

/// The application: every page of the hotel.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_auth();
    mark_hydrated();
    view! {
        <Link rel="icon" href="/favicon.svg" type_="image/svg+xml" />
        <Router>
            <pages::PageHead />
            <a class="skip" href="#main">"Skip to content"</a>
            <TopBar />
            <main id="main">
                <Routes fallback=pages::NotFound>
                    <Route path=StaticSegment("") view=pages::Lobby ssr=SsrMode::Async />
                    <Route path=StaticSegment("login") view=pages::Login ssr=SsrMode::Async />
                    <Route path=StaticSegment("register") view=pages::Register ssr=SsrMode::Async />
                    <Route path=StaticSegment("room") view={Lazy::<pages::RoomPage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("amenities") view={Lazy::<pages::AmenitiesPage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("sessions") view={Lazy::<pages::SessionsPage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("device") view={Lazy::<pages::DevicePage>::new()} ssr=SsrMode::Async />
                </Routes>
            </main>
        </Router>
    }
}

/// The navigation, where the guest stands, and check-out.
#[component]
fn TopBar() -> impl IntoView {
    let auth = use_auth();
    let checked_in = move || auth.stay().is_some();
    let check_out = move |scope: &'static str| {
        spawn_local(async move {
            let _ = auth.protected("Check out", || api::logout(Some(scope.to_owned()))).await;
            auth.checked_out(true);
        });
    };
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <img src="/favicon.svg" alt="" width="24" height="24" />
                "Keycard"
            </a>
            <nav aria-label="Main">
                <A href="/room">"Room"</A>
                <A href="/amenities">"Amenities"</A>
                <A href="/sessions">"Bookings"</A>
            </nav>
            // Inside a Transition: these read the server's view of the stay, which hydrates with it.
            <Transition fallback=|| ()>
                <span class="stage" data-testid="stage" data-stage=move || format!("{:?}", auth.stage())>
                    {move || auth.stage().label()}
                </span>
                <Show
                    when=checked_in
                    fallback=|| view! { <a class="button primary" href="/login">"Check in"</a> }
                >
                    <button type="button" on:click=move |_| check_out("this")>"Check out"</button>
                    <button type="button" class="wide-only" on:click=move |_| check_out("all")>"Check out everywhere"</button>
                </Show>
            </Transition>
        </header>
    }
}

thread_local! {
    /// Whether the page has hydrated everything the server sent, lazy routes and panels
    /// hydrated later included.
    static HYDRATED: ArcRwSignal<bool> = ArcRwSignal::new(false);
}

/// Whether this page has hydrated everything the server sent (never, on the server). Tracked:
/// an effect that reads it runs again when hydration ends.
///
/// Until then nothing may change what the page shows. The checked-in pages are lazy routes
/// whose code can arrive after the rest of the page, and their panels hydrate one task at a time
/// ([`components::HydrateLater`]: a panel already hydrated answers clicks before the others are);
/// a page that changed state meanwhile (back
/// from the front desk, say) would no longer match the HTML it is hydrating, and hydration
/// fails. So the auth context's clock, its trip to the front desk for a key card that expired
/// before the page loaded, and its channel to other tabs all wait for this.
pub fn hydrated() -> bool {
    HYDRATED.with(|h| h.get())
}

/// Takes over the page the server rendered and makes it interactive; the browser entry point
/// (`keycard-hydrate`) calls it. Like Leptos' `hydrate_lazy`, it waits for the code of a lazy
/// route the page shows; then it hydrates the panels put aside by
/// [`components::HydrateLater`], a task each, and says so through [`hydrated`].
#[cfg(feature = "hydrate")]
pub fn hydrate() {
    // wasm-bindgen's own executor: `hydrate_from_async` sets up Leptos' (on it) as it starts.
    wasm_bindgen_futures::spawn_local(async {
        let page = leptos::mount::hydrate_from_async(leptos::tachys::dom::body(), App).await;
        // The page lives as long as the tab.
        page.forget();
        components::hydrate_the_rest().await;
        HYDRATED.with(|h| h.set(true));
    });
}

/// Sets `data-hydrated` on `<body>` once the whole page is interactive, so tests and curious
/// readers can tell a server-rendered page from a hydrated one. Effects run only in the browser.
fn mark_hydrated() {
    Effect::new(|_| {
        if !hydrated() {
            return;
        }
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}
