//! The HTTP handlers that are not Leptos pages: the JWKS, the resource server and the API
//! description (health checks: `health.rs`).

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keycard::key_card;
use keycard_app::api::{ApiError, ErrorCode};
use keycard_app::guard::KeyCard;
use serde::Serialize;

use crate::AppState;

/// `GET /.well-known/jwks.json`: the public keys (published ahead, current, previous).
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut res = Json(state.desk.jwks()).into_response();
    // Short, so a rotation reaches resource servers soon; a new key is published for longer
    // than this before it signs (KEYCARD_KEY_PUBLISH_AHEAD_SECS).
    let max_age = format!("public, max-age={}", state.config.operations.jwks_max_age.as_secs());
    let value = HeaderValue::from_str(&max_age).expect("digits are a valid header value");
    res.headers_mut().insert(CACHE_CONTROL, value);
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
/// file, and held to the running server by `tests/it/openapi.rs` and the Schemathesis run).
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
            serde_json::from_str(OPENAPI).expect("openapi.json is JSON (tests/it/openapi.rs)");
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
