//! # keycard-dpop: DPoP proofs (RFC 9449)
//!
//! A DPoP proof is a small JWT a client signs, for one request, with a key pair of its own: it
//! names the request's method (`htm`) and URL (`htu`), when it was made (`iat`), a unique id
//! (`jti`) and, when a token goes with it, the token's hash (`ath`); its header carries the
//! public key (`jwk`). A server that binds a token to that key (the token's `cnf.jkt` is the
//! key's RFC 7638 thumbprint) then accepts the token only with a fresh proof signed by the same
//! key: a copied token alone opens nothing.
//!
//! [`verify`] runs the checks of RFC 9449, section 4.3 that need nothing but the proof and the
//! request. Two need more, and are the caller's: that the `jti` was never seen before (a store
//! every instance shares, kept [`MAX_AGE_SECS`]; see [`Proof::jti`]) and that the key is the
//! one the token is bound to (compare [`Proof::jkt`] with the token's `cnf.jkt`). [`ProofKey`]
//! makes proofs, for clients.
//!
//! Built on `jsonwebtoken`, which verifies ES256 and EdDSA signatures with a JWK and computes
//! RFC 7638 thumbprints; nothing of Keycard's tokens is known here.

mod key;

pub use key::ProofKey;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The proof's `typ` header.
pub const TYPE: &str = "dpop+jwt";

/// The signature algorithms accepted, asymmetric only (RFC 9449, 4.3 (5)): what a server
/// advertises in `WWW-Authenticate: DPoP algs="…"` and `dpop_signing_alg_values_supported`.
pub const ALGORITHMS: [&str; 2] = ["ES256", "EdDSA"];

/// A proof made longer ago than this is refused, and its `jti` need be remembered no longer.
pub const MAX_AGE_SECS: i64 = 60;

/// A proof dated this far in the future is still accepted (the client's clock may run ahead).
pub const MAX_AHEAD_SECS: i64 = 5;

/// Proofs longer than this are refused before any parsing.
pub const MAX_PROOF_BYTES: usize = 4096;

/// The longest `jti` accepted.
pub const MAX_JTI_CHARS: usize = 128;

/// Why a proof was refused: one rule of RFC 9449, section 4.3 (or 11.1 for a replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// No `DPoP` header.
    #[error("no DPoP proof came with the request")]
    Missing,
    /// More than one `DPoP` header (4.3 (1)).
    #[error("more than one DPoP proof came with the request")]
    Multiple,
    /// Not a JWT, or too long (4.3 (2)).
    #[error("the DPoP proof is not a well-formed JWT")]
    Malformed,
    /// `jti`, `htm`, `htu` or `iat` missing or of the wrong kind (4.3 (3)).
    #[error("the DPoP proof lacks a required claim (jti, htm, htu, iat)")]
    MissingClaim,
    /// `typ` is not `dpop+jwt` (4.3 (4)).
    #[error("the DPoP proof's typ is not dpop+jwt")]
    WrongType,
    /// Not ES256 or EdDSA: `none`, a symmetric algorithm, or one this server does not accept
    /// (4.3 (5)).
    #[error("the DPoP proof is not signed with an accepted asymmetric algorithm (ES256, EdDSA)")]
    Algorithm,
    /// No public key in the header, or not one of the algorithm's kind (4.3 (6)).
    #[error("the DPoP proof's jwk header is missing or is not a key for its algorithm")]
    BadKey,
    /// The header's key contains private members (4.3 (7)).
    #[error("the DPoP proof's jwk header holds a private key")]
    PrivateKey,
    /// The signature was not made by the header's key over this header and payload (4.3 (6)).
    #[error("the DPoP proof's signature does not verify with its own jwk")]
    BadSignature,
    /// `htm` is not the request's method (4.3 (8)).
    #[error("the DPoP proof was made for another HTTP method")]
    WrongMethod,
    /// `htu` is not the request's URL, query and fragment aside (4.3 (9)).
    #[error("the DPoP proof was made for another URL")]
    WrongUrl,
    /// `iat` too long ago, or too far ahead (4.3 (11)).
    #[error("the DPoP proof was made too long ago, or in the future")]
    IssuedAt,
    /// `ath` missing or not the hash of the token sent with it (4.3 (12)).
    #[error("the DPoP proof's ath is missing or is not the hash of the token sent with it")]
    AccessTokenHash,
    /// Its `jti` was seen before (11.1).
    #[error("the DPoP proof was used before (its jti was seen)")]
    Replayed,
    /// Signed by another key than the one the token is bound to (4.3 (12), and 5 for a
    /// refresh token).
    #[error("the DPoP proof was signed by another key than the one the token is bound to")]
    WrongKey,
    /// A token bound to no key, presented with the DPoP scheme (7.1): it is a bearer token.
    #[error("the token is not bound to a key: present it as a Bearer token")]
    Unbound,
}

impl ProofError {
    /// The rule's short name, as the forge lab and the error answers name it.
    pub fn rule(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Multiple => "multiple",
            Self::Malformed => "malformed",
            Self::MissingClaim => "claims",
            Self::WrongType => "typ",
            Self::Algorithm => "alg",
            Self::BadKey => "jwk",
            Self::PrivateKey => "private_key",
            Self::BadSignature => "signature",
            Self::WrongMethod => "htm",
            Self::WrongUrl => "htu",
            Self::IssuedAt => "iat",
            Self::AccessTokenHash => "ath",
            Self::Replayed => "jti",
            Self::WrongKey => "key",
            Self::Unbound => "cnf",
        }
    }

    /// Where RFC 9449 writes the rule.
    pub fn section(self) -> &'static str {
        match self {
            Self::Missing => "RFC 9449, section 7.1",
            Self::Multiple => "RFC 9449, section 4.3, check 1",
            Self::Malformed => "RFC 9449, section 4.3, check 2",
            Self::MissingClaim => "RFC 9449, section 4.3, check 3",
            Self::WrongType => "RFC 9449, section 4.3, check 4",
            Self::Algorithm => "RFC 9449, section 4.3, check 5",
            Self::BadKey | Self::BadSignature => "RFC 9449, section 4.3, check 6",
            Self::PrivateKey => "RFC 9449, section 4.3, check 7",
            Self::WrongMethod => "RFC 9449, section 4.3, check 8",
            Self::WrongUrl => "RFC 9449, section 4.3, check 9",
            Self::IssuedAt => "RFC 9449, section 4.3, check 11",
            Self::AccessTokenHash | Self::WrongKey => "RFC 9449, section 4.3, check 12",
            Self::Replayed => "RFC 9449, section 11.1",
            Self::Unbound => "RFC 9449, section 7.1",
        }
    }
}

/// What the request a proof came with was.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// Its HTTP method, as sent (`POST`).
    pub method: &'a str,
    /// Its URL as the client addressed it (`https://hotel.example/api/auth/refresh`); a query
    /// and a fragment are ignored.
    pub url: &'a str,
    /// The access token sent with it, if any: the proof must carry its hash (`ath`).
    pub access_token: Option<&'a str>,
    /// The server's time, Unix seconds.
    pub now: i64,
}

/// A proof that passed every check [`verify`] can make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of its key, base64url: what a bound token's `cnf.jkt`
    /// must equal.
    pub jkt: String,
    /// Its unique id: the caller refuses it if seen before ([`ProofError::Replayed`]).
    pub jti: String,
    /// When it was made.
    pub iat: i64,
}

impl Proof {
    /// Until when its `jti` must be remembered: after that the proof is refused as too old.
    pub fn remember_until(&self) -> i64 {
        self.iat.saturating_add(MAX_AGE_SECS)
    }
}

/// The one proof among a request's `DPoP` header values (RFC 9449, 4.3 (1)).
pub fn one_proof<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<&'a str, ProofError> {
    let mut values = values.into_iter();
    match (values.next(), values.next()) {
        (None, _) => Err(ProofError::Missing),
        (Some(one), None) => Ok(one.trim()),
        (Some(_), Some(_)) => Err(ProofError::Multiple),
    }
}

/// Checks `proof` against the request it came with (RFC 9449, section 4.3), all but the `jti`
/// store and the token's binding (see the crate's documentation).
pub fn verify(proof: &str, expected: &Expected<'_>) -> Result<Proof, ProofError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(ProofError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(header), Some(_), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed);
    };
    let header: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(ProofError::Malformed)?;
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or_default();
    if !typ.eq_ignore_ascii_case(TYPE) {
        return Err(ProofError::WrongType);
    }
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default();
    if !ALGORITHMS.contains(&alg) || signature.is_empty() {
        return Err(ProofError::Algorithm);
    }
    let algorithm = if alg == "ES256" { Algorithm::ES256 } else { Algorithm::EdDSA };
    // A proof names its key in `jwk` and nowhere else: headers that fetch or choose a key, or
    // demand processing this check does not do, are refused.
    if ["crit", "jku", "x5u", "x5c"].iter().any(|name| header.contains_key(*name)) {
        return Err(ProofError::BadKey);
    }
    let raw_jwk = header.get("jwk").and_then(Value::as_object).ok_or(ProofError::BadKey)?;
    if ["d", "p", "q", "dp", "dq", "qi", "oth", "k"].iter().any(|m| raw_jwk.contains_key(*m)) {
        return Err(ProofError::PrivateKey);
    }
    let jwk: Jwk =
        serde_json::from_value(Value::Object(raw_jwk.clone())).map_err(|_| ProofError::BadKey)?;
    let jkt = thumbprint_for(&jwk, algorithm).ok_or(ProofError::BadKey)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| ProofError::BadKey)?;

    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Map<String, Value>>(proof, &key, &validation)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => ProofError::BadSignature,
                ErrorKind::InvalidAlgorithm => ProofError::Algorithm,
                ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidKeyFormat => ProofError::BadKey,
                ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                    ProofError::Malformed
                }
                _ => ProofError::BadSignature,
            }
        })?
        .claims;

    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let (Some(jti), Some(htm), Some(htu), Some(iat)) =
        (text("jti"), text("htm"), text("htu"), claims.get("iat").and_then(Value::as_i64))
    else {
        return Err(ProofError::MissingClaim);
    };
    if jti.is_empty() || jti.chars().count() > MAX_JTI_CHARS {
        return Err(ProofError::MissingClaim);
    }
    if htm != expected.method {
        return Err(ProofError::WrongMethod);
    }
    match (normalize_url(htu), normalize_url(expected.url)) {
        (Some(theirs), Some(ours)) if theirs == ours => {}
        _ => return Err(ProofError::WrongUrl),
    }
    let age = expected.now.saturating_sub(iat);
    if !(-MAX_AHEAD_SECS..=MAX_AGE_SECS).contains(&age) {
        return Err(ProofError::IssuedAt);
    }
    if let Some(token) = expected.access_token {
        if text("ath") != Some(access_token_hash(token).as_str()) {
            return Err(ProofError::AccessTokenHash);
        }
    }
    Ok(Proof { jkt, jti: jti.to_owned(), iat })
}

/// A URL as RFC 9449 compares them (4.3 (9), with RFC 3986's syntax- and scheme-based
/// normalisation): scheme and host in lower case, no default port, dot segments resolved, and
/// no query or fragment. `None` when it is not an absolute `http(s)` URL.
pub fn normalize_url(url: &str) -> Option<String> {
    let mut url = url::Url::parse(url.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

/// `ath`: the base64url SHA-256 of an access token (RFC 9449, 4.2).
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// The RFC 7638 SHA-256 thumbprint of `jwk`, if it is a key for `algorithm`: an EC P-256 key
/// for ES256, an OKP Ed25519 key for EdDSA.
fn thumbprint_for(jwk: &Jwk, algorithm: Algorithm) -> Option<String> {
    let fits = match (&jwk.algorithm, algorithm) {
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256 && decodes_to(&ec.x, 32) && decodes_to(&ec.y, 32)
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
            okp.curve == EllipticCurve::Ed25519 && decodes_to(&okp.x, 32)
        }
        _ => false,
    };
    // Only a checked kind of key reaches the thumbprint, which panics on impossible curves.
    fits.then(|| jwk.thumbprint(ThumbprintHash::SHA256))
}

fn decodes_to(coordinate: &str, bytes: usize) -> bool {
    URL_SAFE_NO_PAD.decode(coordinate).is_ok_and(|b| b.len() == bytes)
}

#[cfg(test)]
mod tests;
