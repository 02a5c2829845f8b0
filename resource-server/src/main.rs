//! `keycard-resource-server`: the spa next door. See the crate's documentation.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut settings =
        match keycard_resource_server::Settings::from_lookup(|k| std::env::var(k).ok()) {
            Ok(settings) => settings,
            Err(e) => {
                eprintln!("keycard-resource-server: bad configuration: {e}");
                return ExitCode::from(2);
            }
        };
    let listener = match tokio::net::TcpListener::bind(settings.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("keycard-resource-server: cannot listen on {}: {e}", settings.addr);
            return ExitCode::FAILURE;
        }
    };
    let bound = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    // A free port (port 0): the default public URL names the one bound, which clients address.
    if settings.public_origin.ends_with(":0") {
        settings.public_origin = format!("http://{bound}");
    }
    // On stdout: the integration test reads the port from this line.
    println!("The spa is open at http://{bound} (keys from {})", settings.jwks_url);
    let app = keycard_resource_server::router(keycard_resource_server::Spa::new(&settings));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keycard-resource-server: {e}");
            ExitCode::FAILURE
        }
    }
}
