//! The key card (access token) against token-requirements.md lines 1-9: every forgery and misuse
//! gets 401 from `/api/me` (stateful) and from the amenities (public keys only).

use crate::common::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A token with any header and payload, signed by `key` (or unsigned when `None`).
fn forge(header: &Header, payload: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, payload, key).unwrap()
}

/// An attacker's Ed25519 key: as a jsonwebtoken key, its public `x`, and the raw signer.
fn attacker_key() -> (EncodingKey, String, ed25519_dalek::SigningKey) {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let der = key.to_pkcs8_der().unwrap();
    let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
    (EncodingKey::from_ed_der(der.as_bytes()), x, key)
}

/// The server's own current signing key, read from its key file as an insider would.
fn server_key(app: &TestApp) -> (EncodingKey, String) {
    let ring = keycard::keys::KeyRing::open(&app.config.keys_file, app.config.mode).unwrap();
    let set = ring.current();
    (set.signing_key().clone(), set.current_kid().to_owned())
}

fn header(typ: &str, kid: &str) -> Header {
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some(typ.into());
    h.kid = Some(kid.into());
    h
}

/// Both kinds of door refuse `token` with 401 and one of `codes`.
async fn refused(app: &TestApp, token: &str, code: &str) {
    let (status, got) = error(app.bearer("/api/me", token, &[]).await).await;
    assert_eq!((status, got.as_str()), (StatusCode::UNAUTHORIZED, code), "/api/me");
    let (status, got) = error(app.amenity("gym", token).await).await;
    assert_eq!((status, got.as_str()), (StatusCode::UNAUTHORIZED, code), "/amenities/gym");
}

#[tokio::test]
async fn a_genuine_key_card_opens_both_doors_and_carries_the_rfc9068_claims() {
    let app = spawn_app().await;
    let stay = app.guest("ann").await;
    assert_eq!(app.bearer("/api/me", &stay.key_card, &[]).await.status(), StatusCode::OK);
    assert_eq!(app.amenity("pool", &stay.key_card).await.status(), StatusCode::OK);

    let h = crate::common::header(&stay.key_card);
    assert_eq!(h["typ"], "at+jwt");
    assert_eq!(h["alg"], "EdDSA");
    assert!(h["kid"].is_string());
    let c = claims(&stay.key_card);
    for claim in ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "sid"] {
        assert!(!c[claim].is_null(), "missing {claim} in {c}");
    }
    assert_eq!(c["aud"], "keycard-api");
    assert_eq!(c["client_id"], "keycard-web");
    assert_eq!(c["sid"], stay.body["session_id"]);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 120);
    assert_eq!(stay.body["token_type"], "Bearer");
    assert_eq!(stay.body["expires_in"], 120);
}

#[tokio::test]
async fn unsigned_and_alg_none_tokens_are_refused() {
    let app = spawn_app().await;
    let stay = app.guest("ann").await;
    let parts: Vec<&str> = stay.key_card.split('.').collect();
    let mut h = crate::common::header(&stay.key_card);
    for alg in ["none", "None", "NONE", "nOnE"] {
        h["alg"] = json!(alg);
        let unsigned = format!("{}.{}.", b64(&h), parts[1]);
        refused(&app, &unsigned, "key_card_invalid").await;
        let with_old_signature = format!("{}.{}.{}", b64(&h), parts[1], parts[2]);
        refused(&app, &with_old_signature, "key_card_invalid").await;
    }
    // The genuine header with the signature stripped.
    refused(&app, &format!("{}.{}.", parts[0], parts[1]), "key_card_invalid").await;
    refused(&app, &format!("{}.{}", parts[0], parts[1]), "key_card_invalid").await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let app = spawn_app().await;
    let stay = app.guest("ann").await;
    let jwks: Value =
        app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let payload = claims(&stay.key_card);
    let mut h = header("at+jwt", &kid);
    h.alg = Algorithm::HS256;
    for secret in [
        URL_SAFE_NO_PAD.decode(&x).unwrap(),
        x.into_bytes(),
        serde_json::to_vec(&jwks["keys"][0]).unwrap(),
    ] {
        let token = forge(&h, &payload, &EncodingKey::from_secret(&secret));
        refused(&app, &token, "key_card_invalid").await;
    }
}

#[tokio::test]
async fn keys_named_by_jku_jwk_or_a_foreign_kid_are_never_used() {
    let app = spawn_app().await;
    let stay = app.guest("ann").await;
    let payload = claims(&stay.key_card);
    let our_kid = crate::common::header(&stay.key_card)["kid"].as_str().unwrap().to_owned();
    let (evil, evil_x, evil_signer) = attacker_key();

    // The attacker's key under our kid: the signature does not verify.
    refused(&app, &forge(&header("at+jwt", &our_kid), &payload, &evil), "key_card_invalid").await;
    // Under a kid we do not hold.
    refused(&app, &forge(&header("at+jwt", "attacker-key"), &payload, &evil), "key_card_invalid")
        .await;
    // Pointing at the attacker's JWKS.
    let mut h = header("at+jwt", "attacker-key");
    h.jku = Some("https://evil.example/jwks.json".into());
    refused(&app, &forge(&h, &payload, &evil), "key_card_invalid").await;
    let mut h = header("at+jwt", &our_kid);
    h.x5u = Some("https://evil.example/cert.pem".into());
    refused(&app, &forge(&h, &payload, &evil), "key_card_invalid").await;
    // Embedding the attacker's public key.
    let embedded = json!({
        "alg": "EdDSA", "typ": "at+jwt", "kid": our_kid,
        "jwk": { "kty": "OKP", "crv": "Ed25519", "x": evil_x }
    });
    let body = format!("{}.{}", b64(&embedded), b64(&payload));
    // Signed by the embedded key itself: it would verify if the server trusted the header.
    let signature = {
        use ed25519_dalek::Signer;
        URL_SAFE_NO_PAD.encode(evil_signer.sign(body.as_bytes()).to_bytes())
    };
    refused(&app, &format!("{body}.{signature}"), "key_card_invalid").await;
}

#[tokio::test]
async fn an_unknown_crit_header_is_refused_even_with_a_valid_signature() {
    let app = spawn_app().await;
    let stay = app.guest("ann").await;
    let (key, kid) = server_key(&app);
    let payload = claims(&stay.key_card);
    // Control: the insider key with a clean header works, so the refusal below is the header's.
    assert_eq!(
        app.bearer("/api/me", &forge(&header("at+jwt", &kid), &payload, &key), &[]).await.status(),
        StatusCode::OK
    );
    let mut h = header("at+jwt", &kid);
    h.crit = Some(vec!["exp-ext".into()]);
    refused(&app, &forge(&h, &payload, &key), "key_card_invalid").await;
}

#[tokio::test]
async fn wrong_issuer_audience_or_type_is_refused() {
    let app = spawn_app().await;
    let stay = app.guest("ann").await;
    let (key, kid) = server_key(&app);
    let good = claims(&stay.key_card);

    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("https://evil.example");
    refused(&app, &forge(&header("at+jwt", &kid), &wrong_iss, &key), "key_card_invalid").await;
    let mut no_iss = good.clone();
    no_iss.as_object_mut().unwrap().remove("iss");
    refused(&app, &forge(&header("at+jwt", &kid), &no_iss, &key), "key_card_invalid").await;

    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("some-other-api");
    refused(&app, &forge(&header("at+jwt", &kid), &wrong_aud, &key), "key_card_invalid").await;
    let mut no_aud = good.clone();
    no_aud.as_object_mut().unwrap().remove("aud");
    refused(&app, &forge(&header("at+jwt", &kid), &no_aud, &key), "key_card_invalid").await;

    refused(&app, &forge(&header("JWT", &kid), &good, &key), "key_card_invalid").await;
    let mut no_typ = header("at+jwt", &kid);
    no_typ.typ = None;
    refused(&app, &forge(&no_typ, &good, &key), "key_card_invalid").await;
}

#[tokio::test]
async fn a_booking_confirmation_is_no_key_card_and_a_key_card_is_no_confirmation() {
    let app = spawn_app().await;
    let stay = app.guest("ann").await;
    refused(&app, &stay.confirmation, "key_card_invalid").await;
    let (status, code) = error(app.refresh(&stay.key_card).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "confirmation_invalid"));
    // And the booking is untouched by the attempt.
    assert_eq!(app.refresh(&stay.confirmation).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn expiry_and_not_before_are_enforced_with_a_two_second_leeway() {
    let app = spawn_app().await;
    let stay = app.guest("ann").await;
    let exp = claims(&stay.key_card)["exp"].as_i64().unwrap();
    let now = app.clock.now();

    app.clock.advance(exp - now + 1); // one second past exp: inside the leeway
    assert_eq!(app.bearer("/api/me", &stay.key_card, &[]).await.status(), StatusCode::OK);
    app.clock.advance(1); // exp + 2: refused
    refused(&app, &stay.key_card, "key_card_expired").await;

    let (key, kid) = server_key(&app);
    let mut early = claims(&stay.key_card);
    let now = app.clock.now();
    early["iat"] = json!(now);
    early["exp"] = json!(now + 300);
    early["nbf"] = json!(now + 60);
    refused(&app, &forge(&header("at+jwt", &kid), &early, &key), "key_card_invalid").await;
    early["nbf"] = json!(now);
    assert_eq!(
        app.amenity("gym", &forge(&header("at+jwt", &kid), &early, &key)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_jwks_publishes_public_keys_only_and_retired_keys_stop_working() {
    let app = spawn_app().await;
    let old = app.guest("ann").await;
    let jwks: Value =
        app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    for member in ["d", "p", "q", "k"] {
        assert!(jwks["keys"][0].get(member).is_none(), "private member {member} published");
    }
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");

    // First rotation: the old key is "previous" and still verifies.
    rotate(&app, false).await;
    let middle = app.check_in("ann").await;
    let kids: Vec<String> = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[0], crate::common::header(&middle.key_card)["kid"]);
    assert_eq!(kids[1], crate::common::header(&old.key_card)["kid"]);
    assert_eq!(app.amenity("gym", &old.key_card).await.status(), StatusCode::OK);

    // A rotation once the middle key has signed for longer than tokens live: the first key is
    // retired; its key cards are refused.
    rotate(&app, true).await;
    refused(&app, &old.key_card, "key_card_invalid").await;
    assert_eq!(app.amenity("gym", &middle.key_card).await.status(), StatusCode::OK);
}

/// `rotate-keys` with a new key that signs at once. `retire`: as if tokens lived one second, and
/// after the clock's next second, so the key before the current one has outlived its tokens.
async fn rotate(app: &TestApp, retire: bool) {
    let mut schedule = keycard::keys::KeySchedule {
        publish_ahead: std::time::Duration::ZERO,
        keep_verifying: std::time::Duration::from_secs(3600),
    };
    if retire {
        schedule.keep_verifying = std::time::Duration::from_secs(1);
        let second = keycard::Clock::system().now();
        while keycard::Clock::system().now() == second {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    keycard::keys::rotate(&app.config.keys_file, app.config.mode, &schedule).unwrap();
    // Make sure the running server sees a new modification time, then let it reload.
    let file = std::fs::File::options().append(true).open(&app.config.keys_file).unwrap();
    let later = std::time::SystemTime::now()
        + std::time::Duration::from_secs(rand::random::<u8>() as u64 + 1);
    file.set_modified(later).unwrap();
    app.desk.housekeeping().await;
}

#[tokio::test]
async fn production_refuses_development_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = keycard::Config::for_data_dir(dir.path());
    // A development run creates keys...
    keycard::keys::KeyRing::open(&config.keys_file, config.mode).unwrap();
    // ...which production then refuses to sign with.
    config.mode = keycard::config::Mode::Production;
    let err = keycard_server::build(config).await.err().expect("must refuse to start");
    assert!(err.to_string().contains("development"), "{err}");
}

// The verified key card cache (`keycard::verified`): a card already verified skips the
// signature check, but only these exact bytes, never past `exp`, never past its key.

/// The cache's hit count after `token` is shown once more at the amenity door (200 expected).
async fn shown_again(app: &TestApp, token: &str) -> u64 {
    assert_eq!(app.amenity("gym", token).await.status(), StatusCode::OK);
    app.desk.verified_cards().hits()
}

#[tokio::test]
async fn a_verified_key_card_is_remembered_and_the_next_showing_skips_the_signature_check() {
    let app = spawn_app().await;
    let stay = app.guest("ann").await;
    let before = app.desk.verified_cards().hits();
    assert_eq!(app.amenity("gym", &stay.key_card).await.status(), StatusCode::OK);
    assert_eq!(app.desk.verified_cards().len(), 1);
    assert_eq!(shown_again(&app, &stay.key_card).await, before + 1);
    // The stateful door takes the same path, then also asks the front desk.
    assert_eq!(app.bearer("/api/me", &stay.key_card, &[]).await.status(), StatusCode::OK);
    assert_eq!(app.desk.verified_cards().hits(), before + 2);
}

#[tokio::test]
async fn forgeries_that_share_a_cached_cards_header_payload_or_prefix_are_refused() {
    let app = spawn_app().await;
    let ann = app.guest("ann").await;
    let bob = app.guest("bob").await;
    shown_again(&app, &ann.key_card).await;
    let parts: Vec<&str> = ann.key_card.split('.').collect();
    let (attacker, _, _) = attacker_key();
    let mut claims = claims(&ann.key_card);
    let kid = crate::common::header(&ann.key_card)["kid"].as_str().unwrap().to_owned();
    let last = if parts[2].ends_with('A') { "B" } else { "A" };
    let forgeries = [
        // The cached card with its last signature character changed.
        format!("{}.{}.{}{last}", parts[0], parts[1], &parts[2][..parts[2].len() - 1]),
        // Its header and payload under another genuine card's signature.
        format!("{}.{}.{}", parts[0], parts[1], bob.key_card.split('.').nth(2).unwrap()),
        // Its header and payload, signed by an attacker under the hotel's kid.
        forge(&header("at+jwt", &kid), &claims, &attacker),
        // Its header and signature over another payload.
        {
            claims["sub"] = json!("someone-else");
            format!("{}.{}.{}", parts[0], b64(&claims), parts[2])
        },
        // The cached card with bytes appended.
        format!("{}x", ann.key_card),
    ];
    for forged in &forgeries {
        refused(&app, forged, "key_card_invalid").await;
    }
    // None of them was remembered; the genuine card still hits.
    assert_eq!(app.desk.verified_cards().len(), 1, "ann's card alone");
    let hits = app.desk.verified_cards().hits();
    assert_eq!(shown_again(&app, &ann.key_card).await, hits + 1);
}

#[tokio::test]
async fn a_cached_key_card_never_outlives_its_exp() {
    let app = spawn_app().await;
    let stay = app.guest("ann").await;
    shown_again(&app, &stay.key_card).await;
    // 120 s key card, 2 s of leeway: inside it still opens, past it the cache does not answer.
    app.clock.advance(121);
    shown_again(&app, &stay.key_card).await;
    app.clock.advance(1);
    refused(&app, &stay.key_card, "key_card_expired").await;
    assert_eq!(app.desk.verified_cards().len(), 0, "the expired card was dropped");
}

#[tokio::test]
async fn a_key_rotation_that_retires_a_key_empties_the_cache() {
    let app = spawn_app().await;
    let old = app.guest("ann").await;
    shown_again(&app, &old.key_card).await;
    rotate(&app, false).await;
    assert_eq!(app.desk.verified_cards().len(), 0, "the reload emptied it");
    // The old key is still the previous one: the card verifies (and is remembered) again...
    shown_again(&app, &old.key_card).await;
    assert_eq!(app.desk.verified_cards().len(), 1);
    // ...until a later rotation retires it.
    rotate(&app, true).await;
    refused(&app, &old.key_card, "key_card_invalid").await;
}

#[tokio::test]
async fn the_cache_is_bounded_and_can_be_turned_off() {
    let app = spawn_app_with(|c| c.key_card_cache_size = 3).await;
    for name in ["ann", "bob", "cyd", "dan", "eve", "fay", "gus", "hal"] {
        let stay = app.guest(name).await;
        assert_eq!(app.amenity("gym", &stay.key_card).await.status(), StatusCode::OK);
        assert!(app.desk.verified_cards().len() <= 3, "{}", app.desk.verified_cards().len());
    }
    let app = spawn_app_with(|c| c.key_card_cache_size = 0).await;
    let stay = app.guest("ann").await;
    assert_eq!(app.amenity("gym", &stay.key_card).await.status(), StatusCode::OK);
    assert_eq!(app.amenity("gym", &stay.key_card).await.status(), StatusCode::OK);
    assert_eq!((app.desk.verified_cards().len(), app.desk.verified_cards().hits()), (0, 0));
}
