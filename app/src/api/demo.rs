//! The demo controls' server functions: a thief who copies the booking confirmation, and a key
//! card that expires in seconds. Compiled only with the `demo` feature (on by default); served
//! only while `KEYCARD_DEMO_CONTROLS` is on.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::ssr;
use super::{ApiError, MeResponse};
#[cfg(feature = "ssr")]
use crate::guard::{CheckedIn, KeyCard};

/// What the demo thief achieved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoOutcome {
    /// `copied`, `got_in`, `caught` or `too_late`.
    pub outcome: String,
    pub generation: Option<i64>,
}

/// `POST /api/demo/enabled`: whether this server offers the demo controls (`true` or `false`).
/// A setting of the server, not of a booking: pages ask once, whoever is (or is not) checked in.
#[server(prefix = "/api", endpoint = "demo/enabled")]
pub async fn demo_enabled() -> Result<bool, ApiError> {
    Ok(ssr::front_desk()?.policy().demo_controls)
}

/// `POST /api/demo/steal`: demo only. A thief copies the booking confirmation; the copy stays
/// on the server.
#[server(prefix = "/api", endpoint = "demo/steal")]
pub async fn demo_steal() -> Result<DemoOutcome, ApiError> {
    let CheckedIn { guest, .. } = CheckedIn::from_server_fn().await?;
    let generation = ssr::front_desk()?.demo_steal(&guest).await?;
    Ok(DemoOutcome { outcome: "copied".into(), generation: Some(generation) })
}

/// `POST /api/demo/thief`: demo only. The thief shows the copy at the front desk.
#[server(prefix = "/api", endpoint = "demo/thief")]
pub async fn demo_thief() -> Result<DemoOutcome, ApiError> {
    // The amenity door on purpose: the guest's own booking may already be cancelled.
    let KeyCard { holder, .. } = KeyCard::from_server_fn().await?;
    let outcome = ssr::front_desk()?.demo_thief_visit(&holder).await?;
    let outcome = serde_json::to_value(outcome).ok().and_then(|v| v.as_str().map(str::to_owned));
    Ok(DemoOutcome { outcome: outcome.unwrap_or_default(), generation: None })
}

/// `POST /api/demo/expire-soon`: demo only. Swaps the key card for one that expires in 10 s.
#[server(prefix = "/api", endpoint = "demo/expire-soon")]
pub async fn demo_expire_soon() -> Result<MeResponse, ApiError> {
    let CheckedIn { guest, .. } = CheckedIn::from_server_fn().await?;
    let desk = ssr::front_desk()?;
    let (key_card, claims) = desk.demo_short_key_card(&guest, 10).await?;
    let short = desk.verify_booking(&key_card).await?;
    let me = ssr::me_for(&desk, &short, key_card).await?;
    // Like every key card cookie, it outlives the card so that expiry reads as expiry.
    ssr::set_key_card_cookie(&me.access_token, me.session.idle_expires_at - claims.iat);
    Ok(me)
}
