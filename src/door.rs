//! The two kinds of door a key card opens, and the pass each one hands back.
//!
//! | door | what it checks | pass | made by |
//! |---|---|---|---|
//! | an **amenity** (the gym, a plain read) | the key card alone: signature, issuer, audience, type, dates | [`KeyCardHolder`] | [`FrontDesk::verify_key_card`] |
//! | the **room** (anything that changes or reveals something) | the key card, and that its booking is still active | [`CheckedInGuest`] | [`FrontDesk::verify_booking`] |
//!
//! An amenity door needs no database, so a cancelled booking's key cards keep opening it until
//! they expire (minutes): that is the price of stateless tokens. The room door asks the front
//! desk, so check-out, revocation and theft detection bite at once.
//!
//! Only the front desk makes passes (their fields are private), so a function that takes one can
//! never be handed a key card that nobody checked. The web layer wraps these in guards (axum
//! extractors); see `keycard_app::guard`.
//!
//! [`FrontDesk::verify_key_card`]: crate::FrontDesk::verify_key_card
//! [`FrontDesk::verify_booking`]: crate::FrontDesk::verify_booking

use std::fmt;

use crate::clock::Timestamp;
use crate::key_card::KeyCardClaims;
use crate::storage::SessionRecord;
use crate::views::{BookingView, GuestView};

/// A key card that passed every stateless check. Made only by
/// [`FrontDesk::verify_key_card`](crate::FrontDesk::verify_key_card).
#[derive(Clone, Debug)]
pub struct KeyCardHolder {
    claims: KeyCardClaims,
    view_only: bool,
}

impl KeyCardHolder {
    pub(crate) fn new(claims: KeyCardClaims) -> Self {
        Self { claims, view_only: false }
    }

    /// The pass of a page load that showed a DPoP-bound key card without its proof (a
    /// navigation cannot carry one): it renders the guest's own page and changes nothing.
    pub(crate) fn for_page_view(self) -> Self {
        Self { view_only: self.claims.cnf.is_some(), ..self }
    }

    /// Whether this pass may only render a page: a DPoP-bound key card shown without its proof.
    /// Every operation that changes something refuses it.
    pub fn view_only(&self) -> bool {
        self.view_only
    }

    /// This pass, if it may change something: not [`view_only`](Self::view_only).
    pub fn may_act(&self) -> Result<&Self, crate::AuthError> {
        if self.view_only {
            return Err(crate::AuthError::Dpop(crate::dpop::ProofError::Missing));
        }
        Ok(self)
    }

    /// The guest's id (the `sub` claim).
    pub fn guest_id(&self) -> &str {
        &self.claims.sub
    }

    /// The booking the key card belongs to (the `sid` claim).
    pub fn booking_id(&self) -> &str {
        &self.claims.sid
    }

    /// Every claim of the key card, as verified.
    pub fn claims(&self) -> &KeyCardClaims {
        &self.claims
    }

    /// The verified claims, by value.
    pub fn into_claims(self) -> KeyCardClaims {
        self.claims
    }
}

/// A key card whose booking the front desk found active a moment ago. Made only by
/// [`FrontDesk::verify_booking`](crate::FrontDesk::verify_booking).
///
/// Its `Debug` shows the ids only: the booking record behind it holds the confirmation's hash
/// and salt.
#[derive(Clone)]
pub struct CheckedInGuest {
    card: KeyCardHolder,
    booking: SessionRecord,
    guest: GuestView,
    checked_at: Timestamp,
}

impl CheckedInGuest {
    pub(crate) fn new(
        card: KeyCardHolder,
        booking: SessionRecord,
        guest: GuestView,
        checked_at: Timestamp,
    ) -> Self {
        Self { card, booking, guest, checked_at }
    }

    /// The guest's id (the `sub` claim).
    pub fn guest_id(&self) -> &str {
        self.card.guest_id()
    }

    /// The active booking's id (the `sid` claim).
    pub fn booking_id(&self) -> &str {
        self.card.booking_id()
    }

    /// Every claim of the key card, as verified.
    pub fn claims(&self) -> &KeyCardClaims {
        self.card.claims()
    }

    /// The stateless half of this pass: enough for any amenity door.
    pub fn card(&self) -> &KeyCardHolder {
        &self.card
    }

    /// This pass, if it may change something (see [`KeyCardHolder::may_act`]).
    pub fn may_act(&self) -> Result<&Self, crate::AuthError> {
        self.card.may_act()?;
        Ok(self)
    }

    /// Who holds the booking, read with it (no second look-up).
    pub fn guest(&self) -> &GuestView {
        &self.guest
    }

    /// The booking as the front desk found it.
    pub fn booking(&self) -> BookingView {
        BookingView::new(&self.booking, self.checked_at)
    }

    #[cfg(feature = "demo")]
    pub(crate) fn record(&self) -> &SessionRecord {
        &self.booking
    }
}

impl fmt::Debug for CheckedInGuest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckedInGuest")
            .field("guest_id", &self.guest_id())
            .field("booking_id", &self.booking_id())
            .field("checked_at", &self.checked_at)
            .finish()
    }
}
