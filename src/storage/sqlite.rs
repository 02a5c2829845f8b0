//! The embedded SQLite store: WAL mode, a busy timeout, and `BEGIN IMMEDIATE` for every
//! read-then-write so two front-desk visits for one booking run one after the other.
//!
//! ## One writer connection
//! SQLite lets one connection write at a time. With every pooled connection free to write, the
//! others wait for the lock inside SQLite's busy handler, which *sleeps* (1, 2, 5, 10 … 100 ms)
//! and checks again: under load a writer can lose that race many times over, and the front
//! desk's tail grew to hundreds of milliseconds. So writes go through a pool of exactly one
//! connection, where they queue first-come first-served in the async runtime and never sleep;
//! reads use the other pool and, in WAL mode, never wait for the writer. The busy timeout still
//! covers a writer in *another* process (a second instance on the same file, a backup).
//!
//! Visits to the front desk (rotations, ends) go one step further: a task of their own takes
//! every visit waiting and writes them all in one transaction. That is group commit;
//! `src/storage/group_commit.rs` says how, and what each visit keeps.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::group_commit::{self, GroupCommit};
use super::sql::{self, bind_session};
use super::*;

/// The SQLite implementation of [`Store`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// Reads (WAL: they never wait for the writer).
    pool: SqlitePool,
    /// Writes: one connection, so writers queue in the runtime, not in SQLite's busy handler.
    writer: SqlitePool,
    /// Visits to the front desk, decided and written in batches on `writer`.
    group_commit: GroupCommit,
}

impl SqliteStore {
    /// Opens (creating the file and its folder if needed) and migrates the database at `url`,
    /// e.g. `sqlite://data/keycard.db`, with the default pool.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(&DatabaseOptions::new(url)).await
    }

    /// [`SqliteStore::connect`] with the pool size and wait of `database`.
    pub async fn connect_with(database: &DatabaseOptions) -> Result<Self, StoreError> {
        let url = database.url.as_str();
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // A writer waits this long for another's write lock, then the request gets 503.
            .busy_timeout(database.acquire_timeout)
            .foreign_keys(true);
        let io = |e| StoreError::Database(sqlx::Error::Io(e));
        let file = options.get_filename();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // The database holds password hashes: create it readable by its owner only (SQLite gives
        // the -wal and -shm files the same mode). An existing file is opened, not changed. sqlx
        // names an in-memory database `file:sqlx-in-memory-N`, so that case is told by the URL.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        #[cfg(unix)]
        if !in_memory && !file.as_os_str().is_empty() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(file)
                .map_err(io)?;
        }
        // No ping before each use (sqlx's default): a SQLite connection is a file this process
        // holds open, no server can drop it, and the ping was a second trip to the connection's
        // worker thread for every read (docs/upstream/checked-in-pages.md).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            // A writer waits this long for its turn, then the request gets 503.
            .acquire_timeout(database.acquire_timeout)
            // Each batch size has statements of its own (read, rotate, log): keep them all
            // prepared, beside the other writes'.
            .connect_with(
                options.clone().statement_cache_capacity(3 * group_commit::MAX_BATCH + 64),
            )
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        // An in-memory database is private to its pool: one pool does both there.
        let pool = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(database.max_connections)
                .acquire_timeout(database.acquire_timeout)
                .test_before_acquire(false)
                .connect_with(options)
                .await?
        };
        let group_commit = group_commit::Writer::start(writer.clone(), database.acquire_timeout);
        Ok(Self { pool, writer, group_commit })
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

sql::transaction_helpers!(sqlx::SqliteConnection);

sql::device_grants_impl!(SqliteStore, writer);

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(sql::PING).execute(&self.pool).await?;
        Ok(())
    }

    fn connections(&self) -> Connections {
        let (reads, writes) = (Connections::of(&self.pool), Connections::of(&self.writer));
        Connections { in_use: reads.in_use + writes.in_use, idle: reads.idle + writes.idle }
    }

    async fn create_guest(&self, g: &GuestRecord) -> Result<(), StoreError> {
        sqlx::query(sql::INSERT_GUEST)
            .bind(&g.id)
            .bind(&g.username)
            .bind(g.username.to_lowercase())
            .bind(&g.password_hash)
            .bind(g.created_at)
            .execute(&self.writer)
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
        query.execute(&self.writer).await?;
        Ok(())
    }

    async fn change_password(
        &self,
        guest_id: &str,
        hash: &str,
        keep_session: &str,
        at: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        // One statement, so concurrent attempts (from any process) serialise on the write lock.
        let allowed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO login_throttle (account, tat) VALUES ($1, $2 + $3) \
             ON CONFLICT (account) DO UPDATE SET tat = max(login_throttle.tat, $2) + $3 \
             WHERE max(login_throttle.tat, $2) + $3 - $2 <= $4 RETURNING tat",
        )
        .bind(account)
        .bind(gcra.now_ms)
        .bind(gcra.interval_ms)
        .bind(gcra.window_ms)
        .fetch_optional(&self.writer)
        .await?;
        if allowed.is_some() {
            return Ok(Attempt::Allowed);
        }
        let tat: Option<i64> = sqlx::query_scalar(sql::THROTTLE_TAT)
            .bind(account)
            .fetch_optional(&self.writer)
            .await?;
        Ok(Attempt::Refused(gcra.wait(tat.unwrap_or(gcra.now_ms))))
    }

    async fn forget_login_attempts(&self, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(sql::FORGET_LOGIN_ATTEMPTS).bind(now_ms).execute(&self.writer).await?;
        Ok(())
    }

    async fn join(
        &self,
        instance: &str,
        issuer: &str,
        now: Timestamp,
        live_since: Timestamp,
    ) -> Result<Option<IssuerConflict>, StoreError> {
        // BEGIN IMMEDIATE takes the write lock first: instances starting at the same moment
        // take turns, so two of them cannot both see an empty roll.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(sql::HEARTBEAT).bind(instance).bind(issuer).bind(now).execute(&mut *tx).await?;
        sqlx::query(sql::FORGET_INSTANCES).bind(forget_before).execute(&mut *tx).await?;
        let conflict = other_issuer(&mut tx, instance, issuer, live_since).await?;
        tx.commit().await?;
        Ok(conflict)
    }

    async fn leave(&self, instance: &str) -> Result<(), StoreError> {
        sqlx::query(sql::LEAVE).bind(instance).execute(&self.writer).await?;
        Ok(())
    }

    async fn remember_proof(&self, proof_id: &str, until: Timestamp) -> Result<bool, StoreError> {
        let query = sqlx::query(sql::REMEMBER_PROOF).bind(proof_id).bind(until);
        Ok(query.execute(&self.writer).await?.rows_affected() == 1)
    }

    async fn forget_proofs(&self, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(sql::FORGET_PROOFS).bind(now).execute(&self.writer).await?;
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
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    #[cfg(feature = "demo")]
    async fn stolen(&self, session_id: &str) -> Result<Option<StolenCopy>, StoreError> {
        Ok(sqlx::query_as(sql::STOLEN).bind(session_id).fetch_optional(&self.pool).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_is_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("k.db");
        let url = format!("sqlite://{}", path.display());
        SqliteStore::connect(&url).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // Opening it again (a restart) keeps it.
        SqliteStore::connect(&url).await.unwrap().ping().await.unwrap();
    }

    #[tokio::test]
    async fn an_in_memory_database_leaves_no_file_behind() {
        let stray = || {
            std::fs::read_dir(".")
                .unwrap()
                .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("in-memory"))
                .count()
        };
        let before = stray();
        SqliteStore::connect("sqlite::memory:").await.unwrap().ping().await.unwrap();
        assert_eq!(stray(), before);
    }
}
