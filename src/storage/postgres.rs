//! The PostgreSQL store, for several Keycard instances on one database. Every read-then-write
//! holds the booking's row lock (`SELECT … FOR UPDATE`) for its transaction, so two front-desk
//! visits for one booking run one after the other whichever instance receives them; nothing
//! relies on a lock inside one process.
//!
//! Visits to the front desk go through group commit, as on SQLite: a task of their own takes
//! every visit waiting at this instance and decides and writes them in one transaction, which
//! locks all their rows at once. `src/storage/group_commit.rs` says how, and what each visit
//! keeps.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::group_commit::{self, GroupCommit};
use super::sql::{self, bind_session};
use super::*;

/// The PostgreSQL implementation of [`Store`].
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// Visits to the front desk, decided and written in batches on `pool`.
    group_commit: GroupCommit,
}

impl PostgresStore {
    /// Connects to `database.url` (e.g. `postgres://keycard:secret@db:5432/keycard`) and applies
    /// the migrations in `migrations/postgres` (sqlx's migration table; sqlx-cli reads the same
    /// folder). Concurrent start-ups are safe: sqlx takes an advisory lock while migrating.
    pub async fn connect(database: &DatabaseOptions) -> Result<Self, StoreError> {
        // A statement stuck behind a lock or on a sick server ends with an error the client
        // sees as 503, after the same wait as for a connection, well before the request timeout.
        let limit = format!("{}ms", database.acquire_timeout.as_millis());
        let options = PgConnectOptions::from_str(&database.url)?
            .application_name("keycard")
            .options([("statement_timeout", limit.as_str()), ("lock_timeout", limit.as_str())])
            // Each batch size has statements of its own (read, rotate, log): keep them all
            // prepared, beside the other queries'.
            .statement_cache_capacity(3 * group_commit::MAX_BATCH + 64);
        let pool = PgPoolOptions::new()
            .max_connections(database.max_connections)
            .acquire_timeout(database.acquire_timeout)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let group_commit = group_commit::Writer::start(pool.clone(), database.acquire_timeout);
        Ok(Self { pool, group_commit })
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

sql::transaction_helpers!(sqlx::PgConnection);

sql::device_grants_impl!(PostgresStore, pool);

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(sql::PING).execute(&self.pool).await?;
        Ok(())
    }

    fn connections(&self) -> Connections {
        Connections::of(&self.pool)
    }

    async fn create_guest(&self, g: &GuestRecord) -> Result<(), StoreError> {
        sqlx::query(sql::INSERT_GUEST)
            .bind(&g.id)
            .bind(&g.username)
            .bind(g.username.to_lowercase())
            .bind(&g.password_hash)
            .bind(g.created_at)
            .execute(&self.pool)
            .await
            .map_err(sql::guest_insert_error)?;
        Ok(())
    }

    async fn guest_by_username(&self, username: &str) -> Result<Option<GuestRecord>, StoreError> {
        let query = sqlx::query_as(sql::GUEST_BY_USERNAME).bind(username.to_lowercase());
        Ok(query.fetch_optional(&self.pool).await?)
    }

    async fn guest(&self, id: &str) -> Result<Option<GuestRecord>, StoreError> {
        Ok(sqlx::query_as(sql::GUEST_BY_ID).bind(id).fetch_optional(&self.pool).await?)
    }

    async fn upgrade_password_hash(&self, guest_id: &str, hash: &str) -> Result<(), StoreError> {
        let query = sqlx::query(sql::UPGRADE_PASSWORD_HASH).bind(hash).bind(guest_id);
        query.execute(&self.pool).await?;
        Ok(())
    }

    async fn change_password(
        &self,
        guest_id: &str,
        hash: &str,
        keep_session: &str,
        at: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let query = sqlx::query(sql::CHANGE_PASSWORD).bind(hash).bind(at).bind(guest_id);
        query.execute(&mut *tx).await?;
        let revoked = revoke_active(
            &mut tx,
            guest_id,
            Some(keep_session),
            EventKind::Revoked,
            "password changed",
            at,
        )
        .await?;
        let event =
            NewEvent { at, kind: EventKind::PasswordChanged, generation: None, detail: None };
        insert_events(&mut tx, keep_session, guest_id, &[event]).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn create_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        bind_session!(sqlx::query(sql::INSERT_SESSION), s).execute(&mut *tx).await?;
        let event = NewEvent {
            at: s.created_at,
            kind: EventKind::CheckedIn,
            generation: Some(s.generation),
            detail: None,
        };
        insert_events(&mut tx, &s.id, &s.guest_id, &[event]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(sqlx::query_as(sql::SESSION_BY_ID).bind(id).fetch_optional(&self.pool).await?)
    }

    async fn booking_with_guest(&self, id: &str) -> Result<Option<BookingWithGuest>, StoreError> {
        Ok(sqlx::query_as(sql::BOOKING_WITH_GUEST).bind(id).fetch_optional(&self.pool).await?)
    }

    async fn sessions_of(&self, guest_id: &str) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(sqlx::query_as(sql::SESSIONS_OF).bind(guest_id).fetch_all(&self.pool).await?)
    }

    async fn transact_session(
        &self,
        id: &str,
        decide: Decide,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.group_commit.transact(id, decide).await
    }

    async fn revoke_sessions_of(
        &self,
        guest_id: &str,
        except: Option<&str>,
        kind: EventKind,
        reason: &str,
        at: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let revoked = revoke_active(&mut tx, guest_id, except, kind, reason, at).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn events(&self, session_id: &str, limit: u32) -> Result<Vec<SessionEvent>, StoreError> {
        let query = sqlx::query_as(sql::EVENTS).bind(session_id).bind(i64::from(limit));
        let rows: Vec<sql::EventRow> = query.fetch_all(&self.pool).await?;
        Ok(rows.into_iter().filter_map(sql::EventRow::into_event).collect())
    }

    async fn take_login_attempt(&self, account: &str, gcra: Gcra) -> Result<Attempt, StoreError> {
        // One statement: the upsert holds the account's row lock, so attempts arriving at
        // several instances at once are counted one after the other.
        let allowed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO login_throttle (account, tat) VALUES ($1, $2 + $3) \
             ON CONFLICT (account) DO UPDATE SET tat = greatest(login_throttle.tat, $2) + $3 \
             WHERE greatest(login_throttle.tat, $2) + $3 - $2 <= $4 RETURNING tat",
        )
        .bind(account)
        .bind(gcra.now_ms)
        .bind(gcra.interval_ms)
        .bind(gcra.window_ms)
        .fetch_optional(&self.pool)
        .await?;
        if allowed.is_some() {
            return Ok(Attempt::Allowed);
        }
        let tat: Option<i64> =
            sqlx::query_scalar(sql::THROTTLE_TAT).bind(account).fetch_optional(&self.pool).await?;
        Ok(Attempt::Refused(gcra.wait(tat.unwrap_or(gcra.now_ms))))
    }

    async fn forget_login_attempts(&self, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(sql::FORGET_LOGIN_ATTEMPTS).bind(now_ms).execute(&self.pool).await?;
        Ok(())
    }

    async fn join(
        &self,
        instance: &str,
        issuer: &str,
        now: Timestamp,
        live_since: Timestamp,
    ) -> Result<Option<IssuerConflict>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Instances starting at the same moment take turns, so two of them cannot both see an
        // empty roll and join with different issuers.
        sqlx::query("LOCK TABLE instances IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        let conflict = other_issuer(&mut tx, instance, issuer, live_since).await?;
        if conflict.is_none() {
            let query = sqlx::query(sql::JOIN).bind(instance).bind(issuer).bind(now);
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(conflict)
    }

    async fn heartbeat(
        &self,
        instance: &str,
        issuer: &str,
        now: Timestamp,
        live_since: Timestamp,
        forget_before: Timestamp,
    ) -> Result<Option<IssuerConflict>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(sql::HEARTBEAT).bind(instance).bind(issuer).bind(now).execute(&mut *tx).await?;
        sqlx::query(sql::FORGET_INSTANCES).bind(forget_before).execute(&mut *tx).await?;
        let conflict = other_issuer(&mut tx, instance, issuer, live_since).await?;
        tx.commit().await?;
        Ok(conflict)
    }

    async fn leave(&self, instance: &str) -> Result<(), StoreError> {
        sqlx::query(sql::LEAVE).bind(instance).execute(&self.pool).await?;
        Ok(())
    }

    async fn remember_proof(&self, proof_id: &str, until: Timestamp) -> Result<bool, StoreError> {
        let query = sqlx::query(sql::REMEMBER_PROOF).bind(proof_id).bind(until);
        Ok(query.execute(&self.pool).await?.rows_affected() == 1)
    }

    async fn forget_proofs(&self, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(sql::FORGET_PROOFS).bind(now).execute(&self.pool).await?;
        Ok(())
    }

    #[cfg(feature = "demo")]
    async fn keep_stolen(&self, copy: &StolenCopy) -> Result<(), StoreError> {
        sqlx::query(sql::KEEP_STOLEN)
            .bind(&copy.session_id)
            .bind(copy.generation)
            .bind(&copy.salt)
            .bind(copy.issued_at)
            .bind(copy.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[cfg(feature = "demo")]
    async fn stolen(&self, session_id: &str) -> Result<Option<StolenCopy>, StoreError> {
        Ok(sqlx::query_as(sql::STOLEN).bind(session_id).fetch_optional(&self.pool).await?)
    }
}
