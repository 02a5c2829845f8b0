use leptos::prelude::*;

use crate::auth::use_auth;

/// "1 min 05 s", "6 d 23 h", "expired".
pub fn duration_text(secs: i64) -> String {
    match secs {
        s if s <= 0 => "expired".into(),
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {:02} s", s / 60, s % 60),
        s if s < 86_400 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A labelled bar that empties as `until` approaches.
#[component]
pub fn Countdown(
    label: &'static str,
    #[prop(into)] from: Signal<i64>,
    #[prop(into)] until: Signal<i64>,
    #[prop(optional)] testid: &'static str,
) -> impl IntoView {
    let auth = use_auth();
    let left = move || (until.get() - auth.now.get()).max(0);
    let total = move || (until.get() - from.get()).max(1);
    let percent = move || (left() * 100 / total()).clamp(0, 100);
    view! {
        <div class="countdown" class:expired=move || left() == 0>
            <div class="countdown-label">
                <span>{label}</span>
                <strong data-testid=testid>{move || duration_text(left())}</strong>
            </div>
            // A native progress element: accessible, and no inline style for the CSP to refuse.
            <progress class="bar" aria-label=label max=move || total().to_string() value=move || left().to_string()>
                {move || format!("{}%", percent())}
            </progress>
        </div>
    }
}
