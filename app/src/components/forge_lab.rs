use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Map, Value};

use super::key_card::decode;
use crate::api::{lab_try, ApiError, LabAnswer};
use crate::auth::use_auth;

/// The learner's own key card, taken apart for editing: each part's text as shown, and its
/// base64url as signed (so that an unedited part keeps its exact bytes, and its signature holds).
#[derive(Clone, Default, PartialEq)]
struct Original {
    header: (String, String),
    payload: (String, String),
    signature: String,
}

impl Original {
    fn of(token: &str) -> Self {
        let mut parts = token.split('.');
        let mut part = || {
            let b64 = parts.next().unwrap_or_default().to_owned();
            let text = decode(&b64)
                .and_then(|m| serde_json::to_string_pretty(&m).ok())
                .unwrap_or_default();
            (text, b64)
        };
        let header = part();
        let payload = part();
        Self { header, payload, signature: parts.next().unwrap_or_default().to_owned() }
    }
}

/// A part as the door will see it: the original bytes while the text is unedited.
fn encode(text: &str, original: &(String, String)) -> String {
    if text == original.0 {
        original.1.clone()
    } else {
        URL_SAFE_NO_PAD.encode(text.trim())
    }
}

/// Applies `change` to the JSON in `text` (or to the original's, if the text no longer parses).
fn edit(text: RwSignal<String>, original: &str, change: impl FnOnce(&mut Map<String, Value>)) {
    let mut map: Map<String, Value> = serde_json::from_str(&text.get_untracked())
        .or_else(|_| serde_json::from_str(original))
        .unwrap_or_default();
    change(&mut map);
    text.set(serde_json::to_string_pretty(&map).unwrap_or_default());
}

/// What the learner tried, and where.
#[derive(Clone, Copy, PartialEq)]
enum Present {
    /// The edited token, as shown.
    Edited,
    /// The booking confirmation, from its HttpOnly cookie: the server fetches it, the page
    /// never sees it.
    Confirmation,
}

/// The forge lab: the learner edits their own key card (a claim, the header, the signature) or
/// shows a token at the wrong door, and the server names the rule that refused it.
#[component]
pub fn ForgeLab() -> impl IntoView {
    let auth = use_auth();
    let original =
        Memo::new(move |_| Original::of(&auth.stay().map(|s| s.key_card).unwrap_or_default()));
    let header = RwSignal::new(String::new());
    let payload = RwSignal::new(String::new());
    let signature = RwSignal::new(String::new());
    let door = RwSignal::new("amenity".to_owned());
    let answer = RwSignal::new(None::<Result<LabAnswer, ApiError>>);
    let tried = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let reset = move || {
        let o = original.get_untracked();
        header.set(o.header.0.clone());
        payload.set(o.payload.0.clone());
        signature.set(o.signature.clone());
    };
    // Starts from the key card held now, and again whenever the front desk hands out a new one.
    Effect::new(move |_| {
        original.track();
        reset();
    });
    let token = move || {
        let o = original.get();
        format!(
            "{}.{}.{}",
            encode(&header.get(), &o.header),
            encode(&payload.get(), &o.payload),
            signature.get()
        )
    };
    let try_it = move |what: String, present: Present| {
        let token = token();
        let at = door.get_untracked();
        let shown = match present {
            Present::Edited => "token",
            Present::Confirmation => "confirmation",
        };
        tried.set(what);
        // The previous answer goes, so that an answer on the page is always this try's.
        answer.set(None);
        busy.set(true);
        spawn_local(async move {
            let result = auth
                .protected("Forge lab", || {
                    lab_try(at.clone(), Some(token.clone()), Some(shown.to_owned()), None)
                })
                .await;
            answer.set(Some(result));
            busy.set(false);
        });
    };
    let preset =
        move |label: &'static str,
              apply: fn(RwSignal<String>, RwSignal<String>, RwSignal<String>, &Original)| {
            view! {
                <button type="button" class="small-button" on:click=move |_| {
                    reset();
                    door.set("amenity".to_owned());
                    apply(header, payload, signature, &original.get_untracked());
                    try_it(label.to_owned(), Present::Edited);
                }>{label}</button>
            }
        };
    let edited = move |_| try_it("Your edited token".to_owned(), Present::Edited);
    // DPoP: a proof made (or forged) by this page for the gym, with the key card, tried at the
    // gym's door. The page signs it with this browser's key (or a throwaway one).
    let bound = move || auth.stay().is_some_and(|s| crate::dpop::is_bound(&s.key_card));
    let try_proof = move |what: &'static str, forgery: Forgery| {
        tried.set(what.to_owned());
        answer.set(None);
        busy.set(true);
        let card = auth.stay().map(|s| s.key_card).unwrap_or_default();
        spawn_local(async move {
            let result = forged_proof(&card, forgery).await;
            let result = match result {
                Ok(proofs) => {
                    let mut last = None;
                    for proof in proofs {
                        let call = || {
                            lab_try("proof".into(), Some(card.clone()), None, Some(proof.clone()))
                        };
                        last = Some(auth.protected("Forge lab: a proof", call).await);
                    }
                    last.unwrap_or_else(|| {
                        Err(ApiError::new(crate::api::ErrorCode::Internal, "no proof"))
                    })
                }
                Err(e) => Err(e),
            };
            answer.set(Some(result));
            busy.set(false);
        });
    };
    let proof_button = move |label: &'static str, forgery: Forgery| {
        view! {
            <button type="button" class="small-button" on:click=move |_| try_proof(label, forgery)>{label}</button>
        }
    };
    let wrong_doors = move || {
        view! {
            <button type="button" class="small-button" on:click=move |_| {
                reset();
                door.set("amenity".to_owned());
                try_it("The booking confirmation at a key card door".to_owned(), Present::Confirmation);
            }>"Booking confirmation at an amenity door"</button>
            <button type="button" class="small-button" on:click=move |_| {
                reset();
                door.set("front_desk".to_owned());
                try_it("The key card at the front desk".to_owned(), Present::Edited);
            }>"Key card at the front desk"</button>
        }
    };
    view! {
        <section class="card" aria-labelledby="lab-title" data-testid="forge-lab">
            <h2 id="lab-title">"Forge lab: try what an attacker would"</h2>
            <p class="muted">
                "Your own key card, taken apart. Change a claim, the header or the signature, and show it at a door: the server runs the door's own checks and names the rule that refused it. It only explains your own booking's tokens, opens nothing, and allows 30 tries a minute."
            </p>
            <div class="row presets" role="group" aria-label="Forgeries to try">
                {preset("sub: another guest", |_, p, _, o| edit(p, &o.payload.0, |m| { m.insert("sub".into(), "someone-else".into()); }))}
                {preset("exp: an hour later", |_, p, _, o| edit(p, &o.payload.0, |m| {
                    let exp = m.get("exp").and_then(Value::as_i64).unwrap_or_default();
                    m.insert("exp".into(), (exp + 3600).into());
                }))}
                {preset("aud: another API", |_, p, _, o| edit(p, &o.payload.0, |m| { m.insert("aud".into(), "https://elsewhere.example".into()); }))}
                {preset("alg: none", |h, _, s, o| {
                    edit(h, &o.header.0, |m| { m.insert("alg".into(), "none".into()); });
                    s.set(String::new());
                })}
                {preset("alg: HS256", |h, _, _, o| edit(h, &o.header.0, |m| { m.insert("alg".into(), "HS256".into()); }))}
                {preset("kid: unknown", |h, _, _, o| edit(h, &o.header.0, |m| { m.insert("kid".into(), "not-a-hotel-key".into()); }))}
                {preset("Signature: one character changed", |_, _, s, o| {
                    let mut sig = o.signature.clone();
                    let swap = if sig.starts_with('A') { "B" } else { "A" };
                    if !sig.is_empty() {
                        sig.replace_range(0..1, swap);
                    }
                    s.set(sig);
                })}
                {preset("Unchanged", |_, _, _, _| {})}
                {wrong_doors}
            </div>
            <Show when=bound>
                <div class="row presets" role="group" aria-label="DPoP proofs to try" data-testid="proof-forgeries">
                    <span class="muted">"Your key card is bound to this browser's key. Proofs for the gym's door:"</span>
                    {proof_button("A fresh proof", Forgery::None)}
                    {proof_button("The same proof twice", Forgery::Replayed)}
                    {proof_button("A proof for another URL", Forgery::AnotherUrl)}
                    {proof_button("A proof for another method", Forgery::AnotherMethod)}
                    {proof_button("A proof by another key", Forgery::AnotherKey)}
                    {proof_button("A proof without the key card's hash", Forgery::NoAth)}
                </div>
            </Show>
            <div class="grid-2 lab-fields">
                <label class="stack">
                    <span class="jwt-header">"Header"</span>
                    <textarea rows="5" spellcheck="false" data-testid="lab-header" prop:value=move || header.get() on:input=move |e| header.set(event_target_value(&e))></textarea>
                </label>
                <label class="stack">
                    <span class="jwt-payload">"Payload"</span>
                    <textarea rows="5" spellcheck="false" data-testid="lab-payload" prop:value=move || payload.get() on:input=move |e| payload.set(event_target_value(&e))></textarea>
                </label>
            </div>
            <label class="stack">
                <span class="jwt-signature">"Signature"</span>
                <input type="text" spellcheck="false" data-testid="lab-signature" prop:value=move || signature.get() on:input=move |e| signature.set(event_target_value(&e)) />
            </label>
            <div class="row">
                <label class="check lab-door">
                    "Door: "
                    <select prop:value=move || door.get() on:change=move |e| door.set(event_target_value(&e))>
                        <option value="amenity">"an amenity (key cards)"</option>
                        <option value="front_desk">"the front desk (confirmations)"</option>
                    </select>
                </label>
                <button type="button" class="primary" on:click=edited disabled=move || busy.get()>"Show it at the door"</button>
                <button type="button" on:click=move |_| {
                    reset();
                    door.set("amenity".to_owned());
                }>"Start again from my key card"</button>
            </div>
            <p class="jwt small" data-testid="lab-token">{token}</p>
            <div role="status" aria-live="polite" data-testid="lab-answer">
                {move || answer.get().map(|result| {
                    let what = tried.get();
                    match result {
                        Ok(a) => {
                            let verdict = if a.opens { "every rule holds" } else { "refused" };
                            let rule = a.decided;
                            view! {
                                <div class="lab-answer" class:bad=!a.opens data-rule=rule.rule.clone()>
                                    <p><strong>{what}": " {verdict}</strong> " (rule " <code>{rule.rule.clone()}</code> "): " {a.reason.clone()}</p>
                                    <p>{rule.explanation} " " <a href=rule.rfc target="_blank" rel="noopener">{rule.rfc_label}</a></p>
                                    {(!a.also.is_empty()).then(|| view! {
                                        <p>"Had the signature held, the door would still have refused it:"</p>
                                        <ul data-testid="lab-also">
                                            {a.also.into_iter().map(|r| view! {
                                                <li data-rule=r.rule.clone()>
                                                    <code>{r.rule.clone()}</code> ": " {r.explanation} " "
                                                    <a href=r.rfc target="_blank" rel="noopener">{r.rfc_label}</a>
                                                </li>
                                            }).collect_view()}
                                        </ul>
                                    })}
                                </div>
                            }.into_any()
                        }
                        Err(e) => view! {
                            <div class="lab-answer bad" data-rule=e.error.name()>
                                <p><strong>{what}": "</strong> {e.message}</p>
                            </div>
                        }.into_any(),
                    }
                })}
            </div>
        </section>
    }
}

/// What a proof the lab tries differs in from a genuine one for `GET /amenities/gym`.
#[derive(Clone, Copy, PartialEq)]
enum Forgery {
    None,
    /// The same proof, sent twice (the second answer is the lab's).
    Replayed,
    AnotherUrl,
    AnotherMethod,
    /// Signed by a key made for this try, not the one the key card is bound to.
    AnotherKey,
    /// Without `ath`, the key card's hash.
    NoAth,
}

/// The proofs to send, in order, for `forgery`.
#[cfg(feature = "hydrate")]
async fn forged_proof(card: &str, forgery: Forgery) -> Result<Vec<String>, ApiError> {
    use crate::dpop::{current_key, make_key, sign, Claims};
    let failed = |what: &str| ApiError::new(crate::api::ErrorCode::Internal, what.to_owned());
    let origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
    let mut claims = Claims {
        method: "GET".into(),
        url: format!("{origin}/amenities/gym"),
        access_token: Some(card.to_owned()),
        iat: None,
    };
    let key = match forgery {
        Forgery::AnotherKey => make_key().await.map_err(|_| failed("WebCrypto made no key"))?,
        _ => current_key().await.ok_or_else(|| failed("this browser holds no DPoP key"))?,
    };
    match forgery {
        Forgery::AnotherUrl => claims.url = format!("{origin}/amenities/pool"),
        Forgery::AnotherMethod => claims.method = "POST".into(),
        Forgery::NoAth => claims.access_token = None,
        Forgery::None | Forgery::Replayed | Forgery::AnotherKey => {}
    }
    let (proof, _) = sign(&key, &claims).await.map_err(|_| failed("WebCrypto could not sign"))?;
    Ok(match forgery {
        Forgery::Replayed => vec![proof.clone(), proof],
        _ => vec![proof],
    })
}

/// On the server the lab's proofs are never made (the buttons act once the page has hydrated).
#[cfg(not(feature = "hydrate"))]
async fn forged_proof(_: &str, _: Forgery) -> Result<Vec<String>, ApiError> {
    Err(ApiError::new(crate::api::ErrorCode::Network, "proofs are made in the browser"))
}
