use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_location;

use crate::auth::{use_auth, Stage};
use crate::redirect;

/// Check-in, told that the booking lapsed.
const LAPSED: &str = "/login?error=session_expired&";

/// Which side of the door the visitor is on. Kept in a memo so that the room is not rebuilt (and
/// its panels' state lost) each time the key card expires and is renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Door {
    Inside,
    AtFrontDesk,
    Cancelled,
    Lapsed,
    CheckedOut,
    Outside,
}

/// Shows `children` to a checked-in guest. With an expired key card it waits at the front desk
/// instead (no flash of a signed-out page); a visitor who is not checked in is sent to check-in
/// and brought back afterwards.
///
/// A `Transition`, not a `Suspense`: a panel inside that reloads (the timeline, after each new
/// key card) keeps the page on screen instead of falling back to "Checking your key card…"; with
/// step mode holding that reload, the fallback would also hide the button that sends it.
#[component]
pub fn Protected(children: ChildrenFn) -> impl IntoView {
    let auth = use_auth();
    let location = use_location();
    let children = StoredValue::new(children);
    view! {
        <Transition fallback=|| view! { <p class="muted">"Checking your key card…"</p> }>
            {move || Suspend::new(async move {
                let _ = auth.loaded().await;
                // Made here, inside the `Transition`: the stage is read from the page's load (a
                // resource), which a debug build wants read inside a `Suspense` or an effect.
                let door = Memo::new(move |_| match auth.stage() {
                    Stage::CheckedIn | Stage::KeyCardExpired | Stage::AtFrontDesk if auth.stay().is_some() => {
                        Door::Inside
                    }
                    Stage::KeyCardExpired | Stage::AtFrontDesk => Door::AtFrontDesk,
                    Stage::BookingCancelled => Door::Cancelled,
                    Stage::BookingLapsed => Door::Lapsed,
                    Stage::CheckedOut => Door::CheckedOut,
                    Stage::CheckedIn | Stage::SignedOut | Stage::CheckingIn => Door::Outside,
                });
                // `search` comes without its `?`.
                let search = location.search.get_untracked();
                let here = if search.is_empty() {
                    location.pathname.get_untracked()
                } else {
                    format!("{}?{search}", location.pathname.get_untracked())
                };
                view! {
                    {move || match door.get() {
                        Door::Inside => children.read_value()().into_any(),
                        Door::AtFrontDesk => view! {
                            <section class="card notice" role="status">
                                <h1>"At the front desk…"</h1>
                                <p>"Your key card has expired. Showing your booking confirmation for a new one."</p>
                            </section>
                        }.into_any(),
                        Door::Cancelled => view! {
                            <section class="card notice bad" role="alert" data-testid="booking-cancelled">
                                <h1>"Booking cancelled"</h1>
                                <p>
                                    "The front desk cancelled this booking: it was revoked, it expired, or an old booking confirmation turned up again (possible theft). Every key card and confirmation of it is void."
                                </p>
                                <a class="button primary" href="/login">"Check in again"</a>
                            </section>
                        }.into_any(),
                        Door::CheckedOut => view! {
                            <section class="card notice" role="status" data-testid="checked-out">
                                <h1>"Checked out"</h1>
                                <p>"Both tokens are void. Thank you for staying at Keycard."</p>
                                <a class="button primary" href="/login">"Check in again"</a>
                            </section>
                        }.into_any(),
                        // Step 4: both tokens are void, so back to check-in, which says why.
                        Door::Lapsed => view! {
                            <Redirect path=redirect::with_next(LAPSED, &here) />
                        }.into_any(),
                        Door::Outside => view! { <Redirect path=redirect::with_next("/login", &here) /> }.into_any(),
                    }}
                }
            })}
        </Transition>
    }
}
