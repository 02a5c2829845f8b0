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
use http::{HeaderValue, StatusCode};
use keycard::{CheckedInGuest, FrontDesk, KeyCardHolder};

use crate::error::{ApiError, ErrorCode};
use crate::request::{carried, front_desk, parts, Carried};

/// The amenity door's guard: a genuine, unexpired key card for this hotel. No database is asked,
/// so a cancelled booking's key cards pass until they expire.
pub struct KeyCard {
    /// What the front desk verified.
    pub holder: KeyCardHolder,
    /// The key card as presented (to echo it, or to hand it on).
    pub token: String,
}

/// The room door's guard: a genuine key card whose booking is still active.
#[derive(Clone)]
pub struct CheckedIn {
    /// What the front desk verified, the booking included.
    pub guest: CheckedInGuest,
    /// The key card as presented (to echo it, or to hand it on).
    pub token: String,
}

fn presented(parts: &Parts, desk: &FrontDesk) -> Result<Carried, ApiError> {
    carried(parts, desk)?
        .ok_or_else(|| ApiError::new(ErrorCode::KeyCardMissing, "no key card was presented"))
}

impl KeyCard {
    /// Checks the key card the request carries (`Authorization: Bearer` or `DPoP` with its
    /// proof, else the cookie).
    pub async fn check(desk: &FrontDesk, parts: &Parts) -> Result<Self, ApiError> {
        let carried = presented(parts, desk)?;
        let holder = desk.amenity_door(carried.presented()).await?;
        Ok(Self { holder, token: carried.key_card().to_owned() })
    }

    /// The guard inside a server function (its request and the front desk come from context).
    pub async fn from_server_fn() -> Result<Self, ApiError> {
        Self::check(&front_desk()?, &parts()?).await
    }
}

impl CheckedIn {
    /// Checks the key card the request carries, and its booking.
    pub async fn check(desk: &FrontDesk, parts: &Parts) -> Result<Self, ApiError> {
        Self::check_carried(desk, &presented(parts, desk)?).await
    }

    /// The room door for a key card already read from its request.
    async fn check_carried(desk: &FrontDesk, carried: &Carried) -> Result<Self, ApiError> {
        let guest = desk.room_door(carried.presented()).await?;
        Ok(Self { guest, token: carried.key_card().to_owned() })
    }

    /// The guard inside a server function (its request and the front desk come from context).
    /// In a page's render, the answer [`CheckedAhead`] left in the request, if any.
    pub async fn from_server_fn() -> Result<Self, ApiError> {
        let parts = parts()?;
        if let Some(CheckedAhead(ahead)) = parts.extensions.get::<CheckedAhead>() {
            #[cfg(feature = "test-probes")]
            crate::probes::room_door_checked(crate::probes::room_door::AHEAD);
            return (**ahead).clone();
        }
        #[cfg(feature = "test-probes")]
        crate::probes::room_door_checked(crate::probes::room_door::HERE);
        Self::check(&front_desk()?, &parts).await
    }
}

/// The room door, checked for a page before its render starts, and left in the request's
/// extensions for the render's [`CheckedIn::from_server_fn`] (the server's page routes do this).
///
/// Why: every page asks the room door who its guest is (the auth context's `me`). Asked inside
/// the render, the resource that asks awaits the database, and Leptos then renders the page by
/// its asynchronous path (a spawned task, effects run again, the view rendered twice), which
/// cost a checked-in page more than the read itself (docs/upstream/checked-in-pages.md). Asked
/// before, the resource is ready at its first poll. The check is the same, for the same request.
#[derive(Clone)]
pub struct CheckedAhead(std::sync::Arc<Result<CheckedIn, ApiError>>);

impl CheckedAhead {
    /// Checks the room door for a page load that carries the key card cookie; `None` for
    /// anything else: a signed-out page has nothing to check (its render answers at once), and a
    /// server function or a request with an `Authorization` header checks for itself (a DPoP
    /// proof is accepted once: checking it here too would make the second check a replay).
    pub async fn check(desk: &FrontDesk, parts: &Parts) -> Option<Self> {
        let carried @ Carried::Cookie { page_load: true, .. } = carried(parts, desk).ok()?? else {
            return None;
        };
        Some(Self(std::sync::Arc::new(CheckedIn::check_carried(desk, &carried).await)))
    }
}

impl<S> FromRequestParts<S> for KeyCard
where
    S: Send + Sync,
    FrontDesk: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Self::check(&FrontDesk::from_ref(state), parts).await
    }
}

impl<S> FromRequestParts<S> for CheckedIn
where
    S: Send + Sync,
    FrontDesk: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Self::check(&FrontDesk::from_ref(state), parts).await
    }
}

/// An [`ApiError`] as an answer: the status its code calls for, the JSON body, `Retry-After`
/// when there is a wait, `WWW-Authenticate` on a 401, and `Cache-Control: no-store`.
///
/// A 401 names both schemes Keycard accepts, `Bearer` and `DPoP` with the algorithms its proofs
/// may use (RFC 9449, section 7.1); a DPoP refusal names only `DPoP`, with
/// `error="invalid_dpop_proof"` (or `invalid_token` for a key card bound to no key).
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let wait = self.retry_after;
        let dpop_error = match (self.error, self.rule.is_some()) {
            (ErrorCode::InvalidDpopProof, _) => Some("invalid_dpop_proof"),
            (ErrorCode::KeyCardInvalid, true) => Some("invalid_token"),
            _ => None,
        };
        let description = self.message.replace(['"', '\\'], "'");
        let mut res = (status, axum::Json(self)).into_response();
        let headers = res.headers_mut();
        if let Some(wait) = wait {
            headers.insert(RETRY_AFTER, HeaderValue::from(wait));
        }
        if status == StatusCode::UNAUTHORIZED {
            let algs = keycard::dpop::ALGORITHMS.join(" ");
            // One field, the challenges comma-separated (RFC 9110, 11.6.1): some clients read
            // only the first field of a repeated header.
            let challenge = match dpop_error {
                Some(error) => format!(
                    "DPoP error=\"{error}\", error_description=\"{description}\", algs=\"{algs}\""
                ),
                None => format!("Bearer, DPoP algs=\"{algs}\""),
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(WWW_AUTHENTICATE, value);
            }
        }
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}
