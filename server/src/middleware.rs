//! The layers around every route: request tracing, security headers, the body size limit, the
//! cross-origin check for state-changing requests, and the client's address for rate limits.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::Method;
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::Response;
use axum::Router;
use keycard::front_desk::ClientInfo;
use keycard_app::api::{ApiError, ErrorCode};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::routes::api_error;
use crate::{AppState, MAX_BODY_BYTES};

/// Wraps `router` in the middleware stack (the last layer added runs first).
pub fn apply(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(from_fn_with_state(state.clone(), client_info))
        .layer(from_fn(crate::routes::typed_errors))
        .layer(from_fn_with_state(state.clone(), same_origin_only))
        .layer(from_fn(limit_body))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "same-origin"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(HeaderName::from_static("cross-origin-opener-policy"), "same-origin"))
        // Pages set their own policy with a per-response nonce; everything else gets this one.
        .layer(header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
        .layer(TraceLayer::new_for_http())
}

/// Records where the request came from for the front desk's rate limits and bookings list.
async fn client_info(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let forwarded = state
        .config
        .trust_forwarded_for
        .then(|| {
            req.headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|first| first.trim().parse::<IpAddr>().ok())
        })
        .flatten();
    let user_agent =
        req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    req.extensions_mut().insert(ClientInfo { address: forwarded.or(peer), user_agent });
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
        return api_error(ApiError::new(
            ErrorCode::ForbiddenOrigin,
            "state-changing requests must come from this site",
        ));
    }
    next.run(req).await
}

/// Answers 413 to bodies over [`MAX_BODY_BYTES`], declared or streamed.
async fn limit_body(req: Request, next: Next) -> Response {
    let too_large = || {
        api_error(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
        ))
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
