//! # keycard: the front desk and the key card
//!
//! The server-only core of Keycard: it issues and checks **key cards** (short-lived JWT access
//! tokens), runs the **front desk** that swaps a **booking confirmation** (a rotating JWT refresh
//! token) for a new key card, keeps **sessions** (bookings) and their event log, hashes guests'
//! passwords, and stores all of it through a narrow [`storage::Store`] interface.
//!
//! It knows nothing of Leptos or HTTP: the UI crate's server functions and the server crate call
//! [`FrontDesk`] and map [`AuthError`] to status codes.
//!
//! | hotel | token world | module |
//! |---|---|---|
//! | key card | access token (`typ: at+jwt`, minutes) | [`key_card`] |
//! | booking confirmation | refresh token (rotating, days) | [`confirmation`] |
//! | front desk | the refresh endpoint: rotation and theft detection | [`front_desk`] |
//! | booking | session (token family) and its event log | [`storage`] |
//! | check-in / check-out | login / logout | [`front_desk`] |
//! | the doors: amenity (stateless), room (stateful) | resource checks | [`door`] |
//! | a terminal checking in with a code the guest approves | device authorization grant (RFC 8628), refresh token in a body | [`front_desk`], [`clients`] |
//!
//! ## Cargo features
//! - `demo` (on by default): the demo thief and the short-lived key card
//!   (`FrontDesk::demo_steal` and friends). Without it they are not compiled at all.

#![warn(missing_docs)]

pub mod audit;
pub mod clients;
pub mod clock;
pub mod config;
pub mod confirmation;
#[doc(hidden)]
pub mod doc_support;
pub mod door;
pub mod dpop;
pub mod error;
pub mod front_desk;
pub mod jwt;
pub mod key_card;
pub mod keys;
pub mod operations;
pub mod passwords;
pub mod proxies;
pub mod storage;
pub mod throttle;
pub mod verified;
pub mod views;

pub use clock::Clock;
pub use config::Config;
pub use door::{CheckedInGuest, KeyCardHolder};
pub use error::AuthError;
pub use front_desk::FrontDesk;
