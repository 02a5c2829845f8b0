//! The learner's wire panel (demo only): each `/api` exchange described, never a value.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// While the demo controls are on, describes each `/api` exchange for the page's wire panel
/// (`keycard_app::wire`): the cookie names the browser sent, its `Origin`, and every `Set-Cookie`
/// with its attributes, never a value.
pub(super) async fn describe_wire(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
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
