//! `/amenities`: the gym and the pool, guarded by a resource server that checks key cards with
//! the hotel's public keys alone.

use leptos::prelude::*;

use crate::api::{revoke_session, room_service, ApiError, ErrorCode};
use crate::auth::use_auth;
use crate::components::{HydrateLater, Protected, WirePanel};

/// `/amenities` (checked-in guests only).
#[component]
pub fn Amenities() -> impl IntoView {
    view! {
        <Protected>
            <AmenityDoors />
            <HydrateLater><WirePanel /></HydrateLater>
        </Protected>
    }
}

#[component]
fn AmenityDoors() -> impl IntoView {
    let auth = use_auth();
    let answer = RwSignal::new(None::<String>);
    let open = move |name: &'static str| {
        leptos::task::spawn_local(async move {
            let result = auth.protected(name, move || amenity(name)).await;
            answer.set(Some(match result {
                Ok(body) => format!("HTTP 200\n{body}"),
                Err(e) => format!("HTTP {}\n{}", e.status(), e.message),
            }));
        });
    };
    // The trade-off, live: cancel this booking, then try a stateless door and a stateful one with
    // the same, still unexpired key card. The auth context is deliberately not told yet, so the
    // page stays here to show both answers.
    let tradeoff = RwSignal::new(None::<String>);
    let try_both = move |_| {
        leptos::task::spawn_local(async move {
            // A fresh key card first, so the one tried below is clearly unexpired.
            if auth.front_desk().await.is_err() {
                return;
            }
            let Some(stay) = untrack(|| auth.stay()) else { return };
            if let Err(e) = revoke_session(stay.booking.session_id.clone()).await {
                tradeoff.set(Some(e.message));
                return;
            }
            auth.note("alarm", "this booking was cancelled to show the trade-off");
            let gym = status_line(amenity("gym").await);
            let room = status_line(room_service().await);
            tradeoff.set(Some(format!(
                "Booking cancelled. Gym (public keys only): HTTP {gym}. Room service (checks the booking): HTTP {room}."
            )));
        });
    };
    view! {
        <section class="hero">
            <h1>"Amenities"</h1>
            <p class="lede">
                "The gym and the pool are run by a separate resource server. It checks your key card's signature with the hotel's published public keys ("
                <a href="/.well-known/jwks.json">"JWKS"</a>
                ") and nothing else: it never asks the front desk or the database."
            </p>
        </section>
        <section class="card">
            <div class="row">
                <button type="button" class="primary" on:click=move |_| open("gym")>"Open the gym"</button>
                <button type="button" class="primary" on:click=move |_| open("pool")>"Open the pool"</button>
            </div>
            <pre class="answer" data-testid="amenity-answer">
                {move || answer.get()}
            </pre>
            <h2>"The trade-off"</h2>
            <p>
                "Because the door only checks the signature, a key card keeps opening the gym after its booking is cancelled, until it expires (two minutes at most here). Your room and your bookings page are different: they also ask whether the booking is still active, so a cancellation bites there at once. Stateless checks scale and need no database; stateful checks revoke instantly. Short key cards keep the stateless window small."
            </p>
            <div class="row">
                <button type="button" class="danger" on:click=try_both>
                    "Cancel this booking, then try the gym and room service"
                </button>
            </div>
            <p role="status" data-testid="tradeoff">{move || tradeoff.get()}</p>
        </section>
    }
}

/// `200`, or the error's status and code (`401 session_revoked`).
fn status_line<T>(result: Result<T, ApiError>) -> String {
    match result {
        Ok(_) => "200".to_owned(),
        Err(e) => format!("{} {}", e.status(), e.error.name()),
    }
}

/// Opens an amenity with a same-origin GET from the browser (the key card cookie goes along):
/// the pass on 200, the typed error otherwise.
async fn amenity(name: &'static str) -> Result<String, ApiError> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen_futures::JsFuture;
        let network = |_| ApiError::new(ErrorCode::Network, "the door did not answer");
        let response = JsFuture::from(window().fetch_with_str(&format!("/amenities/{name}")))
            .await
            .map_err(network)?;
        let response: web_sys::Response = response.dyn_into().map_err(network)?;
        let text = JsFuture::from(response.text().map_err(network)?).await.map_err(network)?;
        let body = text.as_string().unwrap_or_default();
        if response.status() == 200 {
            Ok(body)
        } else {
            Err(serde_json::from_str(&body)
                .unwrap_or_else(|_| ApiError::new(ErrorCode::Internal, body)))
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = name;
        Err(ApiError::new(ErrorCode::Network, "doors are opened from the browser"))
    }
}
