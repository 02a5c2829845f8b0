//! Sender-constrained key cards (issue 25, RFC 9449): a client that proves a key at check-in gets
//! a key card and a booking bound to it; both doors and the front desk then take them only with
//! a fresh proof of that key, and refuse every forgery of section 4.3 with a 401 and a DPoP
//! `WWW-Authenticate`. The proofs here are made by `keycard-dpop`'s `ProofKey`; the Python client
//! in `scripts/dpop-client.py` makes its own, from the RFC.

use keycard::dpop::ProofKey;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

/// A DPoP client of `app`: its own key, and the URLs as the hotel's public URL names them.
struct Client<'a> {
    app: &'a TestApp,
    key: ProofKey,
}

impl<'a> Client<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self { app, key: ProofKey::generate() }
    }

    /// The URL a proof names: on the public origin (the test server listens elsewhere, as an
    /// instance behind a proxy does).
    fn public(&self, path: &str) -> String {
        format!("{}{path}", self.app.config.public_url.origin().ascii_serialization())
    }

    fn proof(&self, method: &str, path: &str, key_card: Option<&str>) -> String {
        self.key.proof(method, &self.public(path), key_card, self.app.clock.now())
    }

    /// Check-in with a proof.
    async fn check_in(&self, username: &str) -> Stay {
        let res = self.post_form("/api/auth/login", username).await;
        assert_eq!(res.status(), StatusCode::OK);
        stay(res).await
    }

    async fn register(&self, username: &str) -> Stay {
        let res = self.post_form("/api/auth/register", username).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        stay(res).await
    }

    async fn post_form(&self, path: &str, username: &str) -> Response {
        let form = [("username", username), ("password", PASSWORD)];
        let proof = self.proof("POST", path, None);
        self.app
            .http
            .post(self.app.url(path))
            .form(&form)
            .header("dpop", proof)
            .send()
            .await
            .unwrap()
    }

    /// The front desk, with the confirmation cookie and a proof.
    async fn refresh(&self, confirmation: &str) -> Response {
        let proof = self.proof("POST", "/api/auth/refresh", None);
        self.app
            .http
            .post(self.app.url("/api/auth/refresh"))
            .header("cookie", format!("__Secure-confirmation={confirmation}"))
            .header("dpop", proof)
            .send()
            .await
            .unwrap()
    }

    /// `method path` with `Authorization: DPoP` and a fresh proof.
    fn with_proof(&self, method: &str, path: &str, key_card: &str) -> RequestBuilder {
        let req = match method {
            "GET" => self.app.http.get(self.app.url(path)),
            _ => self.app.http.post(self.app.url(path)),
        };
        req.header("authorization", format!("DPoP {key_card}"))
            .header("dpop", self.proof(method, path, Some(key_card)))
    }
}

/// A 401 refusal by the DPoP rule `rule`, as RFC 9449 section 7.1 writes it.
async fn refused(res: Response, rule: &str) {
    refused_as(res, rule, rule).await
}

/// [`refused`], `what` naming the case in a failure.
async fn refused_as(res: Response, rule: &str, what: &str) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
    let challenge = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let error = if rule == "cnf" { "invalid_token" } else { "invalid_dpop_proof" };
    assert!(challenge.starts_with(&format!("DPoP error=\"{error}\"")), "{what}: {challenge}");
    assert!(challenge.contains("algs=\"ES256 EdDSA\""), "{challenge}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["rule"], rule, "{what}: {body}");
    let code = if rule == "cnf" { "key_card_invalid" } else { "invalid_dpop_proof" };
    assert_eq!(body["error"], code, "{body}");
}

#[tokio::test]
async fn a_proof_at_check_in_binds_the_key_card_and_the_booking() {
    let app = spawn_app().await;
    let client = Client::new(&app);
    let ann = client.register("ann").await;
    assert_eq!(ann.body["token_type"], "DPoP");
    assert_eq!(claims(&ann.key_card)["cnf"]["jkt"], client.key.jkt());
    assert_eq!(app.db.strings("SELECT dpop_jkt FROM sessions").await, [client.key.jkt()]);
    // Check-in binds its new booking the same way.
    let again = client.check_in("ann").await;
    assert_eq!(again.body["token_type"], "DPoP");
    assert_eq!(app.db.number("SELECT count(*) FROM sessions WHERE dpop_jkt IS NOT NULL").await, 2);
    // Without a proof, a client still gets a bearer key card (DPoP is per client).
    let bob = app.guest("bob").await;
    assert_eq!(bob.body["token_type"], "Bearer");
    assert!(claims(&bob.key_card).get("cnf").is_none());
    let unbound = app.db.number("SELECT count(*) FROM sessions WHERE dpop_jkt IS NULL").await;
    assert_eq!(unbound, 1, "bob's booking is bound to no key");
}

#[tokio::test]
async fn a_bound_key_card_opens_both_doors_only_with_its_proof() {
    let app = spawn_app().await;
    let client = Client::new(&app);
    let card = client.register("ann").await.key_card;
    // With its proof: the amenity (stateless) and the room (stateful).
    let gym = client.with_proof("GET", "/amenities/gym", &card).send().await.unwrap();
    assert_eq!(gym.status(), StatusCode::OK);
    let me = client.with_proof("POST", "/api/me", &card).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    // A perfect copy without the key: as a bearer token, in the cookie of a call, or with a
    // proof of another key.
    refused(app.amenity("gym", &card).await, "missing").await;
    refused(app.bearer("/api/me", &card, &[]).await, "missing").await;
    let cookie = format!("__Host-keycard={card}");
    refused(app.post("/api/room/service", &[], &[("cookie", &cookie)]).await, "missing").await;
    let thief = Client::new(&app);
    refused(thief.with_proof("GET", "/amenities/gym", &card).send().await.unwrap(), "key").await;
    refused(thief.with_proof("POST", "/api/me", &card).send().await.unwrap(), "key").await;
}

#[tokio::test]
async fn every_forgery_of_section_4_3_is_refused_at_both_doors() {
    let app = spawn_app().await;
    let client = Client::new(&app);
    let card = client.register("ann").await.key_card;
    let now = app.clock.now();
    let gym = client.public("/amenities/gym");
    let me = client.public("/api/me");
    for (door, method, path, url) in
        [("amenity", "GET", "/amenities/gym", &gym), ("room", "POST", "/api/me", &me)]
    {
        let other_method = if method == "GET" { "POST" } else { "GET" };
        let used = client.key.proof(method, url, Some(&card), now);
        let first = send(&app, method, path, &card, &[&used]).await;
        assert_eq!(first.status(), StatusCode::OK, "{door}: a fresh proof opens");
        #[rustfmt::skip]
        let forgeries: Vec<(&str, Vec<String>, &str)> = vec![
            ("no proof", vec![], "missing"),
            ("two proofs", vec![client.key.proof(method, url, Some(&card), now), client.key.proof(method, url, Some(&card), now)], "multiple"),
            ("the same proof again", vec![used.clone()], "jti"),
            ("another URL", vec![client.key.proof(method, &client.public("/amenities/pool"), Some(&card), now)], "htu"),
            ("another method", vec![client.key.proof(other_method, url, Some(&card), now)], "htm"),
            ("another key", vec![ProofKey::generate().proof(method, url, Some(&card), now)], "key"),
            ("no ath", vec![client.key.proof(method, url, None, now)], "ath"),
            ("another card's ath", vec![client.key.proof(method, url, Some("another card"), now)], "ath"),
            ("made two minutes ago", vec![client.key.proof(method, url, Some(&card), now - 120)], "iat"),
            ("made a minute ahead", vec![client.key.proof(method, url, Some(&card), now + 60)], "iat"),
            ("not a JWT", vec!["not-a-proof".into()], "malformed"),
            ("unsigned", vec![unsigned(&client.key.proof(method, url, Some(&card), now))], "alg"),
            ("typ JWT", vec![with_header(&client, method, url, &card, json!({ "typ": "JWT" }))], "typ"),
            ("alg none", vec![with_header(&client, method, url, &card, json!({ "alg": "none" }))], "alg"),
            ("a private key in jwk", vec![with_header(&client, method, url, &card, json!({ "jwk": { "kty": "OKP", "crv": "Ed25519", "x": "AAAA", "d": "BBBB" } }))], "private_key"),
        ];
        for (case, proofs, rule) in forgeries {
            let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
            let what = format!("{door}: {case}");
            refused_as(send(&app, method, path, &card, &proofs).await, rule, &what).await;
        }
    }
    // A key card bound to no key is a bearer token: shown with DPoP it is refused.
    let bearer = app.guest("bob").await.key_card;
    let proof = client.key.proof("GET", &gym, Some(&bearer), now);
    refused(send(&app, "GET", "/amenities/gym", &bearer, &[&proof]).await, "cnf").await;
}

/// `method path` with `Authorization: DPoP card` and these `DPoP` headers.
async fn send(app: &TestApp, method: &str, path: &str, card: &str, proofs: &[&str]) -> Response {
    let mut req = match method {
        "GET" => app.http.get(app.url(path)),
        _ => app.http.post(app.url(path)),
    };
    req = req.header("authorization", format!("DPoP {card}"));
    for proof in proofs {
        req = req.header("dpop", *proof);
    }
    req.send().await.unwrap()
}

/// `proof` with its signature taken off.
fn unsigned(proof: &str) -> String {
    let (rest, _) = proof.rsplit_once('.').unwrap();
    format!("{rest}.")
}

/// A proof whose header has `over`'s members (signed by the client's key, over the new header).
fn with_header(client: &Client<'_>, method: &str, url: &str, card: &str, over: Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let genuine = client.key.proof(method, url, Some(card), client.app.clock.now());
    let mut parts = genuine.split('.');
    let mut head: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    for (k, v) in over.as_object().unwrap() {
        head[k] = v.clone();
    }
    // The signature no longer matches; every rule this builds for comes before the signature's.
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(head.to_string()),
        parts.next().unwrap(),
        parts.next().unwrap()
    )
}

on_both_backends! {
    async fn a_bound_booking_rotates_only_with_its_key_and_survives_a_thief(backend: Backend) {
        let app = spawn_app_on(backend, |_| {}).await;
        let client = Client::new(&app);
        let ann = client.register("ann").await;
        // The front desk without a proof, or with another key: refused, and nothing changes.
        refused(app.refresh(&ann.confirmation).await, "missing").await;
        let thief = Client::new(&app);
        refused(thief.refresh(&ann.confirmation).await, "key").await;
        assert_eq!(app.db.number("SELECT generation FROM sessions").await, 1);
        assert_eq!(app.db.number("SELECT count(*) FROM sessions WHERE revoked_at IS NULL").await, 1);
        // With its key: rotated, and the new key card bound again.
        let res = client.refresh(&ann.confirmation).await;
        assert_eq!(res.status(), StatusCode::OK);
        let second = stay(res).await;
        assert_eq!(second.body["token_type"], "DPoP");
        assert_eq!(claims(&second.key_card)["cnf"]["jkt"], client.key.jkt());
        // The thief holds a perfect copy of both of the guest's tokens, and a key of its own: it
        // cannot rotate, nor open a door, and the guest's booking lives on (no theft alarm).
        refused(thief.refresh(&second.confirmation).await, "key").await;
        refused(thief.refresh(&ann.confirmation).await, "key").await;
        refused(thief.with_proof("POST", "/api/me", &second.key_card).send().await.unwrap(), "key").await;
        assert!(!app.event_kinds().await.contains(&"reuse_detected".to_owned()));
        let third = client.refresh(&second.confirmation).await;
        assert_eq!(third.status(), StatusCode::OK, "the guest goes on");
    }

    async fn a_proof_is_accepted_once_across_instances(backend: Backend) {
        let a = spawn_app_on(backend, |_| {}).await;
        let b = spawn_instance(&a).await;
        let client = Client::new(&a);
        let card = client.register("ann").await.key_card;
        let proof = client.proof("POST", "/api/me", Some(&card));
        assert_eq!(send(&a, "POST", "/api/me", &card, &[&proof]).await.status(), StatusCode::OK);
        refused(send(&b, "POST", "/api/me", &card, &[&proof]).await, "jti").await;
        // Housekeeping forgets a proof only once it is too old to be accepted anyway.
        a.clock.advance(keycard::dpop::MAX_AGE_SECS + 1);
        a.desk.housekeeping().await;
        assert_eq!(a.db.number("SELECT count(*) FROM dpop_proofs").await, 0);
        refused(send(&b, "POST", "/api/me", &card, &[&proof]).await, "iat").await;
    }
}

#[tokio::test]
async fn dpop_can_be_required() {
    let app = spawn_app_with(|c| c.dpop_required = true).await;
    let res = app.register("ann", PASSWORD).await;
    refused(res, "missing").await;
    let client = Client::new(&app);
    let ann = client.register("ann").await;
    refused(app.refresh(&ann.confirmation).await, "missing").await;
    assert_eq!(client.refresh(&ann.confirmation).await.status(), StatusCode::OK);
}

/// A navigation cannot carry a proof: the cookie of a page load renders the guest's own page;
/// nothing that changes state accepts it.
#[tokio::test]
async fn a_page_load_renders_with_a_bound_cookie_but_changes_nothing() {
    let app = spawn_app().await;
    let client = Client::new(&app);
    let ann = client.register("ann").await;
    let html = app.room_html(&ann.key_card).await;
    assert!(html.contains("ann"), "the room renders checked in");
    let cookie = format!("__Host-keycard={}", ann.key_card);
    for path in ["/api/room/service", "/api/auth/logout", "/api/sessions", "/api/me"] {
        refused(app.post(path, &[], &[("cookie", &cookie)]).await, "missing").await;
    }
    assert_eq!(app.db.number("SELECT count(*) FROM sessions WHERE revoked_at IS NULL").await, 1);
}

#[tokio::test]
async fn the_demo_thief_with_a_copy_of_the_key_card() {
    let app = spawn_app().await;
    let client = Client::new(&app);
    let bound = client.register("ann").await.key_card;
    let res = client.with_proof("POST", "/api/demo/thief-key-card", &bound).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let theft: Value = res.json().await.unwrap();
    assert_eq!(theft["as_bearer"]["answer"], "refused");
    assert_eq!(theft["as_bearer"]["rule"], "missing");
    assert_eq!(theft["with_own_key"]["rule"], "key");
    let bearer = app.guest("bob").await.key_card;
    let theft: Value =
        app.bearer("/api/demo/thief-key-card", &bearer, &[]).await.json().await.unwrap();
    assert_eq!(theft["as_bearer"]["answer"], "opened", "a bearer key card opens for anyone");
}

#[tokio::test]
async fn the_demo_thief_with_a_copy_of_a_bound_confirmation_is_stopped() {
    let app = spawn_app().await;
    let client = Client::new(&app);
    let ann = client.register("ann").await;
    let steal = client.with_proof("POST", "/api/demo/steal", &ann.key_card).send().await.unwrap();
    assert_eq!(steal.status(), StatusCode::OK);
    let thief = client.with_proof("POST", "/api/demo/thief", &ann.key_card).send().await.unwrap();
    let outcome: Value = thief.json().await.unwrap();
    assert_eq!(outcome["outcome"], "stopped");
    assert_eq!(app.db.number("SELECT count(*) FROM sessions WHERE revoked_at IS NULL").await, 1);
}

#[tokio::test]
async fn the_forge_lab_names_each_proof_forgery() {
    let app = spawn_app().await;
    let client = Client::new(&app);
    let card = client.register("ann").await.key_card;
    let gym = client.public("/amenities/gym");
    let now = app.clock.now();
    let used = client.key.proof("GET", &gym, Some(&card), now);
    assert_eq!(send(&app, "GET", "/amenities/gym", &card, &[&used]).await.status(), StatusCode::OK);
    let table = [
        (client.key.proof("GET", &gym, Some(&card), now), "genuine"),
        (used, "jti"),
        (client.key.proof("GET", &client.public("/amenities/pool"), Some(&card), now), "htu"),
        (client.key.proof("POST", &gym, Some(&card), now), "htm"),
        (ProofKey::generate().proof("GET", &gym, Some(&card), now), "key"),
        (client.key.proof("GET", &gym, None, now), "ath"),
    ];
    for (proof, rule) in table {
        let form = [("door", "proof"), ("token", card.as_str()), ("proof", proof.as_str())];
        let res =
            client.with_proof("POST", "/api/auth/lab", &card).form(&form).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{rule}");
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["rule"], rule, "{answer}");
        if rule != "genuine" {
            assert!(answer["rfc"].as_str().unwrap().contains("rfc9449"), "{answer}");
        }
    }
}

#[tokio::test]
async fn the_demo_controls_keep_a_bound_stay_bound() {
    let app = spawn_app().await;
    let client = Client::new(&app);
    let card = client.register("ann").await.key_card;
    // The short key card and the lapsing one: cut for the same key, and answered with a 200.
    for path in ["/api/demo/expire-soon", "/api/demo/lapse"] {
        let res = client.with_proof("POST", path, &card).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let me: Value = res.json().await.unwrap();
        let short = me["access_token"].as_str().unwrap();
        assert_eq!(claims(short)["cnf"]["jkt"], client.key.jkt(), "{path}");
    }
}
