//! Request isolation (issue 23): no answer carries what another request's render wrote, no
//! request waits forever, and the server always stops.
//!
//! Leptos keeps its current reactive owner in a thread-local that a page render sets and leaves
//! set across its `.await`s (see `keycard_server::isolation`). The first test makes that
//! deterministic: one thread polls every request, a page holds its render after writing a
//! redirect, a cookie and a header into its answer, and meanwhile a file, a server function and
//! other pages are asked for on that same thread. Another builds routers on a second thread
//! while pages render on the first. The others run the real binary on a multi-threaded runtime
//! with real sockets.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use futures::StreamExt;
use keycard::{Config, FrontDesk};
use keycard_app::probes::{self, held};
use tower::ServiceExt;

use crate::common::BuiltServer;

const FAVICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\"/>";

/// An answer, read whole.
struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn ask(app: &axum::Router, req: Request<Body>) -> Answer {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = res.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.expect("the body");
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into(),
    }
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).header(header::ACCEPT, "text/html").body(Body::empty()).unwrap()
}

/// What only the held page's render wrote must not be in `answer`.
fn carries_nothing_of_the_held_page(what: &str, answer: &Answer) {
    assert_ne!(
        answer.headers.get(header::LOCATION).map(|l| l.as_bytes()),
        Some(held::LOCATION.as_bytes()),
        "{what}: Location"
    );
    assert!(answer.headers.get(held::HEADER.0).is_none(), "{what}: the render's own header");
    for cookie in answer.headers.get_all(header::SET_COOKIE) {
        assert_ne!(cookie.as_bytes(), held::SET_COOKIE.as_bytes(), "{what}: Set-Cookie");
    }
}

/// A page's nonces: the one its Content-Security-Policy names, and every one in its HTML.
fn nonces(answer: &Answer) -> (String, Vec<String>) {
    let policy = answer.headers.get(header::CONTENT_SECURITY_POLICY).expect("a page has a policy");
    let policy = policy.to_str().unwrap();
    let named = policy.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next());
    let in_page = answer.body.split("nonce=\"").skip(1).filter_map(|rest| rest.split('"').next());
    (named.expect("the policy names a nonce").to_owned(), in_page.map(str::to_owned).collect())
}

/// A page whose scripts all carry the nonce its own policy names.
fn page_with_its_own_nonce(what: &str, answer: &Answer) -> String {
    let (named, in_page) = nonces(answer);
    assert!(!in_page.is_empty(), "{what}: the page's scripts carry a nonce");
    assert!(in_page.iter().all(|n| *n == named), "{what}: {named} vs {in_page:?}");
    named
}

/// One thread polls every request (`#[tokio::test]` is single-threaded), so whatever a held
/// render leaves on it, the next request meets.
#[tokio::test]
async fn no_answer_carries_what_another_requests_render_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("favicon.svg"), FAVICON).unwrap();
    let config = Config::for_data_dir(dir.path());
    let desk = FrontDesk::open(&config).await.unwrap();
    let mut options = keycard_server::leptos_options(&config);
    options.site_root = site.to_string_lossy().into();
    let app = keycard_server::router(config, desk, options);

    let page = tokio::spawn({
        let app = app.clone();
        async move { ask(&app, get(probes::HELD_PAGE)).await }
    });
    tokio::time::timeout(Duration::from_secs(10), probes::held_page_entered())
        .await
        .expect("the held page starts rendering");

    // While that render holds, on the same thread:
    let file = ask(&app, get("/favicon.svg")).await;
    assert_eq!(file.status, StatusCode::OK, "the file, not the page's redirect");
    assert_eq!(file.body, FAVICON);
    carries_nothing_of_the_held_page("a static file", &file);

    let probe = Request::post("/api/__probe/context").body(Body::empty()).unwrap();
    let function = ask(&app, probe).await;
    assert_eq!(function.status, StatusCode::OK, "{}", function.body);
    carries_nothing_of_the_held_page("a server function", &function);
    let seen: probes::Surroundings = serde_json::from_str(&function.body).unwrap();
    assert_eq!(seen.page_url, None, "a server function reached a page's context");
    // An owner under another request's is what the worker deadlock needed: the other request
    // dropping its owner while this one reads context through it.
    assert_eq!(seen.ancestors, 0, "a server function's owner descends from another request's");

    let login = ask(&app, get("/login")).await;
    assert_eq!(login.status, StatusCode::OK);
    carries_nothing_of_the_held_page("another page", &login);
    let login_nonce = page_with_its_own_nonce("another page", &login);

    let missing = ask(&app, get("/no/such/room")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    carries_nothing_of_the_held_page("the 404 page", &missing);
    let missing_nonce = page_with_its_own_nonce("the 404 page", &missing);
    assert_ne!(login_nonce, missing_nonce, "each page its own nonce");

    probes::release_held_page();
    let page = tokio::time::timeout(Duration::from_secs(10), page).await.unwrap().unwrap();
    assert_eq!(page.status.as_u16(), held::STATUS, "{}", page.body);
    assert_eq!(page.headers[header::LOCATION], held::LOCATION, "the page keeps its Location");
    assert_eq!(page.headers[header::SET_COOKIE], held::SET_COOKIE);
    assert_eq!(page.headers[held::HEADER.0], held::HEADER.1);
}

/// The built server on a data folder of its own, its site folder holding the favicon.
/// Building a router (a second instance in the same process, as the load runs and these tests
/// do) never stalls a page another router is rendering. Leptos lists a router's pages by running
/// the app with every resource held back by a flag global to the process; a render whose
/// resource first polled while it was up waited for ever, and its page answered 503 after the
/// request timeout (leptos-rs/leptos#4773). Here one thread builds routers without pause while
/// pages, signed out and checked in, render on another: each must answer within seconds.
#[tokio::test]
async fn building_a_router_never_stalls_a_page_being_rendered() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    let app = crate::common::spawn_app().await;
    let guest = app.guest("ann").await;
    let cookie = format!("__Host-keycard={}", guest.key_card);
    let stop = Arc::new(AtomicBool::new(false));
    let built = Arc::new(AtomicUsize::new(0));
    let builder = std::thread::spawn({
        let (config, desk) = (app.config.clone(), app.desk.clone());
        let (stop, built) = (stop.clone(), built.clone());
        let runtime = tokio::runtime::Handle::current();
        move || {
            let _inside = runtime.enter();
            while !stop.load(Ordering::Relaxed) {
                let options = keycard_server::leptos_options(&config);
                drop(keycard_server::router(config.clone(), desk.clone(), options));
                built.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    while built.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut stalled = Vec::new();
    for round in 0..40 {
        for (path, cookie) in [("/login", None), ("/room", Some(&cookie)), ("/", Some(&cookie))] {
            let mut req = app.http.get(app.url(path)).header("accept", "text/html");
            if let Some(cookie) = cookie {
                req = req.header("cookie", cookie);
            }
            match tokio::time::timeout(Duration::from_secs(3), req.send()).await {
                Ok(res) => assert_eq!(res.unwrap().status(), StatusCode::OK, "{path}"),
                Err(_) => stalled.push(format!("{path} (round {round})")),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    builder.join().unwrap();
    assert!(built.load(Ordering::Relaxed) > 1, "routers were built while pages rendered");
    assert!(stalled.is_empty(), "stalled while a router was built: {stalled:?}");
}

fn start_server(settings: &[(&str, &str)]) -> (BuiltServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("favicon.svg"), FAVICON).unwrap();
    let site = site.to_string_lossy().into_owned();
    let mut all = vec![
        ("LEPTOS_SITE_ROOT", site.as_str()),
        ("KEYCARD_LOGIN_PER_ADDRESS_PER_MINUTE", "100000"),
        ("KEYCARD_LOGIN_PER_ACCOUNT_PER_MINUTE", "100000"),
        ("RUST_LOG", "warn,keycard_server=info"),
    ];
    all.extend_from_slice(settings);
    // Another build of the server (an older one, for a before/after count) if named.
    let binary = std::env::var_os("KEYCARD_ISOLATION_BINARY");
    (BuiltServer::start_binary(binary.as_deref(), dir.path(), &all), dir)
}

/// What went wrong with one answer, if anything.
async fn check(
    kind: usize,
    n: usize,
    http: &reqwest::Client,
    server: &BuiltServer,
    card: &str,
) -> Option<String> {
    let cookie = format!("__Host-keycard={card}");
    let own = format!("/room?visit={n}");
    let req = match kind {
        // A checked-in guest at check-in is sent on, with a target of its own.
        0 => http
            .get(server.url(&format!("/login?next={}", urlencode(&own))))
            .header("cookie", &cookie),
        1 => http.get(server.url("/room")).header("cookie", &cookie),
        2 => http.get(server.url("/favicon.svg")),
        _ => http.post(server.url("/api/me")).bearer_auth(card),
    }
    .header("accept", if kind == 3 { "application/json" } else { "text/html" });
    let res = match tokio::time::timeout(Duration::from_secs(20), req.send()).await {
        Err(_) => return Some("unanswered after 20 s".into()),
        Ok(Err(e)) => return Some(format!("no answer: {e}")),
        Ok(Ok(res)) => res,
    };
    let status = res.status();
    let headers = res.headers().clone();
    let location = headers.get("location").map(|l| l.to_str().unwrap_or("?").to_owned());
    let body = match tokio::time::timeout(Duration::from_secs(20), res.text()).await {
        Ok(Ok(body)) => body,
        _ => return Some("the body never ended".into()),
    };
    let wrong = |why: &str| Some(format!("{why} (status {status}, Location {location:?})"));
    if headers.contains_key("set-cookie") {
        return wrong("a Set-Cookie nobody asked for");
    }
    match kind {
        0 if status != 302 || location.as_deref() != Some(own.as_str()) => {
            wrong(&format!("check-in redirect {n}: not its own Location {own}"))
        }
        1 if status != 200 || location.is_some() => wrong("room page"),
        1 => {
            let answer = Answer { status, headers, body };
            let (named, in_page) = nonces(&answer);
            (in_page.is_empty() || in_page.iter().any(|x| *x != named))
                .then(|| format!("room page: nonce {named} vs {in_page:?}"))
        }
        2 if status != 200 || location.is_some() || body != FAVICON => wrong("static file"),
        3 if status != 200 || location.is_some() => wrong("API call"),
        _ => None,
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Thousands of mixed requests at once against several fresh starts of the built server: every
/// answer is its own, every request is answered, and every start stops on SIGTERM.
/// `KEYCARD_ISOLATION_STARTS` and `KEYCARD_ISOLATION_REQUESTS` (per start) make it longer;
/// `KEYCARD_ISOLATION_BINARY` runs it against another build of the server (for a before/after
/// count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_on_fresh_servers_gets_only_its_own_answers() {
    let _turn = crate::common::heavy().await;
    let setting = |name: &str, default: usize| {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let (starts, requests) =
        (setting("KEYCARD_ISOLATION_STARTS", 5), setting("KEYCARD_ISOLATION_REQUESTS", 800));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(32)
        .build()
        .unwrap();
    let mut problems = Vec::new();
    let mut slowest_stop = Duration::ZERO;
    for start in 0..starts {
        let (mut server, _dir) = start_server(&[("KEYCARD_SHUTDOWN_GRACE_SECS", "3")]);
        let form = [("username", "isolation"), ("password", crate::common::PASSWORD)];
        let res = http.post(server.url("/api/auth/register")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 201);
        let card = crate::common::set_cookies(res.headers())["__Host-keycard"].0.clone();
        let mut answers = futures::stream::iter(0..requests)
            .map(|n| {
                let (http, server, card) = (&http, &server, &card);
                async move { check(n % 4, n, http, server, card).await }
            })
            .buffer_unordered(32);
        while let Some(problem) = answers.next().await {
            problems.extend(problem.map(|p| format!("start {start}: {p}")));
        }
        drop(answers);
        match server.stop(Duration::from_secs(3 + 4)) {
            Ok(took) => slowest_stop = slowest_stop.max(took),
            Err(e) => problems.push(format!("start {start}: {e}")),
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} answers wrong or missing:\n{}",
        problems.len(),
        starts * requests,
        problems.join("\n")
    );
    eprintln!(
        "{} requests on {starts} fresh starts: all their own; slowest stop {slowest_stop:?}",
        starts * requests
    );
}

/// A request that never finishes does not keep the server from stopping: after the grace it is
/// abandoned, said so, and the process exits.
#[tokio::test]
async fn the_server_stops_within_its_grace_whatever_is_in_flight() {
    let _turn = crate::common::timed().await;
    use tokio::io::AsyncWriteExt;
    let (mut server, _dir) = start_server(&[
        ("KEYCARD_SHUTDOWN_GRACE_SECS", "1"),
        ("KEYCARD_REQUEST_TIMEOUT_SECS", "120"),
    ]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    // A check-in whose body never arrives in full: in flight until the request timeout.
    let mut stuck = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = "POST /api/auth/login HTTP/1.1\r\nHost: keycard\r\nContent-Type: \
                application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=";
    stuck.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let took = tokio::task::spawn_blocking(move || {
        let took = server.stop(Duration::from_secs(1 + 4));
        (took.unwrap_or_else(|e| panic!("{e}:\n{}", server.log())), server.log())
    });
    let (took, log) = took.await.unwrap();
    assert!(took >= Duration::from_millis(900), "it waited for the grace: {took:?}");
    assert!(took <= Duration::from_secs(1 + 2), "at most 2 s after the grace: {took:?}\n{log}");
    assert!(log.contains("abandoned=1"), "says what it gave up on:\n{log}");
    drop(stuck);
}
