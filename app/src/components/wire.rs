use leptos::prelude::*;
use leptos_router::hooks::use_location;

use super::client_only::ClientOnly;
use super::sequence::SequencePanel;
use super::timeline::clock_time;
use crate::api::{CONFIRMATION_COOKIE, CONFIRMATION_PATH, KEY_CARD_COOKIE};
use crate::auth::use_auth;
use crate::dpop::ProofNote;
use crate::sequence::{curl, har};
use crate::wire::{Exchange, SetCookieNote, WireNote};

/// Every HTTP exchange the page made with the hotel, as OAuth's playgrounds show a flow: drawn as
/// a sequence diagram first, then one line each, opened for the headers that matter and the
/// exchange as a curl command; the whole trace downloads as a HAR file. The headings and
/// explanations are the server's; the exchanges, browser-only data, appear once the page has
/// hydrated.
#[component]
pub fn WirePanel() -> impl IntoView {
    let auth = use_auth();
    // The page's own key card while it is valid: what a copied curl command may carry.
    let key_card = Memo::new(move |_| {
        auth.stay().filter(|s| s.expires_at > auth.now.get()).map(|s| s.key_card)
    });
    view! {
        <SequencePanel />
        <section class="card" aria-labelledby="wire-title" data-testid="wire">
            <h2 id="wire-title">"On the wire"</h2>
            <p class="muted">
                "Every request this page made to the hotel, in order, on the timeline's clock. Open one for the headers that matter. The browser adds the cookies and the Origin itself and lets no script read a Set-Cookie, so the server describes them: names and attributes, never an HttpOnly cookie's value."
            </p>
            <ClientOnly>
            <p>
                <button type="button" data-testid="download-har" on:click=move |_| download_har(&auth.wire.get_untracked())>
                    "Download the trace (HAR)"
                </button>
                " " <span class="muted">"Every exchange as developer tools export them, with every token, proof, password and cookie value taken out."</span>
            </p>
            <Show when=move || !auth.demo_controls()>
                <p class="muted">"The server describes cookies only while the demo controls are on; they are off."</p>
            </Show>
            <ol class="wire" data-testid="wire-list">
                <For
                    each=move || auth.wire.get()
                    key=|x| (x.n, x.status, x.failed.is_some(), x.held)
                    children=move |x| view! { <ExchangeRow x key_card /> }
                />
            </ol>
            </ClientOnly>
        </section>
    }
}

#[component]
fn ExchangeRow(x: Exchange, key_card: Memo<Option<String>>) -> impl IntoView {
    let status = match (x.status, &x.failed) {
        (Some(s), _) => s.to_string(),
        (None, Some(why)) => format!("failed: {why}"),
        (None, None) => "…".to_owned(),
    };
    let class = match x.status {
        Some(s) if s < 400 => "status ok",
        Some(_) => "status bad",
        None => "status",
    };
    let millis = x.millis.map(|ms| format!("{ms} ms"));
    let note = x.note.clone();
    let path = x.path.clone();
    let command = {
        let x = x.clone();
        move || curl(&x, &origin(), key_card.get().as_deref())
    };
    view! {
        <li class="exchange" id={format!("exchange-{}", x.n)} data-testid="exchange" data-path=x.path.clone() data-status=x.status.map(|s| s.to_string())>
            <details>
                <summary>
                    <span class="wire-n">"#" {x.n}</span>
                    <time>{clock_time(x.at)}</time>
                    <strong>{x.method.clone()}</strong>
                    <code class="wire-path">{x.path.clone()}</code>
                    <span class=class>{status}</span>
                    <span class="muted">{millis}</span>
                </summary>
                <div class="wire-detail">
                    <h3>"Request"</h3>
                    <dl class="facts">
                        {header_rows(&x.sent)}
                        {x.proof.clone().map(proof_rows)}
                        {note.clone().map(|n| sent_by_browser(&n, &path))}
                    </dl>
                    <h3>"Answer"</h3>
                    <dl class="facts">
                        {header_rows(&x.got)}
                    </dl>
                    {note.map(|n| set_cookies(n.set_cookies))}
                    <h3>"As a curl command"</h3>
                    <pre class="curl" data-testid="curl">{command.clone()}</pre>
                    <button type="button" on:click=move |_| copy(&command())>"Copy as curl"</button>
                </div>
            </details>
        </li>
    }
}

/// Header lines as `name` / `value` pairs of a definition list.
fn header_rows(headers: &[(String, String)]) -> impl IntoView {
    headers
        .iter()
        .map(|(name, value)| {
            view! {
                <dt><code>{name.clone()}</code></dt>
                <dd><code>{value.clone()}</code></dd>
            }
        })
        .collect_view()
}

/// The DPoP proof the page sent, decoded: a signature by this browser's key over this one
/// request (and, with a key card, over the card's hash).
fn proof_rows(p: ProofNote) -> impl IntoView {
    let short = |s: &str| format!("{}…", s.chars().take(12).collect::<String>());
    view! {
        <dt><code>"dpop"</code></dt>
        <dd data-testid="wire-proof" data-htm=p.htm.clone() data-htu=p.htu.clone()>
            <span class="muted">"a proof, signed by this browser's key (its thumbprint "</span>
            <code>{short(&p.jkt)}</code>
            <span class="muted">"), for this request only:"</span>
            <ul class="proof-claims">
                <li><code>"htm"</code> " " <code>{p.htm.clone()}</code> " the method"</li>
                <li><code>"htu"</code> " " <code>{p.htu.clone()}</code> " the URL, without its query"</li>
                <li><code>"iat"</code> " " <code>{p.iat}</code> " " {clock_time(p.iat)} " on the server's clock: refused after a minute"</li>
                <li><code>"jti"</code> " " <code>{short(&p.jti)}</code> " unique: every instance refuses it a second time"</li>
                {match p.ath.clone() {
                    Some(ath) => view! {
                        <li><code>"ath"</code> " " <code>{short(&ath)}</code> " the key card's SHA-256: the proof goes with this key card only"</li>
                    }.into_any(),
                    None => view! { <li class="muted">"no ath: no key card goes with this request"</li> }.into_any(),
                }}
            </ul>
        </dd>
    }
}

/// What the browser added, as the server saw it, and why the booking confirmation came along or
/// not.
fn sent_by_browser(note: &WireNote, path: &str) -> impl IntoView {
    let cookies =
        if note.cookies.is_empty() { "(none)".to_owned() } else { note.cookies.join(", ") };
    let under_front_desk =
        path == CONFIRMATION_PATH || path.starts_with(&format!("{CONFIRMATION_PATH}/"));
    let why = if note.cookies.iter().any(|c| c == CONFIRMATION_COOKIE) {
        format!("The booking confirmation came along because this path is under its Path={CONFIRMATION_PATH}.")
    } else if under_front_desk {
        "No booking confirmation: this browser holds none (checked out, or never checked in)."
            .to_owned()
    } else {
        format!("No booking confirmation: its cookie has Path={CONFIRMATION_PATH}, so the browser keeps it from every other path.")
    };
    view! {
        <dt><code>"cookie"</code></dt>
        <dd>
            <code data-testid="cookies-sent">{cookies}</code>
            " " <span class="muted">"(names only; sent by the browser, unseen by this page) " {why}</span>
        </dd>
        {note.authorization.clone().map(|a| view! {
            <dt><code>"authorization"</code></dt>
            <dd><code>{a}</code></dd>
        })}
        {note.origin.clone().map(|o| view! {
            <dt><code>"origin"</code></dt>
            <dd><code>{o}</code> " " <span class="muted">"(added by the browser; the server refuses other origins' changes)"</span></dd>
        })}
    }
}

fn set_cookies(list: Vec<SetCookieNote>) -> impl IntoView {
    let here = use_location().pathname.get_untracked();
    let decoded = if here == "/room" { "#key-card" } else { "/room#key-card" };
    (!list.is_empty()).then(|| {
        view! {
            <ul class="set-cookies" data-testid="set-cookies">
                {list.into_iter().map(|c| {
                    let what = match (&c.token, c.generation) {
                        _ if c.cleared => "removed".to_owned(),
                        (Some(kind), Some(g)) => format!("{kind}, generation {g}"),
                        (Some(kind), None) => kind.clone(),
                        (None, _) => String::new(),
                    };
                    let key_card = c.name == KEY_CARD_COOKIE && !c.cleared;
                    view! {
                        <li data-testid="set-cookie" data-name=c.name.clone()>
                            <code>"set-cookie: " {c.attributes()}</code>
                            " " <span class="muted">{what}</span>
                            {key_card.then(|| view! { " " <a href=decoded>"decoded view"</a> })}
                            {c.http_only.then(|| view! {
                                <span class="why-hidden">"Value hidden: HttpOnly means no script can read it, this page included, so an injected script cannot steal it either."</span>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        }
    })
}

/// The page's origin (`http://127.0.0.1:3000`): where a copied command sends its request.
fn origin() -> String {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    String::new()
}

/// Puts `text` on the clipboard (`navigator.clipboard.writeText`, looked up at run time).
fn copy(text: &str) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let clipboard = web_sys::window()
            .and_then(|w| js_sys::Reflect::get(&w.navigator(), &"clipboard".into()).ok())
            .filter(|c| c.is_object());
        let write = clipboard.as_ref().and_then(|c| {
            js_sys::Reflect::get(c, &"writeText".into()).ok()?.dyn_into::<js_sys::Function>().ok()
        });
        if let (Some(clipboard), Some(write)) = (clipboard, write) {
            let _ = write.call1(&clipboard, &text.into());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}

/// Saves the trace as `keycard-trace.har`: a Blob, and a link to it clicked once.
fn download_har(wire: &[Exchange]) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let text = har(wire, &origin()).to_string();
        let parts = js_sys::Array::of1(&text.into());
        let options = web_sys::BlobPropertyBag::new();
        options.set_type("application/json");
        let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else {
            return;
        };
        let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
        let link = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.create_element("a").ok())
            .and_then(|a| a.dyn_into::<web_sys::HtmlElement>().ok());
        if let Some(link) = link {
            let _ = link.set_attribute("href", &url);
            let _ = link.set_attribute("download", "keycard-trace.har");
            link.click();
        }
        let _ = web_sys::Url::revoke_object_url(&url);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (wire, har);
}
