//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default: info for Keycard, warn for the
//! rest). Nothing logged here ever carries a token, password or key.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (e.g. from several tests) are no-ops.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("warn,keycard=info,keycard_server=info,keycard_app=info,tower_http=info")
    });
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}
