//! What docs/make-it-yours.md's examples start from: Keycard served on a free port with a
//! throwaway database and key ring. Not part of the API (hidden from the docs); examples only.

use axum::Router;
use keycard::doc_support::TempFolder;
use keycard::{Config, FrontDesk};

use crate::{leptos_options, router_with, serve, AppState};

/// Serves `desk` with `routes` of your own on 127.0.0.1 (a free port) until the process ends;
/// the base URL.
pub async fn serve_desk(config: Config, desk: FrontDesk, routes: Router<AppState>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("a bound address"));
    let limits = config.limits.clone();
    let options = leptos_options(&config);
    let app = router_with(config, desk, options, routes);
    tokio::spawn(serve(listener, app, limits, std::future::pending()));
    base
}

/// Keycard served for an example.
pub struct Served {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its front desk, to check guests in without a client.
    pub desk: FrontDesk,
    /// Where its data is; removed when this is dropped.
    pub folder: TempFolder,
}

/// Serves Keycard (development settings) with `routes` of your own.
pub async fn serve_with(routes: Router<AppState>) -> Served {
    let folder = TempFolder::new();
    let config = keycard::doc_support::config(&folder, &[]);
    let desk = FrontDesk::open(&config).await.expect("the front desk opens");
    let base = serve_desk(config, desk.clone(), routes).await;
    Served { base, desk, folder }
}

/// Checks `username` in (registering them): their key card.
pub async fn key_card(desk: &FrontDesk, username: &str) -> String {
    let client = keycard::front_desk::ClientInfo::default();
    let issued = desk.register(username, "correct horse battery", &client).await;
    issued.expect("a new guest checks in").key_card
}
