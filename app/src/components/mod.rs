//! Pieces shared by the pages.

mod client_only;
mod countdown;
mod key_card;
mod protected;
mod timeline;

pub use client_only::ClientOnly;
pub use countdown::{duration_text, Countdown};
pub use key_card::KeyCardInspector;
pub use protected::Protected;
pub use timeline::Timeline;
