//! The demo controls (feature `demo`): a thief who copies the booking confirmation or the key
//! card, a key card that expires in seconds, and a booking that lapses: the article's steps,
//! live, and what a key bound to the guest's browser (DPoP) changes.

use serde::Serialize;

use super::issue::{current_confirmation, Holder};
use super::{ClientInfo, FrontDesk};
use crate::clock::Timestamp;
use crate::confirmation;
use crate::door::{CheckedInGuest, KeyCardHolder};
use crate::dpop::{DpopProof, Presented, ProofError, ProofKey};
use crate::error::AuthError;
use crate::key_card::KeyCardClaims;
use crate::storage::{EventKind, NewEvent, SessionChange, SessionUpdate, StolenCopy};

/// What happened when the demo thief showed the copied confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThiefOutcome {
    /// The copy was still current: the thief now holds the booking's newest confirmation, and
    /// the guest's next visit to the front desk trips the alarm.
    GotIn,
    /// The copy was stale: the front desk recognised the replay and cancelled the booking.
    Caught,
    /// The booking was already over.
    TooLate,
    /// The booking is bound to the guest's DPoP key: the thief's copy, shown with a proof of
    /// the thief's own key, was refused, and the booking lives on (prevention, not detection).
    Stopped,
}

/// What a door said to the thief.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum DoorAnswer {
    /// It opened.
    Opened,
    /// It stayed shut, by this DPoP rule.
    Refused {
        /// The rule's name ([`ProofError::rule`]).
        rule: &'static str,
        /// Where RFC 9449 writes it.
        section: &'static str,
    },
}

/// A thief with a perfect copy of the guest's key card, at the gym's door.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct KeyCardTheft {
    /// The copy shown as a bearer token.
    pub as_bearer: DoorAnswer,
    /// The copy shown with `DPoP` and a proof of the thief's own key.
    pub with_own_key: DoorAnswer,
}

impl FrontDesk {
    /// Demo: a thief copies the booking's current confirmation. The copy stays on the server.
    pub async fn demo_steal(&self, guest: &CheckedInGuest) -> Result<i64, AuthError> {
        // A page view's pass renders; it never changes anything.
        guest.may_act()?;
        self.demo_allowed()?;
        // The copy is kept on the server (in the database, so whichever instance the thief's
        // visit reaches can show it), never handed to the page.
        let record = guest.record();
        self.inner.store.keep_stolen(&StolenCopy::of(record)).await?;
        Ok(record.generation)
    }

    /// Demo: the thief shows the copied confirmation at the front desk. Takes the stateless pass
    /// on purpose: the guest's own booking may already be cancelled.
    pub async fn demo_thief_visit(&self, card: &KeyCardHolder) -> Result<ThiefOutcome, AuthError> {
        // A page view's pass renders; it never changes anything.
        card.may_act()?;
        self.demo_allowed()?;
        let claims = card.claims();
        let store = &self.inner.store;
        let stolen = store.stolen(&claims.sid).await?.ok_or(AuthError::SessionNotFound)?;
        let record = store.session(&claims.sid).await?.ok_or(AuthError::SessionNotFound)?;
        let keys = self.inner.keys.current();
        let copy = current_confirmation(&keys, &stolen.as_of(&record), &self.inner.policy);
        // The thief has a key of its own and proves it, as any DPoP client would.
        let url = format!("{}/api/auth/refresh", self.inner.policy.public_origin);
        let proof = ProofKey::generate().proof("POST", &url, None, self.now());
        let thief = ClientInfo {
            user_agent: Some("the thief".into()),
            dpop: Some(DpopProof { proof, method: "POST".into(), url }),
            ..ClientInfo::default()
        };
        match self.refresh(&confirmation::sign(&keys, &copy), &thief).await {
            Ok(_) => {
                // The thief now holds the booking's newest confirmation.
                let record = store.session(&claims.sid).await?.ok_or(AuthError::SessionNotFound)?;
                store.keep_stolen(&StolenCopy::of(&record)).await?;
                Ok(ThiefOutcome::GotIn)
            }
            Err(AuthError::ReuseDetected) => Ok(ThiefOutcome::Caught),
            Err(AuthError::SessionRevoked | AuthError::SessionExpired) => Ok(ThiefOutcome::TooLate),
            Err(AuthError::Dpop(ProofError::WrongKey)) => Ok(ThiefOutcome::Stopped),
            Err(e) => Err(e),
        }
    }

    /// Demo: a thief with a perfect copy of `key_card` (the caller's own, as the browser
    /// presented it) tries the gym's door, as a bearer token and with a proof of its own key.
    /// A bearer key card opens it; one bound to the guest's key opens nothing.
    pub async fn demo_thief_key_card(&self, key_card: &str) -> Result<KeyCardTheft, AuthError> {
        self.demo_allowed()?;
        let answer = |result: Result<KeyCardHolder, AuthError>| match result {
            Ok(_) => Ok(DoorAnswer::Opened),
            Err(AuthError::Dpop(e)) => {
                Ok(DoorAnswer::Refused { rule: e.rule(), section: e.section() })
            }
            Err(e) => Err(e),
        };
        let as_bearer = answer(self.amenity_door(Presented::Bearer(key_card)).await)?;
        let url = format!("{}/amenities/gym", self.inner.policy.public_origin);
        let proof = ProofKey::generate().proof("GET", &url, Some(key_card), self.now());
        let dpop = DpopProof { proof, method: "GET".into(), url };
        let presented = Presented::Dpop { key_card, proof: &dpop };
        let with_own_key = answer(self.amenity_door(presented).await)?;
        Ok(KeyCardTheft { as_bearer, with_own_key })
    }

    /// Demo: a fresh key card for the same booking that expires in `lifetime_secs`, to watch
    /// expiry without waiting.
    pub async fn demo_short_key_card(
        &self,
        guest: &CheckedInGuest,
        lifetime_secs: i64,
    ) -> Result<(String, KeyCardClaims), AuthError> {
        // A page view's pass renders; it never changes anything.
        guest.may_act()?;
        self.demo_allowed()?;
        Ok(self.demo_card(guest, lifetime_secs, self.now()))
    }

    /// A key card for `guest`'s booking cut at `now`, lasting `lifetime_secs`.
    fn demo_card(
        &self,
        guest: &CheckedInGuest,
        lifetime_secs: i64,
        now: Timestamp,
    ) -> (String, KeyCardClaims) {
        let claims = guest.claims();
        let keys = self.inner.keys.current();
        let (sub, name, sid) = (&claims.sub, &claims.preferred_username, &claims.sid);
        let extra = claims.extra.clone();
        // A bound card's stand-in stays bound to the same key.
        let jkt = claims.bound_to();
        // The demo's controls are the browser's: its key cards are the browser's client's.
        let client_id = None;
        let holder =
            Holder { user_id: sub, username: name, session_id: sid, extra, jkt, client_id };
        self.cut_key_card(&keys, holder, lifetime_secs, now)
    }

    /// Demo: the article's step 4, live. Brings the booking's idle and absolute limits forward to
    /// `in_secs` from now (the clock is not touched) and hands out a key card that expires at the
    /// same moment, so both tokens lapse together and the next visit to the front desk is told
    /// the booking has expired.
    pub async fn demo_lapse(
        &self,
        guest: &CheckedInGuest,
        in_secs: i64,
    ) -> Result<(String, KeyCardClaims), AuthError> {
        // A page view's pass renders; it never changes anything.
        guest.may_act()?;
        self.demo_allowed()?;
        let now = self.now();
        let at = now.saturating_add(in_secs);
        let (_, moved) = self
            .transact(guest.booking_id(), move |record| match record {
                Some(r) if r.is_active(now) => {
                    let change = SessionChange {
                        update: SessionUpdate::Lapse { at },
                        events: vec![NewEvent {
                            at: now,
                            kind: EventKind::LimitsMoved,
                            generation: Some(r.generation),
                            detail: Some(format!("demo: the booking now lapses in {in_secs} s")),
                        }],
                    };
                    (change, true)
                }
                _ => (SessionChange { update: SessionUpdate::Keep, events: Vec::new() }, false),
            })
            .await?;
        if moved != Some(true) {
            return Err(AuthError::SessionRevoked);
        }
        // Cut at the same instant, so that card and booking lapse together.
        Ok(self.demo_card(guest, in_secs, now))
    }

    pub(super) fn demo_allowed(&self) -> Result<(), AuthError> {
        if self.inner.policy.demo_controls {
            Ok(())
        } else {
            Err(AuthError::DemoDisabled)
        }
    }
}
