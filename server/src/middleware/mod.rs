//! The layers around every route, one file each, and the stack they form ([`apply`]), from the
//! outside in:
//!
//! | layer | file | what it does |
//! |---|---|---|
//! | request isolation | `isolation.rs` | every request runs with a reactive owner of its own |
//! | tracing | here | one span a request: method and path, never the query string |
//! | compression | `compression.rs` | pages and JSON in brotli or gzip, never credentials |
//! | metrics | `../metrics.rs` | each request timed by route template (with `KEYCARD_METRICS_ADDR`) |
//! | containment | `contain.rs` | a panic or an overrun below becomes a 500 or 503 answer |
//! | security headers | here | CSP (pages: `page_policy.rs`), HSTS, and the rest |
//! | the wire (demo) | `wire.rs` | each `/api` exchange described for the learner's panel |
//! | body limit | `limit_body.rs` | 413 over [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES) |
//! | same origin | `same_origin.rs` | 403 to cross-origin state-changing requests |
//! | typed errors | `typed_errors.rs` | a server function's error gets its status code |
//! | client info | `client_info.rs` | the client's address and user agent for the front desk |
//!
//! The pages router has two more of its own: `cache_policy.rs` (how long caches keep pages and
//! files) and, on the page routes alone, `door_ahead.rs` (the room door checked before a render).

mod cache_policy;
mod client_info;
mod compression;
mod contain;
mod door_ahead;
pub mod isolation;
mod limit_body;
mod page_policy;
mod same_origin;
mod typed_errors;
#[cfg(feature = "demo")]
mod wire;

pub(crate) use cache_policy::cache_policy;
pub(crate) use door_ahead::door_ahead;
pub use page_policy::page_nonce;

use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use axum::Router;
use keycard::config::Mode;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;

/// Browser features the app never uses, switched off for the page and anything it embeds.
pub const PERMISSIONS_POLICY: &str = "accelerometer=(), autoplay=(), camera=(), \
    display-capture=(), encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), \
    magnetometer=(), microphone=(), midi=(), payment=(), picture-in-picture=(), \
    publickey-credentials-get=(), screen-wake-lock=(), usb=(), xr-spatial-tracking=()";

/// Wraps `router` in the middleware stack (the last layer added runs first).
pub fn apply(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let header =
        |name: HeaderName, value: HeaderValue| SetResponseHeaderLayer::if_not_present(name, value);
    // Sent only in production: development serves plain HTTP on 127.0.0.1, and a policy pinned
    // to localhost would follow the developer to every other local project.
    let hsts = (state.config.mode == Mode::Production).then(|| {
        let value = format!("max-age={}", state.config.hsts_max_age.as_secs());
        HeaderValue::from_str(&value).expect("digits are a valid header value")
    });
    let timeout = state.config.limits.request_timeout;
    let router = router
        .layer(from_fn_with_state(state.clone(), client_info::client_info))
        .layer(from_fn_with_state(state.clone(), typed_errors::typed_errors))
        .layer(from_fn_with_state(state.clone(), same_origin::same_origin_only))
        .layer(from_fn(limit_body::limit_body));
    // The learner's wire panel (demo only): outside the error layers, so that refusals (401, 403,
    // 413, 429) are described as they leave, cookies cleared with them included.
    #[cfg(feature = "demo")]
    let router = router.layer(from_fn_with_state(state.clone(), wire::describe_wire));
    router
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(header(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(header(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(header(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(header(
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(PERMISSIONS_POLICY),
        ))
        .layer(tower::util::option_layer(
            hsts.map(|value| header(header::STRICT_TRANSPORT_SECURITY, value)),
        ))
        .layer(from_fn_with_state(state.clone(), page_policy::page_policy))
        // Pages get their own policy with a per-response nonce; everything else gets this one.
        .layer(header(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(from_fn_with_state((timeout, state.bundle.clone()), contain::contain))
        // Outside containment, so a request it cut short is timed with the answer it got.
        .layer(tower::util::option_layer(
            state.config.operations.metrics_addr.map(|_| from_fn(crate::metrics::time_requests)),
        ))
        .layer(from_fn(compression::mark_credentials))
        .layer(compression::layer())
        // The span names the route but never the query string, which may carry anything.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
        }))
}

/// Whether `res` is a page.
fn answers_html(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// Whether the client is a browser asking for a page (rather than an API client or `fetch`).
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}
