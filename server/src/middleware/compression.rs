//! Compression of dynamic answers: pages and JSON in brotli or gzip, whichever the client
//! prefers, by tower-http's `CompressionLayer` (brotli at quality 4, as nginx compresses on the
//! fly). The bundle's files come precompressed from the file server and pass untouched: they
//! already carry `Content-Encoding`.
//!
//! ## What is never compressed
//! Answers that hand out credentials: key cards, booking confirmations, device codes (the front
//! desk under `/api/auth/`, the demo's thief under `/api/demo/`, the OAuth endpoints under
//! `/oauth/`, and anything that sets a cookie), and a page that echoes the request beside one. A compressed answer's length depends on how much
//! of it repeats; when an answer holds a secret beside text an attacker chose, the attacker can
//! guess the secret a character at a time by watching lengths (BREACH). Those answers are a few
//! hundred bytes: compressing them saves nothing worth that risk.
//!
//! Pages are compressed although every page rendered for a guest carries the guest's key card
//! (the room shows it; the others hand it to the browser's auth context): those pages echo
//! nothing of the request (its path, its query string), the only text a cross-site attacker can
//! choose. The one that does, `/device` (it shows the code it is given, as RFC 8628's
//! `verification_uri_complete` asks), is not compressed;
//! `http::a_page_that_holds_a_key_card_and_echoes_the_request_is_not_compressed` keeps it so.
//!
//! Nor are answers under [`MIN_BYTES`] (the headers would outweigh the saving), images, event
//! streams (which must reach the browser as they are written), or wasm: a release build brings
//! its own brotli copy (quality 11, made once), and compressing a debug build's megabytes again
//! for every test browser made the Playwright suite a third slower.

use axum::extract::Request;
use axum::http::header::{HeaderMap, SET_COOKIE};
use axum::http::{Extensions, StatusCode, Version};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;

/// Answers shorter than this are sent as they are.
pub const MIN_BYTES: u16 = 1024;

/// The paths whose answers hold a credential beside text the request chose, or are
/// credentials: the front desk, the demo's thief, the OAuth endpoints, and the device approval
/// page, which echoes its `?code=`.
const UNCOMPRESSED_PATHS: [&str; 4] = ["/api/auth/", "/api/demo/", "/oauth/", "/device"];

/// A response extension: this answer must not be compressed (see the module's comment).
#[derive(Clone, Copy)]
struct HandsOutCredentials;

/// Marks the answers of [`UNCOMPRESSED_PATHS`], so the compression layer outside can leave them
/// be (it sees only the response).
pub(crate) async fn mark_credentials(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let credentials = UNCOMPRESSED_PATHS.iter().any(|p| path.starts_with(p));
    let mut res = next.run(req).await;
    if credentials {
        res.extensions_mut().insert(HandsOutCredentials);
    }
    res
}

/// The compression layer, with the rules above.
pub(crate) fn layer() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new().br(true).gzip(true).compress_when(when())
}

/// Which answers are compressed.
fn when() -> impl Predicate {
    let no_credentials = |_: StatusCode, _: Version, headers: &HeaderMap, ext: &Extensions| {
        ext.get::<HandsOutCredentials>().is_none() && !headers.contains_key(SET_COOKIE)
    };
    SizeAbove::new(MIN_BYTES)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE)
        .and(NotForContentType::const_new("application/wasm"))
        .and(no_credentials)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::header::CONTENT_TYPE;

    use super::*;

    fn answer(content_type: &str, bytes: usize) -> Response {
        let mut res = Response::new(Body::from(vec![b'a'; bytes]));
        res.headers_mut().insert(CONTENT_TYPE, content_type.parse().unwrap());
        res
    }

    #[test]
    fn pages_and_json_are_compressed_unless_small_or_handing_out_credentials() {
        let when = when();
        assert!(when.should_compress(&answer("text/html; charset=utf-8", 5000)));
        assert!(when.should_compress(&answer("application/json", 5000)));
        assert!(!when.should_compress(&answer("application/json", 500)));
        assert!(!when.should_compress(&answer("image/png", 5000)));
        assert!(!when.should_compress(&answer("application/wasm", 5000)));

        let mut credentials = answer("application/json", 5000);
        credentials.extensions_mut().insert(HandsOutCredentials);
        assert!(!when.should_compress(&credentials));
        let mut cookie = answer("application/json", 5000);
        cookie.headers_mut().insert(SET_COOKIE, "a=b".parse().unwrap());
        assert!(!when.should_compress(&cookie));
    }
}
