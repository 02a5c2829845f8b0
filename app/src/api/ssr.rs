//! Server-side glue between the server functions and the auth core: where the key card and the
//! booking confirmation are read from, how cookies are set, and how core errors become
//! [`ApiError`]s.

use cookie::{Cookie, SameSite};
use http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use keycard::front_desk::{ClientInfo, GuestView, Issued, SessionView};
use keycard::jwt::TokenError;
use keycard::{AuthError, CheckedInGuest, FrontDesk};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

use super::{ApiError, BookingInfo, CheckInResponse, ErrorCode, GuestInfo, MeResponse};

pub use super::{CONFIRMATION_COOKIE, CONFIRMATION_PATH, KEY_CARD_COOKIE};

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

/// Sets the response status (e.g. 201 for registration).
pub fn set_status(status: StatusCode) {
    if let Some(res) = use_context::<ResponseOptions>() {
        res.set_status(status);
    }
}

fn append_cookie(cookie: Cookie<'_>) {
    if let (Some(res), Ok(value)) =
        (use_context::<ResponseOptions>(), HeaderValue::from_str(&cookie.to_string()))
    {
        res.append_header(SET_COOKIE, value);
    }
}

fn auth_cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    max_age: i64,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .path(path)
        .max_age(cookie::time::Duration::seconds(max_age.max(0)))
        .build()
}

/// Hands a browser its key card and booking confirmation as HttpOnly cookies. The key card cookie
/// outlives the key card itself, so an expired one still reaches the server, which then answers
/// `key_card_expired` rather than `key_card_missing`.
pub fn set_cookies(issued: &Issued) {
    let confirmation_left = issued.confirmation_claims.exp - issued.key_card_claims.iat;
    set_key_card_cookie(&issued.key_card, confirmation_left);
    append_cookie(auth_cookie(
        CONFIRMATION_COOKIE,
        issued.confirmation.clone(),
        CONFIRMATION_PATH,
        confirmation_left,
    ));
}

/// Replaces only the key card cookie (the demo's short-lived key card).
pub fn set_key_card_cookie(key_card: &str, max_age: i64) {
    append_cookie(auth_cookie(KEY_CARD_COOKIE, key_card.to_owned(), "/", max_age));
}

/// Tells the browser to drop both cookies.
pub fn clear_cookies() {
    append_cookie(auth_cookie(KEY_CARD_COOKIE, String::new(), "/", 0));
    append_cookie(auth_cookie(CONFIRMATION_COOKIE, String::new(), CONFIRMATION_PATH, 0));
}

/// Sets the cookies and builds the JSON answer of a check-in or refresh.
pub fn checked_in(issued: &Issued) -> CheckInResponse {
    set_cookies(issued);
    let claims = &issued.key_card_claims;
    CheckInResponse {
        token_type: "Bearer".into(),
        access_token: issued.key_card.clone(),
        expires_in: claims.exp - claims.iat,
        expires_at: claims.exp,
        session_id: claims.sid.clone(),
        guest: guest_info(&issued.guest),
        booking: booking_info(&issued.session),
    }
}

/// The `/api/me` answer for a checked-in guest and the key card they showed.
pub fn me_for(checked_in: &CheckedInGuest, key_card: String) -> MeResponse {
    MeResponse {
        user: guest_info(checked_in.guest()),
        session: booking_info(&checked_in.booking()),
        access_token: key_card,
        expires_at: checked_in.claims().exp,
    }
}

pub fn guest_info(g: &GuestView) -> GuestInfo {
    GuestInfo { id: g.id.clone(), username: g.username.clone(), created_at: g.created_at }
}

pub fn booking_info(s: &SessionView) -> BookingInfo {
    BookingInfo {
        session_id: s.id.clone(),
        generation: s.generation,
        created_at: s.created_at,
        last_used_at: s.last_used_at,
        idle_expires_at: s.idle_expires_at,
        absolute_expires_at: s.absolute_expires_at,
        revoked_at: s.revoked_at,
        revoked_reason: s.revoked_reason.clone(),
        user_agent: s.user_agent.clone(),
        client_address: s.client_address.clone(),
        active: s.active,
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let code = match &e {
            AuthError::InvalidUsername => ErrorCode::InvalidUsername,
            AuthError::WeakPassword(_) => ErrorCode::WeakPassword,
            AuthError::UsernameTaken => ErrorCode::UsernameTaken,
            AuthError::InvalidCredentials => ErrorCode::InvalidCredentials,
            AuthError::TooManyRequests(wait) => {
                return Self {
                    retry_after: Some(wait.secs()),
                    ..Self::new(ErrorCode::TooManyRequests, e.to_string())
                }
            }
            AuthError::KeyCard(TokenError::Expired) => ErrorCode::KeyCardExpired,
            AuthError::KeyCard(_) => ErrorCode::KeyCardInvalid,
            AuthError::Confirmation(TokenError::Expired) => ErrorCode::ConfirmationExpired,
            AuthError::Confirmation(_) => ErrorCode::ConfirmationInvalid,
            AuthError::ReuseDetected => ErrorCode::ReuseDetected,
            AuthError::SessionRevoked => ErrorCode::SessionRevoked,
            AuthError::SessionExpired => ErrorCode::SessionExpired,
            AuthError::SessionNotFound => ErrorCode::NotFound,
            AuthError::NotYourBooking => ErrorCode::NotYourBooking,
            AuthError::DemoDisabled => ErrorCode::DemoDisabled,
            AuthError::Unavailable(detail) => {
                // Logged once, here (it says which connection failed); clients get 503 and no
                // driver text.
                tracing::warn!(error = %detail, "database unavailable");
                return Self::new(ErrorCode::Unavailable, e.to_string());
            }
            AuthError::Internal(detail) => {
                // Logged once, here; the client sees a generic message.
                tracing::error!(error = %detail, "internal error");
                return Self::new(ErrorCode::Internal, "something went wrong");
            }
        };
        Self::new(code, e.to_string())
    }
}
