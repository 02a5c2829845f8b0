//! Group commit: visits to the front desk from many requests, decided and written in one
//! transaction per batch by one task per store. Both databases use it; [`Dialect`] holds the
//! little that differs.
//!
//! ## Why
//! Every statement is a round trip: to the thread sqlx runs each SQLite connection on, or over
//! the socket to PostgreSQL. One rotation alone is five of them (begin, read, update, log,
//! commit). On SQLite a profile of the front desk under load spent more time switching threads
//! in the kernel than anywhere else (SQLite itself took under 1 %); on PostgreSQL each rotation
//! held a connection and its row lock for all five, and an instance topped out at a quarter of
//! SQLite's rate. A batch of visits costs the same five round trips as one visit: one read for
//! every booking of the batch, one update for all its rotations, one insert for all its events.
//!
//! ## What each visit keeps
//! - Its own booking is read, decided and written inside one transaction that no other writer
//!   of that booking can enter: SQLite's `BEGIN IMMEDIATE` excludes every other writer;
//!   PostgreSQL's `FOR UPDATE` holds the batch's rows, so a visit to one of them from another
//!   instance waits, then reads the row as the batch left it.
//! - A batch holds at most one visit per booking. A second visit to the same booking (a second
//!   tab racing the first) waits for the next batch and reads the booking as the first left it.
//! - Visits of one booking that reach one instance are decided in the order they arrived.
//! - A visit is answered only after its batch has committed: an instance killed mid-batch loses
//!   no visit it acknowledged.
//! - A batch that fails (a refused write, or PostgreSQL ending a deadlock with another
//!   transaction) is rolled back and its visits are tried again one at a time, so each gets its
//!   own error and one visit cannot fail another.
//! - A visit whose caller has gone (the request was cancelled or timed out) is not decided.
//! - A decision that panics panics its own request, as it would without the queue; the others of
//!   its batch go on.

use std::any::Any;
use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::Duration;

use sqlx::{Arguments, Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use tokio::sync::{mpsc, oneshot};

use super::sql::{self, session_columns};

const SESSION_COLUMNS: &str = session_columns!();
use super::{Decide, NewEvent, Rotation, SessionRecord, SessionUpdate, StoreError};

/// The most visits one transaction takes: enough that a batch's cost per visit is small, few
/// enough that a batch is short and its statements stay far below SQLite's limit of bound
/// values (a rotation binds 7).
pub(super) const MAX_BATCH: usize = 32;

/// Visits waiting for the writer beyond this make their senders wait (backpressure).
const QUEUE: usize = 1024;

/// What differs between the databases in a batch.
pub(super) trait Dialect: Database {
    /// Opens a batch's transaction.
    const BEGIN: &'static str;
    /// Ends the batch's read, so that nothing else writes its bookings until it commits.
    const LOCK: &'static str;
    /// The demo's lapse: each limit brought down to `$1`.
    #[cfg(feature = "demo")]
    const LAPSE: &'static str;
}

impl Dialect for sqlx::Sqlite {
    // Takes the database's one write lock at once, so the read below sees what the writes will
    // change.
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
    const LOCK: &'static str = "";
    #[cfg(feature = "demo")]
    const LAPSE: &'static str = concat!(
        "UPDATE sessions SET idle_expires_at = min(idle_expires_at, $1), \
         absolute_expires_at = min(absolute_expires_at, $1) WHERE id = $2 RETURNING ",
        session_columns!()
    );
}

impl Dialect for sqlx::Postgres {
    const BEGIN: &'static str = "BEGIN";
    // Locked in the order of their ids (PostgreSQL locks rows after sorting them): two
    // instances' batches sharing bookings wait for each other, never deadlock.
    const LOCK: &'static str = " ORDER BY id FOR UPDATE";
    #[cfg(feature = "demo")]
    const LAPSE: &'static str = concat!(
        "UPDATE sessions SET idle_expires_at = LEAST(idle_expires_at, $1), \
         absolute_expires_at = LEAST(absolute_expires_at, $1) WHERE id = $2 RETURNING ",
        session_columns!()
    );
}

/// What a visit's caller gets: the booking as the transaction left it, or the panic of its
/// decision to raise again.
type Answer = Result<Result<Option<SessionRecord>, StoreError>, Box<dyn Any + Send>>;

struct Visit {
    id: String,
    decide: Decide,
    answer: oneshot::Sender<Answer>,
}

/// The queue to the writer. Cloning it shares the queue; the task that serves it ends when the
/// last clone is dropped and the visits already queued are done.
#[derive(Clone, Debug)]
pub(super) struct GroupCommit {
    queue: mpsc::Sender<Visit>,
    wait: Duration,
}

impl GroupCommit {
    /// [`Store::transact_session`](super::Store::transact_session), in the next batch.
    pub(super) async fn transact(
        &self,
        id: &str,
        decide: Decide,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let (answer, answered) = oneshot::channel();
        let visit = Visit { id: id.to_owned(), decide, answer };
        let served = async {
            self.queue.send(visit).await.ok()?;
            answered.await.ok()
        };
        match tokio::time::timeout(self.wait, served).await {
            Ok(Some(Ok(after))) => after,
            Ok(Some(Err(panic))) => resume_unwind(panic),
            // The task is gone: only a panic outside any decision ends it.
            Ok(None) => Err(StoreError::Unavailable(sqlx::Error::WorkerCrashed)),
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }
}

/// The task that writes every batch, through its pool.
pub(super) struct Writer<DB: Database> {
    pool: Pool<DB>,
}

impl<DB> Writer<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> SessionRecord: FromRow<'r, DB::Row>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    /// Starts the task that writes every batch through `pool`. A visit waits at most `wait` for
    /// its answer, then gets [`StoreError::Unavailable`].
    pub(super) fn start(pool: Pool<DB>, wait: Duration) -> GroupCommit {
        let (queue, visits) = mpsc::channel(QUEUE);
        tokio::spawn(Self { pool }.serve(visits));
        GroupCommit { queue, wait }
    }

    async fn serve(self, mut visits: mpsc::Receiver<Visit>) {
        let mut waiting = VecDeque::new();
        loop {
            if waiting.is_empty() {
                match visits.recv().await {
                    Some(visit) => waiting.push_back(visit),
                    None => return,
                }
            }
            while waiting.len() < 2 * MAX_BATCH {
                match visits.try_recv() {
                    Ok(visit) => waiting.push_back(visit),
                    Err(_) => break,
                }
            }
            let batch = next_batch(&mut waiting);
            if !batch.is_empty() {
                self.run(batch).await;
            }
        }
    }

    async fn run(&self, mut batch: Vec<Visit>) {
        match self.apply(&mut batch).await {
            Ok(answers) => {
                for (visit, answer) in batch.into_iter().zip(answers) {
                    let _ = visit.answer.send(answer);
                }
            }
            Err(e) if batch.len() == 1 => {
                let visit = batch.pop().expect("one visit");
                let _ = visit.answer.send(Ok(Err(e.into())));
            }
            Err(e) => {
                // Rare by design (a write one booking's row refuses, a deadlock with another
                // transaction): said once, so that a batch that always fails cannot hide behind
                // the visits that then succeed alone.
                tracing::warn!(error = %e, visits = batch.len(), "a batch failed; each visit is tried alone");
                for visit in batch {
                    let mut alone = vec![visit];
                    let answers = self.apply(&mut alone).await;
                    let visit = alone.pop().expect("one visit");
                    let answer = match answers {
                        Ok(mut answers) => answers.pop().expect("one answer"),
                        Err(e) => Ok(Err(e.into())),
                    };
                    let _ = visit.answer.send(answer);
                }
            }
        }
    }

    /// Reads, decides and writes every visit of `batch` in one transaction, and answers each in
    /// order. An error rolls the whole batch back.
    async fn apply(&self, batch: &mut [Visit]) -> Result<Vec<Answer>, sqlx::Error> {
        let mut tx = self.pool.begin_with(DB::BEGIN).await?;
        let read = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id IN {}{}",
            placeholders(1, batch.len()),
            DB::LOCK
        );
        let mut ids = DB::Arguments::default();
        for visit in batch.iter() {
            ids.add(visit.id.clone()).map_err(sqlx::Error::Encode)?;
        }
        let mut bookings: HashMap<String, SessionRecord> =
            sqlx::query_as_with::<_, SessionRecord, _>(&read, ids)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect();

        let decided: Vec<Decided> = batch
            .iter_mut()
            .map(|visit| {
                let record = bookings.remove(&visit.id);
                match catch_unwind(AssertUnwindSafe(|| (visit.decide)(record.as_ref()))) {
                    Err(panic) => Decided::Panicked(panic),
                    Ok(change) => match record {
                        None => Decided::Missing,
                        Some(r) => Decided::Change(r, change.update, change.events),
                    },
                }
            })
            .collect();

        let rotations: Vec<(&str, &Rotation)> = decided
            .iter()
            .filter_map(|d| match d {
                Decided::Change(r, SessionUpdate::Rotate(rotation), _) => Some((&*r.id, rotation)),
                _ => None,
            })
            .collect();
        let mut rotated = Self::rotate(&mut tx, &rotations).await?;

        let mut answers = Vec::with_capacity(decided.len());
        let mut events = Vec::new();
        for d in decided {
            answers.push(match d {
                Decided::Missing => Ok(Ok(None)),
                Decided::Panicked(panic) => Err(panic),
                Decided::Change(record, update, new_events) => {
                    let after = match update {
                        SessionUpdate::Keep => record,
                        SessionUpdate::Rotate(_) => {
                            rotated.remove(&record.id).ok_or(sqlx::Error::RowNotFound)?
                        }
                        other => Self::update_one(&mut tx, &record.id, &other).await?,
                    };
                    events.extend(
                        new_events
                            .into_iter()
                            .map(|e| (after.id.clone(), after.guest_id.clone(), e)),
                    );
                    Ok(Ok(Some(after)))
                }
            });
        }
        Self::log(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(answers)
    }

    /// Every rotation of a batch in one `UPDATE … FROM`; the bookings as they stand afterwards, by
    /// id.
    async fn rotate(
        conn: &mut DB::Connection,
        rotations: &[(&str, &Rotation)],
    ) -> Result<HashMap<String, SessionRecord>, sqlx::Error> {
        if rotations.is_empty() {
            return Ok(HashMap::new());
        }
        // The new values get names of their own, so no column name means two things. Every right-hand
        // side sees the row as it was: `previous_hash` takes the old `current_hash`.
        let update = format!(
            "WITH rotation (booking, new_generation, new_salt, new_hash, at, new_expires_at, \
             new_idle_expires_at) AS (VALUES {}) \
             UPDATE sessions SET generation = new_generation, salt = new_salt, \
             previous_hash = sessions.current_hash, current_hash = new_hash, \
             current_issued_at = at, current_expires_at = new_expires_at, rotated_at = at, \
             last_used_at = at, idle_expires_at = new_idle_expires_at FROM rotation \
             WHERE sessions.id = booking RETURNING {SESSION_COLUMNS}",
            placeholders(rotations.len(), 7)
        );
        let mut values = DB::Arguments::default();
        for (id, r) in rotations {
            values.add(id.to_string()).map_err(sqlx::Error::Encode)?;
            values.add(r.generation).map_err(sqlx::Error::Encode)?;
            values.add(r.salt.clone()).map_err(sqlx::Error::Encode)?;
            values.add(r.current_hash.clone()).map_err(sqlx::Error::Encode)?;
            values.add(r.issued_at).map_err(sqlx::Error::Encode)?;
            values.add(r.expires_at).map_err(sqlx::Error::Encode)?;
            values.add(r.idle_expires_at).map_err(sqlx::Error::Encode)?;
        }
        Ok(sqlx::query_as_with::<_, SessionRecord, _>(&update, values)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect())
    }

    /// The rare changes (an end, the demo's lapse), one statement each.
    async fn update_one(
        conn: &mut DB::Connection,
        id: &str,
        update: &SessionUpdate,
    ) -> Result<SessionRecord, sqlx::Error> {
        match update {
            SessionUpdate::Keep | SessionUpdate::Rotate(_) => {
                unreachable!("kept and rotated bookings are written by the batch")
            }
            #[cfg(feature = "demo")]
            SessionUpdate::Lapse { at } => {
                sqlx::query_as(DB::LAPSE).bind(*at).bind(id).fetch_one(conn).await
            }
            SessionUpdate::Revoke { at, reason } => {
                let query = sqlx::query_as(sql::REVOKE_SESSION).bind(*at).bind(reason).bind(id);
                query.fetch_one(conn).await
            }
        }
    }

    /// Every event of a batch in one `INSERT`.
    async fn log(
        conn: &mut DB::Connection,
        events: &[(String, String, NewEvent)],
    ) -> Result<(), sqlx::Error> {
        if events.is_empty() {
            return Ok(());
        }
        let insert = format!(
            "INSERT INTO session_events (session_id, guest_id, at, kind, generation, detail) \
             VALUES {}",
            placeholders(events.len(), 6)
        );
        let mut values = DB::Arguments::default();
        for (session, guest, e) in events {
            values.add(session.clone()).map_err(sqlx::Error::Encode)?;
            values.add(guest.clone()).map_err(sqlx::Error::Encode)?;
            values.add(e.at).map_err(sqlx::Error::Encode)?;
            values.add(e.kind.as_str()).map_err(sqlx::Error::Encode)?;
            values.add(e.generation).map_err(sqlx::Error::Encode)?;
            values.add(e.detail.clone()).map_err(sqlx::Error::Encode)?;
        }
        sqlx::query_with(&insert, values).execute(&mut *conn).await?;
        Ok(())
    }
}

/// `rows` groups of `width` numbered placeholders, `($1, $2), ($3, $4)`, or one group, `($1, $2)`.
/// (sqlx's QueryBuilder cannot be used by code generic over the database: its arguments'
/// lifetime cannot shrink to the query's borrow there.)
fn placeholders(rows: usize, width: usize) -> String {
    let group = |row: usize| {
        let numbers = (1..=width).map(|column| format!("${}", row * width + column));
        format!("({})", numbers.collect::<Vec<_>>().join(", "))
    };
    (0..rows).map(group).collect::<Vec<_>>().join(", ")
}

/// Takes the oldest waiting visits, at most one per booking and [`MAX_BATCH`] in all; the rest
/// keep their order. Visits whose caller has gone are dropped.
fn next_batch(waiting: &mut VecDeque<Visit>) -> Vec<Visit> {
    let mut bookings = HashSet::new();
    let mut batch = Vec::new();
    let mut later = VecDeque::new();
    for visit in waiting.drain(..) {
        if visit.answer.is_closed() {
            continue;
        }
        if batch.len() < MAX_BATCH && bookings.insert(visit.id.clone()) {
            batch.push(visit);
        } else {
            later.push_back(visit);
        }
    }
    *waiting = later;
    batch
}

/// One visit's decision, before it is written.
// Nearly every visit is a `Change`, and the batch's list lives for one transaction: boxing the
// record would cost an allocation per visit to save nothing.
#[allow(clippy::large_enum_variant)]
enum Decided {
    /// No such booking: nothing to write.
    Missing,
    /// The decision panicked: nothing to write, and the panic goes back to its caller.
    Panicked(Box<dyn Any + Send>),
    /// The booking as read, and what to do with it.
    Change(SessionRecord, SessionUpdate, Vec<NewEvent>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::SqliteStore;
    use crate::storage::{EventKind, GuestRecord, SessionChange, Store};

    fn booking(id: &str) -> SessionRecord {
        SessionRecord {
            id: id.into(),
            guest_id: "g1".into(),
            generation: 1,
            salt: "salt1".into(),
            current_hash: "hash1".into(),
            current_issued_at: 100,
            current_expires_at: 1000,
            previous_hash: None,
            rotated_at: None,
            created_at: 100,
            last_used_at: 100,
            idle_expires_at: 500,
            absolute_expires_at: 2000,
            revoked_at: None,
            revoked_reason: None,
            user_agent: None,
            client_address: None,
            dpop_jkt: None,
            client_id: None,
        }
    }

    fn rotate_with_salt(salt: &'static str) -> Decide {
        Box::new(move |_| SessionChange {
            update: SessionUpdate::Rotate(Rotation {
                generation: 2,
                salt: salt.into(),
                current_hash: "hash2".into(),
                issued_at: 200,
                expires_at: 1100,
                idle_expires_at: 600,
            }),
            events: vec![NewEvent {
                at: 200,
                kind: EventKind::Refreshed,
                generation: Some(2),
                detail: None,
            }],
        })
    }

    #[tokio::test]
    async fn a_visit_whose_write_fails_fails_alone() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let guest = GuestRecord {
            id: "g1".into(),
            username: "ann".into(),
            password_hash: "$argon2id$x".into(),
            created_at: 100,
        };
        store.create_guest(&guest).await.unwrap();
        for i in 0..6 {
            store.create_session(&booking(&format!("s{i}"))).await.unwrap();
        }
        // A write SQLite refuses, for one booking's rotation only.
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE UPDATE ON sessions WHEN NEW.salt = 'refused' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .execute(store.pool())
        .await
        .unwrap();
        // Sent together on this one-thread runtime, the six visits queue before the writer's task
        // runs, so they make one batch: the refused write rolls it back, then each is retried.
        let visits: Vec<_> = (0..6)
            .map(|i| {
                let store = store.clone();
                let salt = if i == 2 { "refused" } else { "fine" };
                tokio::spawn(async move {
                    store.transact_session(&format!("s{i}"), rotate_with_salt(salt)).await
                })
            })
            .collect();
        for (i, visit) in visits.into_iter().enumerate() {
            let answer = visit.await.unwrap();
            let after = store.session(&format!("s{i}")).await.unwrap().unwrap();
            let events = store.events(&format!("s{i}"), 10).await.unwrap().len();
            if i == 2 {
                assert!(matches!(answer, Err(StoreError::Database(_))), "{answer:?}");
                assert_eq!((after.generation, after.salt.as_str(), events), (1, "salt1", 1));
            } else {
                assert_eq!(answer.unwrap().unwrap().generation, 2, "visit {i}");
                assert_eq!((after.generation, after.salt.as_str(), events), (2, "fine", 2));
            }
        }
    }

    #[tokio::test]
    async fn a_batch_of_visits_to_several_bookings_is_written_in_one_transaction() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let guest = GuestRecord {
            id: "g1".into(),
            username: "ann".into(),
            password_hash: "$argon2id$x".into(),
            created_at: 100,
        };
        store.create_guest(&guest).await.unwrap();
        for i in 0..3 {
            store.create_session(&booking(&format!("s{i}"))).await.unwrap();
        }
        let writer = Writer { pool: store.pool().clone() };
        let mut batch: Vec<_> = (0..3)
            .map(|i| {
                let (answer, _answered) = oneshot::channel();
                Visit { id: format!("s{i}"), decide: rotate_with_salt("fine"), answer }
            })
            .collect();
        // `apply` itself, not `run`: a failed batch would be retried alone and still succeed.
        let answers = writer.apply(&mut batch).await.expect("one transaction for the batch");
        for answer in answers {
            assert_eq!(answer.ok().unwrap().unwrap().unwrap().generation, 2);
        }
    }

    #[test]
    fn placeholders_number_every_value_in_rows() {
        assert_eq!(placeholders(1, 3), "($1, $2, $3)");
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
    }

    #[tokio::test]
    async fn a_batch_takes_one_visit_per_booking_in_arrival_order_and_drops_the_abandoned() {
        let visit = |id: &str| {
            let (answer, answered) = oneshot::channel();
            (Visit { id: id.into(), decide: Box::new(|_| unreachable!()), answer }, answered)
        };
        let (a1, _a1) = visit("a");
        let (b1, _b1) = visit("b");
        let (a2, _a2) = visit("a");
        let (gone, abandoned) = visit("c");
        drop(abandoned);
        let (c1, _c1) = visit("c");
        let mut waiting = VecDeque::from([a1, b1, a2, gone, c1]);
        let ids = |visits: &mut dyn Iterator<Item = &Visit>| {
            visits.map(|v| v.id.clone()).collect::<Vec<_>>()
        };
        assert_eq!(ids(&mut next_batch(&mut waiting).iter()), ["a", "b", "c"]);
        assert_eq!(ids(&mut waiting.iter()), ["a"]);

        let (mut many, _waiting): (VecDeque<_>, Vec<_>) =
            (0..MAX_BATCH + 3).map(|i| visit(&i.to_string())).unzip();
        assert_eq!(next_batch(&mut many).len(), MAX_BATCH);
        assert_eq!(many.len(), 3);
    }
}
