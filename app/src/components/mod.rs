//! Pieces shared by the pages, and yours: `Protected` wraps a page only checked-in guests see
//! (docs/make-it-yours.md, "Add a protected page").

mod client_only;
mod countdown;
#[cfg(feature = "demo")]
mod forge_lab;
mod hydrate_later;
mod key_card;
mod protected;
mod sequence;
mod timeline;
mod wire;

pub use client_only::ClientOnly;
pub use countdown::{duration_text, Countdown};
#[cfg(feature = "demo")]
pub use forge_lab::ForgeLab;
#[cfg(feature = "hydrate")]
pub(crate) use hydrate_later::hydrate_the_rest;
pub use hydrate_later::HydrateLater;
pub use key_card::KeyCardInspector;
pub use protected::Protected;
pub use timeline::Timeline;
pub use wire::WirePanel;
