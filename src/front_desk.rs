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
//! back a [`KeyCardHolder`]), so a revoked booking's key cards keep opening the amenities until
//! they expire (minutes). Operations that matter ([`FrontDesk::verify_booking`], which hands back
//! a [`CheckedInGuest`]: sessions, password, check-out) also look the booking up, so revocation
//! bites there at once. The operations behind a door take its pass, not a token (see
//! [`crate::door`]).

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use rand::RngCore;
use serde::Serialize;

use crate::clock::{Clock, Timestamp};
use crate::config::{Config, Lifetimes, Mode};
use crate::confirmation::{self, ConfirmationClaims};
use crate::door::{CheckedInGuest, KeyCardHolder};
use crate::error::AuthError;
use crate::jwt::{random_id, TokenError};
use crate::key_card::{self, KeyCardClaims, KeyCardRequest};
use crate::keys::{Jwks, KeyError, KeyRing, KeySet};
use crate::passwords::{self, Passwords, Verdict};
#[cfg(feature = "demo")]
use crate::storage::StolenCopy;
use crate::storage::{
    self, Attempt, BookingWithGuest, EventKind, GuestRecord, IssuerConflict, NewEvent, Rotation,
    SessionChange, SessionEvent, SessionRecord, SessionUpdate, Store, StoreError,
};
use crate::throttle::{RetryAfter, Throttle};
use crate::verified::VerifiedCards;

/// An instance unseen for this long is taken for dead: its issuer no longer blocks a start-up.
/// Three missed heartbeats of the server's 10 s housekeeping.
pub const INSTANCE_LIVENESS_SECS: i64 = 30;

/// Where a request came from, for rate limits and the bookings list.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// The client's IP address (from the socket, or `X-Forwarded-For` behind a trusted proxy).
    pub address: Option<IpAddr>,
    /// The client's `User-Agent`, for the bookings list.
    pub user_agent: Option<String>,
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
pub struct SessionView {
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
    /// Whether it can still be used now.
    pub active: bool,
}

impl SessionView {
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
    pub session: SessionView,
}

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

/// Members added to a key card's claims.
pub type ExtraClaims = serde_json::Map<String, serde_json::Value>;

/// What [`FrontDesk::with_claims`] is given.
type ClaimsFn = dyn Fn(&GuestView) -> ExtraClaims + Send + Sync;

#[cfg(feature = "demo")]
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
}

/// Which door the forge lab tries a token on.
#[cfg(feature = "demo")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabDoor {
    /// An amenity: takes a key card, checked with the public keys alone.
    Amenity,
    /// The front desk: takes a booking confirmation.
    FrontDesk,
}

/// Where the forge lab's token came from.
#[cfg(feature = "demo")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabSource {
    /// Typed or pasted by the learner.
    Shown,
    /// The booking confirmation cookie the browser sent with the request: the caller's own.
    ConfirmationCookie,
}

/// What the forge lab found.
#[cfg(feature = "demo")]
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
}

/// What the forge lab found: the door's verdict and, for a broken signature, the claims that
/// would have been refused next.
#[cfg(feature = "demo")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabFinding {
    /// The door's own answer.
    pub verdict: LabVerdict,
    /// Rules the claims break, read without verification (after [`TokenError::BadSignature`]).
    pub also: Vec<TokenError>,
}

#[cfg(feature = "demo")]
impl From<LabVerdict> for LabFinding {
    fn from(verdict: LabVerdict) -> Self {
        Self { verdict, also: Vec::new() }
    }
}

/// A token's payload, unverified: for the lab's explanations only, never for a decision to admit.
#[cfg(feature = "demo")]
fn unverified_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The booking (`sid`) a token's payload names, unverified; `None` when it names none.
#[cfg(feature = "demo")]
fn claimed_booking(token: &str) -> Option<String> {
    Some(unverified_claims(token)?.get("sid")?.as_str()?.to_owned())
}

/// The outcome of a visit to the front desk, decided inside the booking's transaction.
enum Visit {
    Rotated,
    Reissued,
    Refused(AuthError),
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

    /// Adds this instance to the database's roll, or refuses to start when a live instance
    /// (seen in the last [`INSTANCE_LIVENESS_SECS`]) issues as someone else: the two would refuse
    /// each other's key cards and confirmations, which behind a load balancer looks like random
    /// sign-outs. An instance that stopped long ago does not count, so changing the public URL
    /// of a stopped hotel is fine.
    pub async fn join(&self) -> Result<(), StartError> {
        let now = self.now();
        let issuer = &self.inner.policy.issuer;
        let live_since = now - INSTANCE_LIVENESS_SECS;
        match self.inner.store.join(&self.inner.instance, issuer, now, live_since).await? {
            None => Ok(()),
            Some(theirs) => Err(StartError::IssuerConflict { theirs, ours: issuer.clone() }),
        }
    }

    /// Takes this instance off the roll (on a clean shutdown), so a restart on a new public URL
    /// need not wait for it to be forgotten.
    pub async fn leave(&self) {
        if let Err(e) = self.inner.store.leave(&self.inner.instance).await {
            tracing::warn!(error = %e, "could not leave the roll of instances");
        }
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
                },
                claims: std::sync::OnceLock::new(),
                verified: VerifiedCards::new(config.key_card_cache_size),
            }),
        }
    }

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

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), AuthError> {
        Ok(self.inner.store.ping().await?)
    }

    /// Periodic upkeep: picks up a rotated key file (so one `rotate-keys` reaches every instance
    /// within one period), trims idle rate-limit state, and answers the roll call of instances.
    pub async fn housekeeping(&self) {
        match self.inner.keys.reload_if_changed(self.inner.policy.mode) {
            // A rotation retires the oldest key: forget every card verified with the old ring.
            Ok(true) => self.inner.verified.clear(),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "could not reload the signing keys; keeping the old ones")
            }
        }
        self.inner.throttle.forget_idle();
        let (now, store) = (self.now(), &self.inner.store);
        if let Err(e) = store.forget_login_attempts(self.inner.clock.now_millis()).await {
            tracing::warn!(error = %e, "could not trim the check-in throttle");
        }
        let issuer = &self.inner.policy.issuer;
        let live_since = now - INSTANCE_LIVENESS_SECS;
        let forget_before = now - 24 * 3600;
        match store.heartbeat(&self.inner.instance, issuer, now, live_since, forget_before).await {
            Ok(None) => {}
            Ok(Some(theirs)) => tracing::error!(
                other_instance = %theirs.instance,
                other_issuer = %theirs.issuer,
                our_issuer = %issuer,
                "another live instance issues key cards as someone else; each refuses the \
                 other's: give every instance the same KEYCARD_PUBLIC_URL"
            ),
            Err(e) => tracing::warn!(error = %e, "roll call of instances failed"),
        }
    }

    /// One check-in or registration attempt: the per-address limit of this instance, then the
    /// per-account limit of the whole cluster (in the database).
    async fn throttle_login(&self, account: &str, client: &ClientInfo) -> Result<(), AuthError> {
        let throttle = &self.inner.throttle;
        throttle.login_from(client.address).map_err(AuthError::TooManyRequests)?;
        let step = throttle.per_account(self.inner.clock.now_millis());
        match self.inner.store.take_login_attempt(&account.to_lowercase(), step).await? {
            Attempt::Allowed => Ok(()),
            Attempt::Refused(wait) => Err(AuthError::TooManyRequests(RetryAfter(wait))),
        }
    }

    /// Registers a guest and checks them in. The username must be new (case aside) and the
    /// password pass the policy (8 to 128 characters, not a common one, not the username).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let (desk, _dir) = keycard::doc_support::front_desk().await;
    /// use keycard::front_desk::ClientInfo;
    /// use keycard::AuthError;
    ///
    /// let issued = desk.register("ann", "correct horse battery", &ClientInfo::default()).await?;
    /// assert_eq!(issued.session.generation, 1);
    /// let again = desk.register("ANN", "another good password", &ClientInfo::default()).await;
    /// assert!(matches!(again, Err(AuthError::UsernameTaken)));
    /// # Ok::<(), keycard::AuthError>(())
    /// # }).unwrap();
    /// ```
    #[tracing::instrument(skip_all, fields(username = %username))]
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        check_username(username)?;
        passwords::check_policy(username, password)?;
        self.throttle_login(username, client).await?;
        let hash = self.inner.passwords.hash(password).await?;
        let guest = GuestRecord {
            id: random_id(),
            username: username.to_owned(),
            password_hash: hash,
            created_at: self.now(),
        };
        self.inner.store.create_guest(&guest).await?;
        tracing::info!(guest = %guest.id, "guest registered");
        self.start_session(&guest, client).await
    }

    /// Check-in: the password for a key card and a booking confirmation, in a new booking.
    /// A wrong password and an unknown guest get the same answer after the same work, and both
    /// count against the check-in limits (per address, per account).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let (desk, _dir) = keycard::doc_support::front_desk().await;
    /// use keycard::front_desk::ClientInfo;
    /// use keycard::AuthError;
    ///
    /// let browser = ClientInfo { address: "192.0.2.7".parse().ok(), user_agent: None };
    /// desk.register("ann", "correct horse battery", &browser).await?;
    ///
    /// let issued = desk.check_in("ann", "correct horse battery", &browser).await?;
    /// // The key card opens doors for minutes; the confirmation goes only to the front desk.
    /// assert_eq!(issued.key_card_claims.preferred_username, "ann");
    /// assert_eq!(issued.key_card_claims.exp - issued.key_card_claims.iat, 120);
    /// assert!(issued.confirmation_claims.exp > issued.key_card_claims.exp);
    ///
    /// let wrong = desk.check_in("ann", "not the password", &browser).await;
    /// assert!(matches!(wrong, Err(AuthError::InvalidCredentials)));
    /// # Ok::<(), keycard::AuthError>(())
    /// # }).unwrap();
    /// ```
    #[tracing::instrument(skip_all, fields(username = %username))]
    pub async fn check_in(
        &self,
        username: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        // Malformed names and passwords get the same answer as wrong ones, after the same work.
        let plausible =
            check_username(username).is_ok() && password.chars().count() <= passwords::MAX_LEN;
        let account = if plausible { username } else { "" };
        self.throttle_login(account, client).await?;
        let guest =
            if plausible { self.inner.store.guest_by_username(username).await? } else { None };
        let verdict = self
            .inner
            .passwords
            .verify(
                if plausible { password } else { "" },
                guest.as_ref().map(|g| g.password_hash.as_str()),
            )
            .await?;
        let (Verdict::Accepted { rehash }, Some(guest)) = (verdict, guest) else {
            tracing::info!("check-in refused");
            return Err(AuthError::InvalidCredentials);
        };
        if let Some(stronger) = rehash {
            self.inner.store.upgrade_password_hash(&guest.id, &stronger).await?;
            tracing::info!(guest = %guest.id, "stored hash upgraded to the current Argon2id parameters");
        }
        self.start_session(&guest, client).await
    }

    /// The front desk proper: swaps a booking confirmation for a new key card and confirmation.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let (desk, _dir) = keycard::doc_support::front_desk().await;
    /// use keycard::front_desk::ClientInfo;
    /// use keycard::AuthError;
    ///
    /// let browser = ClientInfo::default();
    /// let first = desk.register("ann", "correct horse battery", &browser).await?;
    ///
    /// // Each visit replaces the confirmation (rotation)...
    /// let second = desk.refresh(&first.confirmation, &browser).await?;
    /// assert_eq!(second.session.generation, 2);
    /// // ...but the same one shown again at once (a second tab, a lost answer) gets the same
    /// // answer: the grace window (KEYCARD_REFRESH_GRACE_SECS).
    /// let retry = desk.refresh(&first.confirmation, &browser).await?;
    /// assert_eq!(retry.confirmation, second.confirmation);
    ///
    /// let third = desk.refresh(&second.confirmation, &browser).await?;
    /// // The first confirmation is now two behind: someone kept a copy. The booking is cancelled,
    /// // for the thief and for the guest alike.
    /// let replay = desk.refresh(&first.confirmation, &browser).await;
    /// assert!(matches!(replay, Err(AuthError::ReuseDetected)));
    /// let guest = desk.refresh(&third.confirmation, &browser).await;
    /// assert!(matches!(guest, Err(AuthError::SessionRevoked)));
    /// # Ok::<(), keycard::AuthError>(())
    /// # }).unwrap();
    /// ```
    #[tracing::instrument(skip_all)]
    pub async fn refresh(
        &self,
        confirmation: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        self.inner.throttle.refresh(client.address).map_err(AuthError::TooManyRequests)?;
        let (claims, keys) = self
            .with_keys(|keys| {
                confirmation::verify(
                    confirmation,
                    keys.public(),
                    &self.inner.policy.issuer,
                    &self.inner.clock,
                )
            })
            .map_err(AuthError::Confirmation)?;
        let presented = confirmation::hash_id(&claims.jti);
        let now = self.now();
        let lifetimes = self.inner.policy.lifetimes.clone();
        let (shown, signing) = (claims.clone(), Arc::clone(&keys));
        let (after, visit) = self
            .transact(&claims.sid, move |record| {
                decide(record, &shown, &presented, now, &lifetimes, &signing)
            })
            .await?;
        let record = match visit.unwrap_or(Visit::Refused(AuthError::SessionNotFound)) {
            Visit::Refused(AuthError::ReuseDetected) => {
                tracing::warn!(session = %claims.sid, generation = claims.generation, "confirmation reuse detected; booking cancelled");
                return Err(AuthError::ReuseDetected);
            }
            Visit::Refused(AuthError::SessionNotFound) => {
                return Err(AuthError::Confirmation(crate::jwt::TokenError::Invalid))
            }
            Visit::Refused(e) => return Err(e),
            // The booking as the transaction left it: no second read.
            Visit::Rotated | Visit::Reissued => after.ok_or(AuthError::SessionNotFound)?,
        };
        let guest =
            self.inner.store.guest(&record.guest_id).await?.ok_or(AuthError::SessionNotFound)?;
        Ok(self.issue(&keys, &guest, &record))
    }

    /// Check-out. `Scope::This` ends the key card's booking; the others end the guest's other or
    /// all bookings.
    #[tracing::instrument(skip_all)]
    pub async fn check_out(
        &self,
        guest: &CheckedInGuest,
        scope: Scope,
    ) -> Result<Vec<String>, AuthError> {
        let claims = guest.claims().clone();
        let now = self.now();
        let store = &self.inner.store;
        let ended = match scope {
            Scope::This => {
                self.end_session(&claims.sub, &claims.sid, EventKind::CheckedOut, "checked out")
                    .await?;
                vec![claims.sid]
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
        Ok(ended)
    }

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
    /// assert_eq!(card.booking_id(), issued.session.id);
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
    fn with_keys<T>(
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

    /// The guest's bookings, newest first.
    pub async fn sessions(&self, guest: &CheckedInGuest) -> Result<Vec<SessionView>, AuthError> {
        let now = self.now();
        let list = self.inner.store.sessions_of(guest.guest_id()).await?;
        Ok(list.iter().map(|s| SessionView::new(s, now)).collect())
    }

    /// Ends one of the guest's bookings. Another guest's booking is [`AuthError::SessionNotFound`].
    pub async fn revoke_session(
        &self,
        guest: &CheckedInGuest,
        session_id: &str,
    ) -> Result<(), AuthError> {
        if self
            .end_session(guest.guest_id(), session_id, EventKind::Revoked, "ended by the guest")
            .await?
        {
            Ok(())
        } else {
            Err(AuthError::SessionNotFound)
        }
    }

    /// Ends one booking of `guest` (already ended is fine). False if the guest has no such booking.
    async fn end_session(
        &self,
        guest: &str,
        session_id: &str,
        kind: EventKind,
        reason: &str,
    ) -> Result<bool, AuthError> {
        let now = self.now();
        let (guest, reason) = (guest.to_owned(), reason.to_owned());
        let (_, found) = self
            .transact(session_id, move |record| {
                let found = record.is_some_and(|r| r.guest_id == guest);
                if !found || record.is_some_and(|r| r.revoked_at.is_some()) {
                    return (
                        SessionChange { update: SessionUpdate::Keep, events: Vec::new() },
                        found,
                    );
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
                (change, found)
            })
            .await?;
        Ok(found == Some(true))
    }

    /// Changes the password and ends the guest's other bookings.
    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        &self,
        checked_in: &CheckedInGuest,
        current: &str,
        new: &str,
    ) -> Result<Vec<String>, AuthError> {
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
        Ok(store.change_password(&guest.id, &hash, booking, self.now()).await?)
    }

    /// The event log of the key card's booking. Stateless on purpose: a booking cancelled for
    /// theft still shows how it ended.
    pub async fn events(&self, card: &KeyCardHolder) -> Result<Vec<SessionEvent>, AuthError> {
        Ok(self.inner.store.events(card.booking_id(), 500).await?)
    }

    /// Demo: a thief copies the booking's current confirmation. The copy stays on the server.
    #[cfg(feature = "demo")]
    pub async fn demo_steal(&self, guest: &CheckedInGuest) -> Result<i64, AuthError> {
        self.demo_allowed()?;
        // The copy is kept on the server (in the database, so whichever instance the thief's
        // visit reaches can show it), never handed to the page.
        let record = guest.record();
        self.inner.store.keep_stolen(&StolenCopy::of(record)).await?;
        Ok(record.generation)
    }

    /// Demo: the thief shows the copied confirmation at the front desk. Takes the stateless pass
    /// on purpose: the guest's own booking may already be cancelled.
    #[cfg(feature = "demo")]
    pub async fn demo_thief_visit(&self, card: &KeyCardHolder) -> Result<ThiefOutcome, AuthError> {
        self.demo_allowed()?;
        let claims = card.claims();
        let store = &self.inner.store;
        let stolen = store.stolen(&claims.sid).await?.ok_or(AuthError::SessionNotFound)?;
        let record = store.session(&claims.sid).await?.ok_or(AuthError::SessionNotFound)?;
        let keys = self.inner.keys.current();
        let copy = current_confirmation(&keys, &stolen.as_of(&record), &self.inner.policy);
        let thief = ClientInfo { address: None, user_agent: Some("the thief".into()) };
        match self.refresh(&confirmation::sign(&keys, &copy), &thief).await {
            Ok(_) => {
                // The thief now holds the booking's newest confirmation.
                let record = store.session(&claims.sid).await?.ok_or(AuthError::SessionNotFound)?;
                store.keep_stolen(&StolenCopy::of(&record)).await?;
                Ok(ThiefOutcome::GotIn)
            }
            Err(AuthError::ReuseDetected) => Ok(ThiefOutcome::Caught),
            Err(AuthError::SessionRevoked | AuthError::SessionExpired) => Ok(ThiefOutcome::TooLate),
            Err(e) => Err(e),
        }
    }

    /// Demo: a fresh key card for the same booking that expires in `lifetime_secs`, to watch
    /// expiry without waiting.
    #[cfg(feature = "demo")]
    pub async fn demo_short_key_card(
        &self,
        guest: &CheckedInGuest,
        lifetime_secs: i64,
    ) -> Result<(String, KeyCardClaims), AuthError> {
        self.demo_allowed()?;
        Ok(self.demo_card(guest, lifetime_secs, self.now()))
    }

    /// A key card for `guest`'s booking cut at `now`, lasting `lifetime_secs`.
    #[cfg(feature = "demo")]
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
        let holder = Holder { user_id: sub, username: name, session_id: sid, extra };
        self.cut_key_card(&keys, holder, lifetime_secs, now)
    }

    /// Demo: the article's step 4, live. Brings the booking's idle and absolute limits forward to
    /// `in_secs` from now (the clock is not touched) and hands out a key card that expires at the
    /// same moment, so both tokens lapse together and the next visit to the front desk is told
    /// the booking has expired.
    #[cfg(feature = "demo")]
    pub async fn demo_lapse(
        &self,
        guest: &CheckedInGuest,
        in_secs: i64,
    ) -> Result<(String, KeyCardClaims), AuthError> {
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

    /// Demo: the forge lab. Runs `token` through `door`'s own checks and says which rule refused
    /// it. It opens nothing and changes nothing: the browser's own booking confirmation
    /// ([`LabSource::ConfirmationCookie`]) is compared with the booking's current one, never
    /// exchanged. Only the caller's own booking's tokens, and
    /// forgeries of them, are explained ([`AuthError::NotYourBooking`] otherwise), at most
    /// [`LAB_PER_BOOKING_PER_MINUTE`](crate::throttle::LAB_PER_BOOKING_PER_MINUTE) a minute.
    #[cfg(feature = "demo")]
    pub async fn lab_try(
        &self,
        guest: &CheckedInGuest,
        token: &str,
        door: LabDoor,
        source: LabSource,
    ) -> Result<LabFinding, AuthError> {
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
            LabDoor::Amenity => match self.verify_key_card(token) {
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

    /// The key card rules a token's claims break, read without verifying it (for the lab only).
    #[cfg(feature = "demo")]
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

    #[cfg(feature = "demo")]
    fn demo_allowed(&self) -> Result<(), AuthError> {
        if self.inner.policy.demo_controls {
            Ok(())
        } else {
            Err(AuthError::DemoDisabled)
        }
    }

    async fn start_session(
        &self,
        guest: &GuestRecord,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let now = self.now();
        let lifetimes = &self.inner.policy.lifetimes;
        let absolute = now + lifetimes.absolute.as_secs() as i64;
        let keys = self.inner.keys.current();
        let id = random_id();
        let rotation = new_rotation(&keys, &id, 1, now, lifetimes, absolute);
        let record = SessionRecord {
            id,
            guest_id: guest.id.clone(),
            generation: rotation.generation,
            salt: rotation.salt.clone(),
            current_hash: rotation.current_hash.clone(),
            current_issued_at: rotation.issued_at,
            current_expires_at: rotation.expires_at,
            previous_hash: None,
            rotated_at: None,
            created_at: now,
            last_used_at: now,
            idle_expires_at: rotation.idle_expires_at,
            absolute_expires_at: absolute,
            revoked_at: None,
            revoked_reason: None,
            user_agent: client.user_agent.as_deref().map(|ua| ua.chars().take(200).collect()),
            client_address: client.address.map(|a| a.to_string()),
        };
        self.inner.store.create_session(&record).await?;
        tracing::info!(guest = %guest.id, session = %record.id, "checked in");
        Ok(self.issue(&keys, guest, &record))
    }

    /// Signs the booking's current confirmation (the same token every time for one generation)
    /// and a new key card.
    fn issue(&self, keys: &KeySet, guest: &GuestRecord, record: &SessionRecord) -> Issued {
        let policy = &self.inner.policy;
        let now = self.now();
        let confirmation_claims = current_confirmation(keys, record, policy);
        let holder = Holder {
            user_id: &guest.id,
            username: &guest.username,
            session_id: &record.id,
            extra: self.extra_claims(&guest_view(guest)),
        };
        let lifetime = policy.lifetimes.key_card.as_secs() as i64;
        let (key_card, key_card_claims) = self.cut_key_card(keys, holder, lifetime, now);
        Issued {
            key_card,
            key_card_claims,
            confirmation: confirmation::sign(keys, &confirmation_claims),
            confirmation_claims,
            guest: guest_view(guest),
            session: SessionView::new(record, now),
        }
    }

    /// A key card for the booking, signed with this hotel's issuer, audience and client id.
    fn cut_key_card(
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
            client_id: &policy.client_id,
            user_id: holder.user_id,
            username: holder.username,
            session_id: holder.session_id,
            lifetime_secs,
            extra: holder.extra,
        };
        key_card::issue(keys, &request, now)
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

/// Whom a key card is cut for.
struct Holder<'a> {
    user_id: &'a str,
    username: &'a str,
    session_id: &'a str,
    extra: ExtraClaims,
}

fn guest_view(g: &GuestRecord) -> GuestView {
    GuestView { id: g.id.clone(), username: g.username.clone(), created_at: g.created_at }
}

/// Usernames: 3 to 32 of `A-Z a-z 0-9 _ . -`; unique regardless of case (the store compares
/// lower-cased names).
pub fn check_username(username: &str) -> Result<(), AuthError> {
    let ok = (3..=32).contains(&username.len())
        && username.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AuthError::InvalidUsername)
    }
}

fn new_rotation(
    keys: &KeySet,
    session_id: &str,
    generation: i64,
    now: Timestamp,
    lifetimes: &Lifetimes,
    absolute_expires_at: Timestamp,
) -> Rotation {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = hex(&salt);
    let jti = keys.derive_id(salt.as_bytes(), session_id, generation);
    let idle_expires_at = (now + lifetimes.idle.as_secs() as i64).min(absolute_expires_at);
    Rotation {
        generation,
        salt,
        current_hash: confirmation::hash_id(&jti),
        issued_at: now,
        expires_at: idle_expires_at,
        idle_expires_at,
    }
}

fn current_confirmation(
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
        client_id: policy.client_id.clone(),
        sid: record.id.clone(),
        generation: record.generation,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which of a booking's confirmations was shown.
enum Shown {
    /// The current one: it is exchanged.
    Current,
    /// The one it replaced, within the grace window (a second tab's race): answered again.
    PredecessorInGrace,
    /// Anything older, or the predecessor after the window: a copy, so the booking is cancelled.
    Older,
}

/// Which of `r`'s confirmations a genuine one of its booking (`claims`, whose id hashes to
/// `presented_hash`) is, at `now`.
fn which_shown(
    r: &SessionRecord,
    claims: &ConfirmationClaims,
    presented_hash: &str,
    now: Timestamp,
    lifetimes: &Lifetimes,
) -> Shown {
    let is_current = claims.generation == r.generation && presented_hash == r.current_hash;
    let is_predecessor =
        claims.generation == r.generation - 1 && r.previous_hash.as_deref() == Some(presented_hash);
    let in_grace = r.rotated_at.is_some_and(|at| now < at + lifetimes.grace.as_secs() as i64);
    if is_current {
        Shown::Current
    } else if is_predecessor && in_grace {
        Shown::PredecessorInGrace
    } else {
        Shown::Older
    }
}

/// The rotation rules, as a pure function of what the booking holds and what was shown.
fn decide(
    record: Option<&SessionRecord>,
    claims: &ConfirmationClaims,
    presented_hash: &str,
    now: Timestamp,
    lifetimes: &Lifetimes,
    keys: &KeySet,
) -> (SessionChange, Visit) {
    let keep = |visit| (SessionChange { update: SessionUpdate::Keep, events: Vec::new() }, visit);
    let Some(r) = record.filter(|r| r.guest_id == claims.sub) else {
        return keep(Visit::Refused(AuthError::SessionNotFound));
    };
    if r.revoked_at.is_some() {
        return keep(Visit::Refused(AuthError::SessionRevoked));
    }
    let revoke = |kind: EventKind, reason: &str, detail: String, error| {
        (
            SessionChange {
                update: SessionUpdate::Revoke { at: now, reason: reason.to_owned() },
                events: vec![NewEvent {
                    at: now,
                    kind,
                    generation: Some(claims.generation),
                    detail: Some(detail),
                }],
            },
            Visit::Refused(error),
        )
    };
    if now >= r.absolute_expires_at {
        return revoke(
            EventKind::Expired,
            "absolute limit reached",
            "the booking reached its absolute limit".into(),
            AuthError::SessionExpired,
        );
    }
    if now >= r.idle_expires_at {
        return revoke(
            EventKind::Expired,
            "idle limit reached",
            "the booking was idle too long".into(),
            AuthError::SessionExpired,
        );
    }
    let shown = which_shown(r, claims, presented_hash, now, lifetimes);
    if let Shown::Current = shown {
        let rotation =
            new_rotation(keys, &r.id, r.generation + 1, now, lifetimes, r.absolute_expires_at);
        let event = NewEvent {
            at: now,
            kind: EventKind::Refreshed,
            generation: Some(rotation.generation),
            detail: Some(format!(
                "generation {} exchanged for {}",
                r.generation, rotation.generation
            )),
        };
        return (
            SessionChange { update: SessionUpdate::Rotate(rotation), events: vec![event] },
            Visit::Rotated,
        );
    }
    if let Shown::PredecessorInGrace = shown {
        let event = NewEvent {
            at: now,
            kind: EventKind::GraceReissued,
            generation: Some(r.generation),
            detail: Some(format!("generation {} shown within the grace window; current generation {} handed out again", claims.generation, r.generation)),
        };
        return (
            SessionChange { update: SessionUpdate::Keep, events: vec![event] },
            Visit::Reissued,
        );
    }
    let detail = format!(
        "generation {} shown while generation {} is current",
        claims.generation, r.generation
    );
    revoke(
        EventKind::ReuseDetected,
        "confirmation reuse detected",
        detail,
        AuthError::ReuseDetected,
    )
}
