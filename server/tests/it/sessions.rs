//! Bookings against token-requirements.md lines 16-18 and 21: listing and ending sessions,
//! password changes, and what revocation does to stateful and stateless doors.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn sessions(app: &TestApp, key_card: &str) -> Value {
    let res = app.bearer("/api/sessions", key_card, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[tokio::test]
async fn every_login_is_a_new_booking_with_new_tokens() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    let b = app.check_in("ann").await;
    assert_ne!(a.body["session_id"], b.body["session_id"]);
    assert_ne!(a.key_card, b.key_card);
    assert_ne!(a.confirmation, b.confirmation);
    let list = sessions(&app, &b.key_card).await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(list["current_session_id"], b.body["session_id"]);
}

/// A key card that expired meanwhile gets 401 and keeps the cookies: the browser goes to the
/// front desk (which needs the confirmation) and checks out with the new key card.
#[tokio::test]
async fn check_out_with_an_expired_key_card_comes_back_after_the_front_desk() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    app.clock.advance(125);
    let res = app.bearer("/api/auth/logout", &a.key_card, &[]).await;
    assert!(set_cookies(res.headers()).is_empty(), "the cookies stay for the front desk");
    assert_eq!(error(res).await, (StatusCode::UNAUTHORIZED, "key_card_expired".into()));
    let b = stay(app.refresh(&a.confirmation).await).await;
    let res = app.bearer("/api/auth/logout", &b.key_card, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(error(app.refresh(&b.confirmation).await).await.1, "session_revoked");
}

#[tokio::test]
async fn me_and_the_event_log_describe_the_booking() {
    let app = spawn_app().await;
    let a = app.guest("Ann.Lee").await;
    let res = app.bearer("/api/me", &a.key_card, &[]).await;
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["user"]["username"], "Ann.Lee");
    assert_eq!(me["session"]["session_id"], a.body["session_id"]);
    assert_eq!(me["session"]["generation"], 1);
    let b = stay(app.refresh(&a.confirmation).await).await;
    let events: Value =
        app.bearer("/api/sessions/events", &b.key_card, &[]).await.json().await.unwrap();
    let kinds: Vec<_> =
        events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["checked_in", "refreshed"]);
    assert_eq!(events[1]["generation"], 2);
}

on_both_backends! {
    async fn a_guest_ends_one_booking_all_others_or_all(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let a = app.guest("ann").await;
        let b = app.check_in("ann").await;
        let c = app.check_in("ann").await;
        let d = app.check_in("ann").await;

        // One: a ends b.
        let res = app
            .bearer(
                "/api/sessions/revoke",
                &a.key_card,
                &[("session_id", b.body["session_id"].as_str().unwrap())],
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(error(app.refresh(&b.confirmation).await).await.1, "session_revoked");

        // Another guest's booking is not found, not revealed.
        let eve = app.guest("eve").await;
        let res = app
            .bearer(
                "/api/sessions/revoke",
                &eve.key_card,
                &[("session_id", a.body["session_id"].as_str().unwrap())],
            )
            .await;
        assert_eq!(error(res).await, (StatusCode::NOT_FOUND, "not_found".into()));
        assert_eq!(app.bearer("/api/me", &a.key_card, &[]).await.status(), StatusCode::OK);

        // All others: c ends a and d.
        let res = app.bearer("/api/auth/logout", &c.key_card, &[("scope", "others")]).await;
        assert_eq!(res.status(), StatusCode::OK);
        let ended: Value = res.json().await.unwrap();
        assert_eq!(ended["ended"].as_array().unwrap().len(), 2);
        assert_eq!(error(app.refresh(&a.confirmation).await).await.1, "session_revoked");
        assert_eq!(error(app.refresh(&d.confirmation).await).await.1, "session_revoked");
        assert_eq!(app.bearer("/api/me", &c.key_card, &[]).await.status(), StatusCode::OK);
        let list = sessions(&app, &c.key_card).await;
        let active: Vec<_> =
            list["sessions"].as_array().unwrap().iter().filter(|s| s["active"] == true).collect();
        assert_eq!(active.len(), 1);

        // All.
        let e = app.check_in("ann").await;
        let res = app.bearer("/api/auth/logout", &e.key_card, &[("scope", "all")]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(set_cookies(res.headers())["__Secure-confirmation"].1.contains("Max-Age=0"));
        assert_eq!(error(app.refresh(&c.confirmation).await).await.1, "session_revoked");
        assert_eq!(error(app.refresh(&e.confirmation).await).await.1, "session_revoked");
        // Eve is untouched.
        assert_eq!(app.refresh(&eve.confirmation).await.status(), StatusCode::OK);
    }

    async fn check_out_clears_the_cookies_and_ends_the_booking(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let a = app.guest("ann").await;
        let res = app.bearer("/api/auth/logout", &a.key_card, &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        let cookies = set_cookies(res.headers());
        for name in ["__Host-keycard", "__Secure-confirmation"] {
            let (value, line) = &cookies[name];
            assert!(value.is_empty() && line.contains("Max-Age=0"), "{line}");
        }
        assert_eq!(error(app.refresh(&a.confirmation).await).await.1, "session_revoked");
        assert_eq!(app.event_kinds().await, ["checked_in", "checked_out"]);
        let res = app.bearer("/api/auth/logout", &a.key_card, &[("scope", "sideways")]).await;
        assert_eq!(error(res).await, (StatusCode::BAD_REQUEST, "bad_request".into()));
    }

    async fn revocation_bites_stateful_doors_at_once_while_amenities_wait_for_expiry(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let a = app.guest("ann").await;
        let b = app.check_in("ann").await;
        app.bearer(
            "/api/sessions/revoke",
            &b.key_card,
            &[("session_id", a.body["session_id"].as_str().unwrap())],
        )
        .await;
        // a's key card is unexpired and genuine...
        let (status, code) = error(app.bearer("/api/me", &a.key_card, &[]).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "session_revoked"));
        let (_, code) = error(app.bearer("/api/sessions", &a.key_card, &[]).await).await;
        assert_eq!(code, "session_revoked");
        let (_, code) = error(app.bearer("/api/room/service", &a.key_card, &[]).await).await;
        assert_eq!(code, "session_revoked");
        assert!(app.event_kinds().await.contains(&"revoked".to_owned()));
        // ...so the stateless resource server still lets it into the gym until it expires.
        assert_eq!(app.amenity("gym", &a.key_card).await.status(), StatusCode::OK);
        app.clock.advance(125);
        assert_eq!(error(app.amenity("gym", &a.key_card).await).await.1, "key_card_expired");
    }

    async fn a_password_change_ends_the_other_bookings_only(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let a = app.guest("ann").await;
        let b = app.check_in("ann").await;
        let res = app
            .bearer(
                "/api/auth/password",
                &a.key_card,
                &[("current_password", "wrong password!"), ("new_password", "a whole new secret")],
            )
            .await;
        assert_eq!(error(res).await, (StatusCode::UNAUTHORIZED, "invalid_credentials".into()));
        let res = app
            .bearer(
                "/api/auth/password",
                &a.key_card,
                &[("current_password", PASSWORD), ("new_password", "password")],
            )
            .await;
        assert_eq!(error(res).await, (StatusCode::BAD_REQUEST, "weak_password".into()));

        let res = app
            .bearer(
                "/api/auth/password",
                &a.key_card,
                &[("current_password", PASSWORD), ("new_password", "a whole new secret")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(error(app.refresh(&b.confirmation).await).await.1, "session_revoked");
        assert_eq!(error(app.bearer("/api/me", &b.key_card, &[]).await).await.1, "session_revoked");
        assert_eq!(app.refresh(&a.confirmation).await.status(), StatusCode::OK);
        assert_eq!(app.login("ann", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(app.login("ann", "a whole new secret").await.status(), StatusCode::OK);
    }
}

/// The server's page routes carry the `door_ahead` layer: every page a checked-in guest loads
/// had its room door checked before its render, and a server function, which the layer passes
/// over, checks it itself. (The test above shows what the render does with an answer checked
/// ahead; this one that the router really checks one.)
#[tokio::test]
async fn the_page_routes_check_the_room_door_before_the_render() {
    use keycard_app::probes::room_door;

    let app = spawn_app().await;
    let a = app.guest("ann").await;
    let cookie = format!("__Host-keycard={}", a.key_card);
    let checked = |res: &reqwest::Response| {
        res.headers().get(room_door::HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    for path in ["/", "/room", "/amenities", "/sessions"] {
        let res = app
            .http
            .get(app.url(path))
            .header("accept", "text/html")
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(checked(&res).as_deref(), Some(room_door::AHEAD), "{path}");
    }
    let res = app.bearer("/api/me", &a.key_card, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(checked(&res).as_deref(), Some(room_door::HERE), "a server function");
}

/// A page's render takes the room door's answer checked before the render began (the page
/// routes' `door_ahead`), not a check of its own: here the booking ends between the two, a
/// fresh check is refused, and the render still sees the guest its request arrived as.
#[tokio::test]
async fn a_page_render_takes_the_room_door_answer_checked_before_it() {
    use keycard_app::error::ErrorCode;
    use keycard_app::guard::{CheckedAhead, CheckedIn};
    use leptos::prelude::{provide_context, Owner};

    let app = spawn_app().await;
    let a = app.guest("ann").await;
    let page = http::Request::get("/room")
        .header("cookie", format!("__Host-keycard={}", a.key_card))
        .body(())
        .unwrap();
    let (mut parts, ()) = page.into_parts();
    let ahead = CheckedAhead::check(&app.desk, &parts).await.expect("the page carries a key card");
    parts.extensions.insert(ahead);

    assert_eq!(app.bearer("/api/auth/logout", &a.key_card, &[]).await.status(), StatusCode::OK);
    let fresh = CheckedIn::check(&app.desk, &parts).await;
    assert!(matches!(fresh, Err(e) if e.error == ErrorCode::SessionRevoked), "the booking ended");

    let owner = Owner::new();
    let seen = owner.with(|| {
        provide_context(parts.clone());
        provide_context(app.desk.clone());
        // Ready at its first poll: nothing is awaited when the answer was checked ahead.
        futures::executor::block_on(CheckedIn::from_server_fn())
    });
    let Ok(seen) = seen else { panic!("the render sees the answer of its request's start") };
    assert_eq!(seen.guest.claims().preferred_username, "ann");

    let unsigned = http::Request::get("/room").body(()).unwrap().into_parts().0;
    assert!(CheckedAhead::check(&app.desk, &unsigned).await.is_none(), "no key card, no check");
    // A call checks for itself: a DPoP proof checked here too would be a replay the second time.
    let call = http::Request::post("/api/me")
        .header("cookie", format!("__Host-keycard={}", a.key_card))
        .body(())
        .unwrap();
    assert!(CheckedAhead::check(&app.desk, &call.into_parts().0).await.is_none(), "a call");
}
