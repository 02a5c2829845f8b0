//! The HTTP handlers that are not Leptos pages: health, the JWKS, the resource server, and the
//! door in front of the server functions that turns their typed errors into status codes.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, REFERER, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keycard::key_card;
use keycard_app::api::{ApiError, ErrorCode};
use keycard_app::guard::KeyCard;
use keycard_app::redirect::{local_target, request_origin};
use leptos::server_fn::error::SERVER_FN_ERROR_HEADER;
use serde::Serialize;

use crate::middleware::wants_html;
use crate::AppState;

/// `GET /healthz`: 200 when the database answers, 503 otherwise.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.desk.ping().await {
        Ok(()) => Json(serde_json::json!({ "status": "ok" })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "unavailable" })))
                .into_response()
        }
    }
}

/// `GET /.well-known/jwks.json`: the public keys (current and previous).
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut res = Json(state.desk.jwks()).into_response();
    // Short, so a rotation reaches resource servers within a minute.
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    res
}

/// The amenities the resource server guards.
const AMENITIES: [(&str, &str); 2] = [
    ("gym", "The gym is open. Mind the rowing machine."),
    ("pool", "The pool is open. Towels are by the door."),
];

/// What the resource server answers to a valid key card.
#[derive(Serialize)]
struct AmenityPass {
    amenity: &'static str,
    message: &'static str,
    guest: String,
    sub: String,
    session_id: String,
    kid: Option<String>,
    expires_at: i64,
    /// How the key card was checked: always the public keys alone.
    verified_with: &'static str,
}

/// `GET /amenities/{name}`: an amenity door. Its guard ([`KeyCard`]) checks key cards with the
/// public keys alone: no database, no front desk. So a revoked booking's key card still opens
/// the gym until it expires. (`resource-server/` is the same door as a separate service that
/// knows only the JWKS URL.)
pub async fn amenity(Path(name): Path<String>, card: Result<KeyCard, ApiError>) -> Response {
    // An unknown amenity is 404 whoever asks.
    let Some((amenity, message)) = AMENITIES.into_iter().find(|(a, _)| *a == name) else {
        return ApiError::new(ErrorCode::NotFound, "the hotel has no such amenity").into_response();
    };
    let KeyCard { holder, token } = match card {
        Ok(card) => card,
        Err(refused) => return refused.into_response(),
    };
    let claims = holder.into_claims();
    let mut res = Json(AmenityPass {
        amenity,
        message,
        guest: claims.preferred_username,
        sub: claims.sub,
        session_id: claims.sid,
        kid: key_card::kid(&token),
        expires_at: claims.exp,
        verified_with: "the hotel's public keys (JWKS) only: no database, no front desk",
    })
    .into_response();
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Any `/api` path no server function answers: a JSON 404 rather than an HTML page.
pub async fn api_not_found() -> Response {
    ApiError::new(ErrorCode::NotFound, "no such endpoint").into_response()
}

/// `GET /api/openapi.json`: the OpenAPI 3.1 description of this API (written by hand beside this
/// file, and held to the running server by `tests/openapi.rs` and the Schemathesis run).
pub async fn openapi() -> Response {
    let mut res = ([(CONTENT_TYPE, "application/json")], description()).into_response();
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// The description as written, demo operations included.
const OPENAPI: &str = include_str!("../openapi.json");

/// The description of this build: without the `demo` feature, without the demo's operations
/// (they are not compiled in, so they answer 404).
fn description() -> &'static str {
    if cfg!(feature = "demo") {
        return OPENAPI;
    }
    static WITHOUT_DEMO: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    WITHOUT_DEMO.get_or_init(|| {
        let mut doc: serde_json::Value =
            serde_json::from_str(OPENAPI).expect("openapi.json is JSON (tests/openapi.rs)");
        if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
            // The demo's operations are the ones tagged `demo` (the forge lab sits under
            // /api/auth so that the booking confirmation reaches it).
            paths.retain(|_, item| !is_demo(item));
        }
        doc.to_string()
    })
}

/// Whether every operation of a path item is tagged `demo`.
fn is_demo(item: &serde_json::Value) -> bool {
    item.as_object().is_some_and(|ops| {
        ops.values()
            .all(|op| op["tags"].as_array().is_some_and(|tags| tags.iter().any(|t| t == "demo")))
    })
}

/// Gives a server function's typed error the status its code calls for (the server function
/// layer itself answers every error with 500). A plain HTML form post that fails (a form used
/// before hydration) is sent back to its page with `?error=<code>` instead; one that succeeds is
/// sent back by leptos_axum to its `Referer`. Both targets go through
/// [`keycard_app::redirect::local_target`], so neither can leave the site.
pub(crate) async fn typed_errors(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let origin = &request_origin(&state.config.public_url, req.headers());
    let back_to = wants_html(req.headers())
        .then(|| local_target(req.headers().get(REFERER)?.to_str().ok()?, origin))
        .flatten();
    let res = next.run(req).await;
    let mut res = if res.headers().contains_key(SERVER_FN_ERROR_HEADER) {
        typed_error(res, back_to).await
    } else {
        res
    };
    if let Some(location) = res.headers().get(LOCATION) {
        let local = location.to_str().ok().and_then(|l| local_target(l, origin));
        let value = HeaderValue::from_str(local.as_deref().unwrap_or("/"))
            .expect("a local target is a valid header value");
        res.headers_mut().insert(LOCATION, value);
    }
    // Answers here carry key cards and personal data: never cache them.
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn typed_error(res: Response, back_to: Option<String>) -> Response {
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let err: ApiError = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| ApiError::new(ErrorCode::Internal, "something went wrong"));
    let mut out = match back_to {
        Some(page) => {
            // Keep the page's other parameters (such as `next`) as they were, replace any earlier
            // error. The target is normalised already: no control characters, nothing to escape.
            let page = page.split('#').next().unwrap_or_default();
            let (path, query) = page.split_once('?').unwrap_or((page, ""));
            let error = format!("error={}", err.error.name());
            let query: Vec<&str> = query
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("error="))
                .chain([error.as_str()])
                .collect();
            let location = format!("{path}?{}", query.join("&"));
            let mut res = Response::new(Body::empty());
            *res.status_mut() = StatusCode::SEE_OTHER;
            res.headers_mut().insert(
                LOCATION,
                HeaderValue::from_str(&location).expect("a local target is a valid header value"),
            );
            res
        }
        None => err.into_response(),
    };
    // Cookies the server function set (e.g. cleared after a refused refresh) still apply.
    for cookie in parts.headers.get_all(SET_COOKIE) {
        out.headers_mut().append(SET_COOKIE, cookie.clone());
    }
    out
}
