//! Compression of dynamic answers: pages and JSON in brotli or gzip, whichever the client
//! prefers, by tower-http's `CompressionLayer` (brotli at quality 4, as nginx compresses on the
//! fly). The bundle's files come precompressed from the file server and pass untouched: they
//! already carry `Content-Encoding`.
//!
//! ## What is never compressed
//! Answers that hand out credentials: key cards, booking confirmations, device codes (the front
//! desk under `/api/auth/`, the demo's thief under `/api/demo/`, the OAuth endpoints under
//! `/oauth/`, and anything that sets a cookie). A compressed answer's length depends on how much
//! of it repeats; when an answer holds a secret beside text an attacker chose, the attacker can
//! guess the secret a character at a time by watching lengths (BREACH). Those answers are a few
//! hundred bytes: compressing them saves nothing worth that risk.
//!
//! Pages are compressed although the room shows its key card: no page echoes anything of the
//! request (its path, its query string), which is the text a cross-site attacker can choose;
//! `http::a_page_that_holds_a_key_card_echoes_nothing_the_request_chose` keeps it that way.
//!
//! Nor are answers under [`MIN_BYTES`] (the headers would outweigh the saving), images, or
//! event streams (which must reach the browser as they are written).

use axum::extract::Request;
use axum::http::header::{HeaderMap, SET_COOKIE};
use axum::http::{Extensions, StatusCode, Version};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;

/// Answers shorter than this are sent as they are.
pub const MIN_BYTES: u16 = 1024;

/// The paths whose answers hand out credentials.
const CREDENTIAL_PATHS: [&str; 3] = ["/api/auth/", "/api/demo/", "/oauth/"];

/// A response extension: this answer hands out credentials.
#[derive(Clone, Copy)]
struct HandsOutCredentials;

/// Marks the answers of [`CREDENTIAL_PATHS`], so the compression layer outside can leave them
/// be (it sees only the response).
pub(crate) async fn mark_credentials(req: Request, next: Next) -> Response {
    let credentials = CREDENTIAL_PATHS.iter().any(|p| req.uri().path().starts_with(p));
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

        let mut credentials = answer("application/json", 5000);
        credentials.extensions_mut().insert(HandsOutCredentials);
        assert!(!when.should_compress(&credentials));
        let mut cookie = answer("application/json", 5000);
        cookie.headers_mut().insert(SET_COOKIE, "a=b".parse().unwrap());
        assert!(!when.should_compress(&cookie));
    }
}
