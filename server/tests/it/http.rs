//! The HTTP contract: status codes and bodies, cookies, cross-origin refusal, throttling, body
//! limits, enumeration safety, and the baseline headers (token-requirements.md 19-20, 22-25).

use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn healthz_pings_the_database() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ok");
    app.db.close().await;
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn pages_carry_the_baseline_security_headers() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
    let nonce = csp.split("'nonce-").nth(1).and_then(|r| r.split('\'').next()).expect("a nonce");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "the hydration script carries the nonce");
    assert!(html.contains("Welcome to the Keycard hotel"));

    let api = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap();
    assert!(api.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));

    let missing = app.http.get(app.url("/no-such-room")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn registration_answers_201_400_and_409() {
    let app = spawn_app().await;
    let res = app.register("ann", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].is_string());
    assert!(body.get("refresh_token").is_none(), "the confirmation never travels in a body");

    assert_eq!(
        error(app.register("ANN", PASSWORD).await).await,
        (StatusCode::CONFLICT, "username_taken".into())
    );
    for bad in ["an", "a b c", "ann!", "ännä", &"a".repeat(33), ""] {
        assert_eq!(
            error(app.register(bad, PASSWORD).await).await,
            (StatusCode::BAD_REQUEST, "invalid_username".into()),
            "{bad:?}"
        );
    }
    for weak in ["short", "password123", "12345678", &"x".repeat(129), "bobby.tables"] {
        assert_eq!(
            error(app.register("bobby.tables", weak).await).await,
            (StatusCode::BAD_REQUEST, "weak_password".into()),
            "{weak:?}"
        );
    }
    let res = app.post("/api/auth/register", &[("username", "carol")], &[]).await;
    assert_eq!(error(res).await, (StatusCode::BAD_REQUEST, "bad_request".into()));
}

#[tokio::test]
async fn cookies_are_httponly_secure_strict_prefixed_and_scoped() {
    let app = spawn_app().await;
    let res = app.register("ann", PASSWORD).await;
    let cookies = set_cookies(res.headers());
    let (_, key_card) = &cookies["__Host-keycard"];
    let (_, confirmation) = &cookies["__Secure-confirmation"];
    for line in [key_card, confirmation] {
        assert!(line.contains("HttpOnly"), "{line}");
        assert!(line.contains("Secure"), "{line}");
        assert!(line.contains("SameSite=Strict"), "{line}");
        assert!(!line.contains("Domain"), "{line}");
    }
    assert!(key_card.contains("Path=/;") || key_card.ends_with("Path=/"), "{key_card}");
    assert!(confirmation.contains("Path=/api/auth"), "{confirmation}");
    assert_eq!(res.headers()["cache-control"], "no-store");
}

/// Same answer here; same cost is `passwords::tests::the_dummy_hash_costs_what_a_real_one_does`
/// (the same Argon2 work) and the `login password check` benchmark (the same time).
#[tokio::test]
async fn unknown_guests_and_wrong_passwords_get_the_same_answer() {
    let app = spawn_app().await;
    app.guest("ann").await;
    let wrong = app.login("ann", "not the password").await;
    let (s1, h1, b1) = (wrong.status(), wrong.headers().len(), wrong.text().await.unwrap());
    let unknown = app.login("nobody", "not the password").await;
    let (s2, h2, b2) = (unknown.status(), unknown.headers().len(), unknown.text().await.unwrap());
    assert_eq!(s1, StatusCode::UNAUTHORIZED);
    assert_eq!((s1, h1, &b1), (s2, h2, &b2));
    let malformed = app.login("x", "").await;
    assert_eq!(malformed.text().await.unwrap(), b1, "malformed names get the same answer too");
}

#[tokio::test]
async fn repeated_failures_get_429_with_retry_after_per_account_and_per_address() {
    let app = spawn_app_with(|c| {
        c.rate_limits.login_per_account_per_minute = 3;
        c.rate_limits.login_per_address_per_minute = 5;
        c.rate_limits.refresh_per_address_per_minute = 2;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.login("ann", "wrong password").await.status(), StatusCode::UNAUTHORIZED);
    }
    let res = app.login("ann", "wrong password").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "too_many_requests");
    // Another account from the same address still gets through until the address budget is spent.
    assert_eq!(app.login("bob", "wrong password").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.login("cat", "wrong password").await.status(), StatusCode::TOO_MANY_REQUESTS);

    for _ in 0..2 {
        assert_eq!(app.refresh("x.y.z").await.status(), StatusCode::UNAUTHORIZED);
    }
    let res = app.refresh("x.y.z").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn cross_origin_state_changes_are_refused() {
    let app = spawn_app().await;
    let form = [("username", "ann"), ("password", PASSWORD)];
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site"), ("origin", "http://sub.127.0.0.1")],
    ] {
        let res = app.post("/api/auth/register", &form, &headers).await;
        assert_eq!(
            error(res).await,
            (StatusCode::FORBIDDEN, "forbidden_origin".into()),
            "{headers:?}"
        );
    }
    let own = app.base.clone();
    let res = app
        .post("/api/auth/register", &form, &[("origin", &own), ("sec-fetch-site", "same-origin")])
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let stay = stay(res).await;
    for path in ["/api/auth/refresh", "/api/auth/logout", "/api/sessions/revoke", "/api/auth/login"]
    {
        let cookie = format!(
            "__Secure-confirmation={}; __Host-keycard={}",
            stay.confirmation, stay.key_card
        );
        let res =
            app.post(path, &[], &[("origin", "https://evil.example"), ("cookie", &cookie)]).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // Nothing happened to the booking.
    assert_eq!(app.refresh(&stay.confirmation).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn oversized_bodies_get_413_and_unknown_endpoints_404() {
    let app = spawn_app().await;
    let huge = "a".repeat(keycard_server::MAX_BODY_BYTES + 1);
    let res = app.post("/api/auth/login", &[("username", "ann"), ("password", &huge)], &[]).await;
    assert_eq!(error(res).await, (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into()));
    // Streamed without a length: refused all the same.
    let stream = futures::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 1024])));
    let res = app
        .http
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let res = app.post("/api/auth/nothing-here", &[], &[]).await;
    assert_eq!(error(res).await, (StatusCode::NOT_FOUND, "not_found".into()));
    assert_eq!(
        error(app.amenity("casino", "x").await).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    let res = app.http.get(app.url("/amenities/gym")).send().await.unwrap();
    assert_eq!(error(res).await, (StatusCode::UNAUTHORIZED, "key_card_missing".into()));
}

#[tokio::test]
async fn malformed_bodies_and_headers_never_cause_a_5xx() {
    let app = spawn_app().await;
    let stay = app.guest("ann").await;
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"username".to_vec(),
        b"username=&password=".to_vec(),
        b"%%%".to_vec(),
        b"username=ann&username=bob&password=x".to_vec(),
        b"username[]=a&password[x]=b".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x3d],
        b"{\"username\":\"ann\"}".to_vec(),
        "username=%F0%9F%94%91&password=%00%00%00%00%00%00%00%00".as_bytes().to_vec(),
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut fuzz = bodies.clone();
    for _ in 0..40 {
        let len = (random() % 300) as usize;
        fuzz.push((0..len).map(|_| random() as u8).collect());
    }
    let paths = [
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/auth/password",
        "/api/me",
        "/api/sessions",
        "/api/sessions/revoke",
        "/api/sessions/events",
    ];
    let auth = format!("Bearer {}", stay.key_card);
    for path in paths {
        for body in &fuzz {
            for content_type in
                ["application/x-www-form-urlencoded", "application/json", "text/plain"]
            {
                let res = app
                    .http
                    .post(app.url(path))
                    .header("content-type", content_type)
                    .header("authorization", &auth)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert!(
                    res.status().as_u16() < 500,
                    "{path} {content_type} {body:?}: {}",
                    res.status()
                );
            }
        }
    }
    for bad_auth in ["Bearer", "Bearer ", "Basic abc", "Bearer a.b", "bearer \u{7f}"] {
        let res = app.http.post(app.url("/api/me")).header("authorization", bad_auth).send().await;
        if let Ok(res) = res {
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{bad_auth:?}");
        }
    }
}

/// Hashes queue on the blocking pool, two at a time here, so 24 logins take at least 12 hashes
/// end to end; a refresh and a page load started meanwhile need no hash and must be done first.
/// (That hashing leaves the async threads free is `passwords::tests::hashing_leaves_the_async_thread_free`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_logins_does_not_stall_the_front_desk() {
    let app = spawn_app_with(|c| c.hash_concurrency = 2).await;
    let stay = app.guest("ann").await;
    let flood = futures::future::join_all((0..24).map(|_| app.login("ann", "wrong password")));
    let probe = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = Instant::now();
        let res = app.refresh(&stay.confirmation).await;
        assert_eq!(res.status(), StatusCode::OK);
        let page = app.http.get(app.url("/")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        t.elapsed()
    };
    tokio::pin!(flood);
    tokio::select! {
        biased;
        probe_time = probe => {
            // The flood is still queued behind the hasher: finish it so the app shuts down cleanly.
            let logins = flood.await;
            assert!(logins.iter().all(|r| r.status() == StatusCode::UNAUTHORIZED));
            eprintln!("refresh + page load during the flood: {probe_time:?}");
        }
        _ = &mut flood => panic!("24 logins finished before one refresh and one page load"),
    }
}

#[tokio::test]
async fn a_weaker_stored_hash_is_upgraded_at_the_next_login() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let app = spawn_app().await;
    app.guest("ann").await;
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(1024, 1, 1, None).unwrap(),
    )
    .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut rand::rngs::OsRng))
    .unwrap()
    .to_string();
    sqlx::query("UPDATE guests SET password_hash = ?")
        .bind(&weak)
        .execute(app.db.sqlite())
        .await
        .unwrap();
    assert_eq!(app.login("ann", PASSWORD).await.status(), StatusCode::OK);
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM guests")
        .fetch_one(app.db.sqlite())
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
    assert_eq!(app.login("ann", PASSWORD).await.status(), StatusCode::OK);
}

/// Every answer that is a page carries its own policy, and every nonce in the page is the one the
/// policy names (the middleware sets both: `page_policy`).
#[tokio::test]
async fn every_page_carries_its_own_policy_and_nonce() {
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    let cookie = format!("__Host-keycard={}", a.key_card);
    let mut seen = std::collections::HashSet::new();
    for (path, signed_in, status) in [
        ("/", false, 200),
        ("/login", false, 200),
        ("/register", false, 200),
        ("/no-such-room", false, 404),
        ("/room", true, 200),
        ("/amenities", true, 200),
        ("/sessions", true, 200),
        ("/room", false, 302),
    ] {
        let mut req = app.http.get(app.url(path)).header("accept", "text/html");
        if signed_in {
            req = req.header("cookie", &cookie);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{path}");
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
        if status == 302 {
            // A redirect has no body to protect: the fallback policy is as good.
            continue;
        }
        let nonce = csp.split("'nonce-").nth(1).and_then(|r| r.split('\'').next()).expect(path);
        assert!(seen.insert(nonce.to_owned()), "a nonce was used twice");
        let html = res.text().await.unwrap();
        let in_page: Vec<&str> =
            html.split("nonce=\"").skip(1).filter_map(|r| r.split('"').next()).collect();
        assert!(!in_page.is_empty(), "{path}: no script carries a nonce");
        assert!(in_page.iter().all(|n| *n == nonce), "{path}: {in_page:?} vs {nonce}");
    }
}

#[tokio::test]
async fn pages_and_json_are_compressed_but_never_an_answer_that_hands_out_credentials() {
    let _turn = crate::common::timed().await;
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    let cookie = format!("__Host-keycard={}", a.key_card);
    for (path, signed_in) in [
        ("/", false),
        ("/login", false),
        ("/room", true),
        ("/amenities", true),
        ("/sessions", true),
        ("/api/openapi.json", false),
    ] {
        for encoding in ["br", "gzip"] {
            let mut req = app.http.get(app.url(path)).header("accept-encoding", encoding);
            if signed_in {
                req = req.header("cookie", &cookie);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            assert_eq!(res.headers().get("content-encoding").unwrap(), encoding, "{path}");
            let vary = res.headers().get("vary").unwrap().to_str().unwrap();
            assert!(vary.contains("accept-encoding"), "{path}: {vary}");
        }
    }
    // The front desk's answers carry key cards and confirmations: never compressed (BREACH).
    // These are small enough to pass under the threshold too; the rule itself is unit-tested in
    // keycard_server::middleware::compression.
    let checks = [
        app.http
            .post(app.url("/api/auth/login"))
            .form(&[("username", "ann"), ("password", PASSWORD)]),
        app.http
            .post(app.url("/api/auth/refresh"))
            .header("cookie", format!("__Secure-confirmation={}", a.confirmation)),
    ];
    for req in checks {
        let res = req
            .header("accept-encoding", "br, gzip")
            .header("origin", &app.base)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success() || res.status().is_client_error(), "{}", res.status());
        assert!(res.headers().get("content-encoding").is_none(), "{:?}", res.headers());
    }
}

#[tokio::test]
async fn a_page_that_holds_a_key_card_and_echoes_the_request_is_not_compressed() {
    // BREACH needs a secret and text the attacker chose in one compressed answer; a cross-site
    // page can choose a URL's path and query. Every page rendered for a guest holds the key card.
    let _turn = crate::common::timed().await;
    let app = spawn_app().await;
    let a = app.guest("ann").await;
    let cookie = format!("__Host-keycard={}", a.key_card);
    let marker = "zqxjkvw";
    let (mut held, mut echoed) = (Vec::new(), Vec::new());
    for path in ["/", "/room", "/amenities", "/sessions", "/device", "/no-such-room"] {
        let url =
            format!("{}?code={marker}&error={marker}&next=/{marker}&q={marker}", app.url(path));
        let body = app.http.get(&url).header("cookie", &cookie).send().await.unwrap();
        let body = body.text().await.unwrap();
        let compressed =
            app.http.get(&url).header("cookie", &cookie).header("accept-encoding", "br").send();
        let compressed = compressed.await.unwrap().headers().contains_key("content-encoding");
        if body.contains(&a.key_card) {
            held.push(path);
            if body.contains(marker) {
                echoed.push(path);
                assert!(
                    !compressed,
                    "{path} holds a key card, echoes the request and is compressed"
                );
            }
        }
    }
    assert!(
        held.contains(&"/room"),
        "the room shows its key card: the check is about a real secret"
    );
    assert_eq!(echoed, ["/device"], "the device page shows the code it is given");
}
