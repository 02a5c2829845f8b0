//! `keycard-server`: serves the hotel, or rotates its signing keys.

use std::process::ExitCode;
use std::time::Duration;

use keycard::Config;

const USAGE: &str = "usage: keycard-server [serve | rotate-keys]

  serve        run the web server (the default)
  rotate-keys  add a new current signing key; the previous one keeps verifying
               until its tokens expire, the one before is retired

Configuration comes from KEYCARD_* environment variables; see .env.example.";

#[tokio::main]
async fn main() -> ExitCode {
    keycard_server::telemetry::init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("keycard-server: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match std::env::args().nth(1).as_deref() {
        None | Some("serve") => serve(config).await,
        Some("rotate-keys") => keycard::keys::rotate(&config.keys_file, config.mode)
            .map(|kid| println!("new current signing key: {kid}"))
            .map_err(|e| e.to_string()),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keycard-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let addr = config.addr;
    let limits = config.limits.clone();
    let (router, desk) = keycard_server::build(config).await.map_err(|e| e.to_string())?;
    keycard_server::spawn_housekeeping(desk.clone(), Duration::from_secs(10));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    // On stdout whatever RUST_LOG says: the end-to-end harness reads the port from this line.
    println!("Keycard is open at http://{bound}");
    keycard_server::serve(listener, router, limits, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    desk.leave().await;
    tracing::info!("Keycard has closed");
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
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
    tracing::info!("shutting down: finishing requests in flight");
}
