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
use sqlx::{Row, SqlitePool};

use super::group_commit::{self, GroupCommit};
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

pub(super) const SESSION_COLUMNS: &str =
    "id, guest_id, generation, salt, current_hash, current_issued_at, \
    current_expires_at, previous_hash, rotated_at, created_at, last_used_at, idle_expires_at, \
    absolute_expires_at, revoked_at, revoked_reason, user_agent, client_address";

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
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
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
                .connect_with(options)
                .await?
        };
        let group_commit = GroupCommit::start(writer.clone(), database.acquire_timeout);
        Ok(Self { pool, writer, group_commit })
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

async fn insert_events(
    conn: &mut sqlx::SqliteConnection,
    session_id: &str,
    guest_id: &str,
    events: &[NewEvent],
) -> Result<(), sqlx::Error> {
    for e in events {
        sqlx::query(
            "INSERT INTO session_events (session_id, guest_id, at, kind, generation, detail) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(session_id)
        .bind(guest_id)
        .bind(e.at)
        .bind(e.kind.as_str())
        .bind(e.generation)
        .bind(&e.detail)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_guest(&self, g: &GuestRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO guests (id, username, username_key, password_hash, created_at, \
             password_changed_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&g.id)
        .bind(&g.username)
        .bind(g.username.to_lowercase())
        .bind(&g.password_hash)
        .bind(g.created_at)
        .bind(g.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::UsernameTaken
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    async fn guest_by_username(&self, username: &str) -> Result<Option<GuestRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, username, password_hash, created_at FROM guests WHERE username_key = ?",
        )
        .bind(username.to_lowercase())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn guest(&self, id: &str) -> Result<Option<GuestRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, username, password_hash, created_at FROM guests WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn upgrade_password_hash(&self, guest_id: &str, hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE guests SET password_hash = ? WHERE id = ?")
            .bind(hash)
            .bind(guest_id)
            .execute(&self.writer)
            .await?;
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
        sqlx::query("UPDATE guests SET password_hash = ?, password_changed_at = ? WHERE id = ?")
            .bind(hash)
            .bind(at)
            .bind(guest_id)
            .execute(&mut *tx)
            .await?;
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
        sqlx::query(&format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&s.id)
        .bind(&s.guest_id)
        .bind(s.generation)
        .bind(&s.salt)
        .bind(&s.current_hash)
        .bind(s.current_issued_at)
        .bind(s.current_expires_at)
        .bind(&s.previous_hash)
        .bind(s.rotated_at)
        .bind(s.created_at)
        .bind(s.last_used_at)
        .bind(s.idle_expires_at)
        .bind(s.absolute_expires_at)
        .bind(s.revoked_at)
        .bind(&s.revoked_reason)
        .bind(&s.user_agent)
        .bind(&s.client_address)
        .execute(&mut *tx)
        .await?;
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
        Ok(sqlx::query_as(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn booking_with_guest(&self, id: &str) -> Result<Option<BookingWithGuest>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT s.*, g.username, g.created_at AS guest_since \
             FROM (SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?) AS s \
             JOIN guests AS g ON g.id = s.guest_id"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn sessions_of(&self, guest_id: &str) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE guest_id = ? ORDER BY created_at DESC, id"
        ))
        .bind(guest_id)
        .fetch_all(&self.pool)
        .await?)
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
        let rows = sqlx::query(
            "SELECT id, session_id, at, kind, generation, detail FROM session_events \
             WHERE session_id = ? ORDER BY id LIMIT ?",
        )
        .bind(session_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(SessionEvent {
                    id: row.get("id"),
                    session_id: row.get("session_id"),
                    at: row.get("at"),
                    kind: EventKind::parse(row.get::<&str, _>("kind"))?,
                    generation: row.get("generation"),
                    detail: row.get("detail"),
                })
            })
            .collect())
    }

    async fn take_login_attempt(&self, account: &str, gcra: Gcra) -> Result<Attempt, StoreError> {
        // One statement, so concurrent attempts (from any process) serialise on the write lock.
        let allowed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO login_throttle (account, tat) VALUES (?1, ?2 + ?3) \
             ON CONFLICT (account) DO UPDATE SET tat = max(login_throttle.tat, ?2) + ?3 \
             WHERE max(login_throttle.tat, ?2) + ?3 - ?2 <= ?4 RETURNING tat",
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
        let tat: Option<i64> =
            sqlx::query_scalar("SELECT tat FROM login_throttle WHERE account = ?")
                .bind(account)
                .fetch_optional(&self.writer)
                .await?;
        Ok(Attempt::Refused(gcra.wait(tat.unwrap_or(gcra.now_ms))))
    }

    async fn forget_login_attempts(&self, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_throttle WHERE tat < ?")
            .bind(now_ms)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn join(
        &self,
        instance: &str,
        issuer: &str,
        now: Timestamp,
        live_since: Timestamp,
    ) -> Result<Option<IssuerConflict>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let conflict = other_issuer(&mut tx, instance, issuer, live_since).await?;
        if conflict.is_none() {
            sqlx::query(
                "INSERT INTO instances (id, issuer, started_at, seen_at) VALUES (?1, ?2, ?3, ?3)",
            )
            .bind(instance)
            .bind(issuer)
            .bind(now)
            .execute(&mut *tx)
            .await?;
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
        sqlx::query(
            "INSERT INTO instances (id, issuer, started_at, seen_at) VALUES (?1, ?2, ?3, ?3) \
             ON CONFLICT (id) DO UPDATE SET seen_at = ?3",
        )
        .bind(instance)
        .bind(issuer)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM instances WHERE seen_at < ?")
            .bind(forget_before)
            .execute(&mut *tx)
            .await?;
        let conflict = other_issuer(&mut tx, instance, issuer, live_since).await?;
        tx.commit().await?;
        Ok(conflict)
    }

    async fn leave(&self, instance: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM instances WHERE id = ?")
            .bind(instance)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    #[cfg(feature = "demo")]
    async fn keep_stolen(&self, copy: &StolenCopy) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO demo_stolen (session_id, generation, salt, issued_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (session_id) DO UPDATE SET \
             generation = ?2, salt = ?3, issued_at = ?4, expires_at = ?5",
        )
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
        Ok(sqlx::query_as(
            "SELECT session_id, generation, salt, issued_at, expires_at FROM demo_stolen \
             WHERE session_id = ?1",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}

async fn other_issuer(
    tx: &mut sqlx::SqliteConnection,
    instance: &str,
    issuer: &str,
    live_since: Timestamp,
) -> Result<Option<IssuerConflict>, sqlx::Error> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT id, issuer FROM instances WHERE id <> ? AND issuer <> ? AND seen_at >= ? LIMIT 1",
    )
    .bind(instance)
    .bind(issuer)
    .bind(live_since)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|(instance, issuer)| IssuerConflict { instance, issuer }))
}

async fn revoke_active(
    tx: &mut sqlx::SqliteConnection,
    guest_id: &str,
    except: Option<&str>,
    kind: EventKind,
    reason: &str,
    at: Timestamp,
) -> Result<Vec<String>, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = ?, revoked_reason = ? \
         WHERE guest_id = ? AND revoked_at IS NULL AND id IS NOT ? RETURNING id",
    )
    .bind(at)
    .bind(reason)
    .bind(guest_id)
    .bind(except)
    .fetch_all(&mut *tx)
    .await?;
    for id in &ids {
        let event = NewEvent { at, kind, generation: None, detail: Some(reason.to_owned()) };
        insert_events(tx, id, guest_id, &[event]).await?;
    }
    Ok(ids)
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
