use leptos::prelude::*;

/// Any path no page answers: a real 404, not a 200 with an apology.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "test-probes")]
    if let Some(probe) =
        crate::probes::page(&leptos_router::hooks::use_location().pathname.get_untracked())
    {
        return probe;
    }
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <section class="card">
            <h1>"No such room"</h1>
            <p>"This corridor leads nowhere. " <a href="/">"Back to the lobby"</a></p>
        </section>
    }
    .into_any()
}
