//! One module a page.

mod amenities;
mod check_in;
mod lobby;
mod not_found;
mod room;
mod sessions;

pub use amenities::Amenities;
pub use check_in::{Login, Register};
pub use lobby::Lobby;
pub use not_found::NotFound;
pub use room::Room;
pub use sessions::Sessions;
