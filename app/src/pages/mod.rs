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
use leptos_router::{lazy_route, LazyRoute};

pub use check_in::{Login, Register};
pub use lobby::Lobby;
pub use not_found::NotFound;

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
