//! DPoP proofs at the spa's door: `keycard-dpop` checks each proof (RFC 9449, section 4.3), and
//! this service remembers the proofs it accepted until they are too old to be accepted anyway,
//! so that none is accepted twice.
//!
//! In memory, because the spa is one process. Several instances of it behind a load balancer
//! would each accept a proof once: they would need a store they share (the hotel keeps its own
//! in its database for that reason).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keycard_dpop::{Expected, ProofError};

/// Proofs accepted lately, by key thumbprint and `jti`, with when each may be forgotten.
#[derive(Clone, Default)]
pub struct SeenProofs(Arc<Mutex<HashMap<(String, String), i64>>>);

/// Above this many remembered proofs, the expired ones are dropped before a new one is added.
const PRUNE_ABOVE: usize = 10_000;

impl SeenProofs {
    /// Checks the request's one `DPoP` proof for `method` and `url`, over `access_token`, made
    /// by the key `jkt`; remembers it if it passes.
    pub fn check<'a>(
        &self,
        sent: impl IntoIterator<Item = &'a str>,
        method: &str,
        url: &str,
        access_token: &str,
        jkt: &str,
    ) -> Result<(), ProofError> {
        let proof = keycard_dpop::one_proof(sent)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let expected = Expected { method, url, access_token: Some(access_token), now };
        let proof = keycard_dpop::verify(proof, &expected)?;
        if proof.jkt != jkt {
            return Err(ProofError::WrongKey);
        }
        let mut seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() > PRUNE_ABOVE {
            seen.retain(|_, until| *until >= now);
        }
        let until = proof.remember_until();
        match seen.insert((proof.jkt, proof.jti), until) {
            Some(_) => Err(ProofError::Replayed),
            None => Ok(()),
        }
    }
}
