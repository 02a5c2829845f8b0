//! `/room`: the key card inspector, the booking confirmation panel, room service, the demo
//! controls (the forge lab among them), the wire and the timeline.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::room_service;
#[cfg(feature = "demo")]
use crate::api::{
    demo_expire_soon, demo_lapse, demo_steal, demo_thief, demo_thief_key_card, DoorAnswer,
    LAPSE_SECS,
};
use crate::auth::{use_auth, Auth, Stay};
#[cfg(feature = "demo")]
use crate::components::ForgeLab;
use crate::components::{
    ClientOnly, Countdown, HydrateLater, KeyCardInspector, Protected, Timeline, WirePanel,
};

/// `/room` (checked-in guests only).
#[component]
pub fn Room() -> impl IntoView {
    view! {
        <Protected>
            <RoomInside />
        </Protected>
    }
}

#[component]
fn RoomInside() -> impl IntoView {
    let auth = use_auth();
    let stay = Memo::new(move |_| auth.stay());
    let field = move |f: fn(&Stay) -> i64| {
        Signal::derive(move || stay.get().as_ref().map(f).unwrap_or_default())
    };
    view! {
        <section class="hero">
            <h1>"Your room"</h1>
            <p class="lede">
                "Welcome, " <strong data-testid="guest-name">{move || stay.get().map(|s| s.guest.username)}</strong>
                ". Below is the key card your browser holds, the booking it belongs to, and everything that happened to it."
            </p>
        </section>
        // Hydrated a panel at a time, so that no one task takes the whole room (see HydrateLater).
        <HydrateLater>
        <KeyCardInspector token=Signal::derive(move || stay.get().map(|s| s.key_card).unwrap_or_default()) />
        </HydrateLater>
        <HydrateLater>
        <Binding bound=Signal::derive(move || stay.get().is_some_and(|s| crate::dpop::is_bound(&s.key_card))) />
        <section class="card" aria-labelledby="booking-title" data-testid="booking">
            <h2 id="booking-title">"Your booking confirmation (refresh token)"</h2>
            <p class="muted">
                "The confirmation itself lives in an HttpOnly cookie that only the front desk (/api/auth) ever sees; this page cannot read it, so neither can a malicious script. What the page knows:"
            </p>
            <dl class="facts">
                <dt>"Booking (session)"</dt>
                <dd><code data-testid="session-id">{move || stay.get().map(|s| s.booking.session_id)}</code></dd>
                <dt>"Generation"</dt>
                <dd data-testid="generation">{move || stay.get().map(|s| s.booking.generation)}</dd>
            </dl>
            <Countdown label="Idle limit: ends unless used within" from=field(|s| s.booking.last_used_at) until=field(|s| s.booking.idle_expires_at) />
            <Countdown label="Absolute limit: ends whatever happens in" from=field(|s| s.booking.created_at) until=field(|s| s.booking.absolute_expires_at) />
        </section>
        </HydrateLater>
        <HydrateLater><RoomServicePanel /></HydrateLater>
        {demo_controls(auth)}
        <HydrateLater><WirePanel /></HydrateLater>
        <ClientOnly>
            <Timeline />
        </ClientOnly>
    }
}

/// Whose hand the key card works in: this browser's key (DPoP) or anyone's (bearer).
#[component]
fn Binding(#[prop(into)] bound: Signal<bool>) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="binding-title" data-testid="binding" data-bound=move || bound.get().to_string()>
            <h2 id="binding-title">{move || if bound.get() { "A key card that only works in your hand (DPoP)" } else { "A key card that works in any hand (bearer)" }}</h2>
            {move || if bound.get() {
                view! {
                    <p>
                        "At check-in this browser made a key pair whose private half it will never hand out, not even to this page (WebCrypto, non-extractable, kept in IndexedDB), and proved it to the hotel. Your key card names that key (its " <code>"cnf.jkt"</code> " claim) and so does your booking: every call this page makes carries a fresh proof, signed by the key for that one request (" <code>"DPoP"</code> " header). A perfect copy of the key card, or of the booking confirmation, opens nothing without the key. Check-out deletes it."
                    </p>
                    <p class="muted">
                        "What it does not stop: a script running in this page can still ask the browser to sign, and so use the key while the page is open. A page load cannot carry a proof either: the key card cookie still renders your own pages, and changes nothing."
                    </p>
                }.into_any()
            } else {
                view! {
                    <p>
                        "This key card is a bearer token: whoever holds a copy can use it until it expires, as the article describes. Checking in with JavaScript on binds the key card to a key of this browser's (DPoP); a check-in without JavaScript, or from a client that proves no key, gets a bearer key card."
                    </p>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn RoomServicePanel() -> impl IntoView {
    let auth = use_auth();
    let answer = RwSignal::new(None::<String>);
    let call = move |_| {
        spawn_local(async move {
            let result = auth.protected("Room service", room_service).await;
            answer.set(Some(match result {
                Ok(order) => order.message,
                Err(e) => e.message,
            }));
        });
    };
    view! {
        <section class="card" aria-labelledby="service-title">
            <h2 id="service-title">"Call room service"</h2>
            <p class="muted">
                "A protected, stateful call: the server checks the key card's signature and that the booking is still active. If the key card has expired, the page goes to the front desk once and retries; every step lands on the timeline."
            </p>
            <div class="row">
                <button type="button" class="primary" on:click=call>"Call room service"</button>
                <label class="check">
                    <input type="checkbox" bind:checked=auth.refresh_early />
                    " Visit the front desk 5 s before the key card expires"
                </label>
            </div>
            <p role="status" data-testid="room-service-answer">{move || answer.get()}</p>
        </section>
    }
}

/// The demo controls, while the server offers them.
#[cfg(feature = "demo")]
fn demo_controls(auth: Auth) -> impl IntoView {
    view! {
        <Show when=move || auth.demo_controls()>
            <HydrateLater><DemoControls /></HydrateLater>
            <HydrateLater><ForgeLab /></HydrateLater>
        </Show>
    }
}

/// Built without the demo: no controls, no code behind them.
#[cfg(not(feature = "demo"))]
fn demo_controls(_: Auth) -> impl IntoView {}

#[cfg(feature = "demo")]
#[component]
fn DemoControls() -> impl IntoView {
    let auth = use_auth();
    let said = RwSignal::new(None::<String>);
    let steal = move |_| {
        spawn_local(async move {
            let text = match auth.protected("Thief copies the confirmation", demo_steal).await {
                Ok(o) => format!(
                    "A thief copied your booking confirmation (generation {}). The copy is kept on the server; it never reaches this page.",
                    o.generation.unwrap_or_default()
                ),
                Err(e) => e.message,
            };
            said.set(Some(text));
        });
    };
    let thief = move |_| {
        spawn_local(async move {
            auth.note("request", "the thief shows the copied confirmation at the front desk");
            let outcome = demo_thief().await;
            let what = outcome.as_ref().map(|o| o.outcome.clone()).unwrap_or_default();
            said.set(Some(match outcome {
                Ok(o) => match o.outcome.as_str() {
                    "stopped" => "Stopped: your booking is bound to this browser's key. The thief showed a perfect copy of the confirmation with a proof of its own key, and the front desk refused it (invalid_dpop_proof, rule key). Nothing about your booking changed: prevention, not detection.",
                    "caught" => "Caught: the copy was already replaced, so the front desk cancelled the whole booking.",
                    "got_in" => "The copy was still current: the thief got a key card. Your next visit to the front desk shows an old confirmation and cancels the booking.",
                    _ => "Too late: the booking was already over.",
                }
                .to_owned(),
                Err(e) => e.message,
            }));
            auth.version.update(|v| *v += 1);
            // Last: a cancelled booking takes this panel (and `said`) off the page.
            match what.as_str() {
                "caught" => auth.cancelled("theft detected: the front desk recognised a replayed confirmation and cancelled the booking", true),
                "got_in" => auth.note("alarm", "the thief got a new key card; your next visit to the front desk will trip the alarm"),
                _ => {}
            }
        });
    };
    let copy_key_card = move |_| {
        spawn_local(async move {
            auth.note("request", "a thief copies the key card and tries the gym with it");
            let said_of = |a: &DoorAnswer| match a.answer.as_str() {
                "opened" => "the door opened".to_owned(),
                _ => format!(
                    "refused ({}, {})",
                    a.rule.clone().unwrap_or_default(),
                    a.section.clone().unwrap_or_default()
                ),
            };
            said.set(Some(match auth.protected("Thief copies the key card", demo_thief_key_card).await {
                Ok(theft) => format!(
                    "A thief with a perfect copy of your key card tried the gym. As a bearer token: {}. With a proof of its own key: {}.{}",
                    said_of(&theft.as_bearer),
                    said_of(&theft.with_own_key),
                    if theft.as_bearer.answer == "opened" {
                        " A bearer key card works in any hand until it expires."
                    } else {
                        " Your key card only works with this browser's key."
                    }
                ),
                Err(e) => e.message,
            }));
        });
    };
    let expire_soon = move |_| {
        spawn_local(async move {
            match auth.protected("Short-lived key card", demo_expire_soon).await {
                Ok(me) => {
                    auth.reloaded(me);
                    said.set(Some("Your key card now expires in 10 seconds.".into()));
                }
                Err(e) => said.set(Some(e.message)),
            }
        });
    };
    let lapse = move |_| {
        spawn_local(async move {
            match auth.protected("Booking lapses", demo_lapse).await {
                Ok(me) => {
                    auth.reloaded(me);
                    auth.note("info", format!("the booking's idle and absolute limits now end in {LAPSE_SECS} s, with the key card"));
                    said.set(Some(format!(
                        "Your booking now lapses in {LAPSE_SECS} s, and your key card expires with it. Then the page goes to the front desk, as it would on its next call, and is turned away: step 4."
                    )));
                    // The next trip to the front desk, just after both tokens lapsed: counted
                    // from now rather than from the server's timestamps, which a browser whose
                    // clock runs ahead would reach too early.
                    let wait = LAPSE_SECS as u64 + 1;
                    set_timeout(
                        move || {
                            if auth.stay().is_some() {
                                spawn_local(async move {
                                    let _ = auth.front_desk().await;
                                });
                            }
                        },
                        std::time::Duration::from_secs(wait),
                    );
                }
                Err(e) => said.set(Some(e.message)),
            }
        });
    };
    view! {
        <section class="card demo" aria-labelledby="demo-title">
            <h2 id="demo-title">"Demo controls"</h2>
            <p class="muted">"Turned on in development; KEYCARD_DEMO_CONTROLS=false turns them off."</p>
            <div class="row">
                <button type="button" on:click=copy_key_card>"A thief copies my key card"</button>
                <button type="button" on:click=steal>"A thief copies my booking confirmation"</button>
                <button type="button" on:click=thief>"The thief uses it"</button>
                <button type="button" on:click=expire_soon>"Make my key card expire in 10 s"</button>
                <button type="button" on:click=lapse>"Let my whole booking lapse in 10 s"</button>
            </div>
            <p role="status" data-testid="demo-said">{move || said.get()}</p>
        </section>
    }
}
