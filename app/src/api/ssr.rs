//! Server-side glue between the server functions and the auth core: how cookies are set, how
//! answers are built, and how core errors become [`ApiError`]s. (What a request carries is read
//! in [`crate::request`].)

use cookie::{Cookie, SameSite};
use http::header::SET_COOKIE;
use http::{HeaderValue, StatusCode};
use keycard::dpop::ProofError;
use keycard::front_desk::{BookingView, GuestView, Issued};
use keycard::jwt::TokenError;
use keycard::{AuthError, CheckedInGuest};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

use super::{ApiError, BookingInfo, CheckInResponse, ErrorCode, GuestInfo, MeResponse};

use crate::request::{CONFIRMATION_COOKIE, CONFIRMATION_PATH, KEY_CARD_COOKIE};

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
        token_type: issued.token_type().into(),
        access_token: issued.key_card.clone(),
        expires_in: claims.exp - claims.iat,
        expires_at: claims.exp,
        session_id: claims.sid.clone(),
        guest: guest_info(&issued.guest),
        booking: booking_info(&issued.booking),
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

pub fn booking_info(s: &BookingView) -> BookingInfo {
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
        client_id: s.client_id.clone(),
        client_name: s.client_id.as_deref().and_then(|id| {
            let desk = use_context::<keycard::FrontDesk>()?;
            desk.native_client(id).map(str::to_owned)
        }),
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
            AuthError::Dpop(proof) => {
                let code = if *proof == ProofError::Unbound {
                    ErrorCode::KeyCardInvalid
                } else {
                    ErrorCode::InvalidDpopProof
                };
                return Self {
                    rule: Some(proof.rule().to_owned()),
                    ..Self::new(code, e.to_string())
                };
            }
            AuthError::DemoDisabled => ErrorCode::DemoDisabled,
            AuthError::DeviceCodeUnknown => ErrorCode::DeviceCodeUnknown,
            // The token endpoint answers these itself (server/src/oauth.rs); no server function
            // meets them.
            AuthError::OAuth(_) => ErrorCode::BadRequest,
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
