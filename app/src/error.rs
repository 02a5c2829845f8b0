//! The one error every server function returns. It crosses the wire as
//! `{ "error": code, "message": text }` and its code decides the HTTP status.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

/// A stable, machine-readable reason. Clients branch on it; the message is for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    InvalidUsername,
    WeakPassword,
    UsernameTaken,
    InvalidCredentials,
    TooManyRequests,
    /// No key card came with the request.
    KeyCardMissing,
    /// The key card is genuine but expired: go to the front desk and retry.
    KeyCardExpired,
    KeyCardInvalid,
    ConfirmationMissing,
    ConfirmationExpired,
    ConfirmationInvalid,
    /// An old booking confirmation came back: the booking is cancelled.
    ReuseDetected,
    /// A DPoP proof was refused, or missing where the key card or booking is bound to a key
    /// (RFC 9449): `rule` names the check.
    InvalidDpopProof,
    SessionRevoked,
    SessionExpired,
    NotFound,
    ForbiddenOrigin,
    /// The forge lab was shown a token of another booking.
    NotYourBooking,
    PayloadTooLarge,
    DemoDisabled,
    /// No device is waiting for that user code (mistyped, expired or decided already).
    DeviceCodeUnknown,
    /// The request never reached the server or its answer never came back (client side only).
    Network,
    /// The server could not answer within its request timeout (`KEYCARD_REQUEST_TIMEOUT_SECS`).
    Timeout,
    /// The database is unreachable or not answering (restarting, failing over): try again.
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Every code the server can send: all but [`ErrorCode::Network`], which the client makes up
    /// when no answer came. The OpenAPI description lists exactly these (a test checks).
    pub const SENT_BY_SERVER: [ErrorCode; 25] = [
        Self::BadRequest,
        Self::InvalidUsername,
        Self::WeakPassword,
        Self::UsernameTaken,
        Self::InvalidCredentials,
        Self::TooManyRequests,
        Self::KeyCardMissing,
        Self::KeyCardExpired,
        Self::KeyCardInvalid,
        Self::ConfirmationMissing,
        Self::ConfirmationExpired,
        Self::ConfirmationInvalid,
        Self::ReuseDetected,
        Self::InvalidDpopProof,
        Self::SessionRevoked,
        Self::SessionExpired,
        Self::NotFound,
        Self::ForbiddenOrigin,
        Self::NotYourBooking,
        Self::PayloadTooLarge,
        Self::DemoDisabled,
        Self::DeviceCodeUnknown,
        Self::Timeout,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The HTTP status this code is sent with.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest | Self::InvalidUsername | Self::WeakPassword => 400,
            Self::InvalidCredentials
            | Self::KeyCardMissing
            | Self::KeyCardExpired
            | Self::KeyCardInvalid
            | Self::ConfirmationMissing
            | Self::ConfirmationExpired
            | Self::ConfirmationInvalid
            | Self::ReuseDetected
            | Self::InvalidDpopProof
            | Self::SessionRevoked
            | Self::SessionExpired => 401,
            Self::ForbiddenOrigin | Self::NotYourBooking => 403,
            Self::NotFound | Self::DemoDisabled | Self::DeviceCodeUnknown => 404,
            Self::UsernameTaken => 409,
            Self::PayloadTooLarge => 413,
            Self::TooManyRequests => 429,
            Self::Network | Self::Timeout | Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// The code as it appears on the wire, e.g. `key_card_expired`.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// True when the booking is over and the guest must check in again.
    pub fn ends_booking(self) -> bool {
        matches!(
            self,
            Self::ReuseDetected
                | Self::SessionRevoked
                | Self::SessionExpired
                | Self::ConfirmationMissing
                | Self::ConfirmationExpired
                | Self::ConfirmationInvalid
        )
    }
}

/// The error body of every `/api` endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub error: ErrorCode,
    pub message: String,
    /// Seconds to wait, with [`ErrorCode::TooManyRequests`] (also sent as `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The DPoP rule that refused the request (`htu`, `jti`, `key`, `cnf`…), with
    /// [`ErrorCode::InvalidDpopProof`], or [`ErrorCode::KeyCardInvalid`] for a key card bound to
    /// no key shown with the DPoP scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl ApiError {
    pub fn new(error: ErrorCode, message: impl Into<String>) -> Self {
        Self { error, message: message.into(), retry_after: None, rule: None }
    }

    pub fn status(&self) -> u16 {
        self.error.status()
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => {
                Self::new(ErrorCode::BadRequest, format!("the request's fields are invalid: {m}"))
            }
            ServerFnErrorErr::Registration(_) | ServerFnErrorErr::UnsupportedRequestMethod(_) => {
                Self::new(ErrorCode::NotFound, "no such endpoint")
            }
            ServerFnErrorErr::Request(m) => {
                Self::new(ErrorCode::Network, format!("the request failed: {m}"))
            }
            ServerFnErrorErr::Deserialization(m) => {
                Self::new(ErrorCode::BadRequest, format!("the body could not be read: {m}"))
            }
            ServerFnErrorErr::ServerError(_)
            | ServerFnErrorErr::MiddlewareError(_)
            | ServerFnErrorErr::Serialization(_)
            | ServerFnErrorErr::Response(_) => {
                Self::new(ErrorCode::Internal, "something went wrong")
            }
        }
    }
}
