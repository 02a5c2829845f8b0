//! The front desk against token-requirements.md lines 10-15: rotation, the grace window, theft
//! detection, parallel refreshes, what the database keeps, and the session limits, each on SQLite
//! and on PostgreSQL.

use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn a_missing_or_garbage_confirmation_gets_401() {
    let app = spawn_app().await;
    let (status, code) = error(app.post("/api/auth/refresh", &[], &[]).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "confirmation_missing"));
    for garbage in ["x", "a.b.c", "....", "eyJhbGciOiJub25lIn0.e30.", &"A".repeat(5000)] {
        let (status, code) = error(app.refresh(garbage).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "confirmation_invalid"),
            "{garbage}"
        );
    }
}

on_both_backends! {
    async fn every_visit_rotates_and_the_old_confirmation_dies_after_the_grace_window(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let first = app.guest("ann").await;
        let second = stay(app.refresh(&first.confirmation).await).await;
        assert_ne!(second.confirmation, first.confirmation);
        assert_ne!(second.key_card, first.key_card);
        assert_eq!(claims(&second.confirmation)["generation"], 2);
        assert_eq!(second.body["booking"]["generation"], 2);
        assert_eq!(app.bearer("/api/me", &second.key_card, &[]).await.status(), StatusCode::OK);

        app.clock.advance(11); // past the 10 s grace window
        let (status, code) = error(app.refresh(&first.confirmation).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "reuse_detected"));
        // The whole booking is cancelled: the newest confirmation fails too...
        let (status, code) = error(app.refresh(&second.confirmation).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "session_revoked"));
        // ...and so does the stateful door for the still-unexpired key card.
        let (status, code) = error(app.bearer("/api/me", &second.key_card, &[]).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "session_revoked"));

        assert_eq!(app.event_kinds().await, ["checked_in", "refreshed", "reuse_detected"]);
    }

    async fn inside_the_grace_window_the_predecessor_gets_the_current_confirmation_again(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let first = app.guest("ann").await;
        let second = stay(app.refresh(&first.confirmation).await).await;
        app.clock.advance(9);
        let again = stay(app.refresh(&first.confirmation).await).await;
        assert_eq!(again.confirmation, second.confirmation, "converges on one confirmation");
        assert_eq!(again.body["booking"]["generation"], 2);
        // The current one still rotates normally afterwards.
        let third = stay(app.refresh(&second.confirmation).await).await;
        assert_eq!(claims(&third.confirmation)["generation"], 3);
        let kinds = app.event_kinds().await;
        assert_eq!(kinds, ["checked_in", "refreshed", "grace_reissued", "refreshed"]);
    }

    async fn inside_the_grace_window_an_older_confirmation_still_cancels_the_booking(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let g1 = app.guest("ann").await;
        let g2 = stay(app.refresh(&g1.confirmation).await).await;
        let g3 = stay(app.refresh(&g2.confirmation).await).await;
        // g1 is two generations old: no grace, even one second later.
        app.clock.advance(1);
        let (status, code) = error(app.refresh(&g1.confirmation).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "reuse_detected"));
        assert_eq!(error(app.refresh(&g3.confirmation).await).await.1, "session_revoked");
    }

    async fn twenty_parallel_refreshes_all_succeed_and_converge_on_one_confirmation(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let first = app.guest("ann").await;
        let answers =
            futures::future::join_all((0..20).map(|_| app.refresh(&first.confirmation))).await;
        let mut confirmations = Vec::new();
        for res in answers {
            assert_eq!(res.status(), StatusCode::OK);
            confirmations.push(stay(res).await.confirmation);
        }
        confirmations.dedup();
        assert_eq!(confirmations.len(), 1, "every caller holds the same current confirmation");
        assert_eq!(claims(&confirmations[0])["generation"], 2);
        assert_eq!(app.db.number("SELECT generation FROM sessions").await, 2);
        assert_eq!(app.db.number("SELECT count(*) FROM sessions WHERE revoked_at IS NULL").await, 1);
        assert_eq!(app.refresh(&confirmations[0]).await.status(), StatusCode::OK);
    }

    async fn confirmations_carry_128_random_bits_and_the_database_keeps_only_a_hash(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let a = app.guest("ann").await;
        let b = app.check_in("ann").await;
        let (ja, jb) = (
            claims(&a.confirmation)["jti"].as_str().unwrap().to_owned(),
            claims(&b.confirmation)["jti"].as_str().unwrap().to_owned(),
        );
        assert_ne!(ja, jb);
        use base64::Engine;
        assert!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&ja).unwrap().len() >= 16);

        let dump = app
            .db
            .strings("SELECT id || salt || current_hash || coalesce(previous_hash, '') FROM sessions")
            .await;
        for row in &dump {
            assert!(!row.contains(&ja) && !row.contains(&jb), "a raw confirmation id is stored");
            assert!(!row.contains(&a.confirmation) && !row.contains(&b.confirmation));
        }
        let hashes = app.db.strings("SELECT current_hash FROM sessions").await;
        assert!(hashes.contains(&keycard::confirmation::hash_id(&ja)));
    }

    async fn a_booking_dies_at_its_idle_limit(backend: Backend) {
        let app = spawn_app_on(backend, |c| {
            c.lifetimes.idle = std::time::Duration::from_secs(60);
            c.lifetimes.absolute = std::time::Duration::from_secs(600);
        })
        .await;
        let first = app.guest("ann").await;
        app.clock.advance(59);
        let second = stay(app.refresh(&first.confirmation).await).await; // sliding: resets the idle clock
        app.clock.advance(58);
        let third = stay(app.refresh(&second.confirmation).await).await;
        app.clock.advance(61);
        // The confirmation itself is still inside its 2 s leeway: the booking's own limit refuses it.
        let (status, code) = error(app.refresh(&third.confirmation).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "session_expired"));
        // The key card (120 s) is unexpired, but the sensitive door sees the booking is over.
        let (_, code) = error(app.bearer("/api/me", &third.key_card, &[]).await).await;
        assert_eq!(code, "session_expired");
    }

    async fn a_booking_dies_at_its_absolute_limit_even_while_rotating(backend: Backend) {
        let app = spawn_app_on(backend, |c| {
            c.lifetimes.idle = std::time::Duration::from_secs(60);
            c.lifetimes.absolute = std::time::Duration::from_secs(150);
        })
        .await;
        let checked_in_at = app.clock.now();
        let mut current = app.guest("ann").await;
        // Rotating every 40 s keeps it well inside the idle limit...
        for _ in 0..3 {
            app.clock.advance(40);
            current = stay(app.refresh(&current.confirmation).await).await;
            // Confirmations never outlive the booking.
            let exp = claims(&current.confirmation)["exp"].as_i64().unwrap();
            assert!(exp <= checked_in_at + 150, "a confirmation outlives its booking");
        }
        // ...but at 151 s the booking is over. The confirmation (exp 150 s) is still inside its 2 s
        // leeway, so this is the booking's absolute limit speaking.
        app.clock.advance(31);
        let (status, code) = error(app.refresh(&current.confirmation).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "session_expired"));
        assert_eq!(app.event_kinds().await.last().map(String::as_str), Some("expired"));
        // Later the confirmation's own expiry refuses it first.
        app.clock.advance(10);
        assert_eq!(error(app.refresh(&current.confirmation).await).await.1, "confirmation_expired");
    }

    async fn a_booking_locked_too_long_gets_503_unavailable_not_500(backend: Backend) {
        // It times a wait, on a 1 s database timeout that its own start must also fit in: never
        // beside a test that loads both cores.
        let _turn = crate::common::timed().await;
        let app = spawn_app_on(backend, |c| c.database_timeout = std::time::Duration::from_secs(1)).await;
        let first = app.guest("ann").await;
        // Someone else (a stuck transaction, a migration) holds the booking's row or the write lock.
        let held = app.db.hold_write_lock().await;
        let sent = std::time::Instant::now();
        let res = app.refresh(&first.confirmation).await;
        let waited = sent.elapsed();
        let (status, code) = error(res).await;
        assert_eq!((status, code.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
        assert!(waited < std::time::Duration::from_secs(4), "{waited:?}");
        drop(held);
        // Nothing was half done: the same confirmation rotates once the lock is gone.
        let next = stay(app.refresh(&first.confirmation).await).await;
        assert_eq!(claims(&next.confirmation)["generation"], 2);
    }
}
