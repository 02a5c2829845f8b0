//! What the store keeps of a device's request to check in (RFC 8628): the row and where it
//! stands. The rules (who may approve, when a poll is too soon) are the front desk's
//! (`front_desk/device.rs`); the store makes each step one atomic statement.

use super::StoreError;
use crate::clock::Timestamp;

/// Where a device's request to check in stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceGrantState {
    /// Waiting for the guest.
    Pending,
    /// Approved: the device gets its tokens at its next poll.
    Approved,
    /// Denied by the guest.
    Denied,
    /// The device got its tokens: the code works no more.
    Used,
}

impl DeviceGrantState {
    /// Its name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Used => "used",
        }
    }
}

impl TryFrom<String> for DeviceGrantState {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "pending" => Ok(Self::Pending),
            "approved" => Ok(Self::Approved),
            "denied" => Ok(Self::Denied),
            "used" => Ok(Self::Used),
            _ => Err(format!("unknown device grant state {s:?}")),
        }
    }
}

/// A device's request to check in, from its authorization until it gets its tokens (or not).
/// It holds the device code's hash only, never the code.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DeviceGrant {
    /// SHA-256 of the device code.
    pub device_code_hash: String,
    /// What the guest types, `XXXX-XXXX`.
    pub user_code: String,
    /// The native client that asked.
    pub client_id: String,
    /// The address it asked from.
    pub requested_from: Option<String>,
    /// Its `User-Agent`.
    pub user_agent: Option<String>,
    /// When it asked.
    pub created_at: Timestamp,
    /// When both codes expire.
    pub expires_at: Timestamp,
    /// Seconds the device must wait between polls (5 more after each `slow_down`).
    pub interval_secs: i64,
    /// When it last polled.
    pub last_polled_at: Option<Timestamp>,
    /// Whether that poll came sooner than the interval allowed.
    pub polled_too_fast: bool,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub state: DeviceGrantState,
    /// The guest who decided.
    pub guest_id: Option<String>,
    /// When they decided.
    pub decided_at: Option<Timestamp>,
}

/// What the store keeps of devices' requests to check in: each method one atomic statement.
#[async_trait::async_trait]
pub trait DeviceGrants: Send + Sync {
    /// Records a device's request to check in; false (nothing written) if its user code is
    /// taken by another request still on record.
    async fn create_device_grant(&self, grant: &DeviceGrant) -> Result<bool, StoreError>;

    /// The request behind a user code (`XXXX-XXXX`).
    async fn device_grant_by_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<DeviceGrant>, StoreError>;

    /// Approves or denies the request behind `user_code` for `guest_id`, if it is still pending
    /// and unexpired at `at`: the request as decided, or `None` if nothing changed.
    async fn decide_device_grant(
        &self,
        user_code: &str,
        guest_id: &str,
        state: DeviceGrantState,
        at: Timestamp,
    ) -> Result<Option<DeviceGrant>, StoreError>;

    /// One poll of the device code whose hash is `device_code_hash`, at `now`, in one
    /// statement: a poll sooner than the interval after the previous one is marked
    /// (`polled_too_fast`) and the interval grows by 5 seconds (RFC 8628, section 3.5).
    async fn poll_device_grant(
        &self,
        device_code_hash: &str,
        now: Timestamp,
    ) -> Result<Option<DeviceGrant>, StoreError>;

    /// Moves an approved request to used, once: the guest who approved it, or `None` if it was
    /// not (or no longer) approved. Two polls at once get one booking.
    async fn claim_device_grant(
        &self,
        device_code_hash: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Deletes the requests that expired before `before`.
    async fn forget_device_grants(&self, before: Timestamp) -> Result<(), StoreError>;
}
