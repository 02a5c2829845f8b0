//! What the front desk shows of guests and bookings, and what it hands out: the types both the
//! front desk and the doors speak (no hashes, no salts, no database rows).

use std::net::IpAddr;

use serde::Serialize;

use crate::clock::Timestamp;
use crate::confirmation::ConfirmationClaims;
use crate::key_card::KeyCardClaims;
use crate::storage::SessionRecord;

/// Where a request came from, for rate limits and the bookings list.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// The client's IP address (from the socket, or `X-Forwarded-For` behind a trusted proxy).
    pub address: Option<IpAddr>,
    /// The client's `User-Agent`, for the bookings list.
    pub user_agent: Option<String>,
    /// The DPoP proof it sent, if any: at check-in it binds the booking and its key cards to the
    /// client's key; at the front desk it proves that key ([`crate::dpop`]).
    pub dpop: Option<crate::dpop::DpopProof>,
}

/// Which bookings a check-out ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scope {
    /// Only the booking the key card belongs to.
    #[default]
    This,
    /// Every other booking of the guest.
    Others,
    /// All the guest's bookings.
    All,
}

/// A booking as the guest may see it (no hashes, no salt).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BookingView {
    /// The booking's id (the `sid` of its tokens).
    pub id: String,
    /// How many times its confirmation was rotated (1 at check-in).
    pub generation: i64,
    /// When the guest checked in.
    pub created_at: Timestamp,
    /// The last visit to the front desk.
    pub last_used_at: Timestamp,
    /// The booking ends if the front desk is not visited before this.
    pub idle_expires_at: Timestamp,
    /// The booking ends at this time whatever happens.
    pub absolute_expires_at: Timestamp,
    /// When it was ended, if it was.
    pub revoked_at: Option<Timestamp>,
    /// Why it was ended, if it was.
    pub revoked_reason: Option<String>,
    /// The browser or client it was made from.
    pub user_agent: Option<String>,
    /// The address it was made from.
    pub client_address: Option<String>,
    /// The native client it was made for (`None`: the browser).
    pub client_id: Option<String>,
    /// Whether it can still be used now.
    pub active: bool,
}

impl BookingView {
    pub(crate) fn new(r: &SessionRecord, now: Timestamp) -> Self {
        Self {
            id: r.id.clone(),
            generation: r.generation,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            idle_expires_at: r.idle_expires_at,
            absolute_expires_at: r.absolute_expires_at,
            revoked_at: r.revoked_at,
            revoked_reason: r.revoked_reason.clone(),
            user_agent: r.user_agent.clone(),
            client_address: r.client_address.clone(),
            client_id: r.client_id.clone(),
            active: r.is_active(now),
        }
    }
}

/// A guest as the guest may see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GuestView {
    /// The guest's id (the `sub` of their tokens).
    pub id: String,
    /// Their username.
    pub username: String,
    /// When they registered.
    pub created_at: Timestamp,
}

/// A fresh key card and booking confirmation. Not `Debug`: it holds both tokens.
pub struct Issued {
    /// The key card (access token), signed.
    pub key_card: String,
    /// What it says.
    pub key_card_claims: KeyCardClaims,
    /// The booking confirmation (refresh token), signed.
    pub confirmation: String,
    /// What it says.
    pub confirmation_claims: ConfirmationClaims,
    /// Whose it is.
    pub guest: GuestView,
    /// The booking it belongs to, after this check-in or visit.
    pub booking: BookingView,
}

impl Issued {
    /// `DPoP` for a key card bound to the client's key, else `Bearer`: the answer's
    /// `token_type` (RFC 9449, section 5).
    pub fn token_type(&self) -> &'static str {
        if self.key_card_claims.cnf.is_some() {
            "DPoP"
        } else {
            "Bearer"
        }
    }
}
