//! Guards: the two kinds of door, for the web. Each reads the key card from the request
//! (`Authorization: Bearer …`, else the `__Host-keycard` cookie), has the front desk check it,
//! and hands back the pass, or refuses with the [`ApiError`] (and status) Keycard uses
//! everywhere: `key_card_missing`, `key_card_expired`, `key_card_invalid` (401), and for the room
//! door also `session_revoked` / `session_expired` (401) or `unavailable` (503).
//!
//! | guard | door | checks |
//! |---|---|---|
//! | [`KeyCard`] | an amenity | the key card alone (stateless: no database) |
//! | [`CheckedIn`] | the room | the key card, and that its booking is still active |
//!
//! Both are axum extractors for any router whose state gives a [`FrontDesk`] (`FrontDesk:
//! FromRef<S>`), and both work inside a server function:
//!
//! ```ignore
//! // An axum route of your own.
//! async fn minibar(CheckedIn { guest, .. }: CheckedIn) -> String {
//!     format!("a drink for {}", guest.claims().preferred_username)
//! }
//!
//! // A server function.
//! #[server(prefix = "/api", endpoint = "minibar")]
//! pub async fn minibar() -> Result<String, ApiError> {
//!     let CheckedIn { guest, .. } = CheckedIn::from_server_fn().await?;
//!     Ok(format!("a drink for {}", guest.claims().preferred_username))
//! }
//! ```
//!
//! `docs/make-it-yours.md` has both as compiled, tested recipes.

use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, RETRY_AFTER, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use keycard::{CheckedInGuest, FrontDesk, KeyCardHolder};

use crate::error::{ApiError, ErrorCode};
use crate::request::{front_desk, headers, key_card_from};

/// The amenity door's guard: a genuine, unexpired key card for this hotel. No database is asked,
/// so a cancelled booking's key cards pass until they expire.
pub struct KeyCard {
    /// What the front desk verified.
    pub holder: KeyCardHolder,
    /// The key card as presented (to echo it, or to hand it on).
    pub token: String,
}

/// The room door's guard: a genuine key card whose booking is still active.
pub struct CheckedIn {
    /// What the front desk verified, the booking included.
    pub guest: CheckedInGuest,
    /// The key card as presented (to echo it, or to hand it on).
    pub token: String,
}

fn presented(headers: &HeaderMap) -> Result<String, ApiError> {
    key_card_from(headers)
        .ok_or_else(|| ApiError::new(ErrorCode::KeyCardMissing, "no key card was presented"))
}

impl KeyCard {
    /// Checks the key card in `headers`.
    pub fn check(desk: &FrontDesk, headers: &HeaderMap) -> Result<Self, ApiError> {
        let token = presented(headers)?;
        let holder = desk.verify_key_card(&token)?;
        Ok(Self { holder, token })
    }

    /// The guard inside a server function (its request and the front desk come from context).
    pub async fn from_server_fn() -> Result<Self, ApiError> {
        Self::check(&front_desk()?, &headers())
    }
}

impl CheckedIn {
    /// Checks the key card in `headers` and its booking.
    pub async fn check(desk: &FrontDesk, headers: &HeaderMap) -> Result<Self, ApiError> {
        let token = presented(headers)?;
        let guest = desk.verify_booking(&token).await?;
        Ok(Self { guest, token })
    }

    /// The guard inside a server function (its request and the front desk come from context).
    pub async fn from_server_fn() -> Result<Self, ApiError> {
        Self::check(&front_desk()?, &headers()).await
    }
}

impl<S> FromRequestParts<S> for KeyCard
where
    S: Send + Sync,
    FrontDesk: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Self::check(&FrontDesk::from_ref(state), &parts.headers)
    }
}

impl<S> FromRequestParts<S> for CheckedIn
where
    S: Send + Sync,
    FrontDesk: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Self::check(&FrontDesk::from_ref(state), &parts.headers).await
    }
}

/// An [`ApiError`] as an answer: the status its code calls for, the JSON body, `Retry-After`
/// when there is a wait, `WWW-Authenticate: Bearer` on a 401, and `Cache-Control: no-store`.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let wait = self.retry_after;
        let mut res = (status, axum::Json(self)).into_response();
        let headers = res.headers_mut();
        if let Some(wait) = wait {
            headers.insert(RETRY_AFTER, HeaderValue::from(wait));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}
