//! A guest's bookings: check-out, the list, ending one, the event log, and a new password (which
//! ends the others).

use super::{BookingView, FrontDesk, Scope};
use crate::audit::{self, RevocationScope};
use crate::door::{CheckedInGuest, KeyCardHolder};
use crate::error::AuthError;
use crate::passwords::{self, Verdict};
use crate::storage::{EventKind, NewEvent, SessionChange, SessionEvent, SessionUpdate};

impl FrontDesk {
    /// Check-out. `Scope::This` ends the key card's booking; the others end the guest's other or
    /// all bookings.
    #[tracing::instrument(skip_all)]
    pub async fn check_out(
        &self,
        guest: &CheckedInGuest,
        scope: Scope,
    ) -> Result<Vec<String>, AuthError> {
        // A page view's pass renders; it never changes anything.
        guest.may_act()?;
        let claims = guest.claims().clone();
        let now = self.now();
        let store = &self.inner.store;
        let ended = match scope {
            Scope::This => {
                let ended = self
                    .end_session(&claims.sub, &claims.sid, EventKind::CheckedOut, "checked out")
                    .await?;
                if ended == Some(true) {
                    audit::revocation(RevocationScope::CheckOut, Some(&claims.sub), &[&claims.sid]);
                }
                return Ok(vec![claims.sid]);
            }
            Scope::Others => {
                store
                    .revoke_sessions_of(
                        &claims.sub,
                        Some(&claims.sid),
                        EventKind::Revoked,
                        "ended from another booking",
                        now,
                    )
                    .await?
            }
            Scope::All => {
                store
                    .revoke_sessions_of(
                        &claims.sub,
                        None,
                        EventKind::CheckedOut,
                        "checked out everywhere",
                        now,
                    )
                    .await?
            }
        };
        let counted = match scope {
            Scope::Others => RevocationScope::OtherBookings,
            _ => RevocationScope::AllBookings,
        };
        audit::revocation(counted, Some(&claims.sub), &ended);
        Ok(ended)
    }

    /// The guest's bookings, newest first.
    pub async fn bookings(&self, guest: &CheckedInGuest) -> Result<Vec<BookingView>, AuthError> {
        let now = self.now();
        let list = self.inner.store.sessions_of(guest.guest_id()).await?;
        Ok(list.iter().map(|s| BookingView::new(s, now)).collect())
    }

    /// Ends one of the guest's bookings. Another guest's booking is [`AuthError::SessionNotFound`].
    pub async fn end_booking(
        &self,
        guest: &CheckedInGuest,
        session_id: &str,
    ) -> Result<(), AuthError> {
        // A page view's pass renders; it never changes anything.
        guest.may_act()?;
        match self
            .end_session(guest.guest_id(), session_id, EventKind::Revoked, "ended by the guest")
            .await?
        {
            None => Err(AuthError::SessionNotFound),
            Some(now) => {
                if now {
                    audit::revocation(
                        RevocationScope::OneBooking,
                        Some(guest.guest_id()),
                        &[session_id],
                    );
                }
                Ok(())
            }
        }
    }

    /// Ends one booking of `guest`: `Some(true)` if this call ended it, `Some(false)` if it had
    /// ended already, `None` if the guest has no such booking.
    async fn end_session(
        &self,
        guest: &str,
        session_id: &str,
        kind: EventKind,
        reason: &str,
    ) -> Result<Option<bool>, AuthError> {
        let now = self.now();
        let (guest, reason) = (guest.to_owned(), reason.to_owned());
        let (_, found) = self
            .transact(session_id, move |record| {
                let found = record.is_some_and(|r| r.guest_id == guest);
                if !found || record.is_some_and(|r| r.revoked_at.is_some()) {
                    let keep = SessionChange { update: SessionUpdate::Keep, events: Vec::new() };
                    return (keep, found.then_some(false));
                }
                let change = SessionChange {
                    update: SessionUpdate::Revoke { at: now, reason: reason.clone() },
                    events: vec![NewEvent {
                        at: now,
                        kind,
                        generation: None,
                        detail: Some(reason.clone()),
                    }],
                };
                (change, Some(true))
            })
            .await?;
        Ok(found.flatten())
    }

    /// Changes the password and ends the guest's other bookings.
    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        &self,
        checked_in: &CheckedInGuest,
        current: &str,
        new: &str,
    ) -> Result<Vec<String>, AuthError> {
        // A page view's pass renders; it never changes anything.
        checked_in.may_act()?;
        let store = &self.inner.store;
        let guest = store.guest(checked_in.guest_id()).await?.ok_or(AuthError::SessionRevoked)?;
        let current = if current.chars().count() <= passwords::MAX_LEN { current } else { "" };
        match self.inner.passwords.verify(current, Some(&guest.password_hash)).await? {
            Verdict::Accepted { .. } => {}
            Verdict::Rejected => return Err(AuthError::InvalidCredentials),
        }
        passwords::check_policy(&guest.username, new)?;
        let hash = self.inner.passwords.hash(new).await?;
        let booking = checked_in.booking_id();
        let ended = store.change_password(&guest.id, &hash, booking, self.now()).await?;
        audit::password_changed(&guest.id);
        audit::revocation(RevocationScope::OtherBookings, Some(&guest.id), &ended);
        Ok(ended)
    }

    /// The event log of the key card's booking. Stateless on purpose: a booking cancelled for
    /// theft still shows how it ended.
    pub async fn events(&self, card: &KeyCardHolder) -> Result<Vec<SessionEvent>, AuthError> {
        Ok(self.inner.store.events(card.booking_id(), 500).await?)
    }
}
