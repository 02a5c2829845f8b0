//! Two instances, one database (issue 8): what one instance knows, the other knows too. Each
//! instance here has its own process state (key ring object, throttles, connection pool) on the
//! shared database and key file, as two servers behind a load balancer do; the faults test
//! (`faults.rs`) does the same with real processes. Every test runs on both backends (SQLite
//! shared by two processes on one machine is legal too; PostgreSQL is the road for many).

use crate::common::*;
use reqwest::StatusCode;

/// Sends a refresh to `a` or `b` in turn, as a round-robin load balancer would.
fn pick<'a>(a: &'a TestApp, b: &'a TestApp, i: usize) -> &'a TestApp {
    if i.is_multiple_of(2) {
        a
    } else {
        b
    }
}

on_both_backends! {
    async fn parallel_refreshes_split_across_two_instances_converge(backend: Backend) {
        let a = spawn_app_on(backend, |_| {}).await;
        let b = spawn_instance(&a).await;
        let first = a.guest("ann").await;
        let answers = futures::future::join_all(
            (0..20).map(|i| pick(&a, &b, i).refresh(&first.confirmation)),
        )
        .await;
        let mut confirmations = Vec::new();
        for res in answers {
            assert_eq!(res.status(), StatusCode::OK, "no false theft alarm");
            confirmations.push(stay(res).await.confirmation);
        }
        confirmations.dedup();
        assert_eq!(confirmations.len(), 1, "one current confirmation, whoever answered");
        assert_eq!(a.db.number("SELECT generation FROM sessions").await, 2);
        assert_eq!(a.db.number("SELECT count(*) FROM sessions WHERE revoked_at IS NULL").await, 1);
        let kinds = a.event_kinds().await;
        assert_eq!(kinds.iter().filter(|k| *k == "refreshed").count(), 1, "{kinds:?}");
        assert_eq!(kinds.iter().filter(|k| *k == "grace_reissued").count(), 19, "{kinds:?}");
        // The one confirmation goes on working on both.
        let next = stay(b.refresh(&confirmations[0]).await).await;
        assert_eq!(a.refresh(&next.confirmation).await.status(), StatusCode::OK);
    }

    async fn a_revocation_on_one_instance_bites_on_the_other_at_once(backend: Backend) {
        let a = spawn_app_on(backend, |_| {}).await;
        let b = spawn_instance(&a).await;
        let stay1 = a.guest("ann").await;
        let stay2 = b.check_in("ann").await;
        assert_eq!(b.bearer("/api/me", &stay1.key_card, &[]).await.status(), StatusCode::OK);
        // Ann ends her first booking through instance b...
        let first_booking = stay1.body["booking"]["session_id"].as_str().unwrap();
        let res = b.bearer("/api/sessions/revoke", &stay2.key_card, &[("session_id", first_booking)]).await;
        assert_eq!(res.status(), StatusCode::OK);
        // ...and instance a refuses it at its stateful door and its front desk straight away.
        let (_, code) = error(a.bearer("/api/me", &stay1.key_card, &[]).await).await;
        assert_eq!(code, "session_revoked");
        assert_eq!(error(a.refresh(&stay1.confirmation).await).await.1, "session_revoked");
        // Check-out on a ends the second booking for b.
        let res = a.bearer("/api/auth/logout", &stay2.key_card, &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(error(b.bearer("/api/me", &stay2.key_card, &[]).await).await.1, "session_revoked");
    }

    async fn a_key_rotated_through_one_instance_is_accepted_by_the_other(backend: Backend) {
        let a = spawn_app_on(backend, |_| {}).await;
        let b = spawn_instance(&a).await;
        let before = a.guest("ann").await;
        let old_kid = header(&before.key_card)["kid"].as_str().unwrap().to_owned();
        // `keycard-server rotate-keys` on the shared key file; instance a reloads first.
        let at_once = keycard::keys::KeySchedule { publish_ahead: std::time::Duration::ZERO, ..a.config.operations.key_schedule };
        let new_kid = keycard::keys::rotate(&a.config.keys_file, a.config.mode, &at_once).unwrap().kid;
        let file = std::fs::File::options().append(true).open(&a.config.keys_file).unwrap();
        file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3))
            .unwrap();
        a.desk.housekeeping().await;
        let after = stay(a.refresh(&before.confirmation).await).await;
        assert_eq!(header(&after.key_card)["kid"], new_kid.as_str());
        assert_ne!(new_kid, old_kid);
        // Instance b has not reloaded on its timer yet: the unknown kid makes it look at once.
        assert_eq!(b.amenity("gym", &after.key_card).await.status(), StatusCode::OK);
        assert_eq!(b.bearer("/api/me", &after.key_card, &[]).await.status(), StatusCode::OK);
        assert_eq!(b.refresh(&after.confirmation).await.status(), StatusCode::OK);
        // Both publish the same keys, and the previous key still verifies on both.
        for app in [&a, &b] {
            let jwks: serde_json::Value =
                app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
            let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
            assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);
            assert_eq!(app.amenity("pool", &before.key_card).await.status(), StatusCode::OK);
        }
    }

    async fn the_account_throttle_counts_attempts_on_every_instance(backend: Backend) {
        let a = spawn_app_on(backend, |c| c.rate_limits.login_per_account_per_minute = 4).await;
        let b = spawn_instance(&a).await;
        a.guest("ann").await; // registration is attempt 1
        for app in [&b, &a, &b] {
            let res = app.login("ann", "wrong password!!").await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
        // 4 attempts in the cluster: the 5th is refused on either instance, with a wait.
        for app in [&a, &b] {
            let res = app.login("ANN", PASSWORD).await;
            assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
            let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=15).contains(&wait), "{wait}");
        }
        // Another account is not affected; and the budget comes back with time.
        assert_eq!(b.register("bob", PASSWORD).await.status(), StatusCode::CREATED);
        a.clock.advance(15);
        assert_eq!(b.login("ann", PASSWORD).await.status(), StatusCode::OK);
        assert_eq!(a.login("ann", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
        // Housekeeping forgets accounts whose budget is full again, not the others.
        a.clock.advance(120);
        a.desk.housekeeping().await;
        assert_eq!(a.db.number("SELECT count(*) FROM login_throttle").await, 0);
    }

    async fn an_instance_that_would_issue_as_someone_else_does_not_start(backend: Backend) {
        let a = spawn_app_on(backend, |_| {}).await;
        // The same hotel on another port, without a shared public URL: it would default its
        // issuer to its own address.
        let mut config = a.config.clone();
        config.issuer = "http://127.0.0.1:3999".into();
        let store = keycard::storage::open(&config.database()).await.unwrap();
        let keys = keycard::keys::KeyRing::open(&config.keys_file, config.mode).unwrap();
        let other = keycard::FrontDesk::new(&config, store.clone(), keys.clone(), a.clock.clone());
        let err = other.join().await.unwrap_err().to_string();
        assert!(err.starts_with("KEYCARD_PUBLIC_URL: "), "{err}");
        assert!(err.contains(&a.config.issuer) && err.contains("127.0.0.1:3999"), "{err}");
        // Instance a keeps answering the roll call; once it has gone quiet for longer than the
        // liveness window (a stopped hotel), a new address is fine.
        a.clock.advance(20);
        a.desk.housekeeping().await;
        a.clock.advance(20);
        assert!(other.join().await.is_err(), "a was seen 20 s ago: still live");
        a.clock.advance(keycard::front_desk::INSTANCE_LIVENESS_SECS);
        other.join().await.unwrap();
        // A clean shutdown leaves the roll at once.
        other.leave().await;
        assert_eq!(a.db.number("SELECT count(*) FROM instances").await, 1);
    }

    async fn the_demo_thief_can_be_caught_whichever_instance_serves_each_step(backend: Backend) {
        let a = spawn_app_on(backend, |_| {}).await;
        let b = spawn_instance(&a).await;
        let outcome = |res: reqwest::Response| async move {
            let body: serde_json::Value = res.json().await.unwrap();
            body["outcome"].as_str().unwrap_or_default().to_owned()
        };
        let first = a.guest("ann").await;
        assert_eq!(outcome(a.bearer("/api/demo/steal", &first.key_card, &[]).await).await, "copied");
        // The thief gets in through b with the copy made on a...
        assert_eq!(outcome(b.bearer("/api/demo/thief", &first.key_card, &[]).await).await, "got_in");
        // ...and ann's next visit, on a, trips the alarm.
        a.clock.advance(11);
        assert_eq!(error(a.refresh(&first.confirmation).await).await.1, "reuse_detected");
        assert_eq!(outcome(b.bearer("/api/demo/thief", &first.key_card, &[]).await).await, "too_late");
    }
}
