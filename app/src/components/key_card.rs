use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use leptos::prelude::*;

use super::timeline::clock_time;
use super::{duration_text, Countdown};
use crate::auth::use_auth;

/// What each claim means, in plain words.
fn explain(claim: &str) -> &'static str {
    match claim {
        "iss" => "issuer: the hotel that cut this card",
        "sub" => "subject: you, by your guest id",
        "aud" => "audience: the doors (API) it opens",
        "exp" => "expires: after this moment no door opens",
        "iat" => "issued at: when the card was cut",
        "nbf" => "not before: it opens nothing until then",
        "jti" => "JWT id: this card's own random number",
        "client_id" => "client: the application it was given to",
        "sid" => "session: the booking this card belongs to",
        "preferred_username" => "your name, for display",
        "cnf" => "confirmation: the thumbprint (jkt) of the key this card is bound to (DPoP); it opens a door only with a fresh proof of that key",
        "typ" => "type: at+jwt marks an access token (a key card)",
        "alg" => "algorithm: EdDSA (Ed25519), checked with the public key",
        "kid" => "key id: which of the hotel's keys signed it (see the JWKS)",
        _ => "",
    }
}

/// A JWT part decoded, if it is base64url JSON.
pub fn decode(part: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// The claims that hold a time (Unix seconds).
const TIME_CLAIMS: [&str; 3] = ["exp", "iat", "nbf"];

/// `at` as a date and time on this computer's clock, e.g. `2026-12-02 14:05:09 (UTC+01:00)`.
/// On the server, whose time zone is not the reader's, in UTC.
fn local_time(at: i64) -> String {
    #[cfg(feature = "hydrate")]
    {
        let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at as f64 * 1000.0));
        let offset = -(d.get_timezone_offset() as i64);
        let sign = if offset < 0 { '-' } else { '+' };
        format!(
            "{}-{:02}-{:02} {:02}:{:02}:{:02} (UTC{sign}{:02}:{:02})",
            d.get_full_year(),
            d.get_month() + 1,
            d.get_date(),
            d.get_hours(),
            d.get_minutes(),
            d.get_seconds(),
            offset.abs() / 60,
            offset.abs() % 60
        )
    }
    #[cfg(not(feature = "hydrate"))]
    clock_time(at)
}

/// "in 1 min 40 s", "2 min ago", "now".
pub fn relative(at: i64, now: i64) -> String {
    match at - now {
        0 => "now".to_owned(),
        d if d > 0 => format!("in {}", duration_text(d)),
        d => format!("{} ago", duration_text(-d)),
    }
}

/// An id-safe form of a claim name.
fn slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}

fn claim_rows(
    prefix: &'static str,
    map: serde_json::Map<String, serde_json::Value>,
) -> impl IntoView {
    let auth = use_auth();
    // The reader's own clock only once hydrated, so that server and browser agree at first.
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    map.into_iter()
        .map(|(name, value)| {
            let why = match explain(&name) {
                "" => "a claim of this deployment's own",
                why => why,
            };
            let tip = format!("{prefix}-{}", slug(&name));
            let time = value.as_i64().filter(|_| TIME_CLAIMS.contains(&name.as_str()));
            view! {
                <tr>
                    <th scope="row">
                        <span class="claim" tabindex="0" aria-describedby=tip.clone()>
                            <code>{name}</code>
                        </span>
                        <span class="tip" role="tooltip" id=tip>{why}</span>
                    </th>
                    <td>
                        <code>{value.to_string()}</code>
                        {time.map(|at| view! {
                            <span class="when">
                                {move || if mounted.get() { local_time(at) } else { clock_time(at) }}
                                " · "
                                <span class="ago">{move || relative(at, auth.now.get())}</span>
                            </span>
                        })}
                    </td>
                </tr>
            }
        })
        .collect_view()
}

/// The key card taken apart: header, payload and signature, each claim explained, and a
/// countdown to expiry.
#[component]
pub fn KeyCardInspector(#[prop(into)] token: Signal<String>) -> impl IntoView {
    let parts = move || {
        let token = token.get();
        let mut it = token.split('.');
        (
            it.next().unwrap_or_default().to_owned(),
            it.next().unwrap_or_default().to_owned(),
            it.next().unwrap_or_default().to_owned(),
        )
    };
    let header = move || decode(&parts().0).unwrap_or_default();
    let payload = move || decode(&parts().1).unwrap_or_default();
    let number = move |name: &'static str| {
        Signal::derive(move || payload().get(name).and_then(|v| v.as_i64()).unwrap_or_default())
    };
    view! {
        <section class="card" id="key-card" aria-labelledby="key-card-title" data-testid="key-card">
            <h2 id="key-card-title">"Your key card (access token)"</h2>
            <p class="muted">
                "A JWT: three base64url parts joined by dots. Anyone can read the first two; only the hotel's private key can make the third. Hover over or tab to a claim's name for what it means."
            </p>
            <p class="jwt" data-testid="jwt">
                <span class="jwt-header">{move || parts().0}</span>"."
                <span class="jwt-payload">{move || parts().1}</span>"."
                <span class="jwt-signature">{move || parts().2}</span>
            </p>
            <Countdown label="Key card expires in" from=number("iat") until=number("exp") testid="key-card-left" />
            <div class="grid-2">
                <div>
                    <h3 class="jwt-header">"Header"</h3>
                    <table class="claims" data-testid="header-claims"><tbody>{move || claim_rows("kc-header", header())}</tbody></table>
                </div>
                <div>
                    <h3 class="jwt-payload">"Payload (claims)"</h3>
                    <table class="claims" data-testid="claims"><tbody>{move || claim_rows("kc-claim", payload())}</tbody></table>
                </div>
            </div>
            <h3 class="jwt-signature">"Signature"</h3>
            <p class="muted">
                "Ed25519 over the first two parts. Change one character anywhere and every door refuses the card."
            </p>
        </section>
    }
}
