//! Keycard's integration tests, one binary: every test starts the real app (on `127.0.0.1:0`,
//! with a temporary database and key ring of its own), or the built server itself, and talks to
//! it over HTTP. One module a subject. (The page fuzzer is a binary of its own: it counts the
//! panics of its whole process.)
//!
//! One binary because each one links the whole Leptos, axum and sqlx graph: fourteen of them
//! took a large share of the test command on two cores.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod bundle;
mod cluster;
#[cfg(feature = "demo")]
mod demo;
mod device;
mod dpop;
mod faults;
mod front_desk;
mod hardening;
mod http;
mod isolation;
mod key_card;
#[cfg(feature = "demo")]
mod lab;
mod openapi;
mod operations;
mod sessions;
mod store;
#[cfg(not(feature = "demo"))]
mod without_demo;
