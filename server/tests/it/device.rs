//! Native clients (issue 26): the device authorization grant (RFC 8628) at `/oauth/*`, its
//! approval at `/api/device/*`, and the native front desk (`grant_type=refresh_token`, RFC 6749
//! section 6) with the browser's rotation, grace and reuse rules. Every answer is held to the
//! RFCs' shapes: `400` with `error` and `error_description`, `Cache-Control: no-store`, no cookie.
//! `scripts/device-client.py` drives the same grant as an outside client written from the RFCs.

use keycard::dpop::ProofKey;
use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::common::*;

const CLI: &str = "keycard-cli";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What a device holds while it waits.
struct Waiting {
    device_code: String,
    user_code: String,
    body: Value,
}

impl TestApp {
    async fn oauth(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.post(path, form, &[("user-agent", "keycard-cli/0.1 (test)")]).await
    }

    async fn device_authorization(&self) -> Waiting {
        let res = self.oauth("/oauth/device_authorization", &[("client_id", CLI)]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let body: Value = res.json().await.unwrap();
        Waiting {
            device_code: body["device_code"].as_str().unwrap().to_owned(),
            user_code: body["user_code"].as_str().unwrap().to_owned(),
            body,
        }
    }

    async fn poll(&self, device_code: &str) -> Response {
        let form = [("grant_type", DEVICE_GRANT), ("device_code", device_code), ("client_id", CLI)];
        self.oauth("/oauth/token", &form).await
    }

    async fn decide(&self, key_card: &str, user_code: &str, decision: &str) -> Response {
        let form = [("user_code", user_code), ("decision", decision)];
        self.bearer("/api/device/approve", key_card, &form).await
    }

    async fn native_refresh(&self, refresh_token: &str) -> Response {
        let form =
            [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", CLI)];
        self.oauth("/oauth/token", &form).await
    }

    /// A guest `username` checked in in a browser, and a CLI they approved: the CLI's tokens.
    async fn checked_in_cli(&self, username: &str) -> (Stay, Value) {
        let guest = self.guest(username).await;
        let waiting = self.device_authorization().await;
        let res = self.decide(&guest.key_card, &waiting.user_code, "approve").await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = self.poll(&waiting.device_code).await;
        assert_eq!(res.status(), StatusCode::OK);
        (guest, tokens(res).await)
    }
}

/// A token answer (RFC 6749, section 5.1), checked for what no answer of this desk may carry.
async fn tokens(res: Response) -> Value {
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(res.headers().get("set-cookie").is_none(), "no cookie at the token endpoint");
    res.json().await.unwrap()
}

/// An error answer (RFC 6749, section 5.2): its `error`, after checking its shape.
async fn oauth_error(res: Response) -> (StatusCode, String) {
    let status = res.status();
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(res.headers().get("set-cookie").is_none());
    let body: Value = res.json().await.unwrap();
    assert!(body["error_description"].is_string(), "{body}");
    (status, body["error"].as_str().unwrap().to_owned())
}

fn bad(code: &str) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, code.to_owned())
}

#[tokio::test]
async fn the_device_authorization_answer_is_rfc_8628s() {
    let app = spawn_app().await;
    let waiting = app.device_authorization().await;
    let body = &waiting.body;
    let page = format!("{}/device", app.config.public_url.origin().ascii_serialization());
    assert_eq!(body["verification_uri"], page);
    assert_eq!(body["verification_uri_complete"], format!("{page}?code={}", waiting.user_code));
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["interval"], 5);
    // 8 of RFC 8628's 20 consonants, shown as XXXX-XXXX.
    let code = &waiting.user_code;
    assert_eq!(code.len(), 9);
    assert_eq!(&code[4..5], "-");
    assert!(code.replace('-', "").bytes().all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)), "{code}");
    assert!(waiting.device_code.len() >= 22, "the device code is a secret: 128 bits at least");
    // Only its hash is kept.
    let stored = app.db.strings("SELECT device_code_hash FROM device_grants").await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], waiting.device_code);
}

#[tokio::test]
async fn every_wrong_request_gets_its_rfc_error() {
    let app = spawn_app().await;
    let waiting = app.device_authorization().await;
    let code = waiting.device_code.as_str();
    // (case, the form, the endpoint, the answer)
    type Row<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, (StatusCode, String));
    let table: Vec<Row> = vec![
        (
            "an unknown client asks",
            vec![("client_id", "evil")],
            "/oauth/device_authorization",
            bad("invalid_client"),
        ),
        ("no client at all", vec![], "/oauth/device_authorization", bad("invalid_request")),
        (
            "the browser's client id",
            vec![("client_id", "keycard-web")],
            "/oauth/device_authorization",
            bad("invalid_client"),
        ),
        (
            "a parameter twice",
            vec![("client_id", CLI), ("client_id", CLI)],
            "/oauth/device_authorization",
            bad("invalid_request"),
        ),
        ("no grant type", vec![("client_id", CLI)], "/oauth/token", bad("invalid_request")),
        (
            "a grant type we do not serve",
            vec![("grant_type", "password"), ("client_id", CLI)],
            "/oauth/token",
            bad("unsupported_grant_type"),
        ),
        (
            "no device code",
            vec![("grant_type", DEVICE_GRANT), ("client_id", CLI)],
            "/oauth/token",
            bad("invalid_request"),
        ),
        (
            "a made-up device code",
            vec![("grant_type", DEVICE_GRANT), ("device_code", "nope"), ("client_id", CLI)],
            "/oauth/token",
            bad("invalid_grant"),
        ),
        (
            "another client's code",
            vec![("grant_type", DEVICE_GRANT), ("device_code", code), ("client_id", "evil")],
            "/oauth/token",
            bad("invalid_client"),
        ),
        (
            "a made-up refresh token",
            vec![("grant_type", "refresh_token"), ("refresh_token", "x.y.z"), ("client_id", CLI)],
            "/oauth/token",
            bad("invalid_grant"),
        ),
    ];
    for (case, form, path, expected) in table {
        assert_eq!(oauth_error(app.oauth(path, &form).await).await, expected, "{case}");
    }
}

on_both_backends! {
    async fn a_device_waits_then_checks_in_once(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let ann = app.guest("ann").await;
        let waiting = app.device_authorization().await;
        assert_eq!(oauth_error(app.poll(&waiting.device_code).await).await,
            bad("authorization_pending"));
        // Polling again at once is too fast: slow_down, and the interval grows by 5 s.
        assert_eq!(oauth_error(app.poll(&waiting.device_code).await).await, bad("slow_down"));
        assert_eq!(app.db.number("SELECT interval_secs FROM device_grants").await, 10);
        app.clock.advance(10);
        assert_eq!(oauth_error(app.poll(&waiting.device_code).await).await,
            bad("authorization_pending"));
        // The guest approves, lower case and without the dash, as people type.
        let typed = waiting.user_code.replace('-', "").to_lowercase();
        let res = app.decide(&ann.key_card, &typed, "approve").await;
        assert_eq!(res.status(), StatusCode::OK);
        let decided: Value = res.json().await.unwrap();
        assert_eq!(decided["state"], "approved");
        assert_eq!(decided["client_name"], "Keycard CLI");
        app.clock.advance(10);
        let cli = tokens(app.poll(&waiting.device_code).await).await;
        assert_eq!(cli["token_type"], "Bearer");
        assert_eq!(cli["expires_in"], 120);
        let card = claims(cli["access_token"].as_str().unwrap());
        assert_eq!(card["sub"], claims(&ann.key_card)["sub"]);
        assert_eq!(card["client_id"], CLI);
        assert_ne!(card["sid"], claims(&ann.key_card)["sid"], "a booking of its own");
        assert_eq!(claims(cli["refresh_token"].as_str().unwrap())["client_id"], CLI);
        // The code works once.
        app.clock.advance(10);
        assert_eq!(oauth_error(app.poll(&waiting.device_code).await).await, bad("invalid_grant"));
        // The CLI's key card opens the doors like any other.
        let me = app.bearer("/api/me", cli["access_token"].as_str().unwrap(), &[]).await;
        assert_eq!(me.status(), StatusCode::OK);
        // And the booking is among the guest's, with its client's name.
        let list: Value = app.bearer("/api/sessions", &ann.key_card, &[]).await.json().await.unwrap();
        let names: Vec<&str> =
            list["sessions"].as_array().unwrap().iter().filter_map(|s| s["client_name"].as_str()).collect();
        assert_eq!(names, ["Keycard CLI"]);
    }

    async fn denied_and_expired_codes_say_so(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let ann = app.guest("ann").await;
        let denied = app.device_authorization().await;
        let res = app.decide(&ann.key_card, &denied.user_code, "deny").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(oauth_error(app.poll(&denied.device_code).await).await, bad("access_denied"));
        // A decided code cannot be decided again (nor approved after a denial).
        let again = app.decide(&ann.key_card, &denied.user_code, "approve").await;
        assert_eq!(error(again).await, (StatusCode::NOT_FOUND, "device_code_unknown".into()));
        let late = app.device_authorization().await;
        app.clock.advance(601);
        assert_eq!(oauth_error(app.poll(&late.device_code).await).await, bad("expired_token"));
        // Ten minutes on, with a key card of the moment: the code cannot be approved any more.
        let ann = app.check_in("ann").await;
        let res = app.decide(&ann.key_card, &late.user_code, "approve").await;
        assert_eq!(error(res).await, (StatusCode::NOT_FOUND, "device_code_unknown".into()));
        // Housekeeping forgets expired requests after an hour.
        app.clock.advance(3600);
        app.desk.housekeeping().await;
        assert_eq!(app.db.number("SELECT count(*) FROM device_grants").await, 0);
    }

    async fn the_native_front_desk_rotates_and_catches_a_replay(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let (ann, cli) = app.checked_in_cli("ann").await;
        let first = cli["refresh_token"].as_str().unwrap().to_owned();
        let second = tokens(app.native_refresh(&first).await).await;
        let second_token = second["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(second_token, first, "rotated");
        // The same one again at once (a lost answer): the grace window hands back the same.
        let retry = tokens(app.native_refresh(&first).await).await;
        assert_eq!(retry["refresh_token"], second["refresh_token"]);
        let third = tokens(app.native_refresh(&second_token).await).await;
        // The first, two behind: a copy. The CLI's whole booking is cancelled, not the browser's.
        assert_eq!(oauth_error(app.native_refresh(&first).await).await, bad("invalid_grant"));
        let third_token = third["refresh_token"].as_str().unwrap();
        assert_eq!(oauth_error(app.native_refresh(third_token).await).await, bad("invalid_grant"));
        assert!(app.event_kinds().await.contains(&"reuse_detected".to_owned()));
        assert_eq!(app.refresh(&ann.confirmation).await.status(), StatusCode::OK, "the browser's stay lives on");
    }

    async fn the_two_front_desks_do_not_mix(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let (ann, cli) = app.checked_in_cli("ann").await;
        let native = cli["refresh_token"].as_str().unwrap();
        // A native refresh token at the browser's desk (in the cookie), and the browser's
        // confirmation at the native desk: refused, and neither booking is touched.
        let (status, code) = error(app.refresh(native).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "confirmation_invalid"));
        assert_eq!(oauth_error(app.native_refresh(&ann.confirmation).await).await, bad("invalid_grant"));
        assert_eq!(app.db.number("SELECT max(generation) FROM sessions").await, 1);
        assert!(!app.event_kinds().await.contains(&"reuse_detected".to_owned()));
        // Both go on at their own desk.
        assert_eq!(app.refresh(&ann.confirmation).await.status(), StatusCode::OK);
        assert_eq!(app.native_refresh(native).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn ending_the_clis_booking_ends_its_next_call() {
    let app = spawn_app().await;
    let (ann, cli) = app.checked_in_cli("ann").await;
    let card = claims(cli["access_token"].as_str().unwrap());
    let booking = card["sid"].as_str().unwrap();
    let res = app.bearer("/api/sessions/revoke", &ann.key_card, &[("session_id", booking)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let me = app.bearer("/api/me", cli["access_token"].as_str().unwrap(), &[]).await;
    assert_eq!(error(me).await, (StatusCode::UNAUTHORIZED, "session_revoked".into()));
    let refresh = app.native_refresh(cli["refresh_token"].as_str().unwrap()).await;
    assert_eq!(oauth_error(refresh).await, bad("invalid_grant"));
}

#[tokio::test]
async fn a_cli_with_a_dpop_key_gets_bound_tokens() {
    let app = spawn_app().await;
    let ann = app.guest("ann").await;
    let key = ProofKey::generate();
    let public =
        |path: &str| format!("{}{path}", app.config.public_url.origin().ascii_serialization());
    let waiting = app.device_authorization().await;
    app.decide(&ann.key_card, &waiting.user_code, "approve").await;
    let form = [
        ("grant_type", DEVICE_GRANT),
        ("device_code", waiting.device_code.as_str()),
        ("client_id", CLI),
    ];
    let proof = key.proof("POST", &public("/oauth/token"), None, app.clock.now());
    let res = app.post("/oauth/token", &form, &[("dpop", &proof)]).await;
    let cli = tokens(res).await;
    assert_eq!(cli["token_type"], "DPoP");
    let card = cli["access_token"].as_str().unwrap();
    assert_eq!(claims(card)["cnf"]["jkt"], key.jkt());
    // Its refresh token is bound too: without a proof of the key, refused as RFC 9449 says.
    let refresh = cli["refresh_token"].as_str().unwrap();
    assert_eq!(oauth_error(app.native_refresh(refresh).await).await, bad("invalid_dpop_proof"));
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", CLI)];
    let proof = key.proof("POST", &public("/oauth/token"), None, app.clock.now());
    let res = app.post("/oauth/token", &form, &[("dpop", &proof)]).await;
    assert_eq!(tokens(res).await["token_type"], "DPoP");
}

#[tokio::test]
async fn guessing_codes_is_throttled() {
    let app = spawn_app().await;
    let ann = app.guest("ann").await;
    let mut statuses = Vec::new();
    for _ in 0..32 {
        let res =
            app.bearer("/api/device/request", &ann.key_card, &[("user_code", "BCDF-GHJK")]).await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses[..30], [404; 30]);
    assert_eq!(statuses[30..], [429; 2]);
}

#[tokio::test]
async fn no_native_clients_no_device_grant() {
    let app = spawn_app_with(|c| c.native_clients = keycard::clients::NativeClients::none()).await;
    let res = app.oauth("/oauth/device_authorization", &[("client_id", CLI)]).await;
    assert_eq!(oauth_error(res).await, bad("invalid_client"));
}
