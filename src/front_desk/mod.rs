//! The front desk: check-in, the swap of a booking confirmation for a new key card (rotation with
//! theft detection), check-out, bookings and password changes.
//!
//! ## Rotation and the grace window
//! Every visit replaces the booking's confirmation in one transaction: generation N becomes N+1
//! and N's hash is kept as the *previous* one. Showing N again within the grace window (a second
//! tab refreshing at the same moment, or a client whose response was lost) is answered with the
//! *current* confirmation, re-derived and re-signed to the identical token, so every caller
//! converges on one confirmation. Anything else that is genuine but not current (N after the
//! window, or N-1 and older at any time) means two parties hold the booking's confirmations:
//! the whole booking is cancelled and the event logged.
//!
//! ## Stateless reads, stateful sensitive operations
//! A key card is checked with the public keys alone ([`FrontDesk::verify_key_card`], which hands
//! back a [`KeyCardHolder`](crate::KeyCardHolder)), so a revoked booking's key cards keep opening the amenities until
//! they expire (minutes). Operations that matter ([`FrontDesk::verify_booking`], which hands back
//! a [`CheckedInGuest`](crate::CheckedInGuest): sessions, password, check-out) also look the booking up, so revocation
//! bites there at once. The operations behind a door take its pass, not a token (see
//! [`crate::door`]).
//!
//! ## One file per flow
//! | file | what it holds |
//! |---|---|
//! | `check_in.rs` | registration and check-in, the check-in throttles |
//! | `rotation.rs` | [`FrontDesk::refresh`]: rotation, the grace window, theft detection |
//! | `issue.rs` | cutting key cards and signing confirmations, the claims hook |
//! | `doors.rs` | [`FrontDesk::verify_key_card`] and [`FrontDesk::verify_booking`] |
//! | `sessions.rs` | check-out, the guest's bookings, the event log, the password |
//! | `cluster.rs` | the roll of instances and the periodic upkeep |
//! | `device.rs` | native clients: the device grant (RFC 8628) and their front desk |
//! | `demo.rs`, `lab.rs` | the demo controls and the forge lab (feature `demo`) |

mod check_in;
mod cluster;
mod device;
mod doors;
mod issue;
mod rotation;
mod sessions;

#[cfg(feature = "demo")]
mod demo;
#[cfg(feature = "demo")]
mod lab;
#[cfg(feature = "demo")]
pub use {
    demo::{DoorAnswer, KeyCardTheft, ThiefOutcome},
    lab::{LabDoor, LabFinding, LabSource, LabVerdict},
};

pub use crate::views::{BookingView, ClientInfo, GuestView, Issued, Scope};
pub use check_in::check_username;
pub use cluster::INSTANCE_LIVENESS_SECS;
pub use device::{
    normalize_user_code, DeviceAuthorization, DeviceRequestView, OAuthError, POLL_INTERVAL_SECS,
    USER_CODE_ALPHABET,
};
use issue::ClaimsFn;
pub use issue::ExtraClaims;

use std::sync::{Arc, Mutex, PoisonError};

use crate::clock::{Clock, Timestamp};
use crate::config::{Config, Lifetimes, Mode};
use crate::jwt::random_id;
use crate::keys::{Jwks, KeyError, KeyRing};
use crate::passwords::Passwords;
use crate::storage::{self, IssuerConflict, SessionChange, SessionRecord, Store, StoreError};
use crate::throttle::Throttle;
use crate::verified::VerifiedCards;

/// Settings the front desk works by, taken from [`Config`].
#[derive(Clone, Debug)]
pub struct Policy {
    /// Development or production.
    pub mode: Mode,
    /// The `iss` of every token.
    pub issuer: String,
    /// The `aud` of key cards.
    pub audience: String,
    /// The `client_id` claim.
    pub client_id: String,
    /// How long key cards, grace windows and bookings last.
    pub lifetimes: Lifetimes,
    /// Whether the demo controls answer.
    pub demo_controls: bool,
    /// The origin clients address (`KEYCARD_PUBLIC_URL`, no trailing slash): DPoP proofs name
    /// URLs on it.
    pub public_origin: String,
    /// Whether check-in and the front desk refuse clients without a DPoP proof.
    pub dpop_required: bool,
    /// The native clients that may use the device grant and their own front desk.
    pub native_clients: crate::clients::NativeClients,
    /// How long a device's codes wait for the guest's approval, in seconds.
    pub device_code_ttl_secs: i64,
}

/// Why the front desk could not open. Each message starts with the setting to look at.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("KEYCARD_KEYS_FILE: {0}")]
    /// The key ring could not be opened.
    Keys(#[from] KeyError),
    #[error("KEYCARD_DATABASE_URL: {0}")]
    /// The database could not be opened or migrated.
    Store(#[from] StoreError),
    #[error(
        "KEYCARD_PUBLIC_URL: another instance on this database ({}) issues key cards as {:?}, \
         this one would issue them as {ours:?}, and each would refuse the other's; give every \
         instance the same KEYCARD_PUBLIC_URL (or KEYCARD_ISSUER)",
        .theirs.instance, .theirs.issuer
    )]
    /// Another live instance on the database signs as another issuer.
    IssuerConflict {
        /// The live instance that signs as someone else.
        theirs: IssuerConflict,
        /// The issuer this instance would sign as.
        ours: String,
    },
}

/// The auth core's entry point. Cheap to clone.
#[derive(Clone)]
pub struct FrontDesk {
    inner: Arc<Inner>,
}

struct Inner {
    /// This process's name on the database's roll of instances.
    instance: String,
    store: Arc<dyn Store>,
    keys: KeyRing,
    passwords: Passwords,
    throttle: Throttle,
    clock: Clock,
    policy: Policy,
    /// Claims of the deployment's own ([`FrontDesk::with_claims`]).
    claims: std::sync::OnceLock<Box<ClaimsFn>>,
    /// Key cards that passed verification lately, by their exact bytes.
    verified: VerifiedCards,
}

impl FrontDesk {
    /// Opens the store (SQLite or PostgreSQL, by the URL) and the key ring named by `config`,
    /// and joins the database's roll of instances ([`FrontDesk::join`]).
    pub async fn open(config: &Config) -> Result<Self, StartError> {
        let store = storage::open(&config.database()).await?;
        let keys = KeyRing::open(&config.keys_file, config.mode)?;
        let desk = Self::new(config, store, keys, Clock::system());
        desk.join().await?;
        Ok(desk)
    }

    /// Assembles a front desk from its parts (tests pass a manual clock).
    pub fn new(config: &Config, store: Arc<dyn Store>, keys: KeyRing, clock: Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                instance: random_id(),
                store,
                keys,
                passwords: Passwords::new(config.hash_concurrency),
                throttle: Throttle::new(&config.rate_limits),
                clock,
                policy: Policy {
                    mode: config.mode,
                    issuer: config.issuer.clone(),
                    audience: config.audience.clone(),
                    client_id: config.client_id.clone(),
                    lifetimes: config.lifetimes.clone(),
                    demo_controls: config.demo_controls,
                    public_origin: config.public_url.origin().ascii_serialization(),
                    dpop_required: config.dpop_required,
                    native_clients: config.native_clients.clone(),
                    device_code_ttl_secs: config.device_code_ttl.as_secs() as i64,
                },
                claims: std::sync::OnceLock::new(),
                verified: VerifiedCards::new(config.key_card_cache_size),
            }),
        }
    }

    /// The settings this desk works by.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The clock this desk reads (a manual one in tests).
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The public keys, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Jwks {
        self.inner.keys.current().jwks()
    }

    /// The key ring, for resource servers that verify with public keys only.
    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    /// Runs `rule` on booking `id` inside the store's transaction ([`Store::transact_session`]).
    /// Hands back the booking as the transaction left it, and what the rule concluded (`None` if
    /// it never ran).
    async fn transact<T: Send + 'static>(
        &self,
        id: &str,
        mut rule: impl FnMut(Option<&SessionRecord>) -> (SessionChange, T) + Send + 'static,
    ) -> Result<(Option<SessionRecord>, Option<T>), StoreError> {
        // The store may run the rule on a task of its own, and more than once (a failed batch is
        // retried): the last conclusion is the one its change was applied with.
        let concluded = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&concluded);
        let after = self
            .inner
            .store
            .transact_session(
                id,
                Box::new(move |record| {
                    let (change, conclusion) = rule(record);
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(conclusion);
                    change
                }),
            )
            .await?;
        let conclusion = concluded.lock().unwrap_or_else(PoisonError::into_inner).take();
        Ok((after, conclusion))
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }
}
