//! Native clients: the OAuth 2.0 device authorization grant (RFC 8628) and their front desk,
//! where the refresh token travels in a request body (RFC 6749, section 6).
//!
//! A client that cannot show a check-in form (a terminal, a TV) asks for a device code and a
//! short user code ([`FrontDesk::device_authorization`]); the guest, checked in in a browser,
//! looks the user code up ([`FrontDesk::device_request`]) and approves or denies it
//! ([`FrontDesk::decide_device`]); the client polls ([`FrontDesk::device_token`]) and, once
//! approved, gets a key card and a booking confirmation of a booking of its own, made for its
//! client id (bound to its DPoP key if it sent a proof). From then on it visits its own front
//! desk ([`FrontDesk::refresh_native`]): the same rotation, grace window and reuse detection as
//! the browser's, and a confirmation works only at the desk of the client it was issued to.

use rand::Rng;
use serde::Serialize;

use super::{ClientInfo, FrontDesk, Issued};
use crate::clock::Timestamp;
use crate::confirmation;
use crate::door::CheckedInGuest;
use crate::error::AuthError;
use crate::jwt::random_id;
use crate::storage::{
    DeviceGrant, DeviceGrantState, EventKind, NewEvent, SessionChange, SessionUpdate,
};

/// RFC 8628, section 6.1: twenty consonants, no vowels (no words), none that reads as another.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// RFC 8628's default: 5 seconds between polls.
pub const POLL_INTERVAL_SECS: i64 = 5;

/// How long a request is kept after it expired, so a late poll still hears `expired_token`.
const KEPT_AFTER_EXPIRY_SECS: i64 = 3600;

/// A refusal of the token endpoint, by its name in RFC 6749 (section 5.2) and RFC 8628
/// (section 3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// A parameter is missing, repeated or malformed.
    #[error("the request is missing a parameter or has one it cannot use")]
    InvalidRequest,
    /// The client is not one this hotel knows.
    #[error("unknown client")]
    InvalidClient,
    /// The device code or refresh token is unknown, used, expired, revoked or another client's.
    #[error("the grant is invalid, used, expired, revoked or another client's")]
    InvalidGrant,
    /// Not a grant type this endpoint serves.
    #[error("this grant type is not supported here")]
    UnsupportedGrantType,
    /// The guest has not approved (or denied) the request yet: poll again after the interval.
    #[error("the guest has not approved the request yet")]
    AuthorizationPending,
    /// Polled sooner than the interval: wait 5 seconds more between polls from now on.
    #[error("polling too fast: wait 5 seconds more between polls from now on")]
    SlowDown,
    /// The guest denied the request.
    #[error("the guest denied the request")]
    AccessDenied,
    /// The codes expired before the guest approved them: start again.
    #[error("the device code expired; start again")]
    ExpiredToken,
}

impl OAuthError {
    /// The `error` member of the answer, as the RFCs spell it.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::AccessDenied => "access_denied",
            Self::ExpiredToken => "expired_token",
        }
    }
}

/// What a device gets from its authorization request (RFC 8628, section 3.2). Not `Debug`: it
/// holds the device code.
pub struct DeviceAuthorization {
    /// The device's secret for polling.
    pub device_code: String,
    /// What the guest types: 8 characters of [`USER_CODE_ALPHABET`], shown as `XXXX-XXXX`.
    pub user_code: String,
    /// Seconds until both codes expire.
    pub expires_in: i64,
    /// Seconds between two polls.
    pub interval: i64,
}

/// A device's request, as the approval page shows it to the guest before they decide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceRequestView {
    /// The user code, as `XXXX-XXXX`.
    pub user_code: String,
    /// The client that asks.
    pub client_id: String,
    /// Its name, as configured.
    pub client_name: String,
    /// The address the request came from.
    pub requested_from: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// When it asked.
    pub created_at: Timestamp,
    /// When the codes expire.
    pub expires_at: Timestamp,
    /// `pending`, `approved`, `denied`, `used` or `expired`.
    pub state: String,
}

/// A user code as `XXXX-XXXX`, from what the guest typed: any case, with or without the dash,
/// spaces around. `None` when it cannot be one.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let letters: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = letters.len() == 8 && letters.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then(|| format!("{}-{}", &letters[..4], &letters[4..]))
}

/// 8 letters of the alphabet from the OS's generator: 20^8, about 2^34.6, codes; with guessing
/// throttled (RFC 8628, section 5.1) and a 10-minute life that is out of reach.
fn new_user_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let letters: String = (0..8)
        .map(|_| USER_CODE_ALPHABET[rng.gen_range(0..USER_CODE_ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

impl FrontDesk {
    /// The name of native client `client_id` (`KEYCARD_NATIVE_CLIENTS`), if it is registered.
    pub fn native_client(&self, client_id: &str) -> Option<&str> {
        self.inner.policy.native_clients.name(client_id)
    }

    fn known_client(&self, client_id: &str) -> Result<(), AuthError> {
        match self.native_client(client_id) {
            Some(_) => Ok(()),
            None => Err(AuthError::OAuth(OAuthError::InvalidClient)),
        }
    }

    /// RFC 8628, section 3.1: a device asks to check in. Unknown clients get
    /// [`OAuthError::InvalidClient`]; each request counts against the check-in limit of its
    /// address.
    #[tracing::instrument(skip_all, fields(client = %client_id))]
    pub async fn device_authorization(
        &self,
        client_id: &str,
        client: &ClientInfo,
    ) -> Result<DeviceAuthorization, AuthError> {
        self.known_client(client_id)?;
        self.inner.throttle.login_from(client.address).map_err(AuthError::TooManyRequests)?;
        let now = self.now();
        let ttl = self.inner.policy.device_code_ttl_secs;
        let device_code = random_id();
        // A user code still on record (about one in 25 billion per request kept): draw again.
        for _ in 0..5 {
            let grant = DeviceGrant {
                device_code_hash: confirmation::hash_id(&device_code),
                user_code: new_user_code(),
                client_id: client_id.to_owned(),
                requested_from: client.address.map(|a| a.to_string()),
                user_agent: client.user_agent.as_deref().map(|ua| ua.chars().take(200).collect()),
                created_at: now,
                expires_at: now + ttl,
                interval_secs: POLL_INTERVAL_SECS,
                last_polled_at: None,
                polled_too_fast: false,
                state: DeviceGrantState::Pending,
                guest_id: None,
                decided_at: None,
            };
            if self.inner.store.create_device_grant(&grant).await? {
                tracing::info!("device authorization requested");
                return Ok(DeviceAuthorization {
                    device_code,
                    user_code: grant.user_code,
                    expires_in: ttl,
                    interval: POLL_INTERVAL_SECS,
                });
            }
        }
        Err(AuthError::Internal("no free user code after five draws".into()))
    }

    /// The device request behind `user_code`, for the guest to check before deciding. Every
    /// look-up counts against the guest's budget of guesses (RFC 8628, section 5.1).
    pub async fn device_request(
        &self,
        guest: &CheckedInGuest,
        user_code: &str,
    ) -> Result<DeviceRequestView, AuthError> {
        self.inner.throttle.device(guest.guest_id()).map_err(AuthError::TooManyRequests)?;
        let code = normalize_user_code(user_code).ok_or(AuthError::DeviceCodeUnknown)?;
        let grant = self.inner.store.device_grant_by_user_code(&code).await?;
        Ok(self.device_view(&grant.ok_or(AuthError::DeviceCodeUnknown)?))
    }

    fn device_view(&self, grant: &DeviceGrant) -> DeviceRequestView {
        let expired = grant.state == DeviceGrantState::Pending && self.now() >= grant.expires_at;
        DeviceRequestView {
            user_code: grant.user_code.clone(),
            client_id: grant.client_id.clone(),
            client_name: self.native_client(&grant.client_id).unwrap_or("an unknown client").into(),
            requested_from: grant.requested_from.clone(),
            user_agent: grant.user_agent.clone(),
            created_at: grant.created_at,
            expires_at: grant.expires_at,
            state: if expired { "expired".into() } else { grant.state.as_str().into() },
        }
    }

    /// The guest approves (or denies) the device request behind `user_code`: an approved device
    /// gets a booking of its own for this guest at its next poll. A code that is unknown, or no
    /// longer pending (decided, used, expired), is [`AuthError::DeviceCodeUnknown`].
    #[tracing::instrument(skip_all, fields(guest = %guest.guest_id(), approve))]
    pub async fn decide_device(
        &self,
        guest: &CheckedInGuest,
        user_code: &str,
        approve: bool,
    ) -> Result<DeviceRequestView, AuthError> {
        guest.may_act()?;
        self.inner.throttle.device(guest.guest_id()).map_err(AuthError::TooManyRequests)?;
        let code = normalize_user_code(user_code).ok_or(AuthError::DeviceCodeUnknown)?;
        let state = if approve { DeviceGrantState::Approved } else { DeviceGrantState::Denied };
        let store = &self.inner.store;
        let decided = store.decide_device_grant(&code, guest.guest_id(), state, self.now()).await?;
        let grant = decided.ok_or(AuthError::DeviceCodeUnknown)?;
        tracing::info!(client = %grant.client_id, "device request decided");
        let view = self.device_view(&grant);
        // On the deciding booking's timeline: the approval is a check-in by other means.
        let event = NewEvent {
            at: self.now(),
            kind: if approve { EventKind::DeviceApproved } else { EventKind::DeviceDenied },
            generation: None,
            detail: Some(format!(
                "{} ({}), asked from {}",
                view.client_name,
                view.user_code,
                view.requested_from.as_deref().unwrap_or("an unknown address")
            )),
        };
        self.transact(guest.booking_id(), move |_| {
            let events = vec![event.clone()];
            (SessionChange { update: SessionUpdate::Keep, events }, ())
        })
        .await?;
        Ok(view)
    }

    /// RFC 8628, section 3.4: the device polls with its code. Once approved it gets a key card
    /// and confirmation of a new booking for its client (bound to its DPoP key if it proves
    /// one); the code works once.
    #[tracing::instrument(skip_all, fields(client = %client_id))]
    pub async fn device_token(
        &self,
        device_code: &str,
        client_id: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        use OAuthError::*;
        self.known_client(client_id)?;
        let now = self.now();
        let hash = confirmation::hash_id(device_code);
        let polled = self.inner.store.poll_device_grant(&hash, now).await?;
        // Another client's code is no code at all to this one.
        let grant = polled.filter(|g| g.client_id == client_id);
        let grant = grant.ok_or(AuthError::OAuth(InvalidGrant))?;
        let refuse = |e| Err(AuthError::OAuth(e));
        match grant.state {
            DeviceGrantState::Used => refuse(InvalidGrant),
            DeviceGrantState::Denied => refuse(AccessDenied),
            _ if now >= grant.expires_at => refuse(ExpiredToken),
            DeviceGrantState::Pending if grant.polled_too_fast => refuse(SlowDown),
            DeviceGrantState::Pending => refuse(AuthorizationPending),
            DeviceGrantState::Approved => {
                // Before the code is spent: a client that cannot prove its key may try again.
                let jkt = self.proved_key(client).await?;
                let guest_id = self.inner.store.claim_device_grant(&hash).await?;
                let guest_id = guest_id.ok_or(AuthError::OAuth(InvalidGrant))?;
                let guest = self.inner.store.guest(&guest_id).await?;
                let guest = guest.ok_or(AuthError::OAuth(InvalidGrant))?;
                self.start_session(&guest, client, jkt, Some(client_id)).await
            }
        }
    }

    /// A native client's front desk (RFC 6749, section 6): its refresh token, shown in the
    /// request body, exchanged for a new key card and refresh token by the same rules as the
    /// browser's ([`FrontDesk::refresh`]): rotation, the grace window, and the whole booking
    /// cancelled when an old one comes back. A browser's confirmation is refused here, and a
    /// native client's at the browser's desk.
    pub async fn refresh_native(
        &self,
        refresh_token: &str,
        client_id: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        self.known_client(client_id)?;
        self.visit(refresh_token, client, Some(client_id)).await
    }

    /// Forgets the device requests that expired over an hour ago (housekeeping).
    pub(super) async fn forget_device_grants(&self) {
        let before = self.now() - KEPT_AFTER_EXPIRY_SECS;
        if let Err(e) = self.inner.store.forget_device_grants(before).await {
            tracing::warn!(error = %e, "could not forget the expired device requests");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_as_typed() {
        let table = [
            ("BCDF-GHJK", Some("BCDF-GHJK")),
            ("bcdfghjk", Some("BCDF-GHJK")),
            (" bcdf ghjk ", Some("BCDF-GHJK")),
            ("BCDF-GHJ", None),
            ("BCDF-GHJKL", None),
            // Vowels and digits are not in the alphabet (no words, no 0/O or 1/I).
            ("BCDF-GHJA", None),
            ("BCDF-GHJ1", None),
            ("", None),
            ("ÀBCD-FGHJ", None),
        ];
        for (typed, expected) in table {
            assert_eq!(normalize_user_code(typed).as_deref(), expected, "{typed:?}");
        }
        for _ in 0..100 {
            let code = new_user_code();
            assert_eq!(normalize_user_code(&code), Some(code.clone()));
        }
    }
}
