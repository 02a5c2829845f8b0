//! The layers around every route: request tracing, containment (a panic or an overrun becomes an
//! answer), security headers, the body size limit, the cross-origin check for state-changing
//! requests, and the client's address for rate limits.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use futures_util::FutureExt;
use keycard::config::Mode;
use keycard::front_desk::ClientInfo;
use keycard_app::api::{ApiError, ErrorCode};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::assets::{self, Bundle};
use crate::{AppState, MAX_BODY_BYTES};

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
        .layer(from_fn_with_state(state.clone(), client_info))
        .layer(from_fn_with_state(state.clone(), crate::routes::typed_errors))
        .layer(from_fn_with_state(state.clone(), same_origin_only))
        .layer(from_fn(limit_body));
    // The learner's wire panel (demo only): outside the error layers, so that refusals (401, 403,
    // 413, 429) are described as they leave, cookies cleared with them included.
    #[cfg(feature = "demo")]
    let router = router.layer(from_fn_with_state(state.clone(), describe_wire));
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
        .layer(from_fn_with_state(state.clone(), page_policy))
        // Pages get their own policy with a per-response nonce; everything else gets this one.
        .layer(header(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(from_fn_with_state((timeout, state.bundle.clone()), contain))
        // The span names the route but never the query string, which may carry anything.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
        }))
}

/// Gives every page its Content-Security-Policy. Each request gets a fresh nonce in its extensions,
/// which the server's Leptos context hands to the page's scripts ([`page_nonce`]); an HTML answer
/// then gets the policy naming that nonce. Setting the header here, rather than from inside the
/// render through Leptos' `ResponseOptions`, leaves no page without its policy: about one page in
/// a hundred used to lose it under the end-to-end suite (cause inside leptos_axum not found),
/// and the fallback `default-src 'none'` then blocked its scripts and styles.
async fn page_policy(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    // Whatever the method: the fallback renders a page for a POST to a page's path too.
    let nonce = leptos::nonce::Nonce::new();
    req.extensions_mut().insert(nonce.clone());
    let mut res = next.run(req).await;
    let html = answers_html(&res);
    if html {
        let policy = keycard_app::content_security_policy(&nonce, &state.options);
        if let Ok(value) = HeaderValue::from_str(&policy) {
            res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    res
}

/// How long caches may keep what the pages router answers (pages and the bundle's files; see
/// [`crate::assets`]). An answer that already says (a guard's `no-store`) keeps its own, and the
/// server functions under `/api` get theirs from `typed_errors`.
pub(crate) async fn cache_policy(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    if path.starts_with("/api/") || res.headers().contains_key(header::CACHE_CONTROL) {
        return res;
    }
    let html = answers_html(&res);
    let file = matches!(
        res.status(),
        StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED
    );
    let policy = if html {
        assets::PAGE
    } else if file {
        state.bundle.cache_control(&path)
    } else {
        // A missing file (a 404 from the file server): during a rolling deploy a new name can
        // reach an instance that does not have it yet, and a cache must not remember it missing.
        HeaderValue::from_static("no-store")
    };
    res.headers_mut().insert(header::CACHE_CONTROL, policy);
    // A file may come as its brotli or gzip copy: a shared cache must keep those apart.
    if file && !html && !res.headers().contains_key(header::VARY) {
        res.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    res
}

/// The nonce [`page_policy`] chose for this request, for the page's context (the server's Leptos
/// context function provides it, replacing the one leptos_axum made up).
pub fn page_nonce() -> Option<leptos::nonce::Nonce> {
    use leptos::prelude::use_context;
    use_context::<axum::http::request::Parts>()?.extensions.get::<leptos::nonce::Nonce>().cloned()
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

/// Every request gets an answer within `limit`: a panic anywhere below (a handler, a server
/// function, the render of a page) becomes a generic 500, and a request still unanswered after
/// `limit` (a stuck database, a body trickled in byte by byte) a 503. Browsers get a page, API
/// clients the usual JSON error. The panic itself is logged once, by the panic hook
/// (`telemetry::init`), inside this request's span: route, never query string.
async fn contain(
    State((limit, bundle)): State<(Duration, Arc<Bundle>)>,
    req: Request,
    next: Next,
) -> Response {
    let html = wants_html(req.headers());
    let answer = AssertUnwindSafe(next.run(req)).catch_unwind();
    let (status, error) = match tokio::time::timeout(limit, answer).await {
        Ok(Ok(res)) => return res,
        Ok(Err(_panic)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::new(ErrorCode::Internal, "something went wrong"),
        ),
        Err(_elapsed) => {
            tracing::warn!(limit_secs = limit.as_secs(), "request timed out");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                ApiError::new(ErrorCode::Timeout, "the request took too long; try again"),
            )
        }
    };
    if !html {
        return error.into_response();
    }
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Keycard: {status}</title><link rel=\"stylesheet\" href=\"{css}\"></head>\
         <body><main id=\"main\"><section class=\"card notice bad\" role=\"alert\">\
         <h1>{}</h1><p>Nothing was changed. <a href=\"/\">Back to the lobby</a></p>\
         </section></main></body></html>",
        error.message,
        status = status.as_u16(),
        css = bundle.stylesheet(),
    );
    let mut res = (status, Html(page)).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; frame-ancestors 'none'"),
    );
    res
}

/// While the demo controls are on, describes each `/api` exchange for the page's wire panel
/// (`keycard_app::wire`): the cookie names the browser sent, its `Origin`, and every `Set-Cookie`
/// with its attributes, never a value.
#[cfg(feature = "demo")]
async fn describe_wire(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.desk.policy().demo_controls || !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let sent = req.headers().clone();
    let mut res = next.run(req).await;
    if let Some(note) = keycard_app::wire::describe(&sent, res.headers()) {
        res.headers_mut().insert(keycard_app::wire::WIRE_HEADER, note);
    }
    res
}

/// Records where the request came from for the front desk's rate limits and bookings list: the
/// peer, or, when the peer is a trusted proxy, the rightmost `X-Forwarded-For` address that is
/// not one (`keycard::proxies`).
async fn client_info(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let address = peer.map(|peer| {
        let forwarded = req.headers().get_all("x-forwarded-for").iter();
        let forwarded = forwarded.filter_map(|v| v.to_str().ok());
        state.config.trusted_proxies.client_address(peer, forwarded)
    });
    let user_agent =
        req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    req.extensions_mut().insert(ClientInfo { address, user_agent });
    next.run(req).await
}

/// Refuses state-changing requests from other origins (403), on top of the cookies' SameSite.
/// Browsers send `Origin` (and `Sec-Fetch-Site`) on every POST; clients that send neither, like
/// curl, carry no ambient cookies a forged request could ride on.
async fn same_origin_only(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let cross_site = fetch_site.is_some_and(|s| !matches!(s, "same-origin" | "none"));
    let origin_ok = match headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or("null")) {
        None => true,
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            let authority = origin.split_once("://").map(|(_, rest)| rest);
            origin != "null"
                && (authority.is_some() && authority == host
                    || state.config.allowed_origins.iter().any(|o| o == origin))
        }
    };
    if cross_site || !origin_ok {
        return ApiError::new(
            ErrorCode::ForbiddenOrigin,
            "state-changing requests must come from this site",
        )
        .into_response();
    }
    next.run(req).await
}

/// Answers 413 to bodies over [`MAX_BODY_BYTES`], declared or streamed.
async fn limit_body(req: Request, next: Next) -> Response {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
        )
        .into_response()
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(_) => too_large(),
    }
}
