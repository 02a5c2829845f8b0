//! The doors' checks: a key card with the public keys alone (an amenity), and with its booking
//! still active (the room). See [`crate::door`] for the passes they hand back.

use std::sync::Arc;

use super::{FrontDesk, GuestView};
use crate::door::{CheckedInGuest, KeyCardHolder};
use crate::error::AuthError;
use crate::jwt::TokenError;
use crate::key_card;
use crate::keys::KeySet;
use crate::storage::BookingWithGuest;
use crate::verified::VerifiedCards;

impl FrontDesk {
    /// The amenity door: checks a key card with the public keys only (signature, issuer,
    /// audience, type, dates). No database, so a revoked booking's key cards keep working until
    /// they expire. Fit for plain reads.
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
        let card = self.verify_key_card(key_card)?;
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
