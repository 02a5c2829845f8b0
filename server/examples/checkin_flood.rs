//! A check-in flood must not starve other traffic, and must still check guests in about as fast
//! as the machine can hash passwords.
//!
//! `cargo run --release -p keycard-server --example checkin_flood -- [clients] [seconds]`
//! (defaults: 32 clients, 5 seconds per phase). Three phases, one run:
//! 1. the raw Argon2id rate: one thread per core hashing with Keycard's parameters, nothing else;
//! 2. idle: 4 clients call `POST /api/me` (a stateful door), each every 10 ms (400 requests/s,
//!    ordinary traffic, not a second flood): its p50 and p99;
//! 3. flood: `clients` guests check in again and again with the right password, while the same
//!    4 clients call `/api/me`: its p50 and p99 again, and the check-ins per second.
//!
//! It prints `/api/me` p99 under flood as a multiple of idle (target: at most 3) and check-ins/s as
//! a share of the raw hash rate (target: at least 90 %). The server runs in this process with a
//! temporary SQLite database and limits raised so that nothing is refused.

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use keycard::config::RateLimits;
use keycard::passwords::{ITERATIONS, MEMORY_KIB, PARALLELISM};
use keycard::Config;

const PASSWORD: &str = "correct horse battery";

fn main() {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let phase = Duration::from_secs(seconds);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);

    let raw = raw_hash_rate(cores, phase);
    println!(
        "raw Argon2id ({MEMORY_KIB} KiB, {ITERATIONS} passes), {cores} threads: {raw:.1} hashes/s"
    );

    // The server on a runtime of its own, as in production (one worker per core).
    let server = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_data_dir(dir.path());
    config.rate_limits = RateLimits {
        login_per_account_per_minute: 1_000_000,
        login_per_address_per_minute: 1_000_000,
        refresh_per_address_per_minute: 1_000_000,
    };
    config.lifetimes.key_card = Duration::from_secs(3600);
    let base = server.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let limits = config.limits.clone();
        let (router, _desk) = keycard_server::build(config).await.unwrap();
        tokio::spawn(keycard_server::serve(listener, router, limits, std::future::pending()));
        base
    });

    // The load on a runtime of its own (one thread), like an outside load generator.
    let load = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    load.block_on(async move {
        let http = reqwest::Client::new();
        let mut names = Vec::new();
        let mut key_card = String::new();
        for i in 0..clients {
            let name = format!("guest{i}");
            let res = http
                .post(format!("{base}/api/auth/register"))
                .form(&[("username", name.as_str()), ("password", PASSWORD)])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            let body: serde_json::Value = res.json().await.unwrap();
            key_card = body["access_token"].as_str().unwrap().to_owned();
            names.push(name);
        }

        let idle = probe(&http, &base, &key_card, phase, None).await;
        println!("idle:  POST /api/me p50 {} p99 {}", ms(idle.p50), ms(idle.p99));
        let flood = probe(&http, &base, &key_card, phase, Some(&names)).await;
        let rate = flood.check_ins as f64 / phase.as_secs_f64();
        println!(
            "flood: POST /api/me p50 {} p99 {} with {clients} clients checking in: {rate:.1} check-ins/s ({} refused)",
            ms(flood.p50),
            ms(flood.p99),
            flood.refused
        );
        println!(
            "=> /api/me p99 under flood = {:.2}x idle (target <= 3); check-ins = {:.0} % of the raw hash rate (target >= 90 %)",
            flood.p99.as_secs_f64() / idle.p99.as_secs_f64(),
            100.0 * rate / raw
        );
    });
}

/// Hashes per second with one normal-priority thread per core and nothing else running.
fn raw_hash_rate(threads: usize, phase: Duration) -> f64 {
    let started = Instant::now();
    let total: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap();
                    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                    let mut done = 0;
                    while started.elapsed() < phase {
                        let salt = SaltString::generate(&mut rand::rngs::OsRng);
                        hasher.hash_password(PASSWORD.as_bytes(), &salt).unwrap();
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    total as f64 / started.elapsed().as_secs_f64()
}

struct Probe {
    p50: Duration,
    p99: Duration,
    check_ins: usize,
    refused: usize,
}

/// 4 clients on `/api/me` for `phase`, with `flooders` checking in meanwhile if given.
async fn probe(
    http: &reqwest::Client,
    base: &str,
    key_card: &str,
    phase: Duration,
    flooders: Option<&[String]>,
) -> Probe {
    let deadline = Instant::now() + phase;
    let flood: Vec<_> = flooders
        .unwrap_or_default()
        .iter()
        .map(|name| {
            let (http, url, name) = (http.clone(), format!("{base}/api/auth/login"), name.clone());
            tokio::spawn(async move {
                let (mut ok, mut refused) = (0, 0);
                while Instant::now() < deadline {
                    let form = [("username", name.as_str()), ("password", PASSWORD)];
                    match http.post(&url).form(&form).send().await {
                        Ok(res) if res.status() == 200 => ok += 1,
                        _ => refused += 1,
                    }
                }
                (ok, refused)
            })
        })
        .collect();
    let probes: Vec<_> = (0..4)
        .map(|_| {
            let (http, url, card) = (http.clone(), format!("{base}/api/me"), key_card.to_owned());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut every = tokio::time::interval(Duration::from_millis(10));
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while Instant::now() < deadline {
                    every.tick().await;
                    let started = Instant::now();
                    let res = http.post(&url).bearer_auth(&card).send().await.unwrap();
                    assert_eq!(res.status(), 200);
                    let _ = res.bytes().await;
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for p in probes {
        latencies.extend(p.await.unwrap());
    }
    let (mut check_ins, mut refused) = (0, 0);
    for f in flood {
        let (ok, no) = f.await.unwrap();
        check_ins += ok;
        refused += no;
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Probe { p50: at(0.50), p99: at(0.99), check_ins, refused }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
