//! Where guests, bookings (sessions) and their event logs are kept.
//!
//! [`Store`] is the whole interface the front desk needs, in domain terms. The token logic decides;
//! the store only makes each decision atomic ([`Store::transact_session`]). SQLite ([`sqlite`]) is
//! the embedded default; PostgreSQL ([`postgres`]) implements the same trait with
//! `SELECT … FOR UPDATE` where SQLite uses `BEGIN IMMEDIATE`, so several Keycard instances can share
//! one database. [`open`] picks the backend from the URL's scheme.
//!
//! Besides bookings, the store keeps what every instance of a cluster must agree on: the
//! per-account check-in throttle ([`Store::take_login_attempt`]) and the roll of running instances
//! with the issuer each signs as ([`Store::join`]).

mod device;
mod group_commit;
pub mod postgres;
mod sql;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

pub use device::{DeviceGrant, DeviceGrantState, DeviceGrants};

/// A storage failure. Only [`StoreError::UsernameTaken`] is the caller's doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("that username is taken")]
    /// A guest with that username (case aside) exists.
    UsernameTaken,
    /// The database cannot be reached or is not answering in time (restarting, overloaded, pool
    /// exhausted): a retry later may succeed, so the client gets 503, not 500.
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("database error: {0}")]
    /// Any other database failure: a bug or a broken database (500).
    Database(sqlx::Error),
    #[error("migration error: {0}")]
    /// The schema could not be brought up to date.
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Database(e)
        }
    }
}

/// Errors that say "the database is not there right now" rather than "this query is wrong".
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLITE_BUSY / SQLITE_LOCKED (and their extended codes) after the busy timeout.
                code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
            } else {
                // PostgreSQL: connection exceptions (class 08), insufficient resources (53),
                // shutting down or starting up (57P01-57P03), our statement or lock timeout
                // (57014, 55P03), a serialization failure or deadlock (40001, 40P01) and a
                // read-only server after a failover (25006): all worth a retry later.
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || matches!(&*code, "57014" | "55P03" | "40001" | "40P01" | "25006")
            }
        }
        _ => false,
    }
}

/// How to reach the database: `KEYCARD_DATABASE_*` settings. Its `Debug` hides the URL, which
/// may hold a password.
#[derive(Clone)]
pub struct DatabaseOptions {
    /// `sqlite://PATH`, `sqlite::memory:` or `postgres://USER:PASSWORD@HOST:PORT/DB`.
    pub url: String,
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long a request waits for a connection (or for a new one to open), and on PostgreSQL
    /// how long one statement or lock wait may take, before the request gets 503.
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for DatabaseOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseOptions")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

impl DatabaseOptions {
    /// The defaults for `url`: 8 connections, 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), max_connections: 8, acquire_timeout: Duration::from_secs(5) }
    }
}

/// Opens and migrates the database that `options.url` names: SQLite for `sqlite:` URLs,
/// PostgreSQL for `postgres:`/`postgresql:` ones.
pub async fn open(options: &DatabaseOptions) -> Result<Arc<dyn Store>, StoreError> {
    if options.url.starts_with("postgres:") || options.url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PostgresStore::connect(options).await?))
    } else {
        Ok(Arc::new(sqlite::SqliteStore::connect_with(options).await?))
    }
}

/// The answer of [`Store::take_login_attempt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Within budget: go ahead.
    Allowed,
    /// Over budget: the next attempt is allowed after this long.
    Refused(Duration),
}

/// One step of the GCRA (generic cell rate algorithm) that both stores run in SQL: each account
/// has a theoretical arrival time `tat`; an attempt at `now` moves it to `max(tat, now) + interval`
/// and is allowed when that is at most `window` ahead of `now` (a burst of `window / interval`).
#[derive(Clone, Copy, Debug)]
pub struct Gcra {
    /// Now, in milliseconds.
    pub now_ms: i64,
    /// The time one attempt costs.
    pub interval_ms: i64,
    /// How far ahead of now the `tat` may run (the burst).
    pub window_ms: i64,
}

impl Gcra {
    /// The wait after a refusal, given the stored `tat`.
    pub fn wait(&self, tat: i64) -> Duration {
        let ms = (tat + self.interval_ms - self.window_ms - self.now_ms).max(0);
        Duration::from_millis(ms as u64)
    }
}

#[cfg(feature = "demo")]
/// Demo controls only: what a copied booking confirmation is derived from (see `demo_stolen` in
/// the migrations): with the signing keys it re-creates the very token that was copied.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StolenCopy {
    /// The booking.
    pub session_id: String,
    /// The generation that was copied.
    pub generation: i64,
    /// The booking's salt then.
    pub salt: String,
    /// When that confirmation was issued.
    pub issued_at: Timestamp,
    /// When it expires.
    pub expires_at: Timestamp,
}

#[cfg(feature = "demo")]
impl StolenCopy {
    /// The copy of `record`'s current confirmation.
    pub fn of(record: &SessionRecord) -> Self {
        Self {
            session_id: record.id.clone(),
            generation: record.generation,
            salt: record.salt.clone(),
            issued_at: record.current_issued_at,
            expires_at: record.current_expires_at,
        }
    }

    /// `record` as it stood when the copy was made (for re-deriving the copied confirmation).
    pub fn as_of(&self, record: &SessionRecord) -> SessionRecord {
        SessionRecord {
            generation: self.generation,
            salt: self.salt.clone(),
            current_issued_at: self.issued_at,
            current_expires_at: self.expires_at,
            ..record.clone()
        }
    }
}

/// Another instance serving the same database signs as a different issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerConflict {
    /// The other instance's name.
    pub instance: String,
    /// The issuer it signs as.
    pub issuer: String,
}

/// A booking and the public facts of its guest (no password hash), read together.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct BookingWithGuest {
    /// The booking.
    #[sqlx(flatten)]
    pub booking: SessionRecord,
    /// The guest's username, as typed at registration.
    pub username: String,
    /// When the guest registered.
    pub guest_since: Timestamp,
}

/// A registered guest. Not `Debug`: it holds the password hash.
#[derive(Clone, sqlx::FromRow)]
pub struct GuestRecord {
    /// The guest's id.
    pub id: String,
    /// Their username, as typed at registration.
    pub username: String,
    /// The Argon2id PHC string.
    pub password_hash: String,
    /// When they registered.
    pub created_at: Timestamp,
}

/// A booking: one check-in, and the rotation state of its confirmation.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    /// The booking's id.
    pub id: String,
    /// Whose it is.
    pub guest_id: String,
    /// How many times its confirmation was rotated.
    pub generation: i64,
    /// Per-booking salt of the confirmation id derivation.
    pub salt: String,
    /// Hash of the current confirmation's id.
    pub current_hash: String,
    /// When the current confirmation was issued.
    pub current_issued_at: Timestamp,
    /// When it expires.
    pub current_expires_at: Timestamp,
    /// Hash of the previous confirmation's id: shown again within the grace window it is a retry, later it is theft.
    pub previous_hash: Option<String>,
    /// When the last rotation happened.
    pub rotated_at: Option<Timestamp>,
    /// When the guest checked in.
    pub created_at: Timestamp,
    /// The last visit to the front desk.
    pub last_used_at: Timestamp,
    /// Idle limit.
    pub idle_expires_at: Timestamp,
    /// Absolute limit.
    pub absolute_expires_at: Timestamp,
    /// When it was ended, if it was.
    pub revoked_at: Option<Timestamp>,
    /// Why it was ended.
    pub revoked_reason: Option<String>,
    /// The client it was made from.
    pub user_agent: Option<String>,
    /// The address it was made from.
    pub client_address: Option<String>,
    /// The DPoP key it is bound to (RFC 7638 thumbprint), if the client proved one at check-in.
    pub dpop_jkt: Option<String>,
    /// The native client it was made for (RFC 8628), or `None` for the browser: its
    /// confirmations work only at that client's front desk.
    pub client_id: Option<String>,
}

impl SessionRecord {
    /// Not revoked and within both its idle and absolute limits.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.idle_expires_at && now < self.absolute_expires_at
    }
}

/// What happened to a booking, as its timeline shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A check-in or registration started the booking.
    CheckedIn,
    /// The front desk rotated the confirmation.
    Refreshed,
    /// A second tab (or a retried request) showed the immediate predecessor inside the grace
    /// window and was handed the current confirmation.
    GraceReissued,
    /// An old confirmation came back: the booking was cancelled.
    ReuseDetected,
    /// Ended by the guest or from another booking.
    Revoked,
    /// Outlived a limit.
    Expired,
    /// Checked out.
    CheckedOut,
    /// The password changed (the other bookings end).
    PasswordChanged,
    /// The demo moved the booking's limits so that it lapses soon (step 4 of the article, live).
    LimitsMoved,
    /// The guest approved a device's check-in (RFC 8628) from this booking.
    DeviceApproved,
    /// The guest denied a device's check-in from this booking.
    DeviceDenied,
}

impl EventKind {
    /// The name stored and shown, e.g. `checked_in`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CheckedIn => "checked_in",
            Self::Refreshed => "refreshed",
            Self::GraceReissued => "grace_reissued",
            Self::ReuseDetected => "reuse_detected",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::CheckedOut => "checked_out",
            Self::PasswordChanged => "password_changed",
            Self::LimitsMoved => "limits_moved",
            Self::DeviceApproved => "device_approved",
            Self::DeviceDenied => "device_denied",
        }
    }

    /// The kind named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::CheckedIn,
            Self::Refreshed,
            Self::GraceReissued,
            Self::ReuseDetected,
            Self::Revoked,
            Self::Expired,
            Self::CheckedOut,
            Self::PasswordChanged,
            Self::LimitsMoved,
            Self::DeviceApproved,
            Self::DeviceDenied,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// An entry in a booking's event log (also the audit log).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// Its position in the log.
    pub id: i64,
    /// The booking.
    pub session_id: String,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
    /// The generation it concerns, if any.
    pub generation: Option<i64>,
    /// A short note.
    pub detail: Option<String>,
}

/// An event to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
    /// The generation it concerns, if any.
    pub generation: Option<i64>,
    /// A short note.
    pub detail: Option<String>,
}

/// The new confirmation after a rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The new generation.
    pub generation: i64,
    /// The booking's salt.
    pub salt: String,
    /// Hash of the new confirmation's id.
    pub current_hash: String,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it expires.
    pub expires_at: Timestamp,
    /// The new idle limit.
    pub idle_expires_at: Timestamp,
}

/// What the front desk decided to do with a booking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionUpdate {
    /// Leave the row as it is (events may still be appended).
    Keep,
    /// Replace the confirmation: the current hash becomes the previous one.
    Rotate(Rotation),
    /// Demo: bring the booking's idle and absolute limits forward to `at` (never later than they
    /// were), so that it lapses by time without anyone touching the clock.
    #[cfg(feature = "demo")]
    Lapse {
        /// The new limit.
        at: Timestamp,
    },
    /// End the booking.
    Revoke {
        /// When.
        at: Timestamp,
        /// Why, in a few words.
        reason: String,
    },
}

/// A decision plus the events that record it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionChange {
    /// What to do with the row.
    pub update: SessionUpdate,
    /// The events to append in the same transaction.
    pub events: Vec<NewEvent>,
}

/// The front desk's choice of change, given the booking as the transaction read it.
///
/// Owned (`'static`) because a store may run it on a task of its own: SQLite's group commit
/// ([`sqlite`]) decides many bookings' visits in one transaction. It may be called more than once
/// for one visit (a batch that failed is retried one visit at a time); only the last call's
/// change is applied.
pub type Decide = Box<dyn for<'r> FnMut(Option<&'r SessionRecord>) -> SessionChange + Send>;

/// Database connections a store holds open, by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Connections {
    /// Serving a query or a transaction now.
    pub in_use: u32,
    /// Open and waiting for work.
    pub idle: u32,
}

impl Connections {
    /// The connections of a sqlx pool.
    pub fn of<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> Self {
        let (size, idle) = (pool.size(), pool.num_idle() as u32);
        Self { in_use: size.saturating_sub(idle), idle }
    }
}

/// Everything the front desk stores (devices' requests to check in through [`DeviceGrants`]).
/// Implementations must make each method atomic.
#[async_trait::async_trait]
pub trait Store: DeviceGrants + Send + Sync + 'static {
    /// Checks the database answers (for `/healthz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// The database connections this store holds open now: in use and idle (for the metrics).
    fn connections(&self) -> Connections;

    /// Adds a guest; [`StoreError::UsernameTaken`] if the name exists in any case.
    async fn create_guest(&self, guest: &GuestRecord) -> Result<(), StoreError>;

    /// Finds a guest by name, regardless of case.
    async fn guest_by_username(&self, username: &str) -> Result<Option<GuestRecord>, StoreError>;

    /// Finds a guest by id.
    async fn guest(&self, id: &str) -> Result<Option<GuestRecord>, StoreError>;

    /// Replaces a stored hash with a stronger one of the same password (no sessions change).
    async fn upgrade_password_hash(&self, guest_id: &str, hash: &str) -> Result<(), StoreError>;

    /// Sets a new password and revokes every session of the guest but `keep_session`, in one
    /// transaction. Returns the revoked session ids.
    async fn change_password(
        &self,
        guest_id: &str,
        hash: &str,
        keep_session: &str,
        at: Timestamp,
    ) -> Result<Vec<String>, StoreError>;

    /// Opens a booking and logs its check-in.
    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError>;

    /// Reads a booking.
    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// Reads a booking and who holds it, in one read: the room door's look-up (every checked-in
    /// page and call makes one, and most also show the guest's name).
    async fn booking_with_guest(&self, id: &str) -> Result<Option<BookingWithGuest>, StoreError>;

    /// A guest's bookings, newest first.
    async fn sessions_of(&self, guest_id: &str) -> Result<Vec<SessionRecord>, StoreError>;

    /// Reads a booking, lets `decide` choose a change from what it read, and applies the change and
    /// its events, all in one transaction that no other change to the booking can interleave with.
    /// Returns the booking as it stands afterwards (`None` if there is no such booking).
    async fn transact_session(
        &self,
        id: &str,
        decide: Decide,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Revokes a guest's active sessions, optionally sparing one, logging `reason` on each.
    /// Returns the ids revoked.
    async fn revoke_sessions_of(
        &self,
        guest_id: &str,
        except: Option<&str>,
        kind: EventKind,
        reason: &str,
        at: Timestamp,
    ) -> Result<Vec<String>, StoreError>;

    /// A booking's events, oldest first, at most `limit`.
    async fn events(&self, session_id: &str, limit: u32) -> Result<Vec<SessionEvent>, StoreError>;

    /// One check-in attempt for `account`, counted for the whole cluster in one atomic statement.
    async fn take_login_attempt(&self, account: &str, gcra: Gcra) -> Result<Attempt, StoreError>;

    /// Deletes throttle rows whose budget is full again (their time is before `now_ms`).
    async fn forget_login_attempts(&self, now_ms: i64) -> Result<(), StoreError>;

    /// Adds this instance to the roll, unless another instance seen since `live_since` signs as a
    /// different issuer: then nothing is written and that instance is returned.
    async fn join(
        &self,
        instance: &str,
        issuer: &str,
        now: Timestamp,
        live_since: Timestamp,
    ) -> Result<Option<IssuerConflict>, StoreError>;

    /// Marks this instance as alive (re-adding it if it was dropped) and drops instances unseen
    /// since `forget_before`. Returns a live instance that signs as another issuer, if any.
    async fn heartbeat(
        &self,
        instance: &str,
        issuer: &str,
        now: Timestamp,
        live_since: Timestamp,
        forget_before: Timestamp,
    ) -> Result<Option<IssuerConflict>, StoreError>;

    /// Takes this instance off the roll (a clean shutdown).
    async fn leave(&self, instance: &str) -> Result<(), StoreError>;

    /// Records a DPoP proof (by `proof_id`, a hash of its key and `jti`) until `until`: true the
    /// first time, false if any instance has recorded it before (a replay).
    async fn remember_proof(&self, proof_id: &str, until: Timestamp) -> Result<bool, StoreError>;

    /// Forgets the proofs recorded until before `now`: too old to be accepted anyway.
    async fn forget_proofs(&self, now: Timestamp) -> Result<(), StoreError>;

    #[cfg(feature = "demo")]
    /// Demo controls: keeps (replacing any earlier one) the booking confirmation a thief copied.
    async fn keep_stolen(&self, copy: &StolenCopy) -> Result<(), StoreError>;

    #[cfg(feature = "demo")]
    /// Demo controls: the copy the thief holds for a booking, if any.
    async fn stolen(&self, session_id: &str) -> Result<Option<StolenCopy>, StoreError>;
}
