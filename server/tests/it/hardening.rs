//! A real deployment's failure modes: no input may make Keycard panic, hang or fall silent, nor
//! send a guest to another site. Panics and stuck requests are triggered by the UI's test probes
//! (feature `test-probes`, switched on for this crate's tests only).

use std::time::{Duration, Instant};

use crate::common::*;
use keycard::config::Mode;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HTML: (&str, &str) = ("accept", "text/html,application/xhtml+xml");

/// The hostile `next` table the redirect unit test and the Playwright test share.
fn hostile_next() -> Vec<(String, String, String)> {
    let rows: Vec<Value> = serde_json::from_str(include_str!("../../../app/hostile-next.json"))
        .expect("the table parses");
    rows.iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            (s("name"), s("next"), s("expect"))
        })
        .collect()
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn a_line_break_in_next_redirects_a_checked_in_guest_to_the_room() {
    let _turn = timed().await;
    let app = spawn_app().await;
    let ann = app.guest("ann").await;
    let cookie = format!("__Host-keycard={}", ann.key_card);
    let started = Instant::now();
    let res = app
        .http
        .get(app.url("/login?next=/%0A/x"))
        .header(HTML.0, HTML.1)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()["location"], "/room");
}

#[tokio::test]
async fn the_server_side_redirect_keeps_every_hostile_next_on_the_site() {
    let app = spawn_app().await;
    let ann = app.guest("ann").await;
    let cookie = format!("__Host-keycard={}", ann.key_card);
    for (name, next, expect) in hostile_next() {
        // The table is written for a site at 127.0.0.1:3000; this one listens elsewhere.
        let next = next.replace("127.0.0.1:3000", &app.addr.to_string());
        let res = app
            .http
            .get(app.url(&format!("/login?next={}", encode(&next))))
            .header(HTML.0, HTML.1)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "{name}");
        assert_eq!(res.headers()["location"], expect.as_str(), "{name}: {next:?}");
    }
}

#[tokio::test]
async fn a_failed_no_js_check_in_goes_back_to_its_own_page_only() {
    let app = spawn_app().await;
    let post = |referer: String| {
        let app = &app;
        async move {
            app.post(
                "/api/auth/login",
                &[("username", "nobody"), ("password", "wrong password")],
                &[HTML, ("referer", &referer)],
            )
            .await
        }
    };
    // Its own page, with `next` kept and the error code added.
    let res = post(format!("{}/login?next=%2Famenities&error=old", app.base)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/login?next=%2Famenities&error=invalid_credentials");
    // A referer on another site, or one that would read as scheme-relative, is not followed:
    // the answer is the plain JSON error.
    for referer in [
        "https://evil.example/login".to_owned(),
        format!("{}//evil.example/login", app.base),
        format!("{}/\\evil.example/login", app.base),
    ] {
        let res = post(referer.clone()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{referer}");
        assert!(res.headers().get("location").is_none(), "{referer}");
    }
}

#[tokio::test]
async fn a_successful_no_js_registration_is_sent_on_with_a_303() {
    let app = spawn_app().await;
    // A registration answers 201; a browser would not follow a Location on it.
    let referer = format!("{}/register?next=%2Fbookings", app.base);
    let res = app
        .post(
            "/api/auth/register",
            &[("username", "nora"), ("password", "a good password")],
            &[HTML, ("referer", &referer)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/register?next=%2Fbookings");
    assert!(res.headers().get_all("set-cookie").iter().count() >= 2, "the stay's cookies");
    // Called as an API (no HTML wanted), it still answers 201 with the JSON body.
    let res = app
        .post("/api/auth/register", &[("username", "nico"), ("password", "a good password")], &[])
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().get("location").is_none());
}

#[tokio::test]
async fn a_panic_in_a_server_function_becomes_a_500_and_the_server_keeps_serving() {
    let _turn = timed().await;
    let app = spawn_app().await;
    let started = Instant::now();
    let res = app.post("/api/__probe/panic", &[], &[]).await;
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "internal");
    assert_eq!(body["message"], "something went wrong");
    // The next request, and a check-in, still work.
    app.guest("ann").await;
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_panic_in_a_page_render_becomes_a_500_page_and_the_server_keeps_serving() {
    let _turn = timed().await;
    let app = spawn_app().await;
    for probe in ["/__probe/panic", "/__probe/panic-in-suspense"] {
        let started = Instant::now();
        let res = app.http.get(app.url(probe)).header(HTML.0, HTML.1).send().await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2), "{probe} took {:?}", started.elapsed());
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{probe}");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(res.text().await.unwrap().contains("something went wrong"), "{probe}");
        let res = app.http.get(app.url("/login")).header(HTML.0, HTML.1).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "the next page after {probe}");
    }
}

#[tokio::test]
async fn a_request_that_cannot_finish_gets_a_503_within_the_limit() {
    let _turn = timed().await;
    let app = spawn_app_with(|c| c.limits.request_timeout = Duration::from_secs(1)).await;
    let started = Instant::now();
    let res = app.post("/api/__probe/slow", &[], &[]).await;
    let took = started.elapsed();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error(res).await.1, "timeout");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(3), "took {took:?}");

    let res = app.http.get(app.url("/__probe/slow")).header(HTML.0, HTML.1).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.text().await.unwrap().contains("took too long"));

    // A body that trickles in is cut off the same way.
    let started = Instant::now();
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("an answer within the limit")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Opens `n` connections that send nothing at all.
async fn idle_connections(app: &TestApp, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(TcpStream::connect(app.addr).await.unwrap());
    }
    held
}

/// Opens `n` connections that send a request head one byte every 100 ms (slowloris).
fn trickling_connections(app: &TestApp, n: usize) -> Vec<tokio::task::JoinHandle<Duration>> {
    (0..n)
        .map(|_| {
            let addr = app.addr;
            tokio::spawn(async move {
                let started = Instant::now();
                let Ok(mut stream) = TcpStream::connect(addr).await else {
                    return started.elapsed();
                };
                let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: ";
                for byte in head.iter().chain(std::iter::repeat(&b'a')).take(600) {
                    if stream.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                started.elapsed()
            })
        })
        .collect()
}

/// The check-in, the front desk and a page load a guest makes, with how long they took.
async fn a_normal_stay(app: &TestApp, name: &str) -> Duration {
    let started = Instant::now();
    let stay = app.guest(name).await;
    let res = app.refresh(&stay.confirmation).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.http.get(app.url("/login")).header(HTML.0, HTML.1).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    started.elapsed()
}

#[tokio::test]
async fn idle_and_trickling_connections_do_not_keep_guests_out() {
    let _turn = timed().await;
    let app = spawn_app_with(|c| c.limits.header_read_timeout = Duration::from_secs(2)).await;
    let idle_before = a_normal_stay(&app, "warmup").await;
    let mut idle = idle_connections(&app, 200).await;
    let trickling = trickling_connections(&app, 50);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = a_normal_stay(&app, "ann").await;
    println!("a check-in, refresh and page load: {idle_before:?} alone, {during:?} beside 250 slow clients");
    assert!(during < Duration::from_secs(2), "took {during:?}");
    // And the server let go of them: the idle ones are closed after the header timeout...
    for stream in idle.iter_mut().take(20) {
        let mut buf = [0; 64];
        let closed = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        assert!(matches!(closed, Ok(Ok(_)) | Ok(Err(_))), "an idle connection was still open");
    }
    // ...and so are the trickling ones, which stop being able to write soon after.
    for handle in trickling {
        let lasted = handle.await.unwrap();
        assert!(lasted < Duration::from_secs(10), "a trickling client lasted {lasted:?}");
    }
}

#[tokio::test]
async fn more_stuck_clients_than_the_cap_only_delay_a_guest_by_the_header_timeout() {
    let _turn = timed().await;
    let app = spawn_app_with(|c| {
        c.limits.max_connections = 16;
        c.limits.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let _idle = idle_connections(&app, 32).await;
    let took = a_normal_stay(&app, "ann").await;
    println!("a normal stay behind 32 idle connections, cap 16, header timeout 1 s: {took:?}");
    // Two rounds of idle connections are let go before the guest's turn comes.
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

#[tokio::test]
async fn the_content_security_policy_names_no_live_reload_socket() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/")).send().await.unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(!csp.contains("ws:") && !csp.contains("3001"), "{csp}");
    assert!(csp.contains("connect-src 'self';"), "{csp}");
}

#[tokio::test]
async fn every_answer_switches_off_unused_browser_features() {
    let app = spawn_app().await;
    for path in ["/", "/login", "/.well-known/jwks.json", "/no-such-page"] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        let policy = res.headers()["permissions-policy"].to_str().unwrap();
        for feature in ["camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"] {
            assert!(policy.contains(feature), "{path}: {policy}");
        }
    }
    let res = app.post("/api/me", &[], &[]).await;
    assert!(res.headers().contains_key("permissions-policy"));
}

#[tokio::test]
async fn strict_transport_security_is_sent_in_production_only() {
    let dev = spawn_app().await;
    let res = dev.http.get(dev.url("/")).send().await.unwrap();
    assert!(res.headers().get("strict-transport-security").is_none());

    let prod = spawn_app_with(|c| {
        c.mode = Mode::Production;
        c.hsts_max_age = Duration::from_secs(86_400);
        keycard::keys::rotate(&c.keys_file, Mode::Production, &c.operations.key_schedule)
            .expect("production keys");
    })
    .await;
    for path in ["/", "/healthz", "/.well-known/jwks.json"] {
        let res = prod.http.get(prod.url(path)).send().await.unwrap();
        assert_eq!(res.headers()["strict-transport-security"], "max-age=86400", "{path}");
    }
    let res = prod.post("/api/me", &[], &[]).await;
    assert_eq!(res.headers()["strict-transport-security"], "max-age=86400");
}

#[test]
fn settings_it_cannot_honour_stop_the_server_with_one_line() {
    let binary = env!("CARGO_BIN_EXE_keycard-server");
    let dir = tempfile::tempdir().unwrap();
    let unreadable = dir.path().join("keys-dir");
    std::fs::create_dir(&unreadable).unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "not a key ring").unwrap();
    for (var, value) in [
        ("KEYCARD_DATABASE_URL", "mysql://keycard:secret@db.example/keycard".to_owned()),
        // Nothing listens on port 1: the database cannot be reached.
        ("KEYCARD_DATABASE_URL", "postgres://keycard:secret@127.0.0.1:1/keycard".to_owned()),
        ("KEYCARD_KEYS_FILE", unreadable.display().to_string()),
        ("KEYCARD_KEYS_FILE", broken.display().to_string()),
        ("KEYCARD_KEY_CARD_TTL_SECS", "0".to_owned()),
        ("KEYCARD_ADDR", "not-an-address".to_owned()),
        ("KEYCARD_PUBLIC_URL", "hotel.example".to_owned()),
    ] {
        let out = std::process::Command::new(binary)
            .env("KEYCARD_DATA_DIR", dir.path())
            .env("KEYCARD_ADDR", "127.0.0.1:0")
            .env("KEYCARD_ISSUER", "urn:keycard-test")
            .env("KEYCARD_DATABASE_TIMEOUT_SECS", "1")
            .env(var, &value)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{var}={value}: {stderr}");
        assert!(lines[0].contains(var), "{var}={value}: {stderr}");
        assert!(!stderr.contains("secret"), "the password in a URL is never printed: {stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "{var}: it did not open");
    }
}

/// Behind an appending proxy (most load balancers), the proxy's own `X-Forwarded-For` entry
/// names the client; whatever the client wrote to its left is not believed.
#[tokio::test]
async fn behind_a_trusted_proxy_a_client_cannot_choose_its_own_address() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
        c.rate_limits.login_per_address_per_minute = 3;
    })
    .await;
    // The test client plays the proxy on 127.0.0.1, which appended the address it saw (a client
    // at 198.51.100.7) to the header the client sent with an address of its choice.
    let through_proxy = |spoofed: &str| format!("{spoofed}, 198.51.100.7");
    let form = [("username", "ann"), ("password", PASSWORD)];
    let res = app
        .post("/api/auth/register", &form, &[("x-forwarded-for", &through_proxy("1.2.3.4"))])
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let ann = stay(res).await;
    let bookings: Value =
        app.bearer("/api/sessions", &ann.key_card, &[]).await.json().await.unwrap();
    assert_eq!(bookings["sessions"][0]["client_address"], "198.51.100.7");
    // The per-address throttle counts that client (3 a minute, the registration was one) however
    // its own part of the header changes.
    let wrong = [("username", "ann"), ("password", "not the password")];
    for spoofed in ["10.0.0.1", "203.0.113.2"] {
        let res = app
            .post("/api/auth/login", &wrong, &[("x-forwarded-for", &through_proxy(spoofed))])
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{spoofed}");
    }
    let res = app
        .post("/api/auth/login", &form, &[("x-forwarded-for", &through_proxy("192.0.2.99"))])
        .await;
    assert_eq!(error(res).await, (StatusCode::TOO_MANY_REQUESTS, "too_many_requests".into()));
}

/// With no trusted proxy (the default), the header is the client's own words: ignored.
#[tokio::test]
async fn without_a_trusted_proxy_x_forwarded_for_is_ignored() {
    let app = spawn_app().await;
    let form = [("username", "ann"), ("password", PASSWORD)];
    let res = app.post("/api/auth/register", &form, &[("x-forwarded-for", "198.51.100.7")]).await;
    let ann = stay(res).await;
    let bookings: Value =
        app.bearer("/api/sessions", &ann.key_card, &[]).await.json().await.unwrap();
    assert_eq!(bookings["sessions"][0]["client_address"], "127.0.0.1");
}
