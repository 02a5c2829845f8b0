//! The room door checked before a page's render, so the render finds its answer ready
//! ([`keycard_app::guard::CheckedAhead`] says why).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use keycard_app::guard::CheckedAhead;

use crate::AppState;

/// On the page routes only (a `route_layer`: the bundle's files, which a browser also sends the
/// key card cookie with, are not checked; the server functions Leptos routes beside the pages
/// are passed over by [`CheckedAhead::check`]): a page load with the key card cookie has the
/// room door checked here, and the answer, refusal included, travels in its extensions.
pub(crate) async fn door_ahead(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    if let Some(ahead) = CheckedAhead::check(&state.desk, &parts).await {
        parts.extensions.insert(ahead);
    }
    next.run(Request::from_parts(parts, body)).await
}
