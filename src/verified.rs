//! Key cards that passed full verification recently, so that the next showing of the very same
//! card skips the Ed25519 check (gateways such as Envoy's `jwt_authn` keep the same kind of
//! cache). A key card is shown hundreds of times in its two minutes; its signature only needs
//! checking once.
//!
//! What makes it safe:
//! - **Exact bytes.** An entry is found by the SHA-256 of the whole token as presented, and only
//!   a token that passed every check is put in. A forgery that shares the header, the payload or
//!   any prefix with a cached card has another digest, misses, and meets full verification.
//! - **Never past `exp`.** A hit is honoured only before the card's `exp` (with the same leeway
//!   as verification); after that the caller verifies again and gets `Expired`.
//! - **Never past its key.** A hit is honoured only while the card's `kid` is still in the ring;
//!   a rotation that retires a key also empties the cache ([`VerifiedCards::clear`]).
//! - **Bounded.** At most `capacity` entries (`KEYCARD_KEY_CARD_CACHE_SIZE`, default 10,000,
//!   about 4 MB); 0 turns the cache off.

use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::jwt::LEEWAY_SECS;
use crate::key_card::KeyCardClaims;
use crate::keys::PublicKeys;

#[derive(Clone)]
struct Entry {
    claims: KeyCardClaims,
    kid: String,
}

/// The cache of verified key cards. Cheap to share (internally synchronised).
pub struct VerifiedCards {
    cards: Option<quick_cache::sync::Cache<[u8; 32], Entry>>,
    hits: AtomicU64,
}

impl VerifiedCards {
    /// A cache of at most `capacity` key cards (0: no cache).
    pub fn new(capacity: usize) -> Self {
        let cards = (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity));
        Self { cards, hits: AtomicU64::new(0) }
    }

    fn digest(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The claims of `token` if these exact bytes passed verification, are not expired at `now`,
    /// and were signed by a key still in `keys`.
    pub fn get(&self, token: &str, keys: &PublicKeys, now: Timestamp) -> Option<KeyCardClaims> {
        let cards = self.cards.as_ref()?;
        let digest = Self::digest(token);
        let entry = cards.get(&digest)?;
        if now < entry.claims.exp.saturating_add(LEEWAY_SECS) && keys.get(&entry.kid).is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(entry.claims);
        }
        // Expired, or its key retired: it will never be good again.
        cards.remove(&digest);
        None
    }

    /// Remembers that `token`, signed by `kid`, passed full verification with `claims`.
    pub fn insert(&self, token: &str, kid: &str, claims: &KeyCardClaims) {
        if let Some(cards) = &self.cards {
            let entry = Entry { claims: claims.clone(), kid: kid.to_owned() };
            cards.insert(Self::digest(token), entry);
        }
    }

    /// Forgets every card (the key ring changed).
    pub fn clear(&self) {
        if let Some(cards) = &self.cards {
            cards.clear();
        }
    }

    /// How many cards are remembered.
    pub fn len(&self) -> usize {
        self.cards.as_ref().map_or(0, |c| c.len())
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many showings were answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}
