//! The HTTP contract: thin server functions at fixed paths under `/api`, their answers, and
//! [`ApiError`]. Bodies are form-urlencoded (so forms work before hydration and from curl);
//! answers are JSON. Non-browser clients send `Authorization: Bearer <key card>`; browsers send the
//! key card cookie. The booking confirmation travels only in its HttpOnly cookie, never in a body.

#[cfg(feature = "demo")]
mod demo;
mod device;
#[cfg(feature = "ssr")]
pub mod ssr;

pub use crate::error::{ApiError, ErrorCode};
pub use crate::request::{CONFIRMATION_COOKIE, CONFIRMATION_PATH, KEY_CARD_COOKIE};
#[cfg(feature = "demo")]
pub use demo::*;
pub use device::*;

use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::request;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::guard::{CheckedIn, KeyCard};

/// A guest, as the API shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestInfo {
    pub id: String,
    pub username: String,
    pub created_at: i64,
}

/// A booking (session): the booking confirmation's metadata, never the confirmation itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingInfo {
    pub session_id: String,
    /// How many times the confirmation has been rotated (1 at check-in).
    pub generation: i64,
    pub created_at: i64,
    pub last_used_at: i64,
    /// The booking ends if the front desk is not visited before this.
    pub idle_expires_at: i64,
    /// The booking ends at this time whatever happens.
    pub absolute_expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    pub user_agent: Option<String>,
    pub client_address: Option<String>,
    /// The native client the booking was made for through the device grant (e.g.
    /// `keycard-cli`), or absent for a browser's booking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// That client's name, as configured (`KEYCARD_NATIVE_CLIENTS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    pub active: bool,
}

/// The answer to check-in, registration and the front desk. Its `Debug` leaves the key card out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInResponse {
    /// `DPoP` when the key card is bound to the key of the DPoP proof that came with the request
    /// (RFC 9449, section 5: present it with `Authorization: DPoP` and a fresh proof), else
    /// `Bearer`.
    pub token_type: String,
    /// The key card (JWT access token). Browsers also get it as an HttpOnly cookie.
    pub access_token: String,
    /// Seconds until the key card expires.
    pub expires_in: i64,
    /// When the key card expires (Unix seconds).
    pub expires_at: i64,
    pub session_id: String,
    pub guest: GuestInfo,
    pub booking: BookingInfo,
}

/// The answer to `/api/me`. Its `Debug` leaves the key card out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeResponse {
    pub user: GuestInfo,
    pub session: BookingInfo,
    /// The key card the request carried (echoed so a freshly loaded page can show it).
    pub access_token: String,
    /// When that key card expires (Unix seconds).
    pub expires_at: i64,
}

/// What a key card shows in `Debug` output: never the token, which would then reach a log line
/// or a panic message the moment someone prints the answer that holds it.
pub(crate) const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for CheckInResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckInResponse")
            .field("token_type", &self.token_type)
            .field("access_token", &REDACTED)
            .field("expires_in", &self.expires_in)
            .field("expires_at", &self.expires_at)
            .field("session_id", &self.session_id)
            .field("guest", &self.guest)
            .field("booking", &self.booking)
            .finish()
    }
}

impl std::fmt::Debug for MeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeResponse")
            .field("user", &self.user)
            .field("session", &self.session)
            .field("access_token", &REDACTED)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What room service brought.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomServiceOrder {
    pub message: String,
    pub served_at: i64,
    pub session_id: String,
}

/// The answer to `/api/sessions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsResponse {
    /// The booking the key card belongs to.
    pub current_session_id: String,
    pub sessions: Vec<BookingInfo>,
}

/// The answer to check-out and revocation: the bookings that ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndedResponse {
    pub ended: Vec<String>,
}

/// One entry of a booking's event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInfo {
    pub id: i64,
    pub at: i64,
    /// `checked_in`, `refreshed`, `grace_reissued`, `reuse_detected`, `revoked`, `expired`,
    /// `checked_out`, `password_changed`, `limits_moved`, `device_approved` or `device_denied`.
    pub kind: String,
    pub generation: Option<i64>,
    pub detail: Option<String>,
}

/// `POST /api/auth/register`: creates the guest and checks them in (201).
#[server(prefix = "/api", endpoint = "auth/register")]
pub async fn register(username: String, password: String) -> Result<CheckInResponse, ApiError> {
    let desk = request::front_desk()?;
    let issued = desk.register(&username, &password, &request::client_info()?).await?;
    ssr::set_status(http::StatusCode::CREATED);
    Ok(ssr::checked_in(&issued))
}

/// `POST /api/auth/login`: check-in.
#[server(prefix = "/api", endpoint = "auth/login")]
pub async fn login(username: String, password: String) -> Result<CheckInResponse, ApiError> {
    let desk = request::front_desk()?;
    let issued = desk.check_in(&username, &password, &request::client_info()?).await?;
    Ok(ssr::checked_in(&issued))
}

/// `POST /api/auth/refresh`: the front desk swaps the confirmation cookie for a new key card and
/// a new confirmation.
#[server(prefix = "/api", endpoint = "auth/refresh")]
pub async fn refresh() -> Result<CheckInResponse, ApiError> {
    let desk = request::front_desk()?;
    let Some(confirmation) = request::confirmation() else {
        return Err(ApiError::new(
            ErrorCode::ConfirmationMissing,
            "no booking confirmation was presented",
        ));
    };
    match desk.refresh(&confirmation, &request::client_info()?).await {
        Ok(issued) => Ok(ssr::checked_in(&issued)),
        Err(e) => {
            let e = ApiError::from(e);
            if e.error.ends_booking() {
                ssr::clear_cookies();
            }
            Err(e)
        }
    }
}

/// `POST /api/auth/logout`: check-out. `scope` is `this` (default), `others` or `all`.
#[server(prefix = "/api", endpoint = "auth/logout")]
pub async fn logout(scope: Option<String>) -> Result<EndedResponse, ApiError> {
    use keycard::front_desk::Scope;
    let scope = match scope.as_deref().unwrap_or("this") {
        "this" => Scope::This,
        "others" => Scope::Others,
        "all" => Scope::All,
        _ => return Err(ApiError::new(ErrorCode::BadRequest, "scope must be this, others or all")),
    };
    let desk = request::front_desk()?;
    let result = match CheckedIn::from_server_fn().await {
        Ok(CheckedIn { guest, .. }) => desk.check_out(&guest, scope).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    // An expired key card comes back after the front desk, which needs the confirmation cookie.
    // Otherwise this browser's cookies go, even if the booking was already over.
    let comes_back = matches!(&result, Err(e) if e.error == ErrorCode::KeyCardExpired);
    if scope != Scope::Others && !comes_back {
        ssr::clear_cookies();
    }
    Ok(EndedResponse { ended: result? })
}

/// `POST /api/auth/password`: changes the password and ends the guest's other bookings.
#[server(prefix = "/api", endpoint = "auth/password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<EndedResponse, ApiError> {
    let CheckedIn { guest, .. } = CheckedIn::from_server_fn().await?;
    let desk = request::front_desk()?;
    let ended = desk.change_password(&guest, &current_password, &new_password).await?;
    Ok(EndedResponse { ended })
}

/// `POST /api/me`: who the key card belongs to, and its booking.
#[server(prefix = "/api", endpoint = "me")]
pub async fn me() -> Result<MeResponse, ApiError> {
    let CheckedIn { guest, token } = CheckedIn::from_server_fn().await?;
    Ok(ssr::me_for(&guest, token))
}

/// `POST /api/room/service`: a protected, stateful call (the booking must still be active).
#[server(prefix = "/api", endpoint = "room/service")]
pub async fn room_service() -> Result<RoomServiceOrder, ApiError> {
    let CheckedIn { guest, .. } = CheckedIn::from_server_fn().await?;
    Ok(RoomServiceOrder {
        message: format!(
            "Breakfast for {}, delivered to your room.",
            guest.claims().preferred_username
        ),
        served_at: request::front_desk()?.clock().now(),
        session_id: guest.booking_id().to_owned(),
    })
}

/// `POST /api/sessions`: the guest's bookings.
#[server(prefix = "/api", endpoint = "sessions")]
pub async fn sessions() -> Result<SessionsResponse, ApiError> {
    let CheckedIn { guest, .. } = CheckedIn::from_server_fn().await?;
    let list = request::front_desk()?.bookings(&guest).await?;
    Ok(SessionsResponse {
        current_session_id: guest.booking_id().to_owned(),
        sessions: list.iter().map(ssr::booking_info).collect(),
    })
}

/// `POST /api/sessions/revoke`: ends one of the guest's bookings (404 if not theirs).
#[server(prefix = "/api", endpoint = "sessions/revoke")]
pub async fn revoke_session(session_id: String) -> Result<EndedResponse, ApiError> {
    let CheckedIn { guest, .. } = CheckedIn::from_server_fn().await?;
    request::front_desk()?.end_booking(&guest, &session_id).await?;
    Ok(EndedResponse { ended: vec![session_id] })
}

/// `POST /api/sessions/events`: the event log of the key card's booking.
#[server(prefix = "/api", endpoint = "sessions/events")]
pub async fn session_events() -> Result<Vec<EventInfo>, ApiError> {
    let KeyCard { holder, .. } = KeyCard::from_server_fn().await?;
    let events = request::front_desk()?.events(&holder).await?;
    Ok(events
        .into_iter()
        .map(|e| EventInfo {
            id: e.id,
            at: e.at,
            kind: e.kind.as_str().to_owned(),
            generation: e.generation,
            detail: e.detail,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Stay;

    const TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbm4ifQ.c2lnbmF0dXJl";

    fn guest() -> GuestInfo {
        GuestInfo { id: "g1".into(), username: "ann".into(), created_at: 1 }
    }

    fn booking() -> BookingInfo {
        serde_json::from_value(serde_json::json!({
            "session_id": "s1", "generation": 1, "created_at": 1, "last_used_at": 1,
            "idle_expires_at": 2, "absolute_expires_at": 3, "revoked_at": null,
            "revoked_reason": null, "user_agent": null, "client_address": null, "active": true
        }))
        .expect("a booking")
    }

    /// A key card never reaches `Debug` output (a log line, a panic message, a failed
    /// assertion), whichever of the types that carry one is printed; the rest still is.
    #[test]
    fn debug_output_never_holds_the_key_card() {
        let check_in = CheckInResponse {
            token_type: "Bearer".into(),
            access_token: TOKEN.into(),
            expires_in: 60,
            expires_at: 61,
            session_id: "s1".into(),
            guest: guest(),
            booking: booking(),
        };
        let me = MeResponse {
            user: guest(),
            session: booking(),
            access_token: TOKEN.into(),
            expires_at: 61,
        };
        let printed = [
            format!("{check_in:?}"),
            format!("{me:?}"),
            format!("{:?}", Stay::from(me.clone())),
            format!("{:#?}", Stay::from(check_in.clone())),
        ];
        for text in printed {
            assert!(!text.contains(TOKEN) && !text.contains("eyJ"), "{text}");
            assert!(text.contains(REDACTED) && text.contains("ann"), "{text}");
        }
    }
}
