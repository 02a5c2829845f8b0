//! Load run of the front desk: many bookings rotating their confirmations at once, over real
//! HTTP on loopback, against the real app.
//!
//! `cargo run --release -p keycard-server --example refresh_load -- [workers] [seconds] [instances]`
//! (defaults: 32 workers, 10 seconds, 1 instance). Each worker owns one booking and refreshes it
//! in a loop, and every 10th round a second request races it with the same confirmation (two
//! tabs). The database is a temporary SQLite one, or the PostgreSQL server that
//! `KEYCARD_LOAD_DATABASE_URL` names (a fresh database is created on it). With several instances,
//! each is a separate front desk (its own key ring object, throttles and connection pool) on its
//! own port and the same database, and each worker sends its requests to them in turn, as a
//! round-robin load balancer would; the two tabs of a race go to different instances. With
//! `KEYCARD_METRICS_ADDR` set, metrics are kept and served as the server keeps them (README's
//! Operations compares their cost).

use std::time::{Duration, Instant};

use keycard::config::RateLimits;
use keycard::Config;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let instances: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1).max(1);

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_data_dir(dir.path());
    config.rate_limits = RateLimits {
        login_per_account_per_minute: 100_000,
        login_per_address_per_minute: 100_000,
        refresh_per_address_per_minute: 10_000_000,
    };
    let backend = match std::env::var("KEYCARD_LOAD_DATABASE_URL") {
        Ok(server) => {
            config.database_url = fresh_postgres_database(&server).await;
            "PostgreSQL"
        }
        Err(_) => "SQLite",
    };
    let metrics = std::env::var("KEYCARD_METRICS_ADDR").ok().and_then(|a| a.parse().ok());
    if metrics.is_some() {
        config.operations.metrics_addr = metrics;
        keycard_server::metrics::install();
    }
    let mut bases = Vec::new();
    for _ in 0..instances {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        bases.push(format!("http://{}", listener.local_addr().unwrap()));
        let limits = config.limits.clone();
        let (router, desk) = keycard_server::build(config.clone()).await.unwrap();
        tokio::spawn(keycard_server::serve(listener, router, limits, std::future::pending()));
        if let (Some(addr), 1) = (metrics, bases.len()) {
            let bound = keycard_server::metrics::serve(addr, desk).await.unwrap();
            println!("metrics on: http://{bound}/metrics");
        }
    }
    let base = bases[0].clone();

    let http = reqwest::Client::new();
    let mut confirmations = Vec::new();
    for i in 0..workers {
        let res = http
            .post(format!("{base}/api/auth/register"))
            .form(&[
                ("username", format!("guest{i}")),
                ("password", "correct horse battery".into()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        confirmations.push(confirmation(&res).unwrap());
    }

    println!(
        "{workers} bookings rotating for {seconds} s on {backend}, {instances} instance(s): {}",
        bases.join(", ")
    );
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = confirmations
        .into_iter()
        .enumerate()
        .map(|(worker, mut current)| {
            let http = http.clone();
            let urls: Vec<String> = bases.iter().map(|b| format!("{b}/api/auth/refresh")).collect();
            tokio::spawn(async move {
                let (mut latencies, mut failures, mut round) = (Vec::new(), 0usize, 0usize);
                while Instant::now() < deadline {
                    round += 1;
                    let mut turn = worker + round;
                    let mut send = || {
                        turn += 1;
                        http.post(&urls[turn % urls.len()])
                            .header("cookie", format!("__Secure-confirmation={current}"))
                            .send()
                    };
                    let t = Instant::now();
                    let results = if round % 10 == 0 {
                        let (a, b) = tokio::join!(send(), send());
                        vec![a, b]
                    } else {
                        vec![send().await]
                    };
                    latencies.push(t.elapsed());
                    let mut next = None;
                    for res in results {
                        match res {
                            Ok(res) if res.status() == 200 => next = next.or(confirmation(&res)),
                            _ => failures += 1,
                        }
                    }
                    match next {
                        Some(c) => current = c,
                        None => break,
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (l, f) = task.await.unwrap();
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{} rounds in {elapsed:.1} s = {:.0} rotations/s; latency p50 {:?}, p95 {:?}, p99 {:?}, max {:?}; failures {failures}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.95),
        pct(0.99),
        latencies.last().unwrap(),
    );
    if failures > 0 {
        std::process::exit(1);
    }
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

fn confirmation(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("__Secure-confirmation="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}
