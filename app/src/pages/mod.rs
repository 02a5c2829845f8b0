//! One module a page.
//!
//! The pages a guest reaches only once checked in (the room, the amenities, the bookings, a
//! device's approval) are
//! lazy routes: built with `cargo leptos … --split`, their code leaves the main wasm for files of
//! its own, which the browser fetches when the page is first shown (the server names them in the
//! page's `<head>` when it renders one, so they load beside the main bundle). The lobby and
//! check-in, where every visit starts, stay in the main bundle. Every `cargo leptos` command in
//! this repository passes `--split`; without it the browser finds no `__wasm_split` module and
//! the pages never hydrate (`keycard_server::assets` warns at start).
//!
//! A page loaded straight into one of them hydrates only once its chunk has arrived; until then
//! nothing on the page may change state (see [`crate::hydrated`]).

mod amenities;
mod check_in;
mod device;
mod lobby;
mod not_found;
mod room;
mod sessions;

use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_location;
use leptos_router::{lazy_route, LazyRoute};

pub use check_in::{Login, Register};
pub use lobby::Lobby;
pub use not_found::NotFound;

/// A page's title and the description search engines show under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageMeta {
    /// The tab's title.
    pub title: &'static str,
    /// `<meta name="description">`: one or two sentences, at most 160 characters.
    pub description: &'static str,
}

/// The title and description of the page at `path` (the 404 page's for a path no page has).
pub fn page_meta(path: &str) -> PageMeta {
    let (title, description) = match path.trim_end_matches('/') {
        "" => (
            "Keycard: JWT access and refresh tokens, explained",
            "How short-lived JWT access tokens and rotating refresh tokens work, step by step, \
             told as a hotel's key cards and booking confirmations.",
        ),
        "/login" => (
            "Check in · Keycard",
            "Check in to get a short-lived key card (a JWT access token) and a booking \
             confirmation (a refresh token kept in an HttpOnly cookie).",
        ),
        "/register" => (
            "Register · Keycard",
            "Register a guest to try access and refresh tokens yourself: check in, let the key \
             card expire, and watch the front desk rotate it.",
        ),
        "/room" => (
            "Your room · Keycard",
            "The key card you hold: its claims, its countdown, and the front desk's silent \
             refresh when it expires, every exchange on the wire.",
        ),
        "/amenities" => (
            "Amenities · Keycard",
            "Doors that check a key card's signature and expiry against the hotel's public keys \
             (JWKS), without asking the front desk.",
        ),
        "/sessions" => (
            "Your bookings · Keycard",
            "Every booking (refresh token family) with its rotations and events, and check-out \
             from one device or all of them.",
        ),
        "/device" => (
            "Approve a device · Keycard",
            "A command-line client asks to check in with the OAuth device flow: confirm its code \
             here to hand it key cards of its own.",
        ),
        _ => (
            "Not found · Keycard",
            "This page is not part of the hotel. Keycard shows how JWT access and refresh tokens \
             work: start in the lobby.",
        ),
    };
    PageMeta { title, description }
}

/// The current page's `<title>` and description, from [`page_meta`]; they follow client-side
/// navigation.
#[component]
pub fn PageHead() -> impl IntoView {
    let location = use_location();
    let meta = Memo::new(move |_| page_meta(&location.pathname.get()));
    view! {
        <Title text=move || meta.get().title />
        <Meta name="description" content=move || meta.get().description />
    }
}

/// `/room`, loaded on demand.
pub struct RoomPage;

#[lazy_route]
impl LazyRoute for RoomPage {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        room::Room().into_any()
    }
}

/// `/amenities`, loaded on demand.
pub struct AmenitiesPage;

#[lazy_route]
impl LazyRoute for AmenitiesPage {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        amenities::Amenities().into_any()
    }
}

/// `/sessions`, loaded on demand.
pub struct SessionsPage;

#[lazy_route]
impl LazyRoute for SessionsPage {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        sessions::Sessions().into_any()
    }
}

/// `/device`, loaded on demand.
pub struct DevicePage;

#[lazy_route]
impl LazyRoute for DevicePage {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        device::Device().into_any()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_has_its_own_title_and_a_description_of_at_most_160_characters() {
        let paths = ["/", "/login", "/register", "/room", "/amenities", "/sessions", "/device"];
        let metas: Vec<_> = paths.iter().map(|p| page_meta(p)).collect();
        for (path, meta) in paths.iter().zip(&metas) {
            let length = meta.description.chars().count();
            assert!((50..=160).contains(&length), "{path}: {length} characters");
            assert!(!meta.description.contains("  "), "{path}: a line break left spaces");
        }
        let titles: std::collections::HashSet<_> = metas.iter().map(|m| m.title).collect();
        assert_eq!(titles.len(), paths.len(), "each page its own title");
        assert_eq!(page_meta("/room/"), page_meta("/room"));
        assert_eq!(page_meta("/nowhere").title, "Not found · Keycard");
    }
}
