//! Cross-origin state-changing requests refused, on top of the cookies' `SameSite`.

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keycard_app::api::{ApiError, ErrorCode};

use crate::AppState;

/// Refuses state-changing requests from other origins (403), on top of the cookies' SameSite.
/// Browsers send `Origin` (and `Sec-Fetch-Site`) on every POST; clients that send neither, like
/// curl, carry no ambient cookies a forged request could ride on.
pub(super) async fn same_origin_only(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
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
