//! The key card: a short-lived access token (RFC 9068 JWT profile) that opens the room and the
//! amenities without asking the front desk.

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, Timestamp};
pub use crate::jwt::TokenError;
use crate::jwt::{self, TimeClaims};
use crate::keys::{KeySet, PublicKeys};

/// The JOSE `typ` of a key card (RFC 9068 §2.1).
pub const TYP: &str = "at+jwt";

/// What a key card says. Issued by [`issue`], read back by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCardClaims {
    /// Who issued it: this server.
    pub iss: String,
    /// The guest's id.
    pub sub: String,
    /// The API it opens.
    pub aud: String,
    /// When it stops opening doors.
    pub exp: Timestamp,
    /// When it was made.
    pub iat: Timestamp,
    /// Not valid before.
    pub nbf: Timestamp,
    /// Its own random id.
    pub jti: String,
    /// The application it was issued to (RFC 9068).
    pub client_id: String,
    /// The booking (session) it belongs to.
    pub sid: String,
    /// The guest's name, for display.
    pub preferred_username: String,
    /// The key it is bound to (RFC 7800 confirmation, RFC 9449): present only on a key card cut
    /// with a DPoP proof, which then opens a door only with a fresh proof of the same key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Cnf>,
    /// Claims of your own, added by [`FrontDesk::with_claims`](crate::FrontDesk::with_claims)
    /// (roles, a tier, a tenant). Never one of the names above: those are dropped.
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A key card's `cnf` claim: the key it only works with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cnf {
    /// The RFC 7638 SHA-256 thumbprint of the client's DPoP public key.
    pub jkt: String,
}

/// The claims a key card may carry; extra claims may not take these names.
pub const REGISTERED: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "sid",
    "preferred_username",
    "cnf",
];

impl KeyCardClaims {
    /// The thumbprint of the key this card is bound to, if it is bound (DPoP).
    pub fn bound_to(&self) -> Option<&str> {
        self.cnf.as_ref().map(|c| c.jkt.as_str())
    }
}

impl TimeClaims for KeyCardClaims {
    fn exp(&self) -> Timestamp {
        self.exp
    }
    fn iat(&self) -> Timestamp {
        self.iat
    }
    fn nbf(&self) -> Option<Timestamp> {
        Some(self.nbf)
    }
}

/// Who a key card is for, and for how long.
pub struct KeyCardRequest<'a> {
    /// The `iss` to sign.
    pub issuer: &'a str,
    /// The `aud` to sign.
    pub audience: &'a str,
    /// The `client_id` to sign.
    pub client_id: &'a str,
    /// The guest's id (`sub`).
    pub user_id: &'a str,
    /// The guest's name (`preferred_username`).
    pub username: &'a str,
    /// The booking's id (`sid`).
    pub session_id: &'a str,
    /// Seconds from now until `exp`.
    pub lifetime_secs: i64,
    /// Claims of your own; any of the [`REGISTERED`] names among them is dropped.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// The thumbprint of the DPoP key to bind the card to, if the client proved one.
    pub jkt: Option<&'a str>,
}

/// Cuts a new key card signed with the ring's current key.
pub fn issue(keys: &KeySet, req: &KeyCardRequest<'_>, now: Timestamp) -> (String, KeyCardClaims) {
    let mut extra = req.extra.clone();
    extra.retain(|name, _| !REGISTERED.contains(&name.as_str()));
    let claims = KeyCardClaims {
        iss: req.issuer.to_owned(),
        sub: req.user_id.to_owned(),
        aud: req.audience.to_owned(),
        exp: now + req.lifetime_secs,
        iat: now,
        nbf: now,
        jti: jwt::random_id(),
        client_id: req.client_id.to_owned(),
        sid: req.session_id.to_owned(),
        preferred_username: req.username.to_owned(),
        cnf: req.jkt.map(|jkt| Cnf { jkt: jkt.to_owned() }),
        extra,
    };
    (jwt::sign(keys, TYP, &claims), claims)
}

/// Checks a key card with the public keys alone: what any resource server can do.
pub fn verify(
    token: &str,
    keys: &PublicKeys,
    issuer: &str,
    audience: &str,
    clock: &Clock,
) -> Result<KeyCardClaims, TokenError> {
    jwt::verify(token, keys, TYP, issuer, audience, clock)
}

/// The `kid` a token's header names, unverified: for display only.
pub fn kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid)
}
