//! The approval side of the device grant (RFC 8628): a checked-in guest looks up the code a
//! device shows and approves or denies it. The device's own endpoints (`/oauth/*`) are the
//! server's (`keycard_server::oauth`): they speak OAuth, not this API.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::ApiError;
#[cfg(feature = "ssr")]
use super::ErrorCode;
#[cfg(feature = "ssr")]
use crate::{guard::CheckedIn, request};

/// A device's request to check in, as the guest sees it before deciding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRequestInfo {
    /// The code, as `XXXX-XXXX`.
    pub user_code: String,
    /// The client that asks (`keycard-cli`).
    pub client_id: String,
    /// Its name (`Keycard CLI`).
    pub client_name: String,
    /// The address the device asked from.
    pub requested_from: Option<String>,
    /// The device's `User-Agent`.
    pub user_agent: Option<String>,
    /// When it asked (Unix seconds).
    pub created_at: i64,
    /// When the code expires (Unix seconds).
    pub expires_at: i64,
    /// `pending`, `approved`, `denied`, `used` or `expired`.
    pub state: String,
}

#[cfg(feature = "ssr")]
impl From<keycard::front_desk::DeviceRequestView> for DeviceRequestInfo {
    fn from(v: keycard::front_desk::DeviceRequestView) -> Self {
        Self {
            user_code: v.user_code,
            client_id: v.client_id,
            client_name: v.client_name,
            requested_from: v.requested_from,
            user_agent: v.user_agent,
            created_at: v.created_at,
            expires_at: v.expires_at,
            state: v.state,
        }
    }
}

/// `POST /api/device/request`: the device request behind `user_code` (any case, dash or not).
/// Each look-up counts against the guest's budget of guesses (30 a minute).
#[server(prefix = "/api", endpoint = "device/request")]
pub async fn device_request(user_code: String) -> Result<DeviceRequestInfo, ApiError> {
    let CheckedIn { guest, .. } = CheckedIn::from_server_fn().await?;
    let found = request::front_desk()?.device_request(&guest, &user_code).await?;
    Ok(found.into())
}

/// `POST /api/device/approve`: `decision` is `approve` (the device gets a booking of its own
/// for this guest at its next poll) or `deny`.
#[server(prefix = "/api", endpoint = "device/approve")]
pub async fn approve_device(
    user_code: String,
    decision: String,
) -> Result<DeviceRequestInfo, ApiError> {
    let approve = match decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(ApiError::new(ErrorCode::BadRequest, "decision must be approve or deny")),
    };
    let CheckedIn { guest, .. } = CheckedIn::from_server_fn().await?;
    let decided = request::front_desk()?.decide_device(&guest, &user_code, approve).await?;
    Ok(decided.into())
}
