//! Sender-constrained key cards (DPoP, RFC 9449): a key card that only works in the hand that
//! holds its key.
//!
//! A client that sends a DPoP proof ([`DpopProof`]) with its check-in gets a key card bound to
//! its key (`cnf.jkt`, [`crate::key_card::Cnf`]) and a booking bound to the same key (its
//! confirmation is exchanged only with a proof of that key: RFC 9449, section 5). A bound key
//! card opens a door only with `Authorization: DPoP` and a fresh proof over it ([`Presented`]):
//! a copy, of either token, opens nothing. Clients without a proof keep getting bearer key
//! cards, unless `KEYCARD_DPOP_REQUIRED` says otherwise.
//!
//! The proof's own checks are `keycard_dpop`'s; the front desk adds what needs the database:
//! each proof is accepted once across every instance (its `jti`, remembered in the shared
//! database for as long as the proof could be accepted).

use sha2::{Digest, Sha256};

pub use keycard_dpop::{
    access_token_hash, one_proof, Proof, ProofError, ProofKey, ALGORITHMS, MAX_AGE_SECS,
};

/// A DPoP proof as it arrived, with the request it came with: the method and the URL the client
/// addressed (the public URL, not an address behind a proxy). Its `Debug` leaves the proof out:
/// a log line never holds one.
#[derive(Clone, PartialEq, Eq)]
pub struct DpopProof {
    /// The `DPoP` header's value.
    pub proof: String,
    /// The request's method.
    pub method: String,
    /// The request's URL as the client addressed it.
    pub url: String,
}

impl std::fmt::Debug for DpopProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopProof")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("proof", &format_args!("({} bytes)", self.proof.len()))
            .finish()
    }
}

/// How a key card came to a door.
#[derive(Clone, Copy, Debug)]
pub enum Presented<'a> {
    /// `Authorization: Bearer`, or the key card cookie with a call: no proof. A bound key card
    /// is refused this way.
    Bearer(&'a str),
    /// `Authorization: DPoP` with a proof; only a bound key card is accepted this way.
    Dpop {
        /// The key card.
        key_card: &'a str,
        /// Its proof.
        proof: &'a DpopProof,
    },
    /// The key card cookie of a page load: a navigation cannot carry a proof, so a bound key
    /// card is accepted to render the guest's own page, and the pass it gives changes nothing
    /// ([`KeyCardHolder::view_only`](crate::KeyCardHolder::view_only)).
    PageView(&'a str),
}

impl Presented<'_> {
    /// The key card.
    pub fn key_card(&self) -> &str {
        match self {
            Self::Bearer(key_card) | Self::PageView(key_card) | Self::Dpop { key_card, .. } => {
                key_card
            }
        }
    }
}

/// The id a proof is remembered by: its key and `jti` together, hashed (a `jti` is the client's
/// choice, so one client cannot use up another's).
pub(crate) fn proof_id(proof: &Proof) -> String {
    let digest = Sha256::new().chain_update(&proof.jkt).chain_update(".").chain_update(&proof.jti);
    digest.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
