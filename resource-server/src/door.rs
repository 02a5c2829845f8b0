//! The door: checks a key card with the hotel's public keys alone, by the same rules as the hotel
//! (RFC 8725's advice, RFC 9068's access token profile):
//! at most 4 KiB; a signature; `alg` exactly `EdDSA`; no `crit`, `jku`, `x5u`, `x5c` or `jwk`
//! header (keys come from the configured JWKS URL, never from the token); `typ` `at+jwt` (so a
//! booking confirmation is refused); a `kid` the hotel publishes; `iss`, `aud`, `sub`, `exp`
//! present, issuer and audience as configured; not expired and not before `nbf`/`iat`, with 2 s
//! of leeway for clocks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

use crate::jwks::Jwks;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 2;
/// The JOSE `typ` of a key card.
pub const KEY_CARD_TYP: &str = "at+jwt";

/// What this service reads from a key card.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
    /// The booking the card belongs to.
    pub sid: String,
    #[serde(default)]
    pub preferred_username: String,
    /// The DPoP key the card is bound to (RFC 9449): then it opens this door only with a proof
    /// of that key.
    #[serde(default)]
    pub cnf: Option<Cnf>,
}

/// A key card's `cnf` claim.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cnf {
    /// The RFC 7638 thumbprint of the key.
    pub jkt: String,
}

/// Why a key card was refused. Only `Expired` is worth a trip to the front desk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no key card was presented")]
    Missing,
    #[error("the key card has expired")]
    Expired,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not the hotel's")]
    WrongAlgorithm,
    #[error("the token carries a header this service refuses (crit, jku, x5u, x5c or jwk)")]
    ForbiddenHeader,
    #[error("the token is not a key card")]
    WrongType,
    #[error("the token was signed by a key the hotel does not publish")]
    UnknownKey,
    #[error("the token's signature or claims are invalid")]
    Invalid,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token is not valid yet")]
    NotYetValid,
}

impl Refusal {
    /// The error code Keycard itself answers with.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "key_card_missing",
            Self::Expired => "key_card_expired",
            _ => "key_card_invalid",
        }
    }
}

/// Whom key cards must come from and be meant for.
#[derive(Clone, Debug)]
pub struct Expect {
    pub issuer: String,
    pub audience: String,
}

/// Checks `token`; the claims if every rule holds.
pub async fn check(token: &str, jwks: &Jwks, expect: &Expect) -> Result<Claims, Refusal> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Refusal::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    if signature.is_empty() {
        // An unsigned token, whatever its `alg` says.
        return Err(Refusal::WrongAlgorithm);
    }
    // The raw header, not jsonwebtoken's `Header`: that one drops members it does not know, and
    // an unknown `alg` would read as a parse error rather than the wrong algorithm.
    let header: serde_json::Map<String, serde_json::Value> = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(Refusal::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("EdDSA") {
        return Err(Refusal::WrongAlgorithm);
    }
    if ["crit", "jku", "x5u", "x5c", "jwk"].iter().any(|name| header.contains_key(*name)) {
        return Err(Refusal::ForbiddenHeader);
    }
    let typ = header.get("typ").and_then(|t| t.as_str()).unwrap_or_default();
    let typ = typ.strip_prefix("application/").unwrap_or(typ);
    if !typ.eq_ignore_ascii_case(KEY_CARD_TYP) {
        return Err(Refusal::WrongType);
    }
    let kid = header.get("kid").and_then(|k| k.as_str()).ok_or(Refusal::UnknownKey)?;
    let key = jwks.key(kid).await.ok_or(Refusal::UnknownKey)?;

    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(&[&expect.issuer]);
    validation.set_audience(&[&expect.audience]);
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => Refusal::Expired,
            ErrorKind::ImmatureSignature => Refusal::NotYetValid,
            ErrorKind::InvalidIssuer => Refusal::WrongIssuer,
            ErrorKind::InvalidAudience => Refusal::WrongAudience,
            ErrorKind::InvalidAlgorithm => Refusal::WrongAlgorithm,
            _ => Refusal::Invalid,
        })?
        .claims;
    // A card made in the future (beyond the leeway) is not valid yet either.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    if claims.iat > now + LEEWAY_SECS as i64 {
        return Err(Refusal::NotYetValid);
    }
    Ok(claims)
}
