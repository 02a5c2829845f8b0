//! Room service and the demo controls (theft and fast expiry), and forms posted without
//! JavaScript.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn outcome(res: reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["outcome"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn room_service_is_stateful_and_says_when_the_key_card_expired() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    let res = app.bearer("/api/room/service", &a.key_card, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("ann"));
    app.clock.advance(125);
    let (status, code) = error(app.bearer("/api/room/service", &a.key_card, &[]).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "key_card_expired"));
}

#[tokio::test]
async fn a_stale_stolen_confirmation_is_caught_and_cancels_the_booking() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    assert_eq!(outcome(app.bearer("/api/demo/steal", &a.key_card, &[]).await).await, "copied");
    let b = stay(app.refresh(&a.confirmation).await).await;
    app.clock.advance(11);
    assert_eq!(outcome(app.bearer("/api/demo/thief", &b.key_card, &[]).await).await, "caught");
    assert_eq!(error(app.refresh(&b.confirmation).await).await.1, "session_revoked");
    assert_eq!(outcome(app.bearer("/api/demo/thief", &b.key_card, &[]).await).await, "too_late");
}

#[tokio::test]
async fn a_thief_who_gets_in_first_is_caught_at_the_guests_next_visit() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    outcome(app.bearer("/api/demo/steal", &a.key_card, &[]).await).await;
    assert_eq!(outcome(app.bearer("/api/demo/thief", &a.key_card, &[]).await).await, "got_in");
    app.clock.advance(11);
    assert_eq!(error(app.refresh(&a.confirmation).await).await.1, "reuse_detected");
    assert_eq!(app.event_kinds().await, ["checked_in", "refreshed", "reuse_detected"]);
}

#[tokio::test]
async fn a_short_lived_key_card_expires_in_ten_seconds() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    let res = app.bearer("/api/demo/expire-soon", &a.key_card, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let short = set_cookies(res.headers())["__Host-keycard"].0.clone();
    let c = claims(&short);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 10);
    app.clock.advance(12);
    assert_eq!(error(app.bearer("/api/me", &short, &[]).await).await.1, "key_card_expired");
    assert_eq!(app.bearer("/api/me", &a.key_card, &[]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_room_shows_the_demo_panel_while_the_controls_are_on() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    let html = app.room_html(&a.key_card).await;
    assert!(html.contains("Call room service") && html.contains("Demo controls"));
    let app = spawn_app_with(|c| c.demo_controls = false).await;
    let a = app.guest("ann").await;
    let html = app.room_html(&a.key_card).await;
    assert!(html.contains("Call room service") && !html.contains("Demo controls"));
}

/// `/api/demo/enabled`, asked before anyone checks in.
async fn demo_enabled(app: &TestApp) -> bool {
    let res = app.post("/api/demo/enabled", &[], &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<bool>().await.unwrap()
}

#[tokio::test]
async fn demo_controls_can_be_turned_off() {
    assert!(demo_enabled(&spawn_app().await).await);
    let app = spawn_app_with(|c| c.demo_controls = false).await;
    assert!(!demo_enabled(&app).await);
    let a = app.guest("ann").await;
    for path in ["/api/demo/steal", "/api/demo/thief", "/api/demo/expire-soon"] {
        let (status, code) = error(app.bearer(path, &a.key_card, &[]).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "demo_disabled"), "{path}");
    }
}

#[tokio::test]
async fn a_form_posted_without_javascript_comes_back_with_its_error() {
    let app = spawn_app().await;
    app.guest("ann").await;
    let referer = app.url("/login?next=/room&error=old");
    let form = [("username", "ann"), ("password", "wrong password")];
    let headers = [("accept", "text/html"), ("referer", referer.as_str())];
    let res = app.post("/api/auth/login", &form, &headers).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/login?next=/room&error=invalid_credentials");
    // Success goes back to the page, with the cookies set.
    let form = [("username", "ann"), ("password", PASSWORD)];
    let res = app.post("/api/auth/login", &form, &headers).await;
    assert!(res.status().is_redirection());
    assert!(set_cookies(res.headers()).contains_key("__Secure-confirmation"));
}
