//! The learner's lab: the forge lab names the rule that refused each forgery (and never accepts
//! one), explains only the caller's own booking, is throttled and off with the demo controls;
//! step 4 of the article, live (the booking lapses by time); and the wire's description of each
//! exchange, which names cookies but never shows a value.

use crate::common::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

/// Re-encodes one part of a JWT after `change`, leaving the others (and the signature) as they were.
fn forge(token: &str, part: usize, change: impl FnOnce(&mut Value)) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut json: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[part]).unwrap()).unwrap();
    change(&mut json);
    parts[part] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json).unwrap());
    parts.join(".")
}

impl TestApp {
    /// Tries `token` at `door` in the lab, as the holder of `stay`'s key card (and confirmation).
    async fn lab(&self, stay: &Stay, door: &str, token: &str, present: &str) -> Response {
        let cookie = format!("__Secure-confirmation={}", stay.confirmation);
        let auth = format!("Bearer {}", stay.key_card);
        let form = [("door", door), ("token", token), ("present", present)];
        self.post("/api/auth/lab", &form, &[("authorization", &auth), ("cookie", &cookie)]).await
    }
}

/// The rule the lab named, and the rules it listed as broken next.
async fn rule(res: Response) -> (String, Vec<String>) {
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["opens"], body["rule"] == "genuine", "{body}");
    assert!(body["rfc"].as_str().unwrap().starts_with("https://www.rfc-editor.org/rfc/rfc"));
    assert!(!body["explanation"].as_str().unwrap().is_empty());
    let also =
        body["also"].as_array().unwrap().iter().map(|r| r["rule"].as_str().unwrap().to_owned());
    (body["rule"].as_str().unwrap().to_owned(), also.collect())
}

#[tokio::test]
async fn each_forgery_is_refused_with_the_rule_that_refused_it() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    let card = a.key_card.as_str();
    // One character inside the signature. (Not the last: base64url's last character carries
    // unused bits, and a change there can make the part invalid base64, which is `malformed`.)
    let mut sig_char_changed = card.to_owned();
    let at = card.len() - 10;
    let swap = if &card[at..at + 1] == "A" { "B" } else { "A" };
    sig_char_changed.replace_range(at..at + 1, swap);
    let (header, payload, _) = {
        let mut it = card.split('.');
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    // (what, token, door, the rule that refuses it, the rules its claims break next)
    let cases: Vec<(&str, String, &str, &str, &str)> = vec![
        ("unchanged", card.to_owned(), "amenity", "genuine", ""),
        (
            "sub: another guest",
            forge(card, 1, |c| c["sub"] = json!("someone-else")),
            "amenity",
            "signature",
            "",
        ),
        (
            "exp: an hour later",
            forge(card, 1, |c| c["exp"] = json!(c["exp"].as_i64().unwrap() + 3600)),
            "amenity",
            "signature",
            "",
        ),
        (
            "aud: another API",
            forge(card, 1, |c| c["aud"] = json!("https://elsewhere.example")),
            "amenity",
            "signature",
            "audience",
        ),
        (
            "iss: another hotel",
            forge(card, 1, |c| c["iss"] = json!("https://evil.example")),
            "amenity",
            "signature",
            "issuer",
        ),
        (
            "exp: in the past",
            forge(card, 1, |c| c["exp"] = json!(1)),
            "amenity",
            "signature",
            "expired",
        ),
        ("one signature character", sig_char_changed, "amenity", "signature", ""),
        (
            "alg: none, no signature",
            format!(
                "{}.{payload}.",
                forge(card, 0, |h| h["alg"] = json!("none")).split('.').next().unwrap()
            ),
            "amenity",
            "algorithm",
            "",
        ),
        ("alg: HS256", forge(card, 0, |h| h["alg"] = json!("HS256")), "amenity", "algorithm", ""),
        (
            "kid: unknown",
            forge(card, 0, |h| h["kid"] = json!("not-a-hotel-key")),
            "amenity",
            "key",
            "",
        ),
        (
            "jku: the attacker's keys",
            forge(card, 0, |h| h["jku"] = json!("https://evil.example/jwks")),
            "amenity",
            "header",
            "",
        ),
        (
            "typ: none",
            forge(card, 0, |h| {
                h.as_object_mut().unwrap().remove("typ");
            }),
            "amenity",
            "type",
            "",
        ),
        ("the key card at the front desk", card.to_owned(), "front_desk", "type", ""),
        ("not a JWT", "hello".to_owned(), "amenity", "malformed", ""),
        (
            "a signature that is not base64url",
            format!("{header}.{payload}.!!"),
            "amenity",
            "malformed",
            "",
        ),
        ("a header only", format!("{header}.."), "amenity", "algorithm", ""),
    ];
    for (name, token, door, expected, also) in cases {
        let (got, got_also) = rule(app.lab(&a, door, &token, "token").await).await;
        assert_eq!((got.as_str(), got_also.join(",").as_str()), (expected, also), "{name}");
    }
    // The booking confirmation, taken by the server from its HttpOnly cookie.
    assert_eq!(rule(app.lab(&a, "amenity", "", "confirmation").await).await.0, "type");
    assert_eq!(rule(app.lab(&a, "front_desk", "", "confirmation").await).await.0, "genuine");
    // The lab changed nothing: the key card still opens the door, the confirmation still rotates.
    assert_eq!(app.amenity("gym", card).await.status(), StatusCode::OK);
    let b = stay(app.refresh(&a.confirmation).await).await;
    // The first confirmation is now the predecessor: within the grace window the front desk
    // would answer it, and so says the lab...
    let old = Stay {
        key_card: b.key_card.clone(),
        confirmation: a.confirmation.clone(),
        body: b.body.clone(),
    };
    assert_eq!(rule(app.lab(&old, "front_desk", "", "confirmation").await).await.0, "genuine");
    // ...after it, showing it would cancel the booking: the lab says so without cancelling it.
    app.clock.advance(11);
    assert_eq!(rule(app.lab(&old, "front_desk", "", "confirmation").await).await.0, "replayed");
    // A confirmation pasted rather than sent by the browser is checked but never compared: a
    // thief holding a copy learns nothing about whether it is still current.
    assert_eq!(rule(app.lab(&b, "front_desk", &a.confirmation, "token").await).await.0, "genuine");
    assert_eq!(rule(app.lab(&b, "front_desk", "", "confirmation").await).await.0, "genuine");
    assert_eq!(app.refresh(&b.confirmation).await.status(), StatusCode::OK, "not cancelled");
    assert!(!app.event_kinds().await.contains(&"reuse_detected".to_owned()));
}

#[tokio::test]
async fn an_expired_key_card_is_refused_as_expired() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    app.clock.advance(125);
    // The caller needs a current key card of the same booking to ask.
    let b = stay(app.refresh(&a.confirmation).await).await;
    assert_eq!(rule(app.lab(&b, "amenity", &a.key_card, "token").await).await.0, "expired");
}

#[tokio::test]
async fn only_the_callers_own_booking_is_explained() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    let b = app.guest("bob").await;
    let bobs_booking = claims(&b.key_card)["sid"].clone();
    for token in [b.key_card.clone(), forge(&a.key_card, 1, |c| c["sid"] = bobs_booking.clone())] {
        let (status, code) = error(app.lab(&a, "amenity", &token, "token").await).await;
        assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "not_your_booking"));
    }
    let (status, code) = error(app.lab(&a, "front_desk", &b.confirmation, "token").await).await;
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "not_your_booking"));
    // Asked to present a confirmation the browser did not send: a bad request, not a booking
    // that ended (which `confirmation_missing` would tell the page).
    let auth = format!("Bearer {}", a.key_card);
    let form = [("door", "amenity"), ("present", "confirmation")];
    let res = app.post("/api/auth/lab", &form, &[("authorization", &auth)]).await;
    assert_eq!(error(res).await, (StatusCode::BAD_REQUEST, "bad_request".to_owned()));
    // Without a key card of one's own, nothing is explained at all.
    let res = app.post("/api/auth/lab", &[("door", "amenity"), ("token", &a.key_card)], &[]).await;
    assert_eq!(error(res).await, (StatusCode::UNAUTHORIZED, "key_card_missing".to_owned()));
    // Bad fields are a 400, not a guess.
    let (status, code) = error(app.lab(&a, "the-bar", "x", "token").await).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    let (status, code) = error(app.lab(&a, "amenity", "x", "a-photo").await).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
}

#[tokio::test]
async fn the_lab_is_throttled_per_booking() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    for _ in 0..keycard::throttle::LAB_PER_BOOKING_PER_MINUTE {
        assert_eq!(app.lab(&a, "amenity", "x", "token").await.status(), StatusCode::OK);
    }
    let res = app.lab(&a, "amenity", "x", "token").await;
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(error(res).await, (StatusCode::TOO_MANY_REQUESTS, "too_many_requests".to_owned()));
    // Another booking has its own budget.
    let b = app.guest("bob").await;
    assert_eq!(app.lab(&b, "amenity", "x", "token").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_lab_and_the_lapse_are_off_with_the_demo_controls() {
    let app = spawn_app_with(|c| c.demo_controls = false).await;
    let a = app.guest("ann").await;
    let (status, code) = error(app.lab(&a, "amenity", &a.key_card, "token").await).await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "demo_disabled"));
    let (status, code) = error(app.bearer("/api/demo/lapse", &a.key_card, &[]).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "demo_disabled"));
    // Nor is any exchange described for the wire panel.
    assert!(app.login("ann", PASSWORD).await.headers().get("keycard-wire").is_none());
}

#[tokio::test]
async fn a_lapsed_booking_turns_the_next_front_desk_visit_away() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    let res = app.bearer("/api/demo/lapse", &a.key_card, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let short = set_cookies(res.headers())["__Host-keycard"].0.clone();
    let body: Value = res.json().await.unwrap();
    let c = claims(&short);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 10);
    // The booking's limits moved; the clock did not.
    let session = &body["session"];
    assert_eq!(session["absolute_expires_at"], c["exp"]);
    assert_eq!(session["idle_expires_at"], c["exp"]);
    // Before the limit, the front desk still serves...
    app.clock.advance(5);
    let b = stay(app.refresh(&a.confirmation).await).await;
    // ...but the limit does not move back, and after it the booking is over.
    app.clock.advance(6);
    let refused = app.refresh(&b.confirmation).await;
    // The refusal is described on the wire too, with the cookies it clears.
    let note: Value =
        serde_json::from_str(refused.headers()["keycard-wire"].to_str().unwrap()).unwrap();
    let set = note["set_cookies"].as_array().unwrap();
    assert_eq!(set.len(), 2);
    assert!(set.iter().all(|c| c["cleared"] == true), "{note}");
    assert_eq!(error(refused).await, (StatusCode::UNAUTHORIZED, "session_expired".to_owned()));
    assert_eq!(error(app.bearer("/api/me", &b.key_card, &[]).await).await.1, "session_expired");
    assert_eq!(app.event_kinds().await, ["checked_in", "limits_moved", "refreshed", "expired"]);
    // A booking that is over cannot be made to lapse.
    let (status, _) = error(app.bearer("/api/demo/lapse", &b.key_card, &[]).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_wire_names_cookies_and_their_attributes_never_their_values() {
    let app = spawn_app().await;
    app.guest("ann").await;
    let res = app.login("ann", PASSWORD).await;
    let note: Value =
        serde_json::from_str(res.headers()["keycard-wire"].to_str().unwrap()).unwrap();
    let a = stay(res).await;
    let raw = note.to_string();
    for secret in [&a.key_card, &a.confirmation] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!raw.contains(signature), "a token value reached the description");
    }
    let set = note["set_cookies"].as_array().unwrap();
    let find = |name: &str| set.iter().find(|c| c["name"] == name).unwrap().clone();
    let confirmation = find("__Secure-confirmation");
    assert_eq!(confirmation["path"], "/api/auth");
    assert_eq!(confirmation["http_only"], true);
    assert_eq!(confirmation["secure"], true);
    assert_eq!(confirmation["same_site"], "Strict");
    assert_eq!(confirmation["token"], "booking confirmation");
    assert_eq!(confirmation["generation"], 1);
    let key_card = find("__Host-keycard");
    assert_eq!(
        (key_card["path"].as_str(), key_card["token"].as_str()),
        (Some("/"), Some("key card"))
    );

    // What the browser sent: the names of the cookies, and the Origin.
    let cookie = format!("__Host-keycard={}; __Secure-confirmation={}", a.key_card, a.confirmation);
    let origin = app.base.clone();
    let res = app.post("/api/auth/refresh", &[], &[("cookie", &cookie), ("origin", &origin)]).await;
    let note: Value =
        serde_json::from_str(res.headers()["keycard-wire"].to_str().unwrap()).unwrap();
    assert_eq!(note["cookies"], json!(["__Host-keycard", "__Secure-confirmation"]));
    assert_eq!(note["origin"], json!(origin));
    assert!(!note.to_string().contains(a.confirmation.rsplit('.').next().unwrap()));
    let generation = |n: &Value| {
        n["set_cookies"].as_array().unwrap().iter().find_map(|c| c["generation"].as_i64())
    };
    assert_eq!(generation(&note), Some(2));

    // A bearer token is shortened to its first characters.
    let res = app.bearer("/api/me", &a.key_card, &[]).await;
    let note: Value =
        serde_json::from_str(res.headers()["keycard-wire"].to_str().unwrap()).unwrap();
    let shown = note["authorization"].as_str().unwrap();
    assert!(shown.starts_with("Bearer eyJ") && shown.len() < 50, "{shown}");
    // Pages and other paths are not described.
    assert!(app
        .http
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .headers()
        .get("keycard-wire")
        .is_none());
}
