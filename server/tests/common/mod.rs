//! Test harness: each test gets its own app on 127.0.0.1:0 with its own temporary database and
//! key ring, and a manual clock it can move instead of sleeping.
//!
//! Tests run on SQLite ([`spawn_app`]) or on either backend ([`spawn_app_on`]); the
//! [`on_both_backends!`] macro runs one test body on both. PostgreSQL tests create a database of
//! their own on the server `KEYCARD_TEST_DATABASE_URL` names, which `scripts/test` (or
//! `scripts/postgres with cargo test`) starts and throws away.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use keycard::config::RateLimits;
use keycard::keys::KeyRing;
use keycard::storage::postgres::PostgresStore;
use keycard::storage::sqlite::SqliteStore;
use keycard::storage::Store;
use keycard::{Clock, Config, FrontDesk};
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sqlx::{PgPool, SqlitePool};

pub const PASSWORD: &str = "correct horse battery";

/// One test binary runs its tests two at a time: tests that load both cores take turns
/// ([`heavy`]), and tests that measure time wait while one runs ([`timed`]), so that neither
/// disturbs the other's figures.
static LOAD: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Held by a test that loads both cores (real processes under load, thousands of requests).
pub async fn heavy() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    LOAD.write().await
}

/// Held by a test that asserts how long something took.
pub async fn timed() -> tokio::sync::RwLockReadGuard<'static, ()> {
    LOAD.read().await
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each test body once on SQLite and once on PostgreSQL: the same body, not a copy. Each
/// `async fn name(backend: Backend) { … }` becomes a module `name` with tests `sqlite` and
/// `postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($( $(#[$meta:meta])* async fn $name:ident($backend:ident: Backend) $body:block )*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(#[$meta])*
            async fn body($backend: Backend) $body
            #[tokio::test]
            async fn sqlite() {
                body(Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                body(Backend::Postgres).await
            }
        }
    )*};
}

/// The test's own database, for checks the HTTP interface does not show.
#[derive(Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// The single column of every row of `sql` (no parameters; SQL both dialects read).
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        match self {
            Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
            Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        }
    }

    /// The single integer `sql` answers (no parameters).
    pub async fn number(&self, sql: &str) -> i64 {
        match self {
            Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
            Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        }
    }

    /// Runs `sql` (no parameters).
    pub async fn execute(&self, sql: &str) {
        match self {
            Db::Sqlite(pool) => drop(sqlx::query(sql).execute(pool).await.unwrap()),
            Db::Postgres(pool) => drop(sqlx::query(sql).execute(pool).await.unwrap()),
        }
    }

    /// Closes the pool the app uses: every later query fails as if the database were gone.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }

    /// Holds the lock a front-desk visit needs (every booking row on PostgreSQL, the write lock
    /// on SQLite) until the returned transaction is dropped.
    pub async fn hold_write_lock(&self) -> HeldLock {
        match self {
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
                sqlx::query("UPDATE sessions SET user_agent = user_agent")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                HeldLock::Sqlite(tx)
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("SELECT id FROM sessions FOR UPDATE").execute(&mut *tx).await.unwrap();
                HeldLock::Postgres(tx)
            }
        }
    }

    /// The SQLite pool (tests that only run there).
    pub fn sqlite(&self) -> &SqlitePool {
        match self {
            Db::Sqlite(pool) => pool,
            Db::Postgres(_) => panic!("this test runs on SQLite only"),
        }
    }
}

/// A transaction kept open to hold a lock; rolled back when dropped.
pub enum HeldLock {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub config: Config,
    pub desk: FrontDesk,
    pub store: Arc<dyn Store>,
    pub db: Db,
    pub clock: Clock,
    pub http: reqwest::Client,
    dir: Arc<tempfile::TempDir>,
}

/// An app on SQLite with the default lifetimes and generous rate limits.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backend::Sqlite, |_| {}).await
}

/// An app on SQLite whose configuration `tweak` adjusts first.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on(Backend::Sqlite, tweak).await
}

/// An app on `backend` whose configuration `tweak` adjusts first.
pub async fn spawn_app_on(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_data_dir(dir.path());
    config.rate_limits = RateLimits {
        login_per_account_per_minute: 1000,
        login_per_address_per_minute: 1000,
        refresh_per_address_per_minute: 10_000,
    };
    if backend == Backend::Postgres {
        config.database_url = new_postgres_database().await;
    }
    tweak(&mut config);
    let clock = Clock::manual(Clock::system().now());
    start(config, clock, Arc::new(dir)).await
}

/// A second instance of `app`'s hotel: its own process state (key ring, throttles, pool) on the
/// same database, key file and clock, as a second server behind a load balancer would be.
pub async fn spawn_instance(app: &TestApp) -> TestApp {
    start(app.config.clone(), app.clock.clone(), app.dir.clone()).await
}

/// The server's warnings and errors, written where the test harness captures a test's output: a
/// failing test then shows why the server answered as it did (a `503` says whether the request
/// timed out or the database was unavailable), and a passing one stays quiet. Each test's app
/// runs on the test's own thread (`#[tokio::test]` is single-threaded), so its lines land in its
/// own capture. `RUST_LOG` widens it.
fn log_to_the_test_output() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Installed by the first app of the process; for every later one `try_init` declines.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

async fn start(config: Config, clock: Clock, dir: Arc<tempfile::TempDir>) -> TestApp {
    log_to_the_test_output();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let (store, db): (Arc<dyn Store>, Db) = if config.database_url.starts_with("postgres") {
        let store = PostgresStore::connect(&config.database()).await.expect("database");
        let db = Db::Postgres(store.pool().clone());
        (Arc::new(store), db)
    } else {
        let store = SqliteStore::connect_with(&config.database()).await.expect("database");
        let db = Db::Sqlite(store.pool().clone());
        (Arc::new(store), db)
    };
    let keys = KeyRing::open(&config.keys_file, config.mode).expect("keys");
    let desk = FrontDesk::new(&config, store.clone(), keys, clock.clone());
    desk.join().await.expect("joins the roll of instances");
    let router = keycard_server::router(
        config.clone(),
        desk.clone(),
        keycard_server::leptos_options(&config),
    );
    tokio::spawn(keycard_server::serve(
        listener,
        router,
        config.limits.clone(),
        std::future::pending(),
    ));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        config,
        desk,
        store,
        db,
        clock,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        dir,
    }
}

/// The server `KEYCARD_TEST_DATABASE_URL` names, as `postgres://…/<database>` with the last
/// path segment replaced.
pub fn postgres_server() -> url::Url {
    let raw = std::env::var("KEYCARD_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "KEYCARD_TEST_DATABASE_URL is not set: the PostgreSQL tests need a server. \
             ./scripts/test starts one; or run `scripts/postgres with cargo test`"
        )
    });
    url::Url::parse(&raw).expect("KEYCARD_TEST_DATABASE_URL is a postgres:// URL")
}

/// Creates an empty database of this test's own on the test server and returns its URL.
pub async fn new_postgres_database() -> String {
    new_postgres_database_on(postgres_server()).await
}

/// Creates an empty database of this test's own on the server at `server` and returns its URL.
pub async fn new_postgres_database_on(server: url::Url) -> String {
    use sqlx::Connection;
    let mut admin =
        sqlx::PgConnection::connect(server.as_str()).await.expect("the PostgreSQL server answers");
    let name = format!("keycard_test_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).await.unwrap();
    let _ = admin.close().await;
    let mut url = server;
    url.set_path(&name);
    url.to_string()
}

/// What a check-in or refresh handed back: the body and both cookies.
#[derive(Clone, Debug)]
pub struct Stay {
    pub body: Value,
    pub key_card: String,
    pub confirmation: String,
}

/// Cookie name -> (value, the whole Set-Cookie line).
pub fn set_cookies(headers: &HeaderMap) -> HashMap<String, (String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|line| {
            let (pair, _) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=')?;
            Some((name.trim().to_owned(), (value.trim().to_owned(), line.to_owned())))
        })
        .collect()
}

impl TestApp {
    /// The room page as the server renders it for `key_card` (sent as the browser's cookie).
    pub async fn room_html(&self, key_card: &str) -> String {
        let res = self
            .http
            .get(self.url("/room"))
            .header("cookie", format!("__Host-keycard={key_card}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A form POST with optional extra headers.
    pub async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = self.http.post(self.url(path)).form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request")
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        self.post("/api/auth/register", &[("username", username), ("password", password)], &[])
            .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post("/api/auth/login", &[("username", username), ("password", password)], &[]).await
    }

    /// Registers `username` and returns the first stay.
    pub async fn guest(&self, username: &str) -> Stay {
        let res = self.register(username, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::CREATED, "register {username}");
        stay(res).await
    }

    /// Checks `username` in again (a new booking).
    pub async fn check_in(&self, username: &str) -> Stay {
        let res = self.login(username, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK, "login {username}");
        stay(res).await
    }

    /// Shows a confirmation at the front desk.
    pub async fn refresh(&self, confirmation: &str) -> Response {
        let cookie = format!("__Secure-confirmation={confirmation}");
        self.post("/api/auth/refresh", &[], &[("cookie", &cookie)]).await
    }

    /// A POST to a protected endpoint with the key card as a Bearer token.
    pub async fn bearer(&self, path: &str, key_card: &str, form: &[(&str, &str)]) -> Response {
        let auth = format!("Bearer {key_card}");
        self.post(path, form, &[("authorization", &auth)]).await
    }

    /// Every event the store logged, oldest first.
    pub async fn event_kinds(&self) -> Vec<String> {
        self.db.strings("SELECT kind FROM session_events ORDER BY id").await
    }

    pub async fn amenity(&self, name: &str, key_card: &str) -> Response {
        self.http
            .get(self.url(&format!("/amenities/{name}")))
            .bearer_auth(key_card)
            .send()
            .await
            .unwrap()
    }
}

/// Reads a 200/201 check-in answer.
pub async fn stay(res: Response) -> Stay {
    let cookies = set_cookies(res.headers());
    let body: Value = res.json().await.expect("json body");
    Stay {
        key_card: cookies.get("__Host-keycard").expect("key card cookie").0.clone(),
        confirmation: cookies.get("__Secure-confirmation").expect("confirmation cookie").0.clone(),
        body,
    }
}

/// Reads an error answer: (status, code).
pub async fn error(res: Response) -> (StatusCode, String) {
    let status = res.status();
    let body: Value = res.json().await.expect("json error body");
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

/// The decoded payload of a JWT, unverified.
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
    )
    .unwrap()
}

/// The decoded header of a JWT, unverified.
pub fn header(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap())
        .unwrap()
}

/// What a raw HTTP/1.1 exchange brought back.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends `head` (the request line and headers, without the blank line) and `body` exactly as
/// given, bytes a client library would refuse or normalise included, with `Connection: close`,
/// and reads the whole answer. `None` when no answer came within `within`, or none at all.
pub async fn raw_request(
    addr: SocketAddr,
    head: &[u8],
    body: &[u8],
    within: std::time::Duration,
) -> Option<RawAnswer> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut request = head.to_vec();
        request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        request.extend_from_slice(body);
        stream.write_all(&request).await.ok()?;
        let mut answer = Vec::new();
        // A server may close right after answering; what arrived before counts.
        let _ = stream.read_to_end(&mut answer).await;
        Some(answer)
    };
    let answer = tokio::time::timeout(within, exchange).await.ok()??;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(RawAnswer { status, headers, body: answer[split + 4..].to_vec() })
}

/// The built `keycard-server` binary, run as a process of its own on `127.0.0.1:0`; killed when
/// dropped.
pub struct BuiltServer {
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Everything it printed so far, on either stream.
    log: Arc<std::sync::Mutex<String>>,
}

impl BuiltServer {
    /// Starts the server built with these tests on `data_dir`, with `settings` on top of an empty
    /// environment; waits for its address.
    pub fn start(data_dir: &std::path::Path, settings: &[(&str, &str)]) -> Self {
        Self::start_binary(None, data_dir, settings)
    }

    /// [`BuiltServer::start`] with another build of the server, if `binary` names one.
    pub fn start_binary(
        binary: Option<&std::ffi::OsStr>,
        data_dir: &std::path::Path,
        settings: &[(&str, &str)],
    ) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let binary = binary.unwrap_or(env!("CARGO_BIN_EXE_keycard-server").as_ref());
        let mut child = Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KEYCARD_ADDR", "127.0.0.1:0")
            .env("KEYCARD_DATA_DIR", data_dir)
            .envs(settings.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        // Both streams are read all along (a pipe nobody reads would fill and block the server).
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let streams: [(Box<dyn BufRead + Send>, _); 2] =
            [(Box::new(stdout), Some(address_tx)), (Box::new(stderr), None)];
        for (stream, address_tx) in streams {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in stream.lines().map_while(Result::ok) {
                    if let (Some(tx), Some(base)) =
                        (&address_tx, line.strip_prefix("Keycard is open at "))
                    {
                        let _ = tx.send(base.to_owned());
                    }
                    log.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        let base = address_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server printed no address:\n{}", log.lock().unwrap()));
        Self { child, base, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits for the exit: how long it took, or what is wrong.
    pub fn stop(&mut self, within: std::time::Duration) -> Result<std::time::Duration, String> {
        let asked = std::time::Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) }, 0);
        loop {
            if self.child.try_wait().unwrap().is_some() {
                return Ok(asked.elapsed());
            }
            if asked.elapsed() > within {
                let _ = self.child.kill();
                return Err(format!("still running {within:?} after SIGTERM"));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for BuiltServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
