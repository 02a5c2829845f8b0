use leptos::prelude::*;

/// Renders `children` only once the page has hydrated. For panels fed by browser-only data
/// (`LocalResource`s behind the auth context): the server and the hydrating browser then both
/// render nothing there, so hydration cannot disagree about what is inside.
#[component]
pub fn ClientOnly(children: ChildrenFn) -> impl IntoView {
    let mounted = RwSignal::new(false);
    // Effects run only in the browser, after hydration.
    Effect::new(move |_| mounted.set(true));
    view! { <Show when=move || mounted.get()>{children()}</Show> }
}
