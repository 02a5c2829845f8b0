//! Prometheus metrics: the recorder the core's counters (`keycard::audit`) and the HTTP layer
//! below write to, and the listener of its own that serves them at `/metrics`
//! (`KEYCARD_METRICS_ADDR`). Never on the public listener: the counters tell an attacker how
//! their attempts fare.
//!
//! Series and labels, all bounded: the core's families (see `keycard::audit`), and
//! `http_request_duration_seconds{route,method,status}` where `route` is the route's template
//! (`/amenities/{name}`, never the path asked for), `keycard_db_connections{state}` read at each
//! scrape, `keycard_database_up` (the readiness check's ping, at each scrape), and
//! `keycard_build_info{version}`.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use keycard::FrontDesk;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Histogram buckets in seconds: 1 ms (a door) to 10 s (a request near its timeout), with the
/// password hash's tens to hundreds of milliseconds well covered.
const BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the process's recorder (once; later calls return the same handle). Until this is
/// called, every count the core makes is a no-op.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .expect("the buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed in this process");
            keycard::audit::describe();
            metrics::describe_histogram!(
                "http_request_duration_seconds",
                metrics::Unit::Seconds,
                "Time to answer a request, by route template, method and status."
            );
            metrics::describe_gauge!(
                "keycard_db_connections",
                "Database connections the pool holds open, in use or idle."
            );
            metrics::describe_gauge!("keycard_build_info", "The running build, always 1.");
            metrics::describe_gauge!(
                "keycard_database_up",
                "1 if the database answered the scrape's ping within 1 s, else 0."
            );
            metrics::gauge!("keycard_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// Binds the metrics listener at `addr` and serves `/metrics` on it until the process ends;
/// returns the address bound (port 0 picks a free one).
pub async fn serve(addr: SocketAddr, desk: FrontDesk) -> std::io::Result<SocketAddr> {
    let handle = install();
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new().route("/metrics", get(scrape)).with_state((handle, desk));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(bound)
}

/// `GET /metrics`: the database's state and the pool's gauges as of now, then everything in
/// Prometheus' text format.
async fn scrape(State((handle, desk)): State<(PrometheusHandle, FrontDesk)>) -> Response {
    let up = crate::health::database_answers(&desk).await;
    metrics::gauge!("keycard_database_up").set(if up { 1.0 } else { 0.0 });
    let open = desk.connections();
    metrics::gauge!("keycard_db_connections", "state" => "in_use").set(open.in_use);
    metrics::gauge!("keycard_db_connections", "state" => "idle").set(open.idle);
    let mut res = handle.render().into_response();
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    res
}

/// The layer that times every request: `http_request_duration_seconds`. The route is the
/// template the router matched; what no route matched (files, the 404 page) is `unmatched`,
/// so a scanner's made-up paths add no series.
pub(crate) async fn time_requests(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::histogram!(
        "http_request_duration_seconds",
        "route" => route,
        "method" => method,
        "status" => status
    )
    .record(started.elapsed().as_secs_f64());
    res
}

/// Methods as label values: the standard ones by name, anything a client made up as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::TRACE), "other");
    }
}
