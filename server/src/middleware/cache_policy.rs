//! How long caches may keep pages and the bundle's files.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::answers_html;
use crate::assets;
use crate::AppState;

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
