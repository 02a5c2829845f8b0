//! The doors' checks: a key card with the public keys alone (an amenity), and with its booking
//! still active (the room); for a DPoP-bound key card, with a fresh proof of its key too. See
//! [`crate::door`] for the passes they hand back and [`crate::dpop`] for the binding.

use std::sync::Arc;

use super::{FrontDesk, GuestView};
use crate::door::{CheckedInGuest, KeyCardHolder};
use crate::dpop::{self, DpopProof, Presented, Proof, ProofError};
use crate::error::AuthError;
use crate::jwt::TokenError;
use crate::key_card;
use crate::keys::KeySet;
use crate::storage::BookingWithGuest;
use crate::verified::VerifiedCards;

impl FrontDesk {
    /// The amenity door for a bearer key card: checks it with the public keys only (signature,
    /// issuer, audience, type, dates). No database, so a revoked booking's key cards keep working
    /// until they expire. Fit for plain reads. A DPoP-bound key card is refused here: it opens a
    /// door only with its proof ([`FrontDesk::amenity_door`]).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let (desk, _dir) = keycard::doc_support::front_desk().await;
    /// use keycard::front_desk::ClientInfo;
    ///
    /// let issued = desk.register("ann", "correct horse battery", &ClientInfo::default()).await?;
    /// let card = desk.verify_key_card(&issued.key_card)?;
    /// assert_eq!(card.claims().preferred_username, "ann");
    /// assert_eq!(card.booking_id(), issued.booking.id);
    ///
    /// // One changed byte of the signature, and the door stays shut.
    /// let mut forged = issued.key_card.clone();
    /// let last = if forged.ends_with('A') { "B" } else { "A" };
    /// forged.replace_range(forged.len() - 1.., last);
    /// assert!(desk.verify_key_card(&forged).is_err());
    /// # Ok::<(), keycard::AuthError>(())
    /// # }).unwrap();
    /// ```
    pub fn verify_key_card(&self, key_card: &str) -> Result<KeyCardHolder, AuthError> {
        let card = self.read_key_card(key_card)?;
        if card.claims().bound_to().is_some() {
            return Err(AuthError::Dpop(ProofError::Missing));
        }
        Ok(card)
    }

    /// An amenity door, for a key card however it came ([`Presented`]): a bearer key card as
    /// [`FrontDesk::verify_key_card`] checks it; a DPoP-bound one only with `DPoP` and a fresh
    /// proof of its key over it (RFC 9449, section 7); the cookie of a page load for a
    /// [view-only](KeyCardHolder::view_only) pass.
    pub async fn amenity_door(&self, presented: Presented<'_>) -> Result<KeyCardHolder, AuthError> {
        match presented {
            Presented::Bearer(key_card) => self.verify_key_card(key_card),
            Presented::PageView(key_card) => Ok(self.read_key_card(key_card)?.for_page_view()),
            Presented::Dpop { key_card, proof } => {
                let card = self.read_key_card(key_card)?;
                let bound = card.claims().bound_to().ok_or(AuthError::Dpop(ProofError::Unbound))?;
                self.check_proof(proof, Some(key_card), Some(bound)).await?;
                Ok(card)
            }
        }
    }

    /// Checks a DPoP proof against the request it came with, and against the key `bound_to`
    /// when a token is bound; then remembers it, so that no instance accepts it again.
    pub async fn check_proof(
        &self,
        dpop: &DpopProof,
        access_token: Option<&str>,
        bound_to: Option<&str>,
    ) -> Result<Proof, AuthError> {
        let expected = keycard_dpop::Expected {
            method: &dpop.method,
            url: &dpop.url,
            access_token,
            now: self.now(),
        };
        let proof = keycard_dpop::verify(&dpop.proof, &expected).map_err(AuthError::Dpop)?;
        if bound_to.is_some_and(|jkt| jkt != proof.jkt) {
            return Err(AuthError::Dpop(ProofError::WrongKey));
        }
        let id = dpop::proof_id(&proof);
        if !self.inner.store.remember_proof(&id, proof.remember_until()).await? {
            return Err(AuthError::Dpop(ProofError::Replayed));
        }
        Ok(proof)
    }

    /// A key card's stateless checks, bound or not: the signature, issuer, audience, type and
    /// dates, through the cache of cards verified lately.
    pub(super) fn read_key_card(&self, key_card: &str) -> Result<KeyCardHolder, AuthError> {
        let verified = &self.inner.verified;
        // The very same bytes passed every check a moment ago: skip the signature check.
        if let Some(claims) = verified.get(key_card, self.inner.keys.current().public(), self.now())
        {
            return Ok(KeyCardHolder::new(claims));
        }
        let policy = &self.inner.policy;
        let (claims, _) = self
            .with_keys(|keys| {
                key_card::verify(
                    key_card,
                    keys.public(),
                    &policy.issuer,
                    &policy.audience,
                    &self.inner.clock,
                )
            })
            .map_err(AuthError::KeyCard)?;
        if let Some(kid) = key_card::kid(key_card) {
            verified.insert(key_card, &kid, &claims);
        }
        Ok(KeyCardHolder::new(claims))
    }

    /// The cache of verified key cards (for its figures; see [`crate::verified`]).
    pub fn verified_cards(&self) -> &VerifiedCards {
        &self.inner.verified
    }

    /// Runs `verify` with the keys in force. A token signed with a key this instance has not
    /// loaded yet (another instance picked up a rotation first) gets one look at the key file
    /// ([`KeyRing::reload_for_unknown_kid`]) before it is refused. Hands back the keys used.
    pub(super) fn with_keys<T>(
        &self,
        verify: impl Fn(&KeySet) -> Result<T, TokenError>,
    ) -> Result<(T, Arc<KeySet>), TokenError> {
        let keys = self.inner.keys.current();
        match verify(&keys) {
            Err(TokenError::UnknownKey)
                if self.inner.keys.reload_for_unknown_kid(self.inner.policy.mode) =>
            {
                // The ring changed: a key may have been retired with it.
                self.inner.verified.clear();
                let keys = self.inner.keys.current();
                verify(&keys).map(|claims| (claims, keys))
            }
            other => other.map(|claims| (claims, keys)),
        }
    }

    /// The room door: [`verify_key_card`](Self::verify_key_card), then checks that the booking
    /// is still active (not checked out, revoked, cancelled for theft, idle or past its absolute
    /// limit), so those take effect at once. For operations that change or reveal something.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let (desk, _dir) = keycard::doc_support::front_desk().await;
    /// use keycard::front_desk::{ClientInfo, Scope};
    /// use keycard::AuthError;
    ///
    /// let issued = desk.register("ann", "correct horse battery", &ClientInfo::default()).await?;
    /// let guest = desk.verify_booking(&issued.key_card).await?;
    /// assert!(guest.booking().active);
    ///
    /// desk.check_out(&guest, Scope::This).await?;
    /// // The key card itself is still genuine: amenity doors open until it expires...
    /// assert!(desk.verify_key_card(&issued.key_card).is_ok());
    /// // ...but the room door asks the front desk, which knows the guest left.
    /// let refused = desk.verify_booking(&issued.key_card).await.unwrap_err();
    /// assert!(matches!(refused, AuthError::SessionRevoked));
    /// # Ok::<(), keycard::AuthError>(())
    /// # }).unwrap();
    /// ```
    pub async fn verify_booking(&self, key_card: &str) -> Result<CheckedInGuest, AuthError> {
        self.room_door(Presented::Bearer(key_card)).await
    }

    /// The room door for a key card however it came: [`FrontDesk::amenity_door`]'s checks, then
    /// [`FrontDesk::verify_booking`]'s.
    pub async fn room_door(&self, presented: Presented<'_>) -> Result<CheckedInGuest, AuthError> {
        let card = self.amenity_door(presented).await?;
        let claims = card.claims();
        let BookingWithGuest { booking: session, username, guest_since } = self
            .inner
            .store
            .booking_with_guest(&claims.sid)
            .await?
            .ok_or(AuthError::SessionRevoked)?;
        if session.guest_id != claims.sub {
            return Err(AuthError::SessionRevoked);
        }
        let now = self.now();
        if now >= session.idle_expires_at || now >= session.absolute_expires_at {
            return Err(AuthError::SessionExpired);
        }
        if session.revoked_at.is_some() {
            return Err(AuthError::SessionRevoked);
        }
        let guest = GuestView { id: session.guest_id.clone(), username, created_at: guest_since };
        Ok(CheckedInGuest::new(card, session, guest, now))
    }
}
