use leptos::prelude::*;

/// Renders `children` only in the browser, once what surrounds them has hydrated. For panels fed
/// by browser-only data (`LocalResource`s behind the auth context): the server and the hydrating
/// browser then both render nothing there, so hydration cannot disagree about what is inside.
///
/// While the page is still hydrating they are rendered in a task of their own, not in the one
/// that hydrated the panel around them: the timeline and the diagram are each a good part of a
/// page's work, and a phone's main thread is then free for a moment between them (see
/// `HydrateLater`), the last panel's included. Made once the page has hydrated (a page reached by
/// client-side navigation), at once, with no frame painted without them.
#[component]
pub fn ClientOnly(children: ChildrenFn) -> impl IntoView {
    // Asked when made, not in an effect: the last panel's effects run after the page has
    // hydrated, in the task that hydrated it, which would then take these children too. Made
    // after hydration (no HTML of the server's to match), they render at once.
    let mounted = RwSignal::new(untrack(crate::hydrated));
    // Effects run only in the browser, after hydration. The page may have gone by the time the
    // timer fires: `try_set` leaves a disposed signal alone.
    Effect::new(move |_| {
        if !mounted.get_untracked() {
            set_timeout(
                move || {
                    mounted.try_set(true);
                },
                std::time::Duration::ZERO,
            );
        }
    });
    view! { <Show when=move || mounted.get()>{children()}</Show> }
}
