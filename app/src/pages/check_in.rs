//! `/login` (check-in) and `/register`: forms that work before hydration too (a plain POST that
//! the server answers with a redirect back here, `?error=<code>` on failure).

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::{use_location, use_navigate, use_query_map};

use crate::api::{ApiError, CheckInResponse, Login, Register};
use crate::auth::use_auth;
use crate::components::ClientOnly;
use crate::redirect;

/// Where to go after check-in: the `next` parameter, normalised, when it stays on this site;
/// else the room (see [`crate::redirect`]).
fn next_page() -> String {
    let next = redirect::next_param(&use_location().search.get_untracked());
    redirect::next_or_room(next.as_deref(), &redirect::site_origin())
}

/// The message for an error code carried back in `?error=` by a no-JavaScript form post.
fn message_for(code: &str) -> &'static str {
    match code {
        "invalid_credentials" => "Wrong username or password.",
        "invalid_username" => "Usernames are 3 to 32 letters, digits, '_', '.' or '-'.",
        "weak_password" => {
            "That password is too weak: 8 to 128 characters, not a common one, not your username."
        }
        "username_taken" => "That username is taken.",
        "too_many_requests" => "Too many attempts. Wait a minute and try again.",
        "bad_request" => "Please fill in both fields.",
        "session_expired" => {
            "Your booking lapsed: the key card and the booking confirmation have both expired \
             (step 4). Check in again to get new ones."
        }
        _ => "Something went wrong. Please try again.",
    }
}

#[component]
fn CheckInForm(register: bool) -> impl IntoView {
    let auth = use_auth();
    let navigate = use_navigate();
    let query = use_query_map();
    let next = next_page();
    let login = ServerAction::<Login>::new();
    let signup = ServerAction::<Register>::new();
    let value: Signal<Option<Result<CheckInResponse, ApiError>>> =
        if register { signup.value().into() } else { login.value().into() };
    let pending: Signal<bool> =
        if register { signup.pending().into() } else { login.pending().into() };
    // Bind the stay to this browser's key (DPoP)? The fetch wrapper reads the choice.
    let bind = RwSignal::new(true);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| crate::dpop::bind_at_check_in(bind.get()));
    // The stage shows a check-in under way; a refused one hands it back.
    Effect::new(move |_| {
        let busy = pending.get();
        let refused = matches!(value.get(), Some(Err(_)));
        untrack(|| {
            if busy {
                auth.checking_in();
            } else if refused {
                auth.settled();
            }
        });
    });
    Effect::new({
        let next = next.clone();
        move |_| {
            if let Some(Ok(res)) = value.get() {
                untrack(|| {
                    auth.checked_in(res, true);
                    auth.note("ok", "checked in: key card and booking confirmation received");
                    navigate(&next, Default::default());
                });
            }
        }
    });
    let error = move || match value.get() {
        Some(Err(e)) => Some(match e.retry_after {
            Some(wait) => format!("Too many attempts. Try again in {wait} s."),
            None => message_for(&e.error.name()).to_owned(),
        }),
        Some(Ok(_)) => None,
        None => query.read().get("error").map(|code| message_for(&code).to_owned()),
    };
    let fields = move || {
        view! {
            <label for="username">"Username"</label>
            <input id="username" name="username" autocomplete="username" required minlength="3" maxlength="32" />
            <label for="password">"Password"</label>
            <input id="password" name="password" type="password" required minlength=if register { "8" } else { "1" }
                autocomplete=if register { "new-password" } else { "current-password" } />
            // Only with JavaScript, which makes and keeps the key: rendered once hydrated.
            <ClientOnly>
                <label class="check">
                    <input type="checkbox" data-testid="bind-dpop" prop:checked=bind on:change=move |e| bind.set(event_target_checked(&e)) />
                    " Bind my key card to this browser (DPoP)"
                </label>
            </ClientOnly>
            <p class="form-error" role="alert" data-testid="form-error">{error}</p>
            <button type="submit" class="primary" disabled=pending>
                {if register { "Register and check in" } else { "Check in" }}
            </button>
        }
    };
    view! {
        <section class="card narrow">
            <h1>{if register { "Register" } else { "Check-in" }}</h1>
            <p class="muted">
                {if register {
                    "Pick a name and a password. You are checked in straight away."
                } else {
                    "Show your password once; the front desk hands you a key card and a booking confirmation."
                }}
            </p>
            {if register {
                view! { <ActionForm action=signup attr:class="stack">{fields()}</ActionForm> }.into_any()
            } else {
                view! { <ActionForm action=login attr:class="stack">{fields()}</ActionForm> }.into_any()
            }}
            <p class="muted small" data-testid="binding-note">
                "With JavaScript on, this browser proves a key of its own as you check in, and your key card works only in its hand (DPoP). Without JavaScript the form still checks you in, with a key card that works in any hand (a bearer token)."
            </p>
            <p>
                {if register {
                    view! { "Already a guest? " <a href=redirect::with_next("/login", &next)>"Check in"</a> }
                        .into_any()
                } else {
                    view! { "New here? " <a href=redirect::with_next("/register", &next)>"Register"</a> }
                        .into_any()
                }}
            </p>
        </section>
    }
}

/// Already checked in (e.g. after a no-JavaScript form post came back): go on.
#[component]
fn OrGoOn(children: ChildrenFn) -> impl IntoView {
    let auth = use_auth();
    let next = next_page();
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let next = next.clone();
                let children = children.clone();
                Suspend::new(async move {
                    let _ = auth.loaded().await;
                    if auth.stay().is_some() {
                        view! { <Redirect path=next /> }.into_any()
                    } else {
                        children().into_any()
                    }
                })
            }}
        </Suspense>
    }
}

/// `/login`
#[component]
pub fn Login() -> impl IntoView {
    view! { <OrGoOn><CheckInForm register=false /></OrGoOn> }
}

/// `/register`
#[component]
pub fn Register() -> impl IntoView {
    view! { <OrGoOn><CheckInForm register=true /></OrGoOn> }
}
