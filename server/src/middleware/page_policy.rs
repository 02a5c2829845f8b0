//! Every page's Content-Security-Policy, with a nonce of its own.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::answers_html;
use crate::AppState;

/// Gives every page its Content-Security-Policy. Each request gets a fresh nonce in its extensions,
/// which the server's Leptos context hands to the page's scripts ([`page_nonce`]); an HTML answer
/// then gets the policy naming that nonce. Setting the header here, rather than from inside the
/// render through Leptos' `ResponseOptions`, leaves no page without its policy: about one page in
/// a hundred used to lose it under the end-to-end suite (cause inside leptos_axum not found),
/// and the fallback `default-src 'none'` then blocked its scripts and styles.
pub(super) async fn page_policy(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
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

/// The nonce [`page_policy`] chose for this request, for the page's context (the server's Leptos
/// context function provides it, replacing the one leptos_axum made up).
pub fn page_nonce() -> Option<leptos::nonce::Nonce> {
    use leptos::prelude::use_context;
    use_context::<axum::http::request::Parts>()?.extensions.get::<leptos::nonce::Nonce>().cloned()
}
