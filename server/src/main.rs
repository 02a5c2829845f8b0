//! `keycard-server`: serves the hotel, or rotates its signing keys.

use std::process::ExitCode;
use std::time::Duration;

use keycard::Config;

const USAGE: &str = "usage: keycard-server [serve | rotate-keys | health [live|ready]]

  serve        run the web server (the default)
  rotate-keys  add a new signing key: published in the JWKS at once, signing after
               KEYCARD_KEY_PUBLISH_AHEAD_SECS; keys whose tokens have all expired
               are retired
  health       ask the server at KEYCARD_ADDR whether it is live (serves) or ready (its
               database answers; the default); waits up to 10 s for a 200, exit 1 if none

Configuration comes from KEYCARD_* environment variables; see .env.example.";

fn main() -> ExitCode {
    match keycard::operations::LogFormat::from_env() {
        Ok(format) => keycard_server::telemetry::init(format),
        Err(e) => {
            eprintln!("keycard-server: bad configuration: {e}");
            return ExitCode::from(2);
        }
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("keycard-server: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("keycard-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(config));
    // Dropping a runtime waits for every task and blocking thread; a request the grace gave up
    // on must not hold the process (`serve` said how many there were).
    runtime.shutdown_timeout(AFTER_GRACE);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keycard-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the process may take, after the shutdown grace, to leave the roll of instances and stop
/// its runtime; a watchdog ends it then whatever its threads are doing.
const AFTER_GRACE: Duration = Duration::from_secs(1);

async fn run(config: Config) -> Result<(), String> {
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => serve(config).await,
        Some("rotate-keys") => rotate_keys(&config),
        Some("health") => {
            use keycard_server::health::{probe, Check};
            let check = match std::env::args().nth(2).as_deref() {
                None | Some("ready") => Check::Ready,
                Some("live") => Check::Live,
                Some(other) => {
                    return Err(format!("health: expected live or ready, not {other:?}"))
                }
            };
            probe(config.addr, check, Duration::from_secs(10))
        }
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    }
}

fn rotate_keys(config: &Config) -> Result<(), String> {
    let schedule = &config.operations.key_schedule;
    let rotated = keycard::keys::rotate(&config.keys_file, config.mode, schedule)
        .map_err(|e| e.to_string())?;
    let wait = rotated.signs_from - keycard::Clock::system().now();
    if wait > 0 {
        println!("new signing key {} published; it signs in {wait} s", rotated.kid);
    } else {
        println!("new signing key {} signs now", rotated.kid);
    }
    for kid in &rotated.retired {
        println!("retired key {kid}: everything it signed has expired");
    }
    Ok(())
}

async fn serve(mut config: Config) -> Result<(), String> {
    let addr = config.addr;
    let limits = config.limits.clone();
    let grace = limits.shutdown_grace;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    // KEYCARD_ADDR with port 0 (a free port, as the tests ask): the defaults derived from it
    // name the port actually bound, which browsers address (and DPoP proofs name).
    config.bound_to(bound);
    let config_metrics = config.operations.metrics_addr;
    if config_metrics.is_some() {
        // Before the app is built: the core counts from its first request.
        keycard_server::metrics::install();
    }
    let (router, desk) = keycard_server::build(config).await.map_err(|e| e.to_string())?;
    keycard_server::spawn_housekeeping(desk.clone(), keycard::operations::KEY_RELOAD_INTERVAL);
    if let Some(addr) = config_metrics {
        let bound = keycard_server::metrics::serve(addr, desk.clone())
            .await
            .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
        // The tests read the port from this line, as from the next.
        println!("Metrics at http://{bound}/metrics");
    }
    // On stdout whatever RUST_LOG says: the end-to-end harness reads the port from this line.
    println!("Keycard is open at http://{bound}");
    keycard_server::serve(listener, router, limits, shutdown_signal(grace))
        .await
        .map_err(|e| e.to_string())?;
    if tokio::time::timeout(AFTER_GRACE / 2, desk.leave()).await.is_err() {
        tracing::warn!("could not leave the roll of instances in time: the others will notice");
    }
    tracing::info!("Keycard has closed");
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM, and starts the watchdog that ends the process
/// [`AFTER_GRACE`] after the `grace`, even if every worker thread is stuck.
async fn shutdown_signal(grace: Duration) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!(grace_secs = grace.as_secs(), "shutting down: finishing requests in flight");
    let deadline = grace + 2 * AFTER_GRACE;
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        eprintln!(
            "keycard-server: still running {} s after the stop signal: exiting",
            deadline.as_secs()
        );
        std::process::exit(1);
    });
}
