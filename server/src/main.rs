//! `keycard-server`: serves the hotel, or rotates its signing keys.

use std::process::ExitCode;
use std::time::Duration;

use keycard::Config;

const USAGE: &str = "usage: keycard-server [serve | rotate-keys]

  serve        run the web server (the default)
  rotate-keys  add a new current signing key; the previous one keeps verifying
               until its tokens expire, the one before is retired

Configuration comes from KEYCARD_* environment variables; see .env.example.";

fn main() -> ExitCode {
    keycard_server::telemetry::init();
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
        Some("rotate-keys") => keycard::keys::rotate(&config.keys_file, config.mode)
            .map(|kid| println!("new current signing key: {kid}"))
            .map_err(|e| e.to_string()),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    }
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
    let (router, desk) = keycard_server::build(config).await.map_err(|e| e.to_string())?;
    keycard_server::spawn_housekeeping(desk.clone(), Duration::from_secs(10));
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
