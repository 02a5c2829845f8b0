//! Faults with real processes (issue 8): two `keycard-server` processes on one PostgreSQL, one
//! of them killed with SIGKILL in the middle of a refresh load, and the database restarted under
//! load. The restart test starts a PostgreSQL of its own (`scripts/postgres`), since it stops it.
//!
//! What a client sees is recorded request by request and checked afterwards against the
//! database: no false theft alarm, no booking with two live confirmations, every answer a 200 or
//! a 503 within the timeout (never a 500, never a hang), and service coming back by itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres");

/// The real server binary on a free port, on `database`, with the shared key file.
fn start_instance(database: &str, dir: &Path) -> BuiltServer {
    BuiltServer::start(
        dir,
        &[
            ("KEYCARD_DATABASE_URL", database),
            ("KEYCARD_PUBLIC_URL", "http://hotel.test"),
            ("KEYCARD_DATABASE_TIMEOUT_SECS", "2"),
            ("KEYCARD_REQUEST_TIMEOUT_SECS", "5"),
            ("KEYCARD_LOGIN_PER_ACCOUNT_PER_MINUTE", "1000"),
            ("KEYCARD_LOGIN_PER_ADDRESS_PER_MINUTE", "100000"),
            ("KEYCARD_REFRESH_PER_ADDRESS_PER_MINUTE", "10000000"),
            ("RUST_LOG", "off"),
        ],
    )
}

/// A PostgreSQL cluster of this test's own, stopped when dropped.
struct OwnPostgres {
    dir: tempfile::TempDir,
    url: String,
}

impl OwnPostgres {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(SCRIPT).arg("start").arg(dir.path().join("pg")).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Self { dir, url }
    }

    fn folder(&self) -> PathBuf {
        self.dir.path().join("pg")
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT).arg("stop").arg(self.folder()).output();
    }
}

async fn register(http: &reqwest::Client, base: &str, name: &str) -> String {
    let res = http
        .post(format!("{base}/api/auth/register"))
        .form(&[("username", name), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    set_cookies(res.headers())["__Secure-confirmation"].0.clone()
}

/// What one refresh brought back.
#[derive(Debug)]
struct Answer {
    instance: usize,
    /// When it was sent, from the start of the load.
    at: Duration,
    took: Duration,
    /// HTTP status, or `None` when the connection failed (the instance is gone).
    status: Option<u16>,
    body: String,
}

/// Tells the load to stop; with a hard limit so a broken test cannot run forever.
#[derive(Clone)]
struct Stop(Arc<AtomicBool>, Instant);

impl Stop {
    fn new() -> Self {
        Self(Arc::new(AtomicBool::new(false)), Instant::now() + Duration::from_secs(60))
    }
    fn now(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst) || Instant::now() > self.1
    }
}

/// One booking's client: refreshes in a loop until told to stop, sending each request to the
/// next instance in turn that has not failed it, as a load balancer with passive health checks
/// does. Returns every answer and the last confirmation it was handed.
async fn client(
    http: reqwest::Client,
    bases: Arc<Vec<String>>,
    mut current: String,
    start: Instant,
    stop: Stop,
    offset: usize,
) -> (Vec<Answer>, String) {
    let mut answers = Vec::new();
    let mut dead = vec![false; bases.len()];
    let mut turn = offset;
    while !stop.stopped() {
        turn += 1;
        let instance = (0..bases.len()).map(|k| (turn + k) % bases.len()).find(|&i| !dead[i]);
        let Some(instance) = instance else { break };
        let sent = Instant::now();
        let at = start.elapsed();
        let res = http
            .post(format!("{}/api/auth/refresh", bases[instance]))
            .header("cookie", format!("__Secure-confirmation={current}"))
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        match res {
            Err(_) => {
                dead[instance] = true;
                answers.push(Answer {
                    instance,
                    at,
                    took: sent.elapsed(),
                    status: None,
                    body: "".into(),
                });
            }
            Ok(res) => {
                let status = res.status().as_u16();
                let cookies = set_cookies(res.headers());
                let body = res.text().await.unwrap_or_default();
                if status == 200 {
                    current = cookies["__Secure-confirmation"].0.clone();
                } else {
                    // Backs off a little, as the page does.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                answers.push(Answer {
                    instance,
                    at,
                    took: sent.elapsed(),
                    status: Some(status),
                    body,
                });
            }
        }
    }
    (answers, current)
}

/// The booking row's (generation, current hash, previous hash, revoked).
async fn booking(pool: &sqlx::PgPool, sid: &str) -> (i64, String, Option<String>, bool) {
    let row: (i64, String, Option<String>, Option<i64>) = sqlx::query_as(
        "SELECT generation, current_hash, previous_hash, revoked_at FROM sessions WHERE id = $1",
    )
    .bind(sid)
    .fetch_one(pool)
    .await
    .unwrap();
    (row.0, row.1, row.2, row.3.is_some())
}

/// Two instances on `database`, one booking per client registered, and the clients' refresh
/// loops under way.
struct Load {
    instances: [BuiltServer; 2],
    http: reqwest::Client,
    bases: Arc<Vec<String>>,
    start: Instant,
    stop: Stop,
    clients: Vec<tokio::task::JoinHandle<(Vec<Answer>, String)>>,
    _dir: tempfile::TempDir,
}

async fn two_instances_under_load(database: &str, bookings: usize) -> Load {
    let dir = tempfile::tempdir().unwrap();
    let instances = [start_instance(database, dir.path()), start_instance(database, dir.path())];
    let http = reqwest::Client::new();
    let bases = Arc::new(vec![instances[0].base.clone(), instances[1].base.clone()]);
    let mut confirmations = Vec::new();
    for i in 0..bookings {
        confirmations.push(register(&http, &bases[i % 2], &format!("guest{i}")).await);
    }
    let (start, stop) = (Instant::now(), Stop::new());
    let clients = confirmations
        .into_iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(client(http.clone(), bases.clone(), c, start, stop.clone(), i)))
        .collect();
    Load { instances, http, bases, start, stop, clients, _dir: dir }
}

impl Load {
    /// Stops the clients and hands back what each saw.
    async fn finish(&mut self) -> Vec<(Vec<Answer>, String)> {
        self.stop.now();
        let mut results = Vec::new();
        for c in self.clients.drain(..) {
            results.push(c.await.unwrap());
        }
        results
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_instance_mid_load_loses_no_booking_and_the_other_keeps_serving() {
    let _turn = heavy().await;
    let database = new_postgres_database().await;
    let mut load = two_instances_under_load(&database, 16).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = load.start.elapsed();
    // SIGKILL: no graceful shutdown, requests cut mid-way.
    load.instances[0].child.kill().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let results = load.finish().await;
    let (http, survivor) = (&load.http, &load.bases[1]);

    let pool = sqlx::PgPool::connect(&database).await.unwrap();
    let (mut ok, mut cut, mut served_by_b_after) = (0, 0, 0);
    for (answers, last) in &results {
        for answer in answers {
            match answer.status {
                Some(200) => ok += 1,
                None => {
                    assert_eq!(answer.instance, 0, "only the killed instance drops connections");
                    cut += 1;
                }
                Some(other) => panic!("a client got {other}: {}", answer.body),
            }
            if answer.instance == 1 && answer.at > killed_at && answer.status == Some(200) {
                served_by_b_after += 1;
            }
        }
        // The last confirmation this client saw answered 200 is the booking's current one or
        // its grace predecessor (a rotation committed on a whose answer never arrived).
        let c = claims(last);
        let sid = c["sid"].as_str().unwrap();
        let (generation, current, previous, revoked) = booking(&pool, sid).await;
        assert!(!revoked, "no false theft alarm");
        let seen = keycard::confirmation::hash_id(c["jti"].as_str().unwrap());
        let seen_generation = c["generation"].as_i64().unwrap();
        assert!(
            (seen == current && seen_generation == generation)
                || (Some(&seen) == previous.as_ref() && seen_generation == generation - 1),
            "the client's confirmation is neither current nor the grace predecessor"
        );
        // One live confirmation: showing the client's twice on the survivor gives the same one.
        let once = stay(http_refresh(http, survivor, last).await).await.confirmation;
        let twice = stay(http_refresh(http, survivor, last).await).await.confirmation;
        assert_eq!(once, twice, "two live confirmations for one booking");
    }
    println!(
        "kill -9 under load: {ok} rotations answered 200, {cut} requests cut by the kill, \
         {served_by_b_after} served by the survivor afterwards"
    );
    assert!(cut >= 1, "requests reached the killed instance and were retried on the survivor");
    assert!(served_by_b_after >= 16, "the surviving instance kept serving");
    let revoked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(revoked, 0);
}

async fn http_refresh(http: &reqwest::Client, base: &str, confirmation: &str) -> reqwest::Response {
    http.post(format!("{base}/api/auth/refresh"))
        .header("cookie", format!("__Secure-confirmation={confirmation}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_gets_503s_then_service_resumes_by_itself() {
    let _turn = heavy().await;
    let pg = OwnPostgres::start();
    let database = new_postgres_database_on(url::Url::parse(&pg.url).unwrap()).await;
    let mut load = two_instances_under_load(&database, 8).await;
    let start = load.start;
    // /healthz of both instances, every 100 ms: (sent at, status).
    let health = tokio::spawn({
        let (http, bases, stop) = (load.http.clone(), load.bases.clone(), load.stop.clone());
        async move {
            let mut seen = Vec::new();
            while !stop.stopped() {
                for base in bases.iter() {
                    let at = start.elapsed();
                    let res = http
                        .get(format!("{base}/healthz"))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    seen.push((at, res.map(|r| r.status().as_u16()).unwrap_or(0)));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seen
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let down_at = start.elapsed();
    let folder = pg.folder();
    let restart = tokio::task::spawn_blocking(move || {
        Command::new(SCRIPT).arg("restart").arg(&folder).arg("2").output().unwrap()
    });
    let out = restart.await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let up_at = start.elapsed();
    // Three more seconds of load: service must come back by itself within them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answers: Vec<Answer> = load.finish().await.into_iter().flat_map(|(a, _)| a).collect();
    let health = health.await.unwrap();

    let mut unavailable = 0;
    let mut slowest = Duration::ZERO;
    for answer in &answers {
        slowest = slowest.max(answer.took);
        match answer.status {
            Some(200) => {}
            Some(503) => {
                unavailable += 1;
                let body: Value = serde_json::from_str(&answer.body).unwrap();
                let code = body["error"].as_str().unwrap();
                assert!(code == "unavailable" || code == "timeout", "{body}");
                let message = body["message"].as_str().unwrap().to_lowercase();
                for driver_words in ["sqlx", "pool", "postgres", "connection", "io error", "57p"] {
                    assert!(!message.contains(driver_words), "driver text leaked: {message}");
                }
            }
            other => panic!("got {other:?} at {:?}: {}", answer.at, answer.body),
        }
    }
    assert!(slowest < Duration::from_secs(6), "an answer took {slowest:?}: past the 5 s timeout");
    assert!(unavailable >= 1, "the outage was seen as 503");
    let health_during = health.iter().filter(|(t, _)| *t > down_at && *t < up_at);
    assert!(health_during.clone().any(|&(_, s)| s == 503), "/healthz said so: {health:?}");
    assert!(health.iter().all(|&(_, s)| s == 200 || s == 503), "{health:?}");
    // Service resumed by itself: both instances answered refreshes and health after the restart.
    let resumed =
        |i: usize| answers.iter().any(|a| a.instance == i && a.at > up_at && a.status == Some(200));
    assert!(resumed(0) && resumed(1), "both instances serve again without a restart");
    let recovered = answers
        .iter()
        .filter(|a| a.at > up_at && a.status == Some(200))
        .map(|a| a.at - up_at)
        .fold(Duration::MAX, Duration::min);
    assert!(health.iter().rev().take(2).all(|&(_, s)| s == 200), "{health:?}");
    println!(
        "database restart under load: {} answers, {unavailable} were 503, slowest {slowest:?}, \
         outage {:?}, first 200 {recovered:?} after the database was back",
        answers.len(),
        up_at - down_at
    );
    let pool = sqlx::PgPool::connect(&database).await.unwrap();
    let revoked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(revoked, 0, "no false theft alarm");
}

/// Load balancers give up on a health check after a second or two: with PostgreSQL stopped,
/// readiness (and `/healthz`, its alias) must say 503 within a second, with the database
/// timeout at its default 5 s, while liveness goes on saying 200 at once.
#[tokio::test]
async fn with_the_database_stopped_readiness_answers_503_within_a_second_and_liveness_200() {
    let _turn = heavy().await;
    let pg = OwnPostgres::start();
    let database = new_postgres_database_on(url::Url::parse(&pg.url).unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = BuiltServer::start(
        dir.path(),
        &[
            ("KEYCARD_DATABASE_URL", &database),
            ("KEYCARD_PUBLIC_URL", "http://hotel.test"),
            ("RUST_LOG", "off"),
        ],
    );
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let request = http.get(server.url(path)).timeout(Duration::from_secs(10));
        async move {
            let asked = Instant::now();
            let status = request.send().await.unwrap().status().as_u16();
            (status, asked.elapsed())
        }
    };
    for path in ["/healthz/live", "/healthz/ready", "/healthz"] {
        assert_eq!(get(path).await.0, 200, "{path} before the outage");
    }
    let out = Command::new(SCRIPT).arg("stop").arg(pg.folder()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut slowest = Duration::ZERO;
    for round in 0..3 {
        for path in ["/healthz/ready", "/healthz"] {
            let (status, took) = get(path).await;
            assert_eq!(status, 503, "{path}, round {round}");
            // The bound is 1 s (a 750 ms ping and the rest); the margin is for a loaded machine.
            assert!(took < Duration::from_millis(1500), "{path} took {took:?}");
            slowest = slowest.max(took);
        }
        let (status, took) = get("/healthz/live").await;
        assert_eq!(status, 200, "liveness does not depend on the database");
        assert!(took < Duration::from_millis(500), "liveness took {took:?}");
    }
    println!("database stopped: readiness 503 in at most {slowest:?}; liveness 200");
}
