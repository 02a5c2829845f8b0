//! A client's DPoP key: an Ed25519 key pair that signs a proof for each request.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use rand::RngCore;
use serde_json::{json, Value};

use crate::{access_token_hash, normalize_url, TYPE};

/// An Ed25519 key pair that makes DPoP proofs. Not `Debug` and not `Clone`: it holds the private
/// key, which never leaves the client.
pub struct ProofKey {
    signing: SigningKey,
    /// The public key as the proofs' `jwk` header carries it.
    jwk: Value,
    jkt: String,
}

impl ProofKey {
    /// A new key pair from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Self::from_secret(secret)
    }

    /// The key pair whose private key is `secret` (what [`ProofKey::secret`] gave, kept by a
    /// client between runs).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&secret);
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        // RFC 7638: the required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let jkt = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(canonical));
        let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": x });
        Self { signing, jwk, jkt }
    }

    /// The private key, for a client that keeps its key between runs (in a file only its user
    /// can read).
    pub fn secret(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The RFC 7638 thumbprint of the public key: the `cnf.jkt` of the tokens bound to it.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// A proof for one request: `method` to `url` at `now` (Unix seconds), with the hash of
    /// `access_token` when one is sent with it.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>, now: i64) -> String {
        let header = json!({ "typ": TYPE, "alg": "EdDSA", "jwk": self.jwk });
        let mut jti = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut jti);
        let mut claims = json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method,
            "htu": normalize_url(url).unwrap_or_else(|| url.to_owned()),
            "iat": now,
        });
        if let Some(token) = access_token {
            claims["ath"] = json!(access_token_hash(token));
        }
        let mut proof = URL_SAFE_NO_PAD.encode(header.to_string());
        proof.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut proof);
        let signature = self.signing.sign(proof.as_bytes());
        proof.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut proof);
        proof
    }
}
