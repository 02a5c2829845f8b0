//! `/device`: where a checked-in guest approves a device (a terminal, a TV) that shows a code
//! instead of a check-in form (RFC 8628). It works before hydration too: looking a code up is a
//! GET form, deciding a plain POST that the server sends back here.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::{device_request, ApiError, ApproveDevice, DeviceRequestInfo};
use crate::components::{duration_text, HydrateLater, Protected, WirePanel};

/// `/device` and `/device?code=XXXX-XXXX` (checked-in guests only).
#[component]
pub fn Device() -> impl IntoView {
    view! {
        <Protected>
            <DeviceApproval />
            // The approval's exchange, as the learner's other pages show theirs.
            <HydrateLater><WirePanel /></HydrateLater>
        </Protected>
    }
}

/// The message for an error code carried back in `?error=` by a no-JavaScript decision.
fn message_for(code: &str) -> &'static str {
    match code {
        "device_code_unknown" => {
            "No device is waiting for that code. Check it, or start again on the device."
        }
        "too_many_requests" => "Too many codes tried. Wait a minute and try again.",
        _ => "Something went wrong. Please try again.",
    }
}

#[component]
fn DeviceApproval() -> impl IntoView {
    let query = use_query_map();
    let code = move || query.read().get("code").unwrap_or_default();
    let decide = ServerAction::<ApproveDevice>::new();
    let request = Resource::new(
        move || (code(), decide.version().get()),
        |(code, _)| async move {
            if code.trim().is_empty() {
                None
            } else {
                Some(device_request(code).await)
            }
        },
    );
    let error = move || match decide.value().get() {
        Some(Err(e)) => Some(message_for(&e.error.name()).to_owned()),
        _ => query.read().get("error").map(|code| message_for(&code).to_owned()),
    };
    view! {
        <section class="hero">
            <h1>"Check in a device"</h1>
            <p class="lede">
                "A terminal or a TV cannot show you a check-in form, so it shows a code and waits. "
                "Type it here, check what asks, and approve: the device gets a key card and a booking "
                "of its own, listed with your bookings."
            </p>
        </section>
        <section class="card narrow">
            <form method="get" action="/device" class="stack">
                <label for="code">"The code your device shows"</label>
                <input id="code" name="code" value=code autocomplete="off"
                    autocapitalize="characters" spellcheck="false" placeholder="BCDF-GHJK" required />
                <button type="submit">"Look it up"</button>
            </form>
            <p class="form-error" role="alert" data-testid="device-error">{error}</p>
        </section>
        <Suspense fallback=|| view! { <p class="muted">"Looking the code up…"</p> }>
            {move || Suspend::new(async move {
                match request.await {
                    None => ().into_any(),
                    Some(Ok(info)) => view! { <DeviceCard info decide /> }.into_any(),
                    Some(Err(e)) => view! { <Refused e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Refused(e: ApiError) -> impl IntoView {
    view! {
        <section class="card narrow" data-testid="device-request">
            <p class="form-error" role="alert">{message_for(&e.error.name())}</p>
        </section>
    }
}

#[component]
fn DeviceCard(info: DeviceRequestInfo, decide: ServerAction<ApproveDevice>) -> impl IntoView {
    let age = (info.expires_at - info.created_at).max(0);
    let pending = info.state == "pending";
    let said = match info.state.as_str() {
        "approved" => "Approved: the device is checking in now.",
        "used" => "Approved, and the device has checked in: its booking is among your bookings.",
        "denied" => "Denied: the device was told no.",
        "expired" => "This code has expired: start again on the device.",
        _ => "",
    };
    let DeviceRequestInfo { user_code, client_id, client_name, requested_from, user_agent, .. } =
        info;
    view! {
        <section class="card narrow" data-testid="device-request" data-state=info.state.clone()>
            <h2>{client_name} " wants to check in as you"</h2>
            <dl class="facts">
                <dt>"Code"</dt><dd><code>{user_code.clone()}</code></dd>
                <dt>"Client"</dt><dd><code>{client_id}</code></dd>
                <dt>"Asked from"</dt><dd>{requested_from.unwrap_or_else(|| "an unknown address".into())}</dd>
                <dt>"Program"</dt><dd>{user_agent.unwrap_or_else(|| "not given".into())}</dd>
                <dt>"Code valid for"</dt><dd>{duration_text(age)} " from when it was asked"</dd>
            </dl>
            <p class="notice warning" role="note">
                <strong>"Only approve a code you started yourself, just now, on a device in front of you. "</strong>
                "If someone sent you this code, or asked you to type it, do not approve it: that is how "
                "device-code phishing works. Whoever holds the device would be checked in as you."
            </p>
            {if pending {
                view! {
                    <ActionForm action=decide attr:class="row">
                        <input type="hidden" name="user_code" value=user_code />
                        <button type="submit" class="primary" name="decision" value="approve">"Approve"</button>
                        <button type="submit" class="danger" name="decision" value="deny">"Deny"</button>
                    </ActionForm>
                }.into_any()
            } else {
                view! { <p role="status" data-testid="device-state">{said}</p> }.into_any()
            }}
        </section>
    }
}
