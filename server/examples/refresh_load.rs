//! Load run of the front desk: many bookings rotating their confirmations at once, over real
//! HTTP on loopback, against the real app on a temporary SQLite database.
//!
//! `cargo run --release -p keycard-server --example refresh_load -- [workers] [seconds]`
//! (defaults: 32 workers, 10 seconds). Each worker owns one booking and refreshes it in a loop,
//! and every 10th round a second request races it with the same confirmation (two tabs).

use std::time::{Duration, Instant};

use keycard::config::RateLimits;
use keycard::Config;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_data_dir(dir.path());
    config.rate_limits = RateLimits {
        login_per_account_per_minute: 100_000,
        login_per_address_per_minute: 100_000,
        refresh_per_address_per_minute: 10_000_000,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let limits = config.limits.clone();
    let (router, _desk) = keycard_server::build(config).await.unwrap();
    tokio::spawn(keycard_server::serve(listener, router, limits, std::future::pending()));

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

    println!("{workers} bookings rotating for {seconds} s against {base}");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = confirmations
        .into_iter()
        .map(|mut current| {
            let http = http.clone();
            let url = format!("{base}/api/auth/refresh");
            tokio::spawn(async move {
                let (mut latencies, mut failures, mut round) = (Vec::new(), 0usize, 0usize);
                while Instant::now() < deadline {
                    round += 1;
                    let send = || {
                        http.post(&url)
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

fn confirmation(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("__Secure-confirmation="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}
