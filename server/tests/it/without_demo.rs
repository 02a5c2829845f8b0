//! A build without the `demo` feature (`cargo test -p keycard-server --no-default-features`)
//! has no demo: its routes answer 404, the room renders no demo panel, and the served API
//! description lists no demo operation.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn the_demo_routes_do_not_exist() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    for path in [
        "/api/demo/enabled",
        "/api/demo/steal",
        "/api/demo/thief",
        "/api/demo/expire-soon",
        "/api/demo/lapse",
        "/api/auth/lab",
    ] {
        let (status, code) = error(app.bearer(path, &a.key_card, &[]).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"), "{path}");
    }
    // Everything else is still there.
    assert_eq!(app.bearer("/api/room/service", &a.key_card, &[]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_room_has_no_demo_panel_and_the_description_no_demo_operation() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    let html = app.room_html(&a.key_card).await;
    assert!(html.contains("Call room service"), "the room rendered");
    // The same page of a build with the demo has these (tests/demo.rs checks).
    assert!(!html.contains("Demo controls") && !html.contains("demo-said"), "no demo panel");

    let doc: Value =
        app.http.get(app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/room/service"));
    assert!(!paths.keys().any(|p| p.contains("demo") || p.ends_with("/lab")), "{:?}", paths.keys());
    // And no answer is described for the wire panel.
    let res = app.bearer("/api/me", &a.key_card, &[]).await;
    assert!(res.headers().get("keycard-wire").is_none());
}
