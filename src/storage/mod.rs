//! Where guests, bookings (sessions) and their event logs are kept.
//!
//! [`Store`] is the whole interface the front desk needs, in domain terms. The token logic decides;
//! the store only makes each decision atomic ([`Store::transact_session`]). SQLite ([`sqlite`]) is
//! the embedded default; a PostgreSQL store implements the same trait with `SELECT … FOR UPDATE`
//! where SQLite uses `BEGIN IMMEDIATE`.

pub mod sqlite;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// A storage failure. Only [`StoreError::UsernameTaken`] is the caller's doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("that username is taken")]
    UsernameTaken,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A registered guest. Not `Debug`: it holds the password hash.
#[derive(Clone, sqlx::FromRow)]
pub struct GuestRecord {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub created_at: Timestamp,
}

/// A booking: one check-in, and the rotation state of its confirmation.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: String,
    pub guest_id: String,
    pub generation: i64,
    pub salt: String,
    pub current_hash: String,
    pub current_issued_at: Timestamp,
    pub current_expires_at: Timestamp,
    pub previous_hash: Option<String>,
    pub rotated_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    pub idle_expires_at: Timestamp,
    pub absolute_expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub revoked_reason: Option<String>,
    pub user_agent: Option<String>,
    pub client_address: Option<String>,
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
    CheckedIn,
    Refreshed,
    /// A second tab (or a retried request) showed the immediate predecessor inside the grace
    /// window and was handed the current confirmation.
    GraceReissued,
    ReuseDetected,
    Revoked,
    Expired,
    CheckedOut,
    PasswordChanged,
}

impl EventKind {
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
        }
    }

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
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// An entry in a booking's event log (also the audit log).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    pub id: i64,
    pub session_id: String,
    pub at: Timestamp,
    pub kind: EventKind,
    pub generation: Option<i64>,
    pub detail: Option<String>,
}

/// An event to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub at: Timestamp,
    pub kind: EventKind,
    pub generation: Option<i64>,
    pub detail: Option<String>,
}

/// The new confirmation after a rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub generation: i64,
    pub salt: String,
    pub current_hash: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub idle_expires_at: Timestamp,
}

/// What the front desk decided to do with a booking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionUpdate {
    /// Leave the row as it is (events may still be appended).
    Keep,
    /// Replace the confirmation: the current hash becomes the previous one.
    Rotate(Rotation),
    /// End the booking.
    Revoke { at: Timestamp, reason: String },
}

/// A decision plus the events that record it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionChange {
    pub update: SessionUpdate,
    pub events: Vec<NewEvent>,
}

/// The front desk's choice of change, given the booking as the transaction read it.
pub type Decide<'a> = dyn for<'r> FnMut(Option<&'r SessionRecord>) -> SessionChange + Send + 'a;

/// Everything the front desk stores. Implementations must make each method atomic.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks the database answers (for `/healthz`).
    async fn ping(&self) -> Result<(), StoreError>;

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

    /// A guest's bookings, newest first.
    async fn sessions_of(&self, guest_id: &str) -> Result<Vec<SessionRecord>, StoreError>;

    /// Reads a booking, lets `decide` choose a change from what it read, and applies the change and
    /// its events, all in one transaction that no other change to the booking can interleave with.
    /// Returns the booking as it stands afterwards (`None` if there is no such booking).
    async fn transact_session(
        &self,
        id: &str,
        decide: &mut Decide<'_>,
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
}
