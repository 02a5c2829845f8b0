//! Where a request came from: the client's address (behind trusted proxies too) and its
//! `User-Agent`, for the front desk's throttles and the bookings list.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use keycard::front_desk::ClientInfo;

use crate::AppState;

/// Records where the request came from for the front desk's rate limits and bookings list: the
/// peer, or, when the peer is a trusted proxy, the rightmost `X-Forwarded-For` address that is
/// not one (`keycard::proxies`).
pub(super) async fn client_info(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let address = peer.map(|peer| {
        let forwarded = req.headers().get_all("x-forwarded-for").iter();
        let forwarded = forwarded.filter_map(|v| v.to_str().ok());
        state.config.trusted_proxies.client_address(peer, forwarded)
    });
    let user_agent =
        req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    req.extensions_mut().insert(ClientInfo { address, user_agent, dpop: None });
    next.run(req).await
}
