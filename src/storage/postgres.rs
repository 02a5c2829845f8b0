//! The PostgreSQL store, for several Keycard instances on one database. Every read-then-write
//! holds the booking's row lock (`SELECT … FOR UPDATE`) for its transaction, so two front-desk
//! visits for one booking run one after the other whichever instance receives them; nothing
//! relies on a lock inside one process.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::*;

/// The PostgreSQL implementation of [`Store`].
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

const SESSION_COLUMNS: &str = "id, guest_id, generation, salt, current_hash, current_issued_at, \
    current_expires_at, previous_hash, rotated_at, created_at, last_used_at, idle_expires_at, \
    absolute_expires_at, revoked_at, revoked_reason, user_agent, client_address";

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
            .options([("statement_timeout", limit.as_str()), ("lock_timeout", limit.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(database.max_connections)
            .acquire_timeout(database.acquire_timeout)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

async fn insert_events(
    conn: &mut sqlx::PgConnection,
    session_id: &str,
    guest_id: &str,
    events: &[NewEvent],
) -> Result<(), sqlx::Error> {
    for e in events {
        sqlx::query(
            "INSERT INTO session_events (session_id, guest_id, at, kind, generation, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
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

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_guest(&self, g: &GuestRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO guests (id, username, username_key, password_hash, created_at, \
             password_changed_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&g.id)
        .bind(&g.username)
        .bind(g.username.to_lowercase())
        .bind(&g.password_hash)
        .bind(g.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::UsernameTaken,
            _ => e.into(),
        })?;
        Ok(())
    }

    async fn guest_by_username(&self, username: &str) -> Result<Option<GuestRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, username, password_hash, created_at FROM guests WHERE username_key = $1",
        )
        .bind(username.to_lowercase())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn guest(&self, id: &str) -> Result<Option<GuestRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, username, password_hash, created_at FROM guests WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn upgrade_password_hash(&self, guest_id: &str, hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE guests SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(guest_id)
            .execute(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE guests SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
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
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17)"
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
        Ok(sqlx::query_as(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn booking_with_guest(&self, id: &str) -> Result<Option<BookingWithGuest>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT s.*, g.username, g.created_at AS guest_since \
             FROM (SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1) AS s \
             JOIN guests AS g ON g.id = s.guest_id"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn sessions_of(&self, guest_id: &str) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE guest_id = $1 ORDER BY created_at DESC, id"
        ))
        .bind(guest_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn transact_session(
        &self,
        id: &str,
        mut decide: Decide,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The row lock is the whole concurrency story: a second visit for this booking, from any
        // instance, waits here and then reads the row as the first visit left it (READ COMMITTED
        // re-reads a locked row once the lock holder commits).
        let record: Option<SessionRecord> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1 FOR UPDATE"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let change = decide(record.as_ref());
        let Some(record) = record else {
            return Ok(None);
        };
        let after = match &change.update {
            SessionUpdate::Keep => record,
            SessionUpdate::Rotate(r) => {
                sqlx::query_as(&format!(
                    "UPDATE sessions SET generation = $1, salt = $2, previous_hash = current_hash, \
                     current_hash = $3, current_issued_at = $4, current_expires_at = $5, \
                     rotated_at = $4, last_used_at = $4, idle_expires_at = $6 WHERE id = $7 \
                     RETURNING {SESSION_COLUMNS}"
                ))
                .bind(r.generation)
                .bind(&r.salt)
                .bind(&r.current_hash)
                .bind(r.issued_at)
                .bind(r.expires_at)
                .bind(r.idle_expires_at)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
            }
            #[cfg(feature = "demo")]
            SessionUpdate::Lapse { at } => {
                sqlx::query_as(&format!(
                    "UPDATE sessions SET idle_expires_at = LEAST(idle_expires_at, $1), \
                     absolute_expires_at = LEAST(absolute_expires_at, $1) \
                     WHERE id = $2 RETURNING {SESSION_COLUMNS}"
                ))
                .bind(at)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
            }
            SessionUpdate::Revoke { at, reason } => {
                sqlx::query_as(&format!(
                    "UPDATE sessions SET revoked_at = coalesce(revoked_at, $1), \
                     revoked_reason = coalesce(revoked_reason, $2) WHERE id = $3 \
                     RETURNING {SESSION_COLUMNS}"
                ))
                .bind(at)
                .bind(reason)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        insert_events(&mut tx, id, &after.guest_id, &change.events).await?;
        tx.commit().await?;
        Ok(Some(after))
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
        let rows = sqlx::query(
            "SELECT id, session_id, at, kind, generation, detail FROM session_events \
             WHERE session_id = $1 ORDER BY id LIMIT $2",
        )
        .bind(session_id)
        .bind(i64::from(limit))
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
            sqlx::query_scalar("SELECT tat FROM login_throttle WHERE account = $1")
                .bind(account)
                .fetch_optional(&self.pool)
                .await?;
        Ok(Attempt::Refused(gcra.wait(tat.unwrap_or(gcra.now_ms))))
    }

    async fn forget_login_attempts(&self, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_throttle WHERE tat < $1")
            .bind(now_ms)
            .execute(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // Instances starting at the same moment take turns, so two of them cannot both see an
        // empty roll and join with different issuers.
        sqlx::query("LOCK TABLE instances IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        let conflict = other_issuer(&mut tx, instance, issuer, live_since).await?;
        if conflict.is_none() {
            sqlx::query(
                "INSERT INTO instances (id, issuer, started_at, seen_at) VALUES ($1, $2, $3, $3)",
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
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO instances (id, issuer, started_at, seen_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET seen_at = $3",
        )
        .bind(instance)
        .bind(issuer)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM instances WHERE seen_at < $1")
            .bind(forget_before)
            .execute(&mut *tx)
            .await?;
        let conflict = other_issuer(&mut tx, instance, issuer, live_since).await?;
        tx.commit().await?;
        Ok(conflict)
    }

    async fn leave(&self, instance: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(instance)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[cfg(feature = "demo")]
    async fn keep_stolen(&self, copy: &StolenCopy) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO demo_stolen (session_id, generation, salt, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id) DO UPDATE SET \
             generation = $2, salt = $3, issued_at = $4, expires_at = $5",
        )
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
        Ok(sqlx::query_as(
            "SELECT session_id, generation, salt, issued_at, expires_at FROM demo_stolen \
             WHERE session_id = $1",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}

async fn other_issuer(
    tx: &mut sqlx::PgConnection,
    instance: &str,
    issuer: &str,
    live_since: Timestamp,
) -> Result<Option<IssuerConflict>, sqlx::Error> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT id, issuer FROM instances WHERE id <> $1 AND issuer <> $2 AND seen_at >= $3 \
         LIMIT 1",
    )
    .bind(instance)
    .bind(issuer)
    .bind(live_since)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|(instance, issuer)| IssuerConflict { instance, issuer }))
}

async fn revoke_active(
    tx: &mut sqlx::PgConnection,
    guest_id: &str,
    except: Option<&str>,
    kind: EventKind,
    reason: &str,
    at: Timestamp,
) -> Result<Vec<String>, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
         WHERE guest_id = $3 AND revoked_at IS NULL AND id IS DISTINCT FROM $4 RETURNING id",
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
