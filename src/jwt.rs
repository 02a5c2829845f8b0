//! The strict JWT rules shared by key cards and booking confirmations (RFC 8725).
//!
//! Before any signature check the header is inspected by hand, because a JWT library that
//! ignores header members it does not know would let `crit`, `jku` or `jwk` pass unnoticed.
//! Time claims are checked here against the core's [`Clock`] with a fixed leeway, rather than by
//! the library against the wall clock, so tests can move time and a learner's countdown matches
//! the server to the second.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::{Clock, Timestamp};
use crate::keys::{KeySet, PublicKeys};

/// Clock skew tolerated on `exp`, `nbf` and `iat`: a few seconds, not the usual 60, so a key card
/// stops opening doors when the learner's countdown reaches zero.
pub const LEEWAY_SECS: i64 = 2;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Why a token was refused. Only [`TokenError::Expired`] is worth a trip to the front desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    /// Not three base64url parts of JSON, or too long.
    Malformed,
    #[error("the token's algorithm is not the one this server signs with")]
    /// Not EdDSA, or not signed at all (`alg: none`).
    WrongAlgorithm,
    #[error("the token carries a header this server refuses (crit, jku, x5u, x5c or jwk)")]
    /// A header that would let the token choose its own key, or demand unknown processing.
    ForbiddenHeader,
    #[error("the token is of another type")]
    /// A key card shown as a confirmation, or the reverse.
    WrongType,
    #[error("the token was signed by a key this server does not hold")]
    /// No `kid`, or one this server does not publish.
    UnknownKey,
    #[error("the token's signature does not match its header and payload")]
    /// The signature was not made by the named key over these exact header and payload bytes:
    /// a changed claim, a changed header or a changed signature.
    BadSignature,
    #[error("the token's claims are missing, malformed or unknown")]
    /// A claim is missing or malformed.
    Invalid,
    #[error("the token was issued by someone else")]
    /// Another `iss`.
    WrongIssuer,
    #[error("the token is meant for another audience")]
    /// Another `aud`.
    WrongAudience,
    #[error("the token has expired")]
    /// Past its `exp` (with the leeway).
    Expired,
    #[error("the token is not valid yet")]
    /// Before its `nbf`/`iat` (with the leeway).
    NotYetValid,
}

/// The time claims every token carries.
pub trait TimeClaims {
    /// Expiry (Unix seconds).
    fn exp(&self) -> Timestamp;
    /// Issued at (Unix seconds).
    fn iat(&self) -> Timestamp;
    /// Not before (Unix seconds), if the token has it.
    fn nbf(&self) -> Option<Timestamp>;
}

/// Signs `claims` with the ring's current key, with header `typ` and `kid`: the JWS compact
/// serialization (RFC 7515, section 7.1), byte for byte what `jsonwebtoken::encode` makes with
/// the same key (Ed25519 signatures are deterministic; a test holds them equal).
///
/// Not through `jsonwebtoken::encode`, because its Ed25519 signer parses the key's PKCS#8 bytes
/// at every call and so derives the public key again: a second scalar multiplication for each
/// signature, and the front desk signs two tokens at every visit. The ring keeps the parsed key.
pub fn sign<C: Serialize>(keys: &KeySet, typ: &str, claims: &C) -> String {
    use ed25519_dalek::Signer;

    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(typ.to_owned());
    header.kid = Some(keys.current_kid().to_owned());
    // Neither can fail: plain structs with string keys.
    let header = serde_json::to_vec(&header).expect("a JWT header serializes");
    let claims = serde_json::to_vec(claims).expect("token claims serialize");
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut token);
    let signature = keys.signer().sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
    token
}

/// Verifies a token of type `typ` for audience `aud` from issuer `iss`, and returns its claims.
pub fn verify<C: DeserializeOwned + TimeClaims>(
    token: &str,
    keys: &PublicKeys,
    typ: &str,
    iss: &str,
    aud: &str,
    clock: &Clock,
) -> Result<C, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    if signature.is_empty() {
        // An unsigned token, whatever its `alg` says.
        return Err(TokenError::WrongAlgorithm);
    }
    let header: serde_json::Map<String, serde_json::Value> = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(TokenError::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("EdDSA") {
        return Err(TokenError::WrongAlgorithm);
    }
    if ["crit", "jku", "x5u", "x5c", "jwk"].iter().any(|name| header.contains_key(*name)) {
        return Err(TokenError::ForbiddenHeader);
    }
    let header_typ = header.get("typ").and_then(|t| t.as_str()).unwrap_or_default();
    let header_typ = header_typ.strip_prefix("application/").unwrap_or(header_typ);
    if !header_typ.eq_ignore_ascii_case(typ) {
        return Err(TokenError::WrongType);
    }
    let kid = header.get("kid").and_then(|k| k.as_str()).ok_or(TokenError::UnknownKey)?;
    let key = keys.get(kid).ok_or(TokenError::UnknownKey)?;

    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(&[iss]);
    validation.set_audience(&[aud]);
    let claims = jsonwebtoken::decode::<C>(token, &key.decoding, &validation)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::InvalidAudience => TokenError::WrongAudience,
                ErrorKind::InvalidAlgorithm => TokenError::WrongAlgorithm,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                // A part that is not base64url, or not JSON, is not a well-formed JWT.
                ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                    TokenError::Malformed
                }
                _ => TokenError::Invalid,
            }
        })?
        .claims;

    let now = clock.now();
    if now >= claims.exp().saturating_add(LEEWAY_SECS) {
        return Err(TokenError::Expired);
    }
    let not_before = claims.nbf().unwrap_or(claims.iat()).max(claims.iat());
    if not_before > now.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

/// 128 bits from the operating system's CSPRNG, base64url: for `jti`s, salts and session ids.
pub fn random_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use crate::key_card::{self, KeyCardRequest};
    use crate::keys::KeyRing;
    use proptest::prelude::*;
    use std::sync::{Arc, OnceLock};

    fn keys() -> Arc<KeySet> {
        static RING: OnceLock<(tempfile::TempDir, KeyRing)> = OnceLock::new();
        let (_, ring) = RING.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let ring = KeyRing::open(dir.path().join("k.json"), Mode::Development).unwrap();
            (dir, ring)
        });
        ring.current()
    }

    fn genuine(now: Timestamp) -> String {
        let req = KeyCardRequest {
            issuer: "iss",
            audience: "aud",
            client_id: "c",
            user_id: "u",
            username: "ann",
            session_id: "s",
            lifetime_secs: 60,
            extra: Default::default(),
            jkt: None,
        };
        key_card::issue(&keys(), &req, now).0
    }

    fn check(token: &str, clock: &Clock) -> Result<key_card::KeyCardClaims, TokenError> {
        key_card::verify(token, keys().public(), "iss", "aud", clock)
    }

    #[test]
    fn signing_makes_the_very_bytes_jsonwebtoken_makes() {
        let keys = keys();
        let claims = serde_json::json!({"sub": "ann", "exp": 1_000_060, "name": "Ann \u{e9}\"<>"});
        for typ in ["kc+jwt", "bc+jwt"] {
            let mut header = Header::new(Algorithm::EdDSA);
            header.typ = Some(typ.to_owned());
            header.kid = Some(keys.current_kid().to_owned());
            let theirs = jsonwebtoken::encode(&header, &claims, keys.signing_key()).unwrap();
            assert_eq!(sign(&keys, typ, &claims), theirs);
        }
    }

    #[test]
    fn a_genuine_token_verifies() {
        let clock = Clock::manual(1_000_000);
        assert!(check(&genuine(clock.now()), &clock).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_strings_never_panic_and_never_verify(s in "\\PC{0,600}") {
            let clock = Clock::manual(1_000_000);
            prop_assert!(check(&s, &clock).is_err());
        }

        #[test]
        fn dotted_base64_garbage_never_verifies(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,200}", c in "[A-Za-z0-9_-]{0,90}") {
            let clock = Clock::manual(1_000_000);
            let token = format!("{a}.{b}.{c}");
            prop_assert!(check(&token, &clock).is_err());
        }

        #[test]
        fn any_changed_character_breaks_a_genuine_token(index in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_.-]") {
            let clock = Clock::manual(1_000_000);
            let token = genuine(clock.now());
            let i = index.index(token.len());
            let mut forged = token.clone();
            forged.replace_range(i..i + 1, &replacement);
            // Base64url's last character may carry unused bits: a change there can decode to the
            // same bytes, which is the same token, not a forgery.
            let same_bytes = |t: &str| t.split('.').map(|p| URL_SAFE_NO_PAD.decode(p).ok()).collect::<Vec<_>>();
            prop_assume!(same_bytes(&forged) != same_bytes(&token));
            prop_assert!(check(&forged, &clock).is_err());
        }
    }
}
