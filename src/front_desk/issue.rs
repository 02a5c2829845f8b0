//! Cutting key cards and signing booking confirmations, with the deployment's own claims
//! ([`FrontDesk::with_claims`]).

use super::{BookingView, FrontDesk, GuestView, Issued, Policy};
use crate::clock::Timestamp;
use crate::confirmation::{self, ConfirmationClaims};
use crate::key_card::{self, KeyCardClaims, KeyCardRequest};
use crate::keys::KeySet;
use crate::storage::{GuestRecord, SessionRecord};

/// Members added to a key card's claims.
pub type ExtraClaims = serde_json::Map<String, serde_json::Value>;

/// What [`FrontDesk::with_claims`] is given.
pub(super) type ClaimsFn = dyn Fn(&GuestView) -> ExtraClaims + Send + Sync;

impl FrontDesk {
    /// Puts claims of your own into every key card this desk cuts (at check-in and at every
    /// visit to the front desk): `claims` is given the guest and returns the members to add.
    /// Names a key card already has ([`key_card::REGISTERED`]) are dropped. Verified key cards
    /// hand them back in [`KeyCardClaims::extra`]; resource servers see them too.
    ///
    /// Keep it quick and infallible: it runs on every check-in and refresh. Data from elsewhere
    /// (say, roles in a table of yours) belongs in memory the closure can read.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let (desk, _dir) = keycard::doc_support::front_desk().await;
    /// use keycard::front_desk::ClientInfo;
    /// use serde_json::json;
    ///
    /// let desk = desk.with_claims(|guest| {
    ///     let tier = if guest.username.starts_with("vip") { "gold" } else { "standard" };
    ///     json!({ "tier": tier, "sub": "ignored: a registered name" })
    ///         .as_object().cloned().unwrap_or_default()
    /// });
    /// let issued = desk.register("vip_ann", "correct horse battery", &ClientInfo::default()).await?;
    /// let card = desk.verify_key_card(&issued.key_card)?;
    /// assert_eq!(card.claims().extra["tier"], "gold");
    /// assert_eq!(card.claims().sub, issued.guest.id);
    /// # Ok::<(), keycard::AuthError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Panics
    /// When claims were set already on this desk or a clone of it: set them once, at start.
    pub fn with_claims(
        self,
        claims: impl Fn(&GuestView) -> ExtraClaims + Send + Sync + 'static,
    ) -> Self {
        if self.inner.claims.set(Box::new(claims)).is_err() {
            panic!("FrontDesk::with_claims: claims were set already");
        }
        self
    }

    fn extra_claims(&self, guest: &GuestView) -> ExtraClaims {
        self.inner.claims.get().map(|claims| claims(guest)).unwrap_or_default()
    }

    /// Signs the booking's current confirmation (the same token every time for one generation)
    /// and a new key card, bound to the DPoP key `jkt` when the client proved one.
    pub(super) fn issue(
        &self,
        keys: &KeySet,
        guest: &GuestRecord,
        record: &SessionRecord,
        jkt: Option<&str>,
    ) -> Issued {
        let policy = &self.inner.policy;
        let now = self.now();
        let confirmation_claims = current_confirmation(keys, record, policy);
        let holder = Holder {
            user_id: &guest.id,
            username: &guest.username,
            session_id: &record.id,
            extra: self.extra_claims(&guest_view(guest)),
            jkt,
            client_id: record.client_id.as_deref(),
        };
        let lifetime = policy.lifetimes.key_card.as_secs() as i64;
        let (key_card, key_card_claims) = self.cut_key_card(keys, holder, lifetime, now);
        Issued {
            key_card,
            key_card_claims,
            confirmation: confirmation::sign(keys, &confirmation_claims),
            confirmation_claims,
            guest: guest_view(guest),
            booking: BookingView::new(record, now),
        }
    }

    /// A key card for the booking, signed with this hotel's issuer, audience and client id.
    pub(super) fn cut_key_card(
        &self,
        keys: &KeySet,
        holder: Holder<'_>,
        lifetime_secs: i64,
        now: Timestamp,
    ) -> (String, KeyCardClaims) {
        let policy = &self.inner.policy;
        let request = KeyCardRequest {
            issuer: &policy.issuer,
            audience: &policy.audience,
            client_id: holder.client_id.unwrap_or(&policy.client_id),
            user_id: holder.user_id,
            username: holder.username,
            session_id: holder.session_id,
            lifetime_secs,
            extra: holder.extra,
            jkt: holder.jkt,
        };
        key_card::issue(keys, &request, now)
    }
}

/// Whom a key card is cut for.
pub(super) struct Holder<'a> {
    pub(super) user_id: &'a str,
    pub(super) username: &'a str,
    pub(super) session_id: &'a str,
    pub(super) extra: ExtraClaims,
    /// The DPoP key it is bound to, if any.
    pub(super) jkt: Option<&'a str>,
    /// The native client it is for; `None` for the browser (`KEYCARD_CLIENT_ID`).
    pub(super) client_id: Option<&'a str>,
}

fn guest_view(g: &GuestRecord) -> GuestView {
    GuestView { id: g.id.clone(), username: g.username.clone(), created_at: g.created_at }
}

pub(super) fn current_confirmation(
    keys: &KeySet,
    record: &SessionRecord,
    policy: &Policy,
) -> ConfirmationClaims {
    ConfirmationClaims {
        iss: policy.issuer.clone(),
        sub: record.guest_id.clone(),
        aud: confirmation::AUDIENCE.to_owned(),
        exp: record.current_expires_at,
        iat: record.current_issued_at,
        jti: keys.derive_id(record.salt.as_bytes(), &record.id, record.generation),
        client_id: record.client_id.clone().unwrap_or_else(|| policy.client_id.clone()),
        sid: record.id.clone(),
        generation: record.generation,
    }
}
