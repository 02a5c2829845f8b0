use leptos::prelude::*;

use crate::auth::use_auth;

/// The article's four steps, in the hotel's words.
const STEPS: [(&str, &str, &str); 4] = [
    (
        "Check-in",
        "Login",
        "You show your password once. The front desk hands you a key card (a short-lived access \
         token) and a booking confirmation (a long-lived refresh token).",
    ),
    (
        "Open doors",
        "Accessing resources",
        "Every request carries the key card. The room and the amenities check its signature with \
         the hotel's public keys; nobody asks the front desk.",
    ),
    (
        "Key card expires",
        "Token expiry",
        "After a couple of minutes the key card stops opening doors. Show the booking \
         confirmation at the front desk for a new card, and a new confirmation: the old one is \
         now void, and showing it again cancels the booking.",
    ),
    (
        "Check-out",
        "Logout or expiry",
        "Check out, or let the booking lapse, and both tokens are worthless: check in again.",
    ),
];

/// `/`: what Keycard shows, the hotel analogy, and the four steps.
#[component]
pub fn Lobby() -> impl IntoView {
    let auth = use_auth();
    // The step the visitor picked to read about; until then, the one they stand at.
    let picked = RwSignal::new(None::<usize>);
    let here = move || auth.stage().step();
    let step = Signal::derive(move || picked.get().unwrap_or_else(here));
    view! {
        <section class="hero">
            <h1>"Welcome to the Keycard hotel"</h1>
            <p class="lede">
                "A working demonstration of JWT access and refresh tokens. Your "
                <strong>"key card"</strong> " (the access token) opens your room and the amenities, and "
                "expires soon. Your " <strong>"booking confirmation"</strong>
                " (the refresh token) gets you a new key card at the " <strong>"front desk"</strong>
                " without checking in again."
            </p>
        </section>
        <section class="card" aria-labelledby="steps-title">
            <h2 id="steps-title">"How a stay works"</h2>
            <Transition fallback=|| ()>
                <ol class="steps" role="list">
                    {STEPS
                        .iter()
                        .enumerate()
                        .map(|(i, (hotel, token, _))| {
                            view! {
                                <li class="step" class:current=move || step.get() == i class:here=move || here() == i>
                                    <button
                                        type="button"
                                        class="step-button"
                                        aria-pressed=move || (step.get() == i).to_string()
                                        on:click=move |_| picked.set(Some(i))
                                    >
                                        <span class="step-number">{i + 1}</span>
                                        <span class="step-hotel">{*hotel}</span>
                                        <span class="step-token">{*token}</span>
                                        <Show when=move || here() == i>
                                            <span class="you-are-here">"You are here"</span>
                                        </Show>
                                    </button>
                                </li>
                            }
                        })
                        .collect_view()}
                </ol>
                <p class="step-text" aria-live="polite" data-testid="step-text">
                    {move || STEPS[step.get()].2}
                </p>
            </Transition>
            <p>
                <a class="button primary" href="/register">"Register"</a>
                " or "
                <a href="/login">"check in"</a>
                " to follow every step on your own key card."
            </p>
        </section>
        <section class="card" aria-labelledby="hands-title" data-testid="bearer-vs-dpop">
            <h2 id="hands-title">"A key card for any hand, or one that only works in yours"</h2>
            <div class="grid-2">
                <div>
                    <h3>"Bearer"</h3>
                    <p>
                        "A plain key card opens the door for whoever holds it, like a hotel key card found in the corridor. That is why it expires soon, and why the front desk replaces the booking confirmation at every visit and cancels the booking when an old one turns up: it can only notice a theft after the thief has used a copy."
                    </p>
                </div>
                <div>
                    <h3>"DPoP"</h3>
                    <p>
                        "This browser keeps a key the hotel can check but no one can copy. At check-in the hotel writes that key into your key card and your booking; at every door, and at the front desk, the browser signs a small note for that one request. A perfect copy of your key card, or of your booking confirmation, in someone else's hand opens nothing: the theft is prevented, not just detected."
                    </p>
                </div>
            </div>
        </section>
        <section class="card" aria-labelledby="native-title" data-testid="browser-vs-native">
            <h2 id="native-title">"The same stay from a terminal"</h2>
            <div class="grid-2">
                <div>
                    <h3>"The browser"</h3>
                    <p>
                        "Checks in with your password. Its booking confirmation lives in a cookie the page's own scripts cannot read (HttpOnly), sent only to the front desk's address: if a script ever slipped into the page, it still could not carry the confirmation away."
                    </p>
                </div>
                <div>
                    <h3>"A terminal or a TV"</h3>
                    <p>
                        "Has no check-in form, so it shows a short code; you approve it at "
                        <a href="/device">"/device"</a>
                        " in this browser (the device authorization grant, RFC 8628). It gets the same kind of key card, for a booking of its own, and keeps its booking confirmation itself, showing it to the front desk in the body of its request. Try it: "
                        <code>"cargo run -p keycard-cli -- login"</code>
                        ". Approve only a code you started yourself: a code someone sent you is how device-code phishing works."
                    </p>
                </div>
            </div>
        </section>
    }
}
