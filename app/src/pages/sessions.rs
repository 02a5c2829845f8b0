//! `/sessions`: the guest's bookings; end one, all others, or all.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{logout, revoke_session, sessions};
use crate::auth::use_auth;
use crate::components::{duration_text, ClientOnly, HydrateLater, Protected, WirePanel};

/// `/sessions` (checked-in guests only).
#[component]
pub fn Sessions() -> impl IntoView {
    view! {
        <Protected>
            // The heading is the server's: it paints with the page, before the list arrives.
            <section class="hero">
                <h1>"Your bookings"</h1>
                <p class="lede">"Every check-in is a booking of its own, with its own key cards and confirmations."</p>
            </section>
            <SessionList />
            <HydrateLater><WirePanel /></HydrateLater>
        </Protected>
    }
}

#[component]
fn SessionList() -> impl IntoView {
    let auth = use_auth();
    let list = LocalResource::new(move || {
        auth.version.get();
        async move { auth.protected("List bookings", sessions).await }
    });
    let end = move |id: String| {
        spawn_local(async move {
            let _ = auth.protected("End a booking", || revoke_session(id.clone())).await;
            auth.version.update(|v| *v += 1);
        });
    };
    let end_scope = move |scope: &'static str| {
        spawn_local(async move {
            let result = auth.protected("Check out", || logout(Some(scope.to_owned()))).await;
            if result.is_ok() && scope == "all" {
                auth.checked_out(true);
            }
            auth.version.update(|v| *v += 1);
        });
    };
    view! {
        <section class="card">
            <div class="row">
                <button type="button" on:click=move |_| end_scope("others")>"End all other bookings"</button>
                <button type="button" class="danger" on:click=move |_| end_scope("all")>"End all bookings"</button>
            </div>
            // The list is the browser's (it goes through the auth context, key card and proof);
            // its slot keeps one booking's height from the start, so the panels below do not
            // jump when it arrives.
            <div class="bookings-slot">
            <ClientOnly>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || list.get().map(|result| match result {
                    Ok(list) => {
                        let current = list.current_session_id.clone();
                        view! {
                            <ul class="bookings" data-testid="bookings">
                                {list.sessions.into_iter().map(|s| {
                                    let is_current = s.session_id == current;
                                    let id = s.session_id.clone();
                                    let now = auth.now.get_untracked();
                                    view! {
                                        <li class="booking" class:current=is_current class:ended=!s.active data-session=s.session_id.clone()>
                                            <div>
                                                <strong>{match (&s.client_name, is_current) {
                                                    (Some(name), _) => name.clone(),
                                                    (None, true) => "This device".to_owned(),
                                                    (None, false) => "Another booking".to_owned(),
                                                }}</strong>
                                                " · generation " {s.generation}
                                                " · " {if s.active { "active".to_owned() } else { format!("ended ({})", s.revoked_reason.clone().unwrap_or_else(|| "expired".into())) }}
                                            </div>
                                            <div class="muted small">
                                                {s.user_agent.clone().unwrap_or_default()} " · " {s.client_address.clone().unwrap_or_default()}
                                                " · idle limit in " {duration_text(s.idle_expires_at - now)}
                                            </div>
                                            <Show when=move || s.active && !is_current>
                                                <button type="button" class="small-button" on:click={
                                                    let id = id.clone();
                                                    move |_| end(id.clone())
                                                }>"End this booking"</button>
                                            </Show>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="form-error">{e.message}</p> }.into_any(),
                })}
            </Transition>
            </ClientOnly>
            </div>
        </section>
    }
}
