//! SQLite's group commit: visits to the front desk from many requests, decided and written in
//! one transaction per batch by one task that owns the turn at the writer connection.
//!
//! ## Why
//! sqlx runs each SQLite connection on a thread of its own, and every statement is a round trip
//! between a runtime task and that thread. One rotation alone is five of them (`BEGIN IMMEDIATE`,
//! read, update, log, `COMMIT`), and a profile of the front desk under load spent more time
//! switching threads in the kernel than anywhere else; SQLite itself took under 1 %. A batch of
//! visits costs the same five round trips as one visit: one read for every booking of the batch,
//! one update for all its rotations, one insert for all its events.
//!
//! ## What each visit keeps
//! - Its own booking is read, decided and written inside one `BEGIN IMMEDIATE` transaction, as
//!   before: nothing else writes in between.
//! - A batch holds at most one visit per booking. A second visit to the same booking (a second
//!   tab racing the first) waits for the next batch and reads the booking as the first left it.
//! - Visits of one booking are decided in the order they arrived.
//! - A batch that fails is rolled back and its visits are tried again one at a time, so each gets
//!   its own error and one visit cannot fail another.
//! - A visit whose caller has gone (the request was cancelled or timed out) is not decided.
//! - A decision that panics panics its own request, as it would without the queue; the others of
//!   its batch go on.

use std::any::Any;
use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::Duration;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
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
    /// Starts the task that owns the turn at `writer`. A visit waits at most `wait` for its
    /// answer, then gets [`StoreError::Unavailable`].
    pub(super) fn start(writer: SqlitePool, wait: Duration) -> Self {
        let (queue, visits) = mpsc::channel(QUEUE);
        tokio::spawn(serve(writer, visits));
        Self { queue, wait }
    }

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

async fn serve(writer: SqlitePool, mut visits: mpsc::Receiver<Visit>) {
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
            run(&writer, batch).await;
        }
    }
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

async fn run(writer: &SqlitePool, mut batch: Vec<Visit>) {
    match apply(writer, &mut batch).await {
        Ok(answers) => {
            for (visit, answer) in batch.into_iter().zip(answers) {
                let _ = visit.answer.send(answer);
            }
        }
        Err(e) if batch.len() == 1 => {
            let visit = batch.pop().expect("one visit");
            let _ = visit.answer.send(Ok(Err(e.into())));
        }
        Err(_) => {
            for visit in batch {
                let mut alone = vec![visit];
                let answers = apply(writer, &mut alone).await;
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

/// Reads, decides and writes every visit of `batch` in one transaction, and answers each in
/// order. An error rolls the whole batch back.
async fn apply(writer: &SqlitePool, batch: &mut [Visit]) -> Result<Vec<Answer>, sqlx::Error> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let mut read = QueryBuilder::<Sqlite>::new(format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id IN ("
    ));
    let mut ids = read.separated(", ");
    for visit in batch.iter() {
        ids.push_bind(visit.id.clone());
    }
    read.push(")");
    let mut bookings: HashMap<String, SessionRecord> = read
        .build_query_as::<SessionRecord>()
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
    let mut rotated = rotate(&mut tx, &rotations).await?;

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
                    other => update_one(&mut tx, &record.id, &other).await?,
                };
                events.extend(
                    new_events.into_iter().map(|e| (after.id.clone(), after.guest_id.clone(), e)),
                );
                Ok(Ok(Some(after)))
            }
        });
    }
    log(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(answers)
}

/// Every rotation of a batch in one `UPDATE … FROM`; the bookings as they stand afterwards, by
/// id.
async fn rotate(
    conn: &mut SqliteConnection,
    rotations: &[(&str, &Rotation)],
) -> Result<HashMap<String, SessionRecord>, sqlx::Error> {
    if rotations.is_empty() {
        return Ok(HashMap::new());
    }
    // The new values get names of their own, so no column name means two things. Every right-hand
    // side sees the row as it was: `previous_hash` takes the old `current_hash`.
    let mut update = QueryBuilder::<Sqlite>::new(
        "WITH rotation (booking, new_generation, new_salt, new_hash, at, new_expires_at, \
         new_idle_expires_at) AS (",
    );
    update.push_values(rotations, |mut row, (id, r)| {
        row.push_bind(id.to_string())
            .push_bind(r.generation)
            .push_bind(r.salt.clone())
            .push_bind(r.current_hash.clone())
            .push_bind(r.issued_at)
            .push_bind(r.expires_at)
            .push_bind(r.idle_expires_at);
    });
    update.push(format!(
        ") UPDATE sessions SET generation = new_generation, salt = new_salt, \
         previous_hash = sessions.current_hash, current_hash = new_hash, current_issued_at = at, \
         current_expires_at = new_expires_at, rotated_at = at, last_used_at = at, \
         idle_expires_at = new_idle_expires_at FROM rotation WHERE sessions.id = booking \
         RETURNING {SESSION_COLUMNS}"
    ));
    Ok(update
        .build_query_as::<SessionRecord>()
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect())
}

/// The rare changes (an end, the demo's lapse), one statement each.
async fn update_one(
    conn: &mut SqliteConnection,
    id: &str,
    update: &SessionUpdate,
) -> Result<SessionRecord, sqlx::Error> {
    match update {
        SessionUpdate::Keep | SessionUpdate::Rotate(_) => {
            unreachable!("kept and rotated bookings are written by the batch")
        }
        #[cfg(feature = "demo")]
        SessionUpdate::Lapse { at } => {
            let lapse = concat!(
                "UPDATE sessions SET idle_expires_at = min(idle_expires_at, $1), \
                 absolute_expires_at = min(absolute_expires_at, $1) WHERE id = $2 RETURNING ",
                session_columns!()
            );
            sqlx::query_as(lapse).bind(*at).bind(id).fetch_one(conn).await
        }
        SessionUpdate::Revoke { at, reason } => {
            let query = sqlx::query_as(sql::REVOKE_SESSION).bind(*at).bind(reason).bind(id);
            query.fetch_one(conn).await
        }
    }
}

/// Every event of a batch in one `INSERT`.
async fn log(
    conn: &mut SqliteConnection,
    events: &[(String, String, NewEvent)],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO session_events (session_id, guest_id, at, kind, generation, detail) ",
    );
    insert.push_values(events, |mut row, (session, guest, e)| {
        row.push_bind(session.clone())
            .push_bind(guest.clone())
            .push_bind(e.at)
            .push_bind(e.kind.as_str())
            .push_bind(e.generation)
            .push_bind(e.detail.clone());
    });
    insert.build().execute(conn).await?;
    Ok(())
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
