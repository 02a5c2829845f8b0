//! `/amenities`: the gym and the pool, guarded by a resource server that checks key cards with
//! the hotel's public keys alone.

use leptos::prelude::*;

use crate::auth::use_auth;
use crate::components::Protected;

/// `/amenities` (checked-in guests only).
#[component]
pub fn Amenities() -> impl IntoView {
    view! {
        <Protected>
            <AmenityDoors />
        </Protected>
    }
}

#[component]
fn AmenityDoors() -> impl IntoView {
    let auth = use_auth();
    let answer = RwSignal::new(None::<(u16, String)>);
    let open = move |name: &'static str| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            auth.note("request", format!("{name}: the door reads the key card (public keys only)"));
            let result = browser_get(&format!("/amenities/{name}")).await;
            if let Ok((status, _)) = &result {
                auth.note(
                    if *status == 200 { "ok" } else { "expired" },
                    format!("{name}: {status}"),
                );
            }
            answer.set(result.ok());
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (name, auth);
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
                {move || answer.get().map(|(status, body)| format!("HTTP {status}\n{body}"))}
            </pre>
            <h2>"The trade-off"</h2>
            <p>
                "Because the door only checks the signature, a key card keeps opening the gym after its booking is cancelled, until it expires (two minutes at most here). Your room and your bookings page are different: they also ask whether the booking is still active, so a cancellation bites there at once. Stateless checks scale and need no database; stateful checks revoke instantly. Short key cards keep the stateless window small."
            </p>
        </section>
    }
}

/// A same-origin GET from the browser (the key card cookie goes along): status and body.
#[cfg(feature = "hydrate")]
async fn browser_get(url: &str) -> Result<(u16, String), ()> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let response = JsFuture::from(window().fetch_with_str(url)).await.map_err(|_| ())?;
    let response: web_sys::Response = response.dyn_into().map_err(|_| ())?;
    let text = JsFuture::from(response.text().map_err(|_| ())?).await.map_err(|_| ())?;
    Ok((response.status(), text.as_string().unwrap_or_default()))
}
