//! Server functions' typed errors given their status codes, and the no-JavaScript forms sent
//! back to their page.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, REFERER, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keycard_app::api::{ApiError, ErrorCode};
use keycard_app::redirect::{local_target, request_origin};
use leptos::server_fn::error::SERVER_FN_ERROR_HEADER;

use super::wants_html;
use crate::AppState;

/// Gives a server function's typed error the status its code calls for (the server function
/// layer itself answers every error with 500). A plain HTML form post that fails (a form used
/// before hydration) is sent back to its page with `?error=<code>` instead; one that succeeds is
/// sent back by leptos_axum to its `Referer`. Both targets go through
/// [`keycard_app::redirect::local_target`], so neither can leave the site.
pub(super) async fn typed_errors(
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
    let form_post = back_to.is_some();
    let res = next.run(req).await;
    let mut res = if res.headers().contains_key(SERVER_FN_ERROR_HEADER) {
        typed_error(res, back_to).await
    } else {
        res
    };
    // leptos_axum sends a successful form post back to its Referer, then applies the status
    // the server function chose (201 for a registration): a browser follows no Location on a
    // 201, and would show the JSON instead of the page. A form answered with a place to go gets
    // a 303, which every browser follows with a GET.
    if form_post && res.status().is_success() && res.headers().contains_key(LOCATION) {
        *res.status_mut() = StatusCode::SEE_OTHER;
    }
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
