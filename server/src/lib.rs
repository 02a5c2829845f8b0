//! # keycard-server
//!
//! Wires the Keycard application together: configuration, the database and key ring (through the
//! `keycard` core's [`FrontDesk`]), the Leptos pages and server functions, the resource server
//! (`/amenities`), the JWKS, and the middleware around them.
//!
//! [`build`] returns the whole application as an axum [`Router`] and [`serve`] runs it with the
//! configured timeouts and connection cap; `main` and the integration tests both call them, so
//! tests exercise exactly what runs in production.

pub mod assets;
#[doc(hidden)]
pub mod doc_support;
pub mod health;
pub mod metrics;
mod middleware;
pub mod oauth;
mod routes;
pub mod telemetry;

pub use middleware::isolation;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRef, Request};
use axum::handler::HandlerWithoutStateExt;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use keycard::config::ServerLimits;
use keycard::front_desk::StartError;
use keycard::{Config, FrontDesk};
use keycard_app::bootstrap::BundleFiles;
use keycard_app::redirect::SiteOrigin;
use keycard_app::{shell, App, StylesheetHref};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tower::ServiceExt;

/// docs/make-it-yours.md: every recipe's Rust code is compiled and run as a doc test from here.
#[cfg(doctest)]
#[doc = include_str!("../../docs/make-it-yours.md")]
pub struct MakeItYours;

// The allocator of every binary built on this crate (the server, its load examples and tests).
// glibc's malloc made the server's threads queue on its arena locks: sqlx runs each SQLite
// connection on a thread of its own, so much memory is freed on another thread than the one that
// allocated it (perf: malloc, free and their locks were a third of a checked-in page's samples).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Largest request body accepted, in bytes: forms here are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Shared state of every handler: a handle to [`Shared`], which it derefs to.
///
/// A handle because axum clones the state for every request at every layer that takes it, and
/// `LeptosOptions` alone is a dozen reference counts: cloning those took about 5 % of the
/// server's CPU under a load of refreshes (perf).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What every handler shares (through [`AppState`]).
pub struct Shared {
    /// Leptos' settings (site root, bundle names).
    pub options: LeptosOptions,
    /// The front desk.
    pub desk: FrontDesk,
    /// The configuration it was built from.
    pub config: Arc<Config>,
    /// The browser bundle's file names (hashed in a cargo-leptos build with `hash-files`).
    pub bundle: Arc<assets::Bundle>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What the guards (`keycard_app::guard`) take their front desk from.
impl FromRef<AppState> for FrontDesk {
    fn from_ref(state: &AppState) -> Self {
        state.desk.clone()
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.options.clone()
    }
}

/// Leptos settings derived from the configuration. `LEPTOS_SITE_ROOT` (set by cargo-leptos) says
/// where the compiled assets are; the default suits a run from the repository root. The bundle's
/// names carry hashes when cargo-leptos left its `hash.txt` beside this executable (see
/// [`assets`]): copy that file along with the executable and `site/` when deploying.
pub fn leptos_options(config: &Config) -> LeptosOptions {
    let site_root = std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into());
    let reload_port =
        std::env::var("LEPTOS_RELOAD_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3001);
    let hash_file = std::env::var("LEPTOS_HASH_FILE_NAME").unwrap_or_else(|_| "hash.txt".into());
    let hashed = assets::Bundle::hash_file_path(&hash_file).is_some_and(|path| path.exists());
    LeptosOptions::builder()
        .output_name("keycard")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .reload_port(reload_port)
        .hash_file(hash_file.into())
        .hash_files(hashed)
        .build()
}

/// The bundle's names as `options` (from [`leptos_options`]) serve them.
///
/// # Panics
/// When the hash file or the split manifest exists but cannot be read: the pages could not link
/// their scripts.
fn bundle(options: &LeptosOptions) -> assets::Bundle {
    let (pkg, name) = (&*options.site_pkg_dir, &*options.output_name);
    if !options.hash_files {
        return assets::Bundle::unhashed(pkg, name);
    }
    let path = assets::Bundle::hash_file_path(&options.hash_file);
    let site_root = std::path::Path::new(&*options.site_root);
    let bundle = assets::Bundle::load(path.as_deref(), site_root, pkg, name)
        .unwrap_or_else(|e| panic!("cannot read the bundle's hash file {path:?} or manifest: {e}"));
    if !bundle.is_split() {
        tracing::warn!(
            "the browser bundle was built without `--split`: the checked-in pages will not \
             hydrate; build with `cargo leptos build --split` (scripts/run and scripts/test do)"
        );
    }
    // A hash file from another build (debug and release each write their own, into one site
    // folder) names files that are not there: every page would load without scripts or style.
    for missing in bundle.missing_from(site_root) {
        tracing::warn!(
            file = %missing,
            "the bundle's hash file names a file the site folder lacks: rebuild with cargo leptos"
        );
    }
    bundle
}

/// Opens the front desk described by `config` and builds the application around it.
pub async fn build(config: Config) -> Result<(Router, FrontDesk), StartError> {
    build_with(config, Router::new()).await
}

/// [`build`], with routes of your own beside Keycard's (behind the same middleware). Their
/// handlers can take the guards `keycard_app::guard::KeyCard` and `CheckedIn`, and
/// `State<AppState>`; docs/make-it-yours.md shows how.
pub async fn build_with(
    config: Config,
    routes: Router<AppState>,
) -> Result<(Router, FrontDesk), StartError> {
    let desk = FrontDesk::open(&config).await?;
    let options = leptos_options(&config);
    Ok((router_with(config, desk.clone(), options, routes), desk))
}

/// The pages' routes, listed once per process and kept.
///
/// Why once: Leptos lists them by running the whole app with every resource held back, and it
/// holds them back through a flag that is global to the process (leptos-rs/leptos#4773). A
/// resource whose first poll lands while the flag is up, in any render on any thread, waits for
/// ever: its page answered `503` after the request timeout. One server builds one router, but a
/// process that builds a second one while the first serves (several instances in one process,
/// as the load runs and tests do) stalled pages of the first. Listed once, the flag is raised once,
/// before any router exists, so no render can meet it. docs/upstream/route-list-stalls-renders.md
/// has the whole story.
fn page_routes() -> Vec<leptos_axum::AxumRouteListing> {
    static LISTED: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    LISTED.get_or_init(|| generate_route_list(App)).clone()
}

/// The application's routes and middleware around an existing front desk.
pub fn router(config: Config, desk: FrontDesk, options: LeptosOptions) -> Router {
    router_with(config, desk, options, Router::new())
}

/// [`router`], with `routes` of your own merged in before the middleware.
///
/// # Panics
/// When cargo-leptos' hash file beside the executable exists but cannot be read (see [`assets`]).
pub fn router_with(
    config: Config,
    desk: FrontDesk,
    options: LeptosOptions,
    routes: Router<AppState>,
) -> Router {
    let bundle = Arc::new(bundle(&options));
    let state = AppState(Arc::new(Shared {
        options: options.clone(),
        desk: desk.clone(),
        config: Arc::new(config),
        bundle,
    }));
    let pages_listed = page_routes();
    let context = {
        let desk = desk.clone();
        let origin = SiteOrigin(state.config.public_url.clone());
        let stylesheet = StylesheetHref(state.bundle.stylesheet().into());
        let files =
            BundleFiles { script: state.bundle.script().into(), wasm: state.bundle.wasm().into() };
        move || {
            provide_context(desk.clone());
            provide_context(origin.clone());
            provide_context(stylesheet.clone());
            provide_context(files.clone());
            // The nonce the middleware puts in this page's Content-Security-Policy.
            if let Some(nonce) = middleware::page_nonce() {
                provide_context(nonce);
            }
        }
    };
    let pages = Router::new()
        .leptos_routes_with_context(&state, pages_listed, context.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), middleware::door_ahead))
        // The bundle, by a file server of its own: leptos_axum's fallback below passes only
        // `Accept-Encoding` on, so a browser revalidating a file (`If-Modified-Since`) would
        // get it all again, and a `HEAD` or `Range` request the whole body.
        .nest_service(
            &format!("/{}", options.site_pkg_dir),
            tower_http::services::ServeDir::new(format!(
                "{}/{}",
                options.site_root, options.site_pkg_dir
            ))
            .precompressed_br()
            .precompressed_gzip(),
        )
        // Files of the site folder (the favicon) by a plain file server too: leptos_axum's
        // fallback runs them through a reactive owner and the page context, which nothing in a
        // file needs. What is neither a page nor a file is rendered: the 404 page.
        .fallback_service(
            tower_http::services::ServeDir::new(&*options.site_root)
                .append_index_html_on_directories(false)
                .call_fallback_on_method_not_allowed(true)
                .fallback(not_found(context, options.clone()).into_service()),
        )
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::cache_policy));
    let app = Router::new()
        .route("/healthz", get(health::ready))
        .route("/healthz/live", get(health::live))
        .route("/healthz/ready", get(health::ready))
        .route("/api/openapi.json", get(routes::openapi))
        .route("/.well-known/jwks.json", get(routes::jwks))
        .route("/amenities/{name}", get(routes::amenity))
        .route("/oauth/device_authorization", post(oauth::device_authorization))
        .route("/oauth/token", post(oauth::token))
        .route("/api/{*path}", any(routes::api_not_found))
        .merge(routes)
        .merge(pages);
    middleware::apply(app, &state).with_state(state).layer(middleware::isolation::OwnerScopeLayer)
}

/// The answer to a request no route or file answers: the app rendered for its path (the 404
/// page, or a page's own answer to a method it does not serve), `404` unless the render chose
/// another status (a redirect).
fn not_found(
    context: impl Fn() + Clone + Send + Sync + 'static,
    options: LeptosOptions,
) -> impl Fn(Request) -> Pin<Box<dyn Future<Output = Response> + Send>> + Clone + Send + Sync {
    let render =
        leptos_axum::render_app_async_with_context(context, move || shell(options.clone()));
    move |req| {
        let render = render.clone();
        Box::pin(async move {
            let mut res = render(req).await;
            if res.status() == StatusCode::OK {
                *res.status_mut() = StatusCode::NOT_FOUND;
            }
            res
        })
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests finish
/// for at most `limits.shutdown_grace`: connections still busy after that are abandoned (and
/// counted in a warning), so the caller can exit whatever a request is stuck on.
///
/// Slow and stuck clients cannot exhaust it: a connection that does not deliver a whole request
/// head within `limits.header_read_timeout` (after opening, or idle after an answer) is closed,
/// whether it sends nothing or trickles a byte at a time; at most `limits.max_connections` are
/// served at once, further ones wait in the listen queue. (The whole-request timeout is a layer
/// of the router: see `middleware`.)
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment instead of spinning, and go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req.map(Body::new))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Errors here are the client's (reset, timed out, malformed): nothing to report.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    // Idle keep-alive connections close at once; busy ones finish their request first.
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        let abandoned = limits.max_connections - slots.available_permits();
        tracing::warn!(
            abandoned,
            grace_secs = limits.shutdown_grace.as_secs(),
            "requests still in flight when the shutdown grace ran out: abandoned"
        );
    }
    Ok(())
}

/// Runs periodic upkeep (key ring reload, rate-limit trimming, the roll call of instances) until
/// the process ends.
pub fn spawn_housekeeping(desk: FrontDesk, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            desk.housekeeping().await;
        }
    })
}
