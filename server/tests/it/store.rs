//! The `Store` contract itself, method by method, on both backends: what the front desk relies
//! on, stated once, so a third backend has a checklist that runs.

use std::time::Duration;

use crate::common::*;
use keycard::storage::{
    Attempt, BookingWithGuest, EventKind, Gcra, GuestRecord, NewEvent, Rotation, SessionChange,
    SessionRecord, SessionUpdate, StoreError,
};

fn guest(id: &str, name: &str) -> GuestRecord {
    GuestRecord {
        id: id.into(),
        username: name.into(),
        password_hash: "$argon2id$x".into(),
        created_at: 100,
    }
}

/// A visit that rotates the booking to the generation after the one it reads.
fn rotate_once(r: Option<&SessionRecord>) -> SessionChange {
    let next = r.expect("the booking exists").generation + 1;
    SessionChange {
        update: SessionUpdate::Rotate(Rotation {
            generation: next,
            salt: format!("salt{next}"),
            current_hash: format!("hash{next}"),
            issued_at: 200 + next,
            expires_at: 1100,
            idle_expires_at: 600,
        }),
        events: vec![NewEvent {
            at: 200 + next,
            kind: EventKind::Refreshed,
            generation: Some(next),
            detail: None,
        }],
    }
}

fn booking(id: &str, guest_id: &str) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        guest_id: guest_id.into(),
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
        user_agent: Some("test".into()),
        client_address: None,
        dpop_jkt: None,
        client_id: None,
    }
}

on_both_backends! {
    async fn guests_are_unique_regardless_of_case(backend: Backend) {
        // The app owns the temporary folder: it must outlive the store's use.
        let app = spawn_app_on(backend, |_| {}).await;
        let store = &app.store;
        store.create_guest(&guest("g1", "Ann")).await.unwrap();
        let again = store.create_guest(&guest("g2", "aNN")).await;
        assert!(matches!(again, Err(StoreError::UsernameTaken)), "{again:?}");
        assert_eq!(store.guest_by_username("ANN").await.unwrap().unwrap().id, "g1");
        assert_eq!(store.guest("g1").await.unwrap().unwrap().username, "Ann");
        assert!(store.guest("g2").await.unwrap().is_none());
        store.upgrade_password_hash("g1", "$argon2id$y").await.unwrap();
        assert_eq!(store.guest("g1").await.unwrap().unwrap().password_hash, "$argon2id$y");
    }

    async fn a_booking_is_read_with_its_guest_and_only_its_own(backend: Backend) {
        // The app owns the temporary folder: it must outlive the store's use.
        let app = spawn_app_on(backend, |_| {}).await;
        let store = &app.store;
        store.create_guest(&GuestRecord { created_at: 42, ..guest("g1", "Ann") }).await.unwrap();
        store.create_guest(&guest("g2", "bob")).await.unwrap();
        store.create_session(&booking("s1", "g1")).await.unwrap();
        store.create_session(&booking("s2", "g2")).await.unwrap();
        let read = store.booking_with_guest("s1").await.unwrap();
        assert_eq!(
            read,
            Some(BookingWithGuest {
                booking: booking("s1", "g1"),
                username: "Ann".into(),
                guest_since: 42,
            })
        );
        assert_eq!(store.booking_with_guest("s2").await.unwrap().unwrap().username, "bob");
        assert_eq!(store.booking_with_guest("s3").await.unwrap(), None);
    }

    async fn a_transaction_rotates_revokes_and_logs_what_it_decided(backend: Backend) {
        // The app owns the temporary folder: it must outlive the store's use.
        let app = spawn_app_on(backend, |_| {}).await;
        let store = &app.store;
        store.create_guest(&guest("g1", "ann")).await.unwrap();
        store.create_session(&booking("s1", "g1")).await.unwrap();
        let rotation = Rotation {
            generation: 2,
            salt: "salt2".into(),
            current_hash: "hash2".into(),
            issued_at: 200,
            expires_at: 1100,
            idle_expires_at: 600,
        };
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let saw = seen.clone();
        let after = store
            .transact_session("s1", Box::new(move |record| {
                *saw.lock().unwrap() = record.map(|r| r.generation);
                SessionChange {
                    update: SessionUpdate::Rotate(rotation.clone()),
                    events: vec![NewEvent { at: 200, kind: EventKind::Refreshed, generation: Some(2), detail: None }],
                }
            }))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), Some(1), "decide sees the row as it stood");
        assert_eq!((after.generation, after.current_hash.as_str()), (2, "hash2"));
        assert_eq!(after.previous_hash.as_deref(), Some("hash1"));
        assert_eq!((after.rotated_at, after.last_used_at, after.idle_expires_at), (Some(200), 200, 600));
        assert_eq!(store.session("s1").await.unwrap().unwrap(), after);

        let revoke = SessionUpdate::Revoke { at: 300, reason: "theft".into() };
        let change = move |_: Option<&SessionRecord>| SessionChange { update: revoke.clone(), events: vec![] };
        let revoked = store.transact_session("s1", Box::new(change)).await.unwrap().unwrap();
        assert_eq!((revoked.revoked_at, revoked.revoked_reason.as_deref()), (Some(300), Some("theft")));
        // A second revocation keeps the first time and reason.
        let second = SessionUpdate::Revoke { at: 400, reason: "later".into() };
        let again = store
            .transact_session("s1", Box::new(move |_| SessionChange { update: second.clone(), events: vec![] }))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((again.revoked_at, again.revoked_reason.as_deref()), (Some(300), Some("theft")));
        assert!(store.transact_session("nope", Box::new(|r| {
            assert!(r.is_none());
            SessionChange { update: SessionUpdate::Keep, events: vec![] }
        })).await.unwrap().is_none());
        let kinds: Vec<_> = store.events("s1", 10).await.unwrap().into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::CheckedIn, EventKind::Refreshed]);
        assert_eq!(store.events("s1", 1).await.unwrap().len(), 1);
    }

    async fn visits_to_many_bookings_at_once_all_apply_and_one_bookings_apply_in_turn(backend: Backend) {
        // What SQLite's group commit batches must still hold: each visit decides on its booking
        // as the previous visit to that booking left it, and each write and event lands.
        let app = spawn_app_on(backend, |_| {}).await;
        let store = app.store.clone();
        store.create_guest(&guest("g1", "ann")).await.unwrap();
        let bookings = 40;
        for i in 0..bookings {
            store.create_session(&booking(&format!("s{i}"), "g1")).await.unwrap();
        }
        let visits: Vec<_> = (0..bookings)
            .flat_map(|i| [i, i, i])
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let after = store.transact_session(&format!("s{i}"), Box::new(rotate_once)).await;
                    (i, after.unwrap().unwrap().generation)
                })
            })
            .collect();
        let mut left = vec![Vec::new(); bookings];
        for visit in visits {
            let (i, generation) = visit.await.unwrap();
            left[i].push(generation);
        }
        for (i, mut generations) in left.into_iter().enumerate() {
            generations.sort();
            assert_eq!(generations, [2, 3, 4], "booking s{i}: each visit read the one before it");
            let now = store.session(&format!("s{i}")).await.unwrap().unwrap();
            assert_eq!((now.generation, now.current_hash.as_str()), (4, "hash4"));
            assert_eq!((now.previous_hash.as_deref(), now.rotated_at), (Some("hash3"), Some(204)));
            let log: Vec<_> = store.events(&format!("s{i}"), 10).await.unwrap().into_iter().map(|e| (e.kind, e.generation)).collect();
            assert_eq!(log, [(EventKind::CheckedIn, Some(1)), (EventKind::Refreshed, Some(2)), (EventKind::Refreshed, Some(3)), (EventKind::Refreshed, Some(4))]);
        }
    }

    async fn two_instances_batching_the_same_bookings_each_read_what_the_other_wrote(backend: Backend) {
        // Each instance batches its own visits; on PostgreSQL a batch locks all its rows, so the
        // other instance's batch waits for them and reads them as they were left. One instance
        // visits the bookings first to last, the other last to first, all at once.
        let app = spawn_app_on(backend, |_| {}).await;
        let other = spawn_instance(&app).await;
        app.store.create_guest(&guest("g1", "ann")).await.unwrap();
        let bookings = 24;
        for i in 0..bookings {
            app.store.create_session(&booking(&format!("s{i}"), "g1")).await.unwrap();
        }
        let forwards = (0..bookings).flat_map(|i| [i, i]).map(|i| (app.store.clone(), i));
        let backwards = (0..bookings).rev().flat_map(|i| [i, i]).map(|i| (other.store.clone(), i));
        let visits: Vec<_> = forwards
            .zip(backwards)
            .flat_map(|(a, b)| [a, b])
            .map(|(store, i)| {
                tokio::spawn(async move {
                    let after = store.transact_session(&format!("s{i}"), Box::new(rotate_once)).await;
                    (i, after.unwrap().unwrap().generation)
                })
            })
            .collect();
        let mut left = vec![Vec::new(); bookings];
        for visit in visits {
            let (i, generation) = visit.await.unwrap();
            left[i].push(generation);
        }
        for (i, mut generations) in left.into_iter().enumerate() {
            generations.sort();
            assert_eq!(generations, [2, 3, 4, 5], "booking s{i}: no visit read a stale row");
            let log = app.store.events(&format!("s{i}"), 10).await.unwrap();
            assert_eq!(log.len(), 5, "booking s{i}: check-in and four rotations logged");
        }
    }

    async fn a_decision_that_panics_panics_its_own_request_only(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let store = app.store.clone();
        store.create_guest(&guest("g1", "ann")).await.unwrap();
        for i in 0..8 {
            store.create_session(&booking(&format!("s{i}"), "g1")).await.unwrap();
        }
        let revoke_or_panic = |i: usize| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .transact_session(&format!("s{i}"), Box::new(move |_| {
                        assert_ne!(i, 3, "a bug in a decision");
                        SessionChange { update: SessionUpdate::Revoke { at: 300, reason: "test".into() }, events: vec![] }
                    }))
                    .await
            })
        };
        let visits: Vec<_> = (0..8).map(revoke_or_panic).collect();
        for (i, visit) in visits.into_iter().enumerate() {
            match visit.await {
                Err(e) if i == 3 => assert!(e.is_panic(), "{e:?}"),
                Ok(after) if i != 3 => assert_eq!(after.unwrap().unwrap().revoked_at, Some(300)),
                other => panic!("visit {i}: {other:?}"),
            }
        }
        // The panicking visit changed nothing, and the store still serves visits.
        assert_eq!(store.session("s3").await.unwrap().unwrap().revoked_at, None);
        assert_eq!(revoke_or_panic(4).await.unwrap().unwrap().unwrap().revoked_at, Some(300));
    }

    async fn revoking_a_guests_bookings_spares_the_one_asked_and_logs_each(backend: Backend) {
        // The app owns the temporary folder: it must outlive the store's use.
        let app = spawn_app_on(backend, |_| {}).await;
        let store = &app.store;
        store.create_guest(&guest("g1", "ann")).await.unwrap();
        for id in ["s1", "s2", "s3"] {
            store.create_session(&booking(id, "g1")).await.unwrap();
        }
        let mut ended = store
            .revoke_sessions_of("g1", Some("s2"), EventKind::CheckedOut, "checked out", 300)
            .await
            .unwrap();
        ended.sort();
        assert_eq!(ended, ["s1", "s3"]);
        assert!(store.session("s2").await.unwrap().unwrap().revoked_at.is_none());
        let ended = store.change_password("g1", "$argon2id$z", "s2", 400).await.unwrap();
        assert!(ended.is_empty(), "nothing else was active");
        let all = store.revoke_sessions_of("g1", None, EventKind::Revoked, "all", 500).await.unwrap();
        assert_eq!(all, ["s2"]);
        let kinds: Vec<_> = store.events("s2", 10).await.unwrap().into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::CheckedIn, EventKind::PasswordChanged, EventKind::Revoked]);
        let listed: Vec<_> = store.sessions_of("g1").await.unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(listed.len(), 3);
    }

    async fn the_login_throttle_allows_exactly_its_burst_and_says_how_long_to_wait(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let store = &app.store;
        let at = |now_ms| Gcra { now_ms, interval_ms: 6_000, window_ms: 60_000 };
        for _ in 0..10 {
            assert_eq!(store.take_login_attempt("ann", at(1_000_000)).await.unwrap(), Attempt::Allowed);
        }
        let refused = store.take_login_attempt("ann", at(1_000_000)).await.unwrap();
        assert_eq!(refused, Attempt::Refused(Duration::from_secs(6)));
        assert_eq!(store.take_login_attempt("bob", at(1_000_000)).await.unwrap(), Attempt::Allowed);
        // One attempt comes back every interval, and a refusal costs nothing.
        assert_eq!(store.take_login_attempt("ann", at(1_005_999)).await.unwrap(), Attempt::Refused(Duration::from_millis(1)));
        assert_eq!(store.take_login_attempt("ann", at(1_006_000)).await.unwrap(), Attempt::Allowed);
        // At 1,060,001 bob's budget is full again (his time passed) and is forgotten; ann's is not.
        store.forget_login_attempts(1_060_001).await.unwrap();
        let left = app.db.strings("SELECT account FROM login_throttle").await;
        assert_eq!(left, ["ann"]);
    }

    async fn parallel_login_attempts_are_each_counted_once(backend: Backend) {
        // The app owns the temporary folder: it must outlive the store's use.
        let app = spawn_app_on(backend, |_| {}).await;
        let store = &app.store;
        let gcra = Gcra { now_ms: 5_000_000, interval_ms: 3_000, window_ms: 60_000 };
        let answers = futures::future::join_all((0..40).map(|_| store.take_login_attempt("ann", gcra))).await;
        let allowed = answers.iter().filter(|a| matches!(a, Ok(Attempt::Allowed))).count();
        assert_eq!(allowed, 20, "{answers:?}");
    }

    async fn the_roll_of_instances_refuses_a_second_issuer_while_the_first_is_live(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await; // joined as its own instance, issuer i0
        let store = &app.store;
        let now = app.clock.now();
        assert_eq!(store.join("x1", &app.config.issuer, now, now - 30).await.unwrap(), None);
        let conflict = store.join("x2", "https://other", now, now - 30).await.unwrap().unwrap();
        assert_eq!(conflict.issuer, app.config.issuer);
        assert!(store.heartbeat("x1", &app.config.issuer, now, now - 30, now - 100).await.unwrap().is_none());
        store.leave("x1").await.unwrap();
        // Later, with everyone else unseen for longer than the window, another issuer may join.
        assert_eq!(store.join("x2", "https://other", now + 31, now + 1).await.unwrap(), None);
        let seen = store.heartbeat("x2", "https://other", now + 32, now + 2, now + 1).await.unwrap();
        assert_eq!(seen, None);
        assert_eq!(app.db.number("SELECT count(*) FROM instances").await, 1, "the stale one is dropped");
    }
}

// The demo thief's copy exists only with the `demo` feature.
#[cfg(feature = "demo")]
on_both_backends! {
    async fn a_stolen_copy_is_kept_and_replaced(backend: Backend) {
        use keycard::storage::StolenCopy;
        // The app owns the temporary folder: it must outlive the store's use.
        let app = spawn_app_on(backend, |_| {}).await;
        let store = &app.store;
        store.create_guest(&guest("g1", "ann")).await.unwrap();
        let record = booking("s1", "g1");
        store.create_session(&record).await.unwrap();
        assert_eq!(store.stolen("s1").await.unwrap(), None);
        store.keep_stolen(&StolenCopy::of(&record)).await.unwrap();
        let mut newer = StolenCopy::of(&record);
        newer.generation = 2;
        store.keep_stolen(&newer).await.unwrap();
        let kept = store.stolen("s1").await.unwrap().unwrap();
        assert_eq!(kept, newer);
        assert_eq!(kept.as_of(&record).generation, 2);
    }
}
