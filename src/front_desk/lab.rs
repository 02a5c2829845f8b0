//! The forge lab (feature `demo`): a token, or a DPoP proof, run through a door's own checks,
//! and the rule that refused it named. It opens nothing and changes nothing.

use super::rotation::{which_shown, Shown};
use super::FrontDesk;
use crate::confirmation;
use crate::door::CheckedInGuest;
use crate::dpop::{DpopProof, Presented, ProofError};
use crate::error::AuthError;
use crate::jwt::TokenError;

/// Which door the forge lab tries a token on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabDoor {
    /// An amenity: takes a key card, checked with the public keys alone.
    Amenity,
    /// The front desk: takes a booking confirmation.
    FrontDesk,
}

/// Where the forge lab's token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabSource {
    /// Typed or pasted by the learner.
    Shown,
    /// The booking confirmation cookie the browser sent with the request: the caller's own.
    ConfirmationCookie,
}

/// What the forge lab found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabVerdict {
    /// Every rule holds: the hotel's own token, unchanged (and, at the front desk, the booking's
    /// current confirmation). The lab opens nothing with it.
    Opens,
    /// A genuine booking confirmation, but not the booking's current one: shown at the front
    /// desk it would cancel the booking.
    Replayed,
    /// The rule that refused it, as the door itself says.
    Refused(TokenError),
    /// The DPoP rule that refused the proof that came with the key card.
    ProofRefused(ProofError),
}

/// What the forge lab found: the door's verdict and, for a broken signature, the claims that
/// would have been refused next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabFinding {
    /// The door's own answer.
    pub verdict: LabVerdict,
    /// Rules the claims break, read without verification (after [`TokenError::BadSignature`]).
    pub also: Vec<TokenError>,
}

impl From<LabVerdict> for LabFinding {
    fn from(verdict: LabVerdict) -> Self {
        Self { verdict, also: Vec::new() }
    }
}

/// A token's payload, unverified: for the lab's explanations only, never for a decision to admit.
fn unverified_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The booking (`sid`) a token's payload names, unverified; `None` when it names none.
fn claimed_booking(token: &str) -> Option<String> {
    Some(unverified_claims(token)?.get("sid")?.as_str()?.to_owned())
}

impl FrontDesk {
    /// Demo: the forge lab. Runs `token` through `door`'s own checks and says which rule refused
    /// it. It opens nothing and changes nothing: the browser's own booking confirmation
    /// ([`LabSource::ConfirmationCookie`]) is compared with the booking's current one, never
    /// exchanged. Only the caller's own booking's tokens, and
    /// forgeries of them, are explained ([`AuthError::NotYourBooking`] otherwise), at most
    /// [`LAB_PER_BOOKING_PER_MINUTE`](crate::throttle::LAB_PER_BOOKING_PER_MINUTE) a minute.
    pub async fn lab_try(
        &self,
        guest: &CheckedInGuest,
        token: &str,
        door: LabDoor,
        source: LabSource,
    ) -> Result<LabFinding, AuthError> {
        // A page view's pass renders; it never changes anything.
        guest.may_act()?;
        self.demo_allowed()?;
        let mine = guest.booking_id();
        self.inner.throttle.lab(mine).map_err(AuthError::TooManyRequests)?;
        // What the token claims, unverified: enough to turn away another booking's tokens before
        // saying anything about them (the lab must not become an oracle for stolen tokens).
        if claimed_booking(token).is_some_and(|sid| sid != mine) {
            return Err(AuthError::NotYourBooking);
        }
        let policy = &self.inner.policy;
        let clock = &self.inner.clock;
        match door {
            // The key card's own rules, bound to a key or not (its proof is the other lab's).
            LabDoor::Amenity => match self.read_key_card(token) {
                Ok(card) if card.booking_id() == mine => Ok(LabVerdict::Opens.into()),
                Ok(_) => Err(AuthError::NotYourBooking),
                Err(AuthError::KeyCard(e)) => {
                    // The door stops at the first broken rule, the signature before any claim;
                    // the lab also says which claims would have failed had the signature held.
                    let also = if e == TokenError::BadSignature {
                        self.claims_that_would_fail(token)
                    } else {
                        Vec::new()
                    };
                    Ok(LabFinding { verdict: LabVerdict::Refused(e), also })
                }
                Err(e) => Err(e),
            },
            LabDoor::FrontDesk => {
                let verified = self.with_keys(|keys| {
                    confirmation::verify(token, keys.public(), &policy.issuer, clock)
                });
                let claims = match verified {
                    Ok((claims, _)) => claims,
                    Err(e) => return Ok(LabVerdict::Refused(e).into()),
                };
                if claims.sid != mine {
                    return Err(AuthError::NotYourBooking);
                }
                // Only the browser's own confirmation is compared with the booking's current one:
                // for a pasted one that could only have come from elsewhere, "still current or
                // not" is what a thief would like to learn without tripping the alarm.
                if source != LabSource::ConfirmationCookie {
                    return Ok(LabVerdict::Opens.into());
                }
                // The front desk's own rule (`decide`): the current one, or its predecessor
                // within the grace window, is answered; anything older cancels the booking.
                let presented = confirmation::hash_id(&claims.jti);
                let shown =
                    which_shown(guest.record(), &claims, &presented, self.now(), &policy.lifetimes);
                let verdict = match shown {
                    Shown::Current | Shown::PredecessorInGrace => LabVerdict::Opens,
                    Shown::Older => LabVerdict::Replayed,
                };
                Ok(verdict.into())
            }
        }
    }

    /// Demo: the forge lab's proofs. Runs the caller's own key card with `proof` (made, or
    /// forged, by the page) through the gym door's DPoP checks, and says which rule refused it.
    /// The proof's `jti` is remembered like any other, so a proof tried here cannot be used at a
    /// real door afterwards (and one already used is refused here as a replay).
    pub async fn lab_try_proof(
        &self,
        guest: &CheckedInGuest,
        key_card: &str,
        proof: &DpopProof,
    ) -> Result<LabFinding, AuthError> {
        guest.may_act()?;
        self.demo_allowed()?;
        let mine = guest.booking_id();
        self.inner.throttle.lab(mine).map_err(AuthError::TooManyRequests)?;
        if claimed_booking(key_card).is_some_and(|sid| sid != mine) {
            return Err(AuthError::NotYourBooking);
        }
        match self.amenity_door(Presented::Dpop { key_card, proof }).await {
            Ok(card) if card.booking_id() == mine => Ok(LabVerdict::Opens.into()),
            Ok(_) => Err(AuthError::NotYourBooking),
            Err(AuthError::Dpop(e)) => Ok(LabVerdict::ProofRefused(e).into()),
            Err(AuthError::KeyCard(e)) => Ok(LabVerdict::Refused(e).into()),
            Err(e) => Err(e),
        }
    }

    /// The key card rules a token's claims break, read without verifying it (for the lab only).
    fn claims_that_would_fail(&self, token: &str) -> Vec<TokenError> {
        let Some(claims) = unverified_claims(token) else { return Vec::new() };
        let policy = &self.inner.policy;
        let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let mut fails = Vec::new();
        if text("iss").as_deref() != Some(policy.issuer.as_str()) {
            fails.push(TokenError::WrongIssuer);
        }
        let aud_ok = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => *a == policy.audience,
            Some(serde_json::Value::Array(list)) => {
                list.iter().any(|a| a.as_str() == Some(policy.audience.as_str()))
            }
            _ => false,
        };
        if !aud_ok {
            fails.push(TokenError::WrongAudience);
        }
        match claims.get("exp").and_then(|v| v.as_i64()) {
            Some(exp) if self.now() >= exp.saturating_add(crate::jwt::LEEWAY_SECS) => {
                fails.push(TokenError::Expired)
            }
            Some(_) => {}
            None => fails.push(TokenError::Invalid),
        }
        fails
    }
}
