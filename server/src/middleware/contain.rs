//! Containment: a panic or an overrun anywhere below becomes an answer.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use futures_util::FutureExt;
use keycard_app::api::{ApiError, ErrorCode};

use super::wants_html;
use crate::assets::Bundle;

/// Every request gets an answer within `limit`: a panic anywhere below (a handler, a server
/// function, the render of a page) becomes a generic 500, and a request still unanswered after
/// `limit` (a stuck database, a body trickled in byte by byte) a 503. Browsers get a page, API
/// clients the usual JSON error. The panic itself is logged once, by the panic hook
/// (`telemetry::init`), inside this request's span: route, never query string.
pub(super) async fn contain(
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
