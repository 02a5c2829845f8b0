//! Load run of the doors with bearer and with DPoP-bound key cards, in alternating phases of one
//! run, over real HTTP on loopback against the real app: what sender-constraining costs.
//!
//! `cargo run --release -p keycard-server --example door_load -- [workers] [seconds] [rounds]`
//! (defaults: 32 workers, 5 seconds a phase, 2 rounds). Each round runs four phases, each door
//! with each kind of key card: the amenity (`GET /amenities/gym`: the key card alone, no
//! database for a bearer card; with DPoP also the proof's check and its `jti` recorded in the
//! database) and the room (`POST /api/me`: the booking is read too). A DPoP worker makes a fresh
//! proof for every request (Ed25519, on the client side of the same machine). SQLite in a
//! temporary folder, or the PostgreSQL server `KEYCARD_LOAD_DATABASE_URL` names.

use std::time::{Duration, Instant};

use keycard::config::RateLimits;
use keycard::dpop::ProofKey;
use keycard::Config;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_data_dir(dir.path());
    config.rate_limits = RateLimits {
        login_per_account_per_minute: 100_000,
        login_per_address_per_minute: 100_000,
        refresh_per_address_per_minute: 10_000_000,
    };
    config.lifetimes.key_card = Duration::from_secs(3600);
    if let Ok(server) = std::env::var("KEYCARD_LOAD_DATABASE_URL") {
        config.database_url = fresh_postgres_database(&server).await;
        config.public_url = "http://hotel.test".parse().unwrap();
        config.issuer = "http://hotel.test".into();
    }
    let public = config.public_url.origin().ascii_serialization();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let limits = config.limits.clone();
    let (router, _desk) = keycard_server::build(config).await.unwrap();
    tokio::spawn(keycard_server::serve(listener, router, limits, std::future::pending()));

    let http = reqwest::Client::new();
    let key = std::sync::Arc::new(ProofKey::generate());
    let register = |name: &str, bound: bool| {
        let (http, base, public, key) = (http.clone(), base.clone(), public.clone(), key.clone());
        let name = name.to_owned();
        async move {
            let mut req = http
                .post(format!("{base}/api/auth/register"))
                .form(&[("username", name.as_str()), ("password", "correct horse battery")]);
            if bound {
                let url = format!("{public}/api/auth/register");
                req = req.header("dpop", key.proof("POST", &url, None, now()));
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 201);
            let body: serde_json::Value = res.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let bearer = register("bearer_guest", false).await;
    let bound = register("bound_guest", true).await;
    println!(
        "{workers} workers, {seconds} s a phase, {rounds} rounds, SQLite or the server named: {base}"
    );
    for round in 1..=rounds {
        for (door, method, path) in
            [("amenity", "GET", "/amenities/gym"), ("room", "POST", "/api/me")]
        {
            for (kind, card) in [("Bearer", &bearer), ("DPoP", &bound)] {
                let deadline = Instant::now() + Duration::from_secs(seconds);
                let started = Instant::now();
                let tasks: Vec<_> = (0..workers)
                    .map(|_| {
                        let (http, key, card) = (http.clone(), key.clone(), card.clone());
                        let url = format!("{base}{path}");
                        let htu = format!("{public}{path}");
                        tokio::spawn(async move {
                            let (mut done, mut failures) = (0usize, 0usize);
                            while Instant::now() < deadline {
                                let req = match method {
                                    "GET" => http.get(&url),
                                    _ => http.post(&url),
                                };
                                let req = if kind == "DPoP" {
                                    req.header("authorization", format!("DPoP {card}"))
                                        .header("dpop", key.proof(method, &htu, Some(&card), now()))
                                } else {
                                    req.bearer_auth(&card)
                                };
                                match req.send().await {
                                    Ok(res) if res.status() == 200 => done += 1,
                                    _ => failures += 1,
                                }
                            }
                            (done, failures)
                        })
                    })
                    .collect();
                let (mut done, mut failures) = (0, 0);
                for task in tasks {
                    let (d, f) = task.await.unwrap();
                    done += d;
                    failures += f;
                }
                let rate = done as f64 / started.elapsed().as_secs_f64();
                println!("round {round}: {door} door, {kind:6}: {rate:>7.0} requests/s, failures {failures}");
                if failures > 0 {
                    std::process::exit(1);
                }
            }
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Creates an empty database on the server at `server` and returns its URL.
async fn fresh_postgres_database(server: &str) -> String {
    use sqlx::Connection;
    let mut admin =
        sqlx::PgConnection::connect(server).await.expect("the PostgreSQL server answers");
    let name = format!("keycard_load_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).await.unwrap();
    let mut url = url::Url::parse(server).unwrap();
    url.set_path(&name);
    url.to_string()
}
