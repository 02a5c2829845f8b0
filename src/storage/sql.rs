//! The statements both stores run, written once: placeholders are `$N`, which PostgreSQL takes
//! and sqlx-sqlite maps by number too, and the SQL is what both dialects read (`RETURNING`,
//! `ON CONFLICT`, `IS DISTINCT FROM`). What differs between the databases stays in their own
//! files: locking (`BEGIN IMMEDIATE`, `FOR UPDATE`, `LOCK TABLE`), SQLite's group commit, and
//! `max`/`greatest`.

/// A booking's columns, in [`SessionRecord`](super::SessionRecord)'s order.
macro_rules! session_columns {
    () => {
        "id, guest_id, generation, salt, current_hash, current_issued_at, current_expires_at, \
         previous_hash, rotated_at, created_at, last_used_at, idle_expires_at, \
         absolute_expires_at, revoked_at, revoked_reason, user_agent, client_address, dpop_jkt, \
         client_id"
    };
}
pub(super) use session_columns;

/// Binds a [`SessionRecord`](super::SessionRecord)'s columns to `$1`…`$19`, in
/// [`session_columns!`] order.
macro_rules! bind_session {
    ($query:expr, $s:expr) => {
        $query
            .bind(&$s.id)
            .bind(&$s.guest_id)
            .bind($s.generation)
            .bind(&$s.salt)
            .bind(&$s.current_hash)
            .bind($s.current_issued_at)
            .bind($s.current_expires_at)
            .bind(&$s.previous_hash)
            .bind($s.rotated_at)
            .bind($s.created_at)
            .bind($s.last_used_at)
            .bind($s.idle_expires_at)
            .bind($s.absolute_expires_at)
            .bind($s.revoked_at)
            .bind(&$s.revoked_reason)
            .bind(&$s.user_agent)
            .bind(&$s.client_address)
            .bind(&$s.dpop_jkt)
            .bind(&$s.client_id)
    };
}
pub(super) use bind_session;

/// Binds one event of a booking to [`INSERT_EVENT`]'s `$1`…`$6`.
macro_rules! bind_event {
    ($query:expr, $session_id:expr, $guest_id:expr, $e:expr) => {
        $query
            .bind($session_id)
            .bind($guest_id)
            .bind($e.at)
            .bind($e.kind.as_str())
            .bind($e.generation)
            .bind(&$e.detail)
    };
}
pub(super) use bind_event;

/// The helpers both stores run inside their transactions, for one driver's connection type:
/// `insert_events`, `revoke_active` and `other_issuer`.
macro_rules! transaction_helpers {
    ($connection:ty) => {
        /// Appends `events` to a booking's log.
        async fn insert_events(
            conn: &mut $connection,
            session_id: &str,
            guest_id: &str,
            events: &[NewEvent],
        ) -> Result<(), sqlx::Error> {
            for e in events {
                $crate::storage::sql::bind_event!(
                    sqlx::query($crate::storage::sql::INSERT_EVENT),
                    session_id,
                    guest_id,
                    e
                )
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// Ends every active booking of `guest_id` but `except`, logging each: their ids.
        async fn revoke_active(
            tx: &mut $connection,
            guest_id: &str,
            except: Option<&str>,
            kind: EventKind,
            reason: &str,
            at: Timestamp,
        ) -> Result<Vec<String>, StoreError> {
            let query = sqlx::query_scalar($crate::storage::sql::REVOKE_ACTIVE);
            let query = query.bind(at).bind(reason).bind(guest_id).bind(except);
            let ids: Vec<String> = query.fetch_all(&mut *tx).await?;
            for id in &ids {
                let event =
                    NewEvent { at, kind, generation: None, detail: Some(reason.to_owned()) };
                insert_events(tx, id, guest_id, &[event]).await?;
            }
            Ok(ids)
        }

        /// A live instance other than `instance` that signs as another issuer.
        async fn other_issuer(
            tx: &mut $connection,
            instance: &str,
            issuer: &str,
            live_since: Timestamp,
        ) -> Result<Option<IssuerConflict>, sqlx::Error> {
            let query = sqlx::query_as($crate::storage::sql::OTHER_ISSUER);
            let query = query.bind(instance).bind(issuer).bind(live_since);
            let row: Option<(String, String)> = query.fetch_optional(&mut *tx).await?;
            Ok(row.map(|(instance, issuer)| IssuerConflict { instance, issuer }))
        }
    };
}
pub(super) use transaction_helpers;

pub(super) const PING: &str = "SELECT 1";

// Guests.
pub(super) const INSERT_GUEST: &str = "INSERT INTO guests (id, username, username_key, \
    password_hash, created_at, password_changed_at) VALUES ($1, $2, $3, $4, $5, $5)";
pub(super) const GUEST_BY_USERNAME: &str =
    "SELECT id, username, password_hash, created_at FROM guests WHERE username_key = $1";
pub(super) const GUEST_BY_ID: &str =
    "SELECT id, username, password_hash, created_at FROM guests WHERE id = $1";
pub(super) const UPGRADE_PASSWORD_HASH: &str = "UPDATE guests SET password_hash = $1 WHERE id = $2";
pub(super) const CHANGE_PASSWORD: &str =
    "UPDATE guests SET password_hash = $1, password_changed_at = $2 WHERE id = $3";

// Bookings.
pub(super) const INSERT_SESSION: &str = concat!(
    "INSERT INTO sessions (",
    session_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
);
pub(super) const SESSION_BY_ID: &str =
    concat!("SELECT ", session_columns!(), " FROM sessions WHERE id = $1");
pub(super) const BOOKING_WITH_GUEST: &str = concat!(
    "SELECT s.*, g.username, g.created_at AS guest_since FROM (SELECT ",
    session_columns!(),
    " FROM sessions WHERE id = $1) AS s JOIN guests AS g ON g.id = s.guest_id"
);
pub(super) const SESSIONS_OF: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE guest_id = $1 ORDER BY created_at DESC, id"
);
/// Ends one booking; one already ended keeps when and why.
pub(super) const REVOKE_SESSION: &str = concat!(
    "UPDATE sessions SET revoked_at = coalesce(revoked_at, $1), \
     revoked_reason = coalesce(revoked_reason, $2) WHERE id = $3 RETURNING ",
    session_columns!()
);
/// Ends every active booking of a guest but one (`$4`, or none when NULL).
pub(super) const REVOKE_ACTIVE: &str = "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
    WHERE guest_id = $3 AND revoked_at IS NULL AND id IS DISTINCT FROM $4 RETURNING id";

// The event log.
pub(super) const INSERT_EVENT: &str = "INSERT INTO session_events \
    (session_id, guest_id, at, kind, generation, detail) VALUES ($1, $2, $3, $4, $5, $6)";
pub(super) const EVENTS: &str = "SELECT id, session_id, at, kind, generation, detail \
    FROM session_events WHERE session_id = $1 ORDER BY id LIMIT $2";

// The check-in throttle (its upsert differs: `max` or `greatest`).
pub(super) const THROTTLE_TAT: &str = "SELECT tat FROM login_throttle WHERE account = $1";
pub(super) const FORGET_LOGIN_ATTEMPTS: &str = "DELETE FROM login_throttle WHERE tat < $1";

// The roll of instances.
pub(super) const JOIN: &str =
    "INSERT INTO instances (id, issuer, started_at, seen_at) VALUES ($1, $2, $3, $3)";
pub(super) const HEARTBEAT: &str = "INSERT INTO instances (id, issuer, started_at, seen_at) \
    VALUES ($1, $2, $3, $3) ON CONFLICT (id) DO UPDATE SET seen_at = $3";
pub(super) const FORGET_INSTANCES: &str = "DELETE FROM instances WHERE seen_at < $1";
pub(super) const OTHER_ISSUER: &str = "SELECT id, issuer FROM instances \
    WHERE id <> $1 AND issuer <> $2 AND seen_at >= $3 LIMIT 1";
pub(super) const LEAVE: &str = "DELETE FROM instances WHERE id = $1";

// DPoP proofs seen: one row each, so a replay finds its row (on any instance).
pub(super) const REMEMBER_PROOF: &str = "INSERT INTO dpop_proofs (proof_id, expires_at) \
    VALUES ($1, $2) ON CONFLICT (proof_id) DO NOTHING";
pub(super) const FORGET_PROOFS: &str = "DELETE FROM dpop_proofs WHERE expires_at < $1";

// Devices' requests to check in (RFC 8628).
macro_rules! device_grant_columns {
    () => {
        "device_code_hash, user_code, client_id, requested_from, user_agent, created_at, \
         expires_at, interval_secs, last_polled_at, polled_too_fast, state, guest_id, decided_at"
    };
}
/// A user code already on record is kept: the front desk draws another.
pub(super) const INSERT_DEVICE_GRANT: &str = concat!(
    "INSERT INTO device_grants (",
    device_grant_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT DO NOTHING"
);
pub(super) const DEVICE_GRANT_BY_USER_CODE: &str =
    concat!("SELECT ", device_grant_columns!(), " FROM device_grants WHERE user_code = $1");
pub(super) const DECIDE_DEVICE_GRANT: &str = concat!(
    "UPDATE device_grants SET state = $1, guest_id = $2, decided_at = $3 \
     WHERE user_code = $4 AND state = 'pending' AND expires_at > $3 RETURNING ",
    device_grant_columns!()
);
/// One poll: `SET`'s right-hand sides read the row as it was, so "too soon" and the grown
/// interval are judged against the previous poll, in the same statement.
pub(super) const POLL_DEVICE_GRANT: &str = concat!(
    "UPDATE device_grants SET \
     polled_too_fast = (last_polled_at IS NOT NULL AND $2 - last_polled_at < interval_secs), \
     interval_secs = interval_secs + CASE WHEN last_polled_at IS NOT NULL \
         AND $2 - last_polled_at < interval_secs THEN 5 ELSE 0 END, \
     last_polled_at = $2 \
     WHERE device_code_hash = $1 RETURNING ",
    device_grant_columns!()
);
pub(super) const CLAIM_DEVICE_GRANT: &str = "UPDATE device_grants SET state = 'used' \
    WHERE device_code_hash = $1 AND state = 'approved' RETURNING guest_id";
pub(super) const FORGET_DEVICE_GRANTS: &str = "DELETE FROM device_grants WHERE expires_at < $1";

/// Binds a [`DeviceGrant`](super::DeviceGrant) to [`INSERT_DEVICE_GRANT`]'s `$1`…`$13`.
macro_rules! bind_device_grant {
    ($query:expr, $g:expr) => {
        $query
            .bind(&$g.device_code_hash)
            .bind(&$g.user_code)
            .bind(&$g.client_id)
            .bind(&$g.requested_from)
            .bind(&$g.user_agent)
            .bind($g.created_at)
            .bind($g.expires_at)
            .bind($g.interval_secs)
            .bind($g.last_polled_at)
            .bind($g.polled_too_fast)
            .bind($g.state.as_str())
            .bind(&$g.guest_id)
            .bind($g.decided_at)
    };
}
pub(super) use bind_device_grant;

/// [`DeviceGrants`](super::DeviceGrants) for `$store`, the same on both databases (each statement
/// is atomic on its own), writing through its `$pool` field.
macro_rules! device_grants_impl {
    ($store:ty, $pool:ident) => {
        #[async_trait::async_trait]
        impl DeviceGrants for $store {
            async fn create_device_grant(&self, grant: &DeviceGrant) -> Result<bool, StoreError> {
                let query = sql::bind_device_grant!(sqlx::query(sql::INSERT_DEVICE_GRANT), grant);
                Ok(query.execute(&self.$pool).await?.rows_affected() == 1)
            }

            async fn device_grant_by_user_code(
                &self,
                user_code: &str,
            ) -> Result<Option<DeviceGrant>, StoreError> {
                let query = sqlx::query_as(sql::DEVICE_GRANT_BY_USER_CODE).bind(user_code);
                Ok(query.fetch_optional(&self.$pool).await?)
            }

            async fn decide_device_grant(
                &self,
                user_code: &str,
                guest_id: &str,
                state: DeviceGrantState,
                at: Timestamp,
            ) -> Result<Option<DeviceGrant>, StoreError> {
                let query = sqlx::query_as(sql::DECIDE_DEVICE_GRANT);
                let query = query.bind(state.as_str()).bind(guest_id).bind(at).bind(user_code);
                Ok(query.fetch_optional(&self.$pool).await?)
            }

            async fn poll_device_grant(
                &self,
                device_code_hash: &str,
                now: Timestamp,
            ) -> Result<Option<DeviceGrant>, StoreError> {
                let query = sqlx::query_as(sql::POLL_DEVICE_GRANT).bind(device_code_hash).bind(now);
                Ok(query.fetch_optional(&self.$pool).await?)
            }

            async fn claim_device_grant(
                &self,
                device_code_hash: &str,
            ) -> Result<Option<String>, StoreError> {
                let query = sqlx::query_scalar(sql::CLAIM_DEVICE_GRANT).bind(device_code_hash);
                let guest: Option<Option<String>> = query.fetch_optional(&self.$pool).await?;
                Ok(guest.flatten())
            }

            async fn forget_device_grants(&self, before: Timestamp) -> Result<(), StoreError> {
                sqlx::query(sql::FORGET_DEVICE_GRANTS).bind(before).execute(&self.$pool).await?;
                Ok(())
            }
        }
    };
}
pub(super) use device_grants_impl;

// The demo thief's copy.
#[cfg(feature = "demo")]
pub(super) const KEEP_STOLEN: &str = "INSERT INTO demo_stolen \
    (session_id, generation, salt, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5) \
    ON CONFLICT (session_id) DO UPDATE SET generation = $2, salt = $3, issued_at = $4, \
    expires_at = $5";
#[cfg(feature = "demo")]
pub(super) const STOLEN: &str = "SELECT session_id, generation, salt, issued_at, expires_at \
    FROM demo_stolen WHERE session_id = $1";

/// A row of [`EVENTS`], before its kind is read.
#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    id: i64,
    session_id: String,
    at: super::Timestamp,
    kind: String,
    generation: Option<i64>,
    detail: Option<String>,
}

impl EventRow {
    /// The event; `None` for a kind this build does not know (a newer build's, say).
    pub(super) fn into_event(self) -> Option<super::SessionEvent> {
        Some(super::SessionEvent {
            id: self.id,
            session_id: self.session_id,
            at: self.at,
            kind: super::EventKind::parse(&self.kind)?,
            generation: self.generation,
            detail: self.detail,
        })
    }
}

/// A guest insert that broke the unique name: the name is taken (in any letter case).
pub(super) fn guest_insert_error(e: sqlx::Error) -> super::StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => super::StoreError::UsernameTaken,
        _ => e.into(),
    }
}
