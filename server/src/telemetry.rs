//! Logging: `tracing` to stdout, filtered by `RUST_LOG` (default: info for Keycard, warn for the
//! rest), as text or, with `KEYCARD_LOG_FORMAT=json`, one JSON object per line for log
//! shippers; and panics logged through it. Nothing logged ever carries a token, password or key.
//!
//! A JSON line holds `timestamp`, `level`, `target`, the event's fields at the top level
//! (`message` among them) and `span` (the request's method and path). Security events have
//! target `keycard::security` and an `event` field: see `keycard::audit`.

use keycard::operations::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber and the panic hook once; later calls are no-ops for the
/// subscriber.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("warn,keycard=info,keycard_server=info,keycard_app=info,tower_http=info")
    });
    let _ = match format {
        LogFormat::Text => {
            // Colours only for a person at a terminal, not in log files and journals.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_target(false)
                .with_ansi(ansi)
                .try_init()
        }
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .try_init(),
    };
    log_panics();
}

/// Logs every panic once, as an error event: inside a request it carries that request's span
/// (method and path), so the log names the route. Only the code location is recorded, not the
/// panic's message, which may quote whatever input the failing code held (a query string, a
/// token). The word `panicked` is what the test harnesses look for in server logs.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
        tracing::error!(location = location.as_deref().unwrap_or("unknown"), "panicked");
    }));
}
