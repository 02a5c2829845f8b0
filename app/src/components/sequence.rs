//! The learner's own session as a live sequence diagram (SVG, drawn by the app itself), its text
//! alternative, and step mode's switch and Next button. The data comes from `crate::sequence`.

use leptos::prelude::*;

use super::client_only::ClientOnly;

use crate::auth::use_auth;
use crate::sequence::{arrows, explain, narration, Arrow, Kind, Lifeline, Outcome};

/// The latest exchanges drawn (the wire list below keeps them all).
const DRAWN: usize = 30;
/// Layout, in SVG units (1 unit = 1 CSS pixel at the SVG's natural width).
const COLUMN: f64 = 112.0;
const LEFT: f64 = 64.0;
const TOP: f64 = 52.0;
const ROW: f64 = 30.0;

/// The diagram panel: every exchange the wire records, drawn as it happens between the browser,
/// the front desk, the room, the amenities and the bookings, with the article's step beside it.
/// The heading and the explanation are the server's (they paint with the page); what is drawn
/// from the wire, browser-only data, appears once the page has hydrated.
#[component]
pub fn SequencePanel() -> impl IntoView {
    let auth = use_auth();
    let stepping = RwSignal::new(false);
    let drawn = Memo::new(move |_| {
        let wire = auth.wire.get();
        let start = wire.len().saturating_sub(DRAWN);
        arrows(&wire[start..])
    });
    let held = Memo::new(move |_| auth.wire.get().into_iter().find(|x| x.held));
    // Leaving the page lets whatever it held go.
    on_cleanup(move || set_stepping(false));
    view! {
        <section class="card sequence" aria-labelledby="sequence-title" data-testid="sequence">
            <h2 id="sequence-title">"Your session, drawn"</h2>
            <p class="muted">
                "Each request this page makes, as the article draws the flow: from the browser to the front desk, the room or the amenities, what the hotel writes to its bookings, and the answer. The number beside each is the article's step: 1 check-in, 2 access, 3 expiry and refresh, 4 both expired. Click an arrow for its exchange on the wire."
            </p>
            <ClientOnly>
            <label class="check">
                <input
                    type="checkbox"
                    data-testid="step-mode"
                    prop:checked=move || stepping.get()
                    on:change=move |e| {
                        let on = event_target_checked(&e);
                        stepping.set(on);
                        set_stepping(on);
                    }
                />
                " Step mode: hold each request until I press Next"
            </label>
            {move || held.get().map(|x| {
                let left = auth.stay().map(|s| s.expires_at - auth.now.get_untracked());
                view! {
                    <div class="held" role="status" data-testid="held">
                        <p><strong>"Held: " {x.method.clone()} " " <code>{x.path.clone()}</code></strong></p>
                        <p data-testid="held-why">{explain(&x, left)}</p>
                        <button type="button" class="primary" data-testid="step-next" on:click=move |_| next()>"Next: send it"</button>
                    </div>
                }
            })}
            // Focusable, so a keyboard can scroll it on a phone; the list below says it in words.
            <div class="sequence-scroll" tabindex="0" role="group" aria-label="The diagram (scrolls sideways on a narrow screen)">
                {move || diagram(&drawn.get())}
            </div>
            <details class="sequence-words">
                <summary>"The diagram in words"</summary>
                <ol data-testid="sequence-words">
                    {move || narration(&drawn.get()).into_iter().map(|(n, text)| view! {
                        <li><a href={format!("#exchange-{n}")} on:click=move |_| open_exchange(n)>"#" {n}</a> " " {text}</li>
                    }).collect_view()}
                </ol>
            </details>
            </ClientOnly>
        </section>
    }
}

/// The SVG. Hidden from assistive technology: the list in words says the same, with links.
fn diagram(arrows: &[Arrow]) -> impl IntoView {
    let lifelines = Lifeline::drawn(arrows);
    let x_of = |l: Lifeline| {
        LEFT + COLUMN * lifelines.iter().position(|&m| m == l).unwrap_or_default() as f64
    };
    let width = LEFT * 2.0 + COLUMN * (lifelines.len() - 1) as f64;
    let height = TOP + ROW * (arrows.len() as f64 + 0.5);
    let heads = lifelines
        .iter()
        .map(|&l| {
            let x = x_of(l);
            view! {
                <g class="lifeline">
                    <line x1=x y1={TOP - 8.0} x2=x y2=height />
                    <text x=x y=16 text-anchor="middle" class="lifeline-name">{l.label()}</text>
                    {(l == Lifeline::Bookings).then(|| view! {
                        <text x=x y=30 text-anchor="middle" class="lifeline-note">"(database)"</text>
                    })}
                </g>
            }
        })
        .collect_view();
    let mut last_step = None;
    let rows = arrows
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let y = TOP + ROW * (i as f64 + 0.6);
            let (x1, x2) = (x_of(a.from), x_of(a.to));
            let class = format!(
                "arrow {} {}",
                match a.kind {
                    Kind::Request => "request",
                    Kind::Server => "server",
                    Kind::Answer => "answer",
                },
                match a.outcome {
                    Outcome::Pending => "pending",
                    Outcome::Ok => "ok",
                    Outcome::Refused | Outcome::Failed => "refused",
                }
            );
            // The step's badge where a new step begins.
            let badge = (a.kind == Kind::Request && a.step.is_some() && a.step != last_step)
                .then(|| a.step.map(|s| s as u8))
                .flatten();
            if a.kind == Kind::Request {
                last_step = a.step;
            }
            let carried = a.carried.iter().map(|c| c.label()).collect::<Vec<_>>().join(" + ");
            let label = if carried.is_empty() { a.label.clone() } else { format!("{} [{carried}]", a.label) };
            let n = a.exchange;
            let head = if x2 > x1 { x2 - 6.0 } else { x2 + 6.0 };
            let wing = if x2 > x1 { -6.0 } else { 6.0 };
            view! {
                <g class=class data-exchange=n on:click=move |_| open_exchange(n)>
                    {badge.map(|s| view! {
                        <circle class="step-badge" cx=16 cy=y r=10 />
                        <text class="step-number" x=16 y={y + 4.0} text-anchor="middle">{s}</text>
                    })}
                    <line x1=x1 y1=y x2=x2 y2=y />
                    <polyline points={format!("{},{} {},{} {},{}", head + wing, y - 5.0, x2, y, head + wing, y + 5.0)} />
                    <text x={x1.min(x2) + 6.0} y={y - 5.0} class="arrow-label">{label}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg
            class="sequence-diagram"
            data-testid="sequence-diagram"
            aria-hidden="true"
            width=width
            height=height
            viewBox={format!("0 0 {width} {height}")}
        >
            {heads}
            {rows}
        </svg>
    }
}

fn set_stepping(on: bool) {
    #[cfg(feature = "hydrate")]
    crate::wire::watch::set_stepping(on);
    #[cfg(not(feature = "hydrate"))]
    let _ = on;
}

fn next() {
    #[cfg(feature = "hydrate")]
    crate::wire::watch::release_next();
}

/// Opens exchange `n` on the wire and brings it into view.
fn open_exchange(n: usize) {
    #[cfg(feature = "hydrate")]
    {
        let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
        let Some(row) = document.get_element_by_id(&format!("exchange-{n}")) else { return };
        if let Ok(Some(details)) = row.query_selector("details") {
            let _ = details.set_attribute("open", "");
        }
        row.scroll_into_view();
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = n;
}
