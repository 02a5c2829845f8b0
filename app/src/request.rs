//! What the server reads from the request it answers: the context Leptos holds for it (the front
//! desk, the headers, where it came from) and the credentials it carries, under the cookie names
//! defined here. Below both the server functions ([`crate::api`]) and the guards
//! ([`crate::guard`]), which read through it.

/// The key card cookie. `__Host-` binds it to this exact origin (Secure, Path=/, no Domain).
pub const KEY_CARD_COOKIE: &str = "__Host-keycard";
/// The booking confirmation cookie, sent only to the front desk's paths.
pub const CONFIRMATION_COOKIE: &str = "__Secure-confirmation";
/// Where the booking confirmation cookie is sent.
pub const CONFIRMATION_PATH: &str = "/api/auth";

#[cfg(feature = "ssr")]
pub use server::*;

#[cfg(feature = "ssr")]
mod server {
    use cookie::Cookie;
    use http::header::{AUTHORIZATION, COOKIE};
    use http::HeaderMap;
    use keycard::front_desk::ClientInfo;
    use keycard::FrontDesk;
    use leptos::prelude::*;

    use super::{CONFIRMATION_COOKIE, KEY_CARD_COOKIE};
    use crate::error::{ApiError, ErrorCode};

    /// The front desk the server put in context.
    pub fn front_desk() -> Result<FrontDesk, ApiError> {
        use_context::<FrontDesk>().ok_or_else(|| {
            tracing::error!("the front desk is missing from the server function context");
            ApiError::new(ErrorCode::Internal, "something went wrong")
        })
    }

    /// The current request's headers (in a server function or a page render).
    pub fn headers() -> HeaderMap {
        use_context::<http::request::Parts>().map(|p| p.headers).unwrap_or_default()
    }

    /// Where the request came from (set by the server's middleware).
    pub fn client_info() -> ClientInfo {
        use_context::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<ClientInfo>().cloned())
            .unwrap_or_default()
    }

    /// Reads a cookie from request headers.
    pub fn cookie_from(headers: &HeaderMap, name: &str) -> Option<String> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == name)
            .map(|c| c.value().to_owned())
    }

    /// The key card from `Authorization: Bearer` (API clients) or the cookie (browsers).
    pub fn key_card_from(headers: &HeaderMap) -> Option<String> {
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned());
        bearer.or_else(|| cookie_from(headers, KEY_CARD_COOKIE)).filter(|t| !t.is_empty())
    }

    /// The booking confirmation cookie of the current request.
    pub fn confirmation() -> Option<String> {
        cookie_from(&headers(), CONFIRMATION_COOKIE).filter(|t| !t.is_empty())
    }
}
