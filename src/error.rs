//! The core's one error type. The HTTP layer maps each variant to a status and a stable code;
//! [`AuthError::Internal`] is logged once there and shown to clients as a generic message.

use crate::jwt::TokenError;
use crate::passwords::PolicyError;
use crate::throttle::RetryAfter;

/// Why the front desk said no.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("usernames are 3 to 32 characters of letters, digits, '_', '.' and '-'")]
    /// The username breaks the rules (3 to 32 of `A-Z a-z 0-9 _ . -`).
    InvalidUsername,
    #[error("{0}")]
    /// The new password breaks the password policy.
    WeakPassword(#[from] PolicyError),
    #[error("that username is taken")]
    /// Another guest has that username (case aside).
    UsernameTaken,
    /// Unknown guest or wrong password: deliberately one answer.
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("too many attempts; try again in {} s", .0.secs())]
    /// Too many attempts: try again after the wait.
    TooManyRequests(RetryAfter),
    #[error("key card refused: {0}")]
    /// The key card was refused (expired, forged, for someone else...).
    KeyCard(TokenError),
    #[error("booking confirmation refused: {0}")]
    /// The booking confirmation was refused.
    Confirmation(TokenError),
    /// The confirmation is a genuine one of this booking but not its current one: a replay.
    #[error("this booking confirmation was already used; the booking is cancelled")]
    ReuseDetected,
    #[error("the booking was cancelled")]
    /// The booking was ended (checked out, revoked, cancelled for theft).
    SessionRevoked,
    #[error("the booking has expired")]
    /// The booking outlived its idle or absolute limit.
    SessionExpired,
    #[error("no such booking")]
    /// No such booking, or not the guest's.
    SessionNotFound,
    /// The forge lab was shown a token of another booking: it explains only the caller's own.
    #[error("the lab explains only the tokens of your own booking, and forgeries of them")]
    NotYourBooking,
    /// A DPoP proof was refused, missing where the key card or booking is bound to a key, or
    /// sent with a key card bound to none.
    #[error("DPoP: {} ({})", .0, .0.section())]
    Dpop(crate::dpop::ProofError),
    /// No device request waiting for a decision has that user code (mistyped, expired, or
    /// decided already).
    #[error("no device is waiting for that code: check it, or start again on the device")]
    DeviceCodeUnknown,
    /// A refusal of the token endpoint, by its name in RFC 6749 and RFC 8628.
    #[error("{code}: {0}", code = .0.code())]
    OAuth(crate::front_desk::OAuthError),
    #[error("the demo controls are turned off")]
    /// A demo control was asked for while they are turned off.
    DemoDisabled,
    /// The database is unreachable or not answering in time; a retry shortly may work.
    #[error("the hotel's records are unavailable for a moment; try again shortly")]
    Unavailable(String),
    #[error("internal error: {0}")]
    /// Something broke on the server; the detail is for the log, never for the client.
    Internal(String),
}

impl From<crate::storage::StoreError> for AuthError {
    fn from(e: crate::storage::StoreError) -> Self {
        match e {
            crate::storage::StoreError::UsernameTaken => Self::UsernameTaken,
            crate::storage::StoreError::Unavailable(e) => Self::Unavailable(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<crate::passwords::HashError> for AuthError {
    fn from(e: crate::passwords::HashError) -> Self {
        Self::Internal(e.to_string())
    }
}
