//! Health checks: liveness (`/healthz/live`: the process serves), readiness (`/healthz/ready`,
//! and `/healthz` as before: the database answered within [`READY_WITHIN`]), and
//! `keycard-server health`, the same checks from the command line for systemd and containers,
//! which have no curl to spare.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::AppState;

/// The longest readiness waits for the database: load balancers give up on a check after a
/// second or two, and an answer they never see counts as neither up nor down. Under a second,
/// so the whole answer (connection and all) arrives within one.
pub const READY_WITHIN: Duration = Duration::from_millis(750);

/// `GET /healthz/live`: 200 whenever the process serves requests (restart it if not). Touches
/// nothing else, so a database outage never gets every instance restarted.
pub async fn live() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// `GET /healthz/ready` (and `/healthz`): 200 when the database answered within
/// [`READY_WITHIN`], 503 otherwise: send this instance traffic or not.
pub async fn ready(State(state): State<AppState>) -> Response {
    if database_answers(&state.desk).await {
        return Json(serde_json::json!({ "status": "ok" })).into_response();
    }
    (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "unavailable" })))
        .into_response()
}

/// Whether the database answered within [`READY_WITHIN`] (logged once when not).
pub async fn database_answers(desk: &keycard::FrontDesk) -> bool {
    let problem = match tokio::time::timeout(READY_WITHIN, desk.ping()).await {
        Ok(Ok(())) => return true,
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} ms", READY_WITHIN.as_millis()),
    };
    tracing::error!(error = %problem, "not ready: the database is unavailable");
    false
}

/// Which check `keycard-server health` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// `/healthz/live`.
    Live,
    /// `/healthz/ready`.
    Ready,
}

impl Check {
    fn path(self) -> &'static str {
        match self {
            Self::Live => "/healthz/live",
            Self::Ready => "/healthz/ready",
        }
    }
}

/// `keycard-server health [live|ready]`: asks the server listening on `addr` (a wildcard address
/// is asked on loopback) until it answers 200 or `wait` has passed; the last answer otherwise.
pub fn probe(addr: SocketAddr, check: Check, wait: Duration) -> Result<(), String> {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            [0u16, 0, 0, 0, 0, 0, 0, 1].into()
        });
    }
    let until = Instant::now() + wait;
    loop {
        let answer = ask(addr, check.path());
        match answer {
            Ok(200) => return Ok(()),
            _ if Instant::now() < until => std::thread::sleep(Duration::from_millis(200)),
            Ok(status) => return Err(format!("{} answered {status}", check.path())),
            Err(e) => return Err(format!("no answer at {addr}: {e}")),
        }
    }
}

/// One HTTP/1.0 GET of `path`: the status code.
fn ask(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    // "HTTP/1.1 200"
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP answer"))
}
