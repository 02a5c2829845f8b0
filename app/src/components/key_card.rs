use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use leptos::prelude::*;

use super::Countdown;

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
        "typ" => "type: at+jwt marks an access token (a key card)",
        "alg" => "algorithm: EdDSA (Ed25519), checked with the public key",
        "kid" => "key id: which of the hotel's keys signed it (see the JWKS)",
        _ => "",
    }
}

fn decode(part: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

fn claim_rows(map: serde_json::Map<String, serde_json::Value>) -> impl IntoView {
    map.into_iter()
        .map(|(name, value)| {
            let why = explain(&name);
            view! {
                <tr>
                    <th scope="row"><code>{name}</code></th>
                    <td><code>{value.to_string()}</code></td>
                    <td class="muted">{why}</td>
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
        <section class="card" aria-labelledby="key-card-title" data-testid="key-card">
            <h2 id="key-card-title">"Your key card (access token)"</h2>
            <p class="muted">
                "A JWT: three base64url parts joined by dots. Anyone can read the first two; only the hotel's private key can make the third."
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
                    <table class="claims"><tbody>{move || claim_rows(header())}</tbody></table>
                </div>
                <div>
                    <h3 class="jwt-payload">"Payload (claims)"</h3>
                    <table class="claims" data-testid="claims"><tbody>{move || claim_rows(payload())}</tbody></table>
                </div>
            </div>
            <h3 class="jwt-signature">"Signature"</h3>
            <p class="muted">
                "Ed25519 over the first two parts. Change one character anywhere and every door refuses the card."
            </p>
        </section>
    }
}
