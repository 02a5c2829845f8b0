//! # keycard-server
//!
//! Wires the Keycard application together: configuration, the database and key ring (through the
//! `keycard` core's [`FrontDesk`]), the Leptos pages and server functions, the resource server
//! (`/amenities`), the JWKS, and the middleware around them.
//!
//! [`build`] returns the whole application as an axum [`Router`]; `main` and the integration
//! tests both call it, so tests exercise exactly what runs in production.

mod middleware;
mod routes;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::routing::{any, get};
use axum::Router;
use keycard::front_desk::StartError;
use keycard::{Config, FrontDesk};
use keycard_app::{shell, App};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;

/// Largest request body accepted, in bytes: forms here are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub options: LeptosOptions,
    pub desk: FrontDesk,
    pub config: Arc<Config>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.options.clone()
    }
}

/// Leptos settings derived from the configuration. `LEPTOS_SITE_ROOT` (set by cargo-leptos) says
/// where the compiled assets are; the default suits a run from the repository root.
pub fn leptos_options(config: &Config) -> LeptosOptions {
    let site_root = std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into());
    let reload_port =
        std::env::var("LEPTOS_RELOAD_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3001);
    LeptosOptions::builder()
        .output_name("keycard")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .reload_port(reload_port)
        .build()
}

/// Opens the front desk described by `config` and builds the application around it.
pub async fn build(config: Config) -> Result<(Router, FrontDesk), StartError> {
    let desk = FrontDesk::open(&config).await?;
    let options = leptos_options(&config);
    Ok((router(config, desk.clone(), options), desk))
}

/// The application's routes and middleware around an existing front desk.
pub fn router(config: Config, desk: FrontDesk, options: LeptosOptions) -> Router {
    let state = AppState { options: options.clone(), desk: desk.clone(), config: Arc::new(config) };
    let routes = generate_route_list(App);
    let pages = Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            {
                let desk = desk.clone();
                move || provide_context(desk.clone())
            },
            {
                let options = options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(
            {
                let desk = desk.clone();
                move || provide_context(desk.clone())
            },
            shell,
        ));
    let app = Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/.well-known/jwks.json", get(routes::jwks))
        .route("/amenities/{name}", get(routes::amenity))
        .route("/api/{*path}", any(routes::api_not_found))
        .merge(pages);
    middleware::apply(app, &state).with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Runs periodic upkeep (key ring reload, rate-limit trimming) until the process ends.
pub fn spawn_housekeeping(desk: FrontDesk, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            desk.housekeeping();
        }
    })
}
