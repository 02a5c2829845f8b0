//! Pieces shared by the pages, and yours: `Protected` wraps a page only checked-in guests see
//! (docs/make-it-yours.md, "Add a protected page").

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
