//! One module a page.

mod lobby;
mod not_found;

pub use lobby::Lobby;
pub use not_found::NotFound;
