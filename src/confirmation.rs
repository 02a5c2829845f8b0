//! The booking confirmation: a long-lived refresh token, shown only at the front desk.
//!
//! It is a signed JWT like the key card, so learners can decode both, but with its own `typ` and
//! audience so neither can pass for the other. Its `jti` is derived (see
//! [`KeySet::derive_id`](crate::keys::KeySet::derive_id)) and the database keeps only its hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::{Clock, Timestamp};
use crate::jwt::{self, TimeClaims, TokenError};
use crate::keys::{KeySet, PublicKeys};

/// The JOSE `typ` of a booking confirmation.
pub const TYP: &str = "refresh+jwt";

/// The audience of a booking confirmation: only the front desk accepts it.
pub const AUDIENCE: &str = "keycard-front-desk";

/// What a booking confirmation says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationClaims {
    /// Who issued it: this server.
    pub iss: String,
    /// The guest's id.
    pub sub: String,
    /// Who may read it: the front desk alone.
    pub aud: String,
    /// When the booking confirmation stops working (the booking's idle limit, capped by its absolute one).
    pub exp: Timestamp,
    /// When it was made.
    pub iat: Timestamp,
    /// Derived from the session's salt and generation; the database stores only its SHA-256.
    pub jti: String,
    /// The application it was issued to.
    pub client_id: String,
    /// The booking (session, token family) it belongs to.
    pub sid: String,
    /// How many times the booking has been rotated when this confirmation was made.
    pub generation: i64,
}

impl TimeClaims for ConfirmationClaims {
    fn exp(&self) -> Timestamp {
        self.exp
    }
    fn iat(&self) -> Timestamp {
        self.iat
    }
    fn nbf(&self) -> Option<Timestamp> {
        None
    }
}

/// Signs a confirmation. Ed25519 signatures are deterministic, so the same claims under the same
/// key give the very same token: the front desk relies on that inside the grace window.
pub fn sign(keys: &KeySet, claims: &ConfirmationClaims) -> String {
    jwt::sign(keys, TYP, claims)
}

/// Checks signature, type, issuer, audience and expiry. Whether the confirmation is still the
/// booking's current one is the front desk's business.
pub fn verify(
    token: &str,
    keys: &PublicKeys,
    issuer: &str,
    clock: &Clock,
) -> Result<ConfirmationClaims, TokenError> {
    jwt::verify(token, keys, TYP, issuer, AUDIENCE, clock)
}

/// The digest the database keeps in place of a confirmation's id.
pub fn hash_id(jti: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(jti.as_bytes()))
}
