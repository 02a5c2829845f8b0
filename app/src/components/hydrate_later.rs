//! Hydration in steps: [`HydrateLater`] and the queue that runs it.
//!
//! Leptos hydrates a page in one go: the main thread is busy from the first node to the last, and
//! on a slow phone the room's panels are a task of well over 200 ms (Lighthouse's Total Blocking
//! Time counts every millisecond a task takes beyond 50, and input waits for all of them). A
//! panel wrapped in `HydrateLater` is rendered by the server as usual, but the browser hydrates
//! it in a task of its own once the rest of the page has hydrated, panels in document order, so
//! the browser can paint and answer input between them. [`crate::hydrated`] turns true only
//! after the last one.
//!
//! What may go inside: views that read signals, contexts and resources created outside, as the
//! room's panels do. Not a `Resource`, `Suspense`, `Transition` or `ErrorBoundary`: each takes a
//! number from a counter that the server and the browser must step through in the same order
//! (the browser finds a resource's data by it), and a panel hydrated later would take its numbers
//! after everything else on the page; the first resource after it would then hydrate with another
//! one's data. A `LocalResource` (browser-only, never sent) is fine, and so is anything a
//! `ClientOnly` inside renders, which is built after hydration, not hydrated. (The top bar, with
//! its `Transition`, cannot be hydrated later for this reason: `/device`, whose lookup is a
//! resource, failed to hydrate when it was.) The same goes for `OnceResource`, `Await` and
//! anything else built on a resource. A resource that finds the wrong data does not always fail
//! loudly (it may show another one's), so keep them outside.
//!
//! Where it may go: where a `<div>` may, since the children sit in one (not inside a `<p>`, a
//! list or a table). Between steps the panels already hydrated answer clicks; the others do
//! nothing until their turn. A page reached by client-side navigation has nothing to hydrate:
//! its panels are built in one go.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use leptos::attr::any_attribute::AnyAttribute;
use leptos::attr::Attribute;
use leptos::html::div;
use leptos::prelude::*;
use leptos::tachys::hydration::Cursor;
use leptos::tachys::renderer::types::{Element, Node};
use leptos::tachys::ssr::StreamBuilder;
use leptos::tachys::view::add_attr::AddAnyAttr;
use leptos::tachys::view::any_view::AnyViewState;
use leptos::tachys::view::{Position, PositionState};

/// Server-rendered `children` that the browser hydrates in a task of their own, after the rest
/// of the page (see the module's comment for what may go inside). They sit in a
/// `<div class="later">`, which `display: contents` takes out of the layout.
#[component]
pub fn HydrateLater(children: Children) -> impl IntoView {
    Later { children: Content::Deferred(children) }
}

/// Hydrates the panels [`HydrateLater`] put aside, one task each, in document order, including
/// those that appear while hydrating others. The page's hydration ([`crate::hydrate`]) awaits
/// it before it calls the page hydrated.
#[cfg(feature = "hydrate")]
pub async fn hydrate_the_rest() {
    while let Some(step) = STEPS.with(|s| s.borrow_mut().pop_front()) {
        next_task().await;
        step();
    }
}

/// Resolves in a new task of the browser's event loop (a zero timer), not a microtask: between
/// the two the browser may paint and handle input.
#[cfg(feature = "hydrate")]
async fn next_task() {
    let timer = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback(&resolve);
        } else {
            let _ = resolve.call0(&wasm_bindgen::JsValue::UNDEFINED);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(timer).await;
}

thread_local! {
    /// Hydrations put aside, oldest first.
    static STEPS: RefCell<VecDeque<Box<dyn FnOnce()>>> = RefCell::default();
}

/// Puts a hydration aside for its own task, or runs it now once the page has hydrated (nothing
/// would run it later).
fn put_aside(step: impl FnOnce() + 'static) {
    // `hydrated()` turns true right after the last step.
    if untrack(crate::hydrated) {
        step();
    } else {
        STEPS.with(|s| s.borrow_mut().push_back(Box::new(step)));
    }
}

type ShellState = <ShellView as Render>::State;
type ShellView = leptos::tachys::html::element::HtmlElement<
    leptos::tachys::html::element::Div,
    (leptos::tachys::html::class::Class<&'static str>,),
    (),
>;

/// The `<div class="later">` around the children, as the browser builds or hydrates it.
fn shell() -> ShellView {
    div().class("later")
}

/// The same, as the server writes it.
const SHELL_OPEN: &str = "<div class=\"later\">";
const SHELL_CLOSE: &str = "</div>";

/// [`HydrateLater`]'s view.
struct Later {
    children: Content,
}

/// The children, made only when they are rendered or hydrated: made any earlier, in the page's
/// first pass, their effects would run before their step and change what they show (a
/// `ClientOnly` inside, say), and the step would find HTML that no longer matches.
enum Content {
    Deferred(Children),
    Made(AnyView),
}

impl Content {
    fn into_view(self) -> AnyView {
        match self {
            // Untracked, as a component's body is: made inside a parent's effect, they must not
            // subscribe it to what they read.
            Content::Deferred(children) => untrack(children),
            Content::Made(view) => view,
        }
    }

    fn made(&mut self) -> &mut AnyView {
        if let Content::Deferred(_) = self {
            let content = std::mem::replace(self, Content::Made(().into_any()));
            *self = Content::Made(content.into_view());
        }
        match self {
            Content::Made(view) => view,
            Content::Deferred(_) => unreachable!("made just above"),
        }
    }
}

/// What a panel put aside needs for its step.
struct Waiting {
    content: Content,
    el: Element,
    owner: Option<Owner>,
}

impl Waiting {
    /// Hydrates the server's HTML inside the shell, under the owner the panel was found in (its
    /// contexts: the auth context and the rest).
    fn hydrate(self) -> AnyViewState {
        let Waiting { content, el, owner } = self;
        let hydrate = move || content.into_view().hydrate_from::<true>(&el);
        match owner {
            Some(owner) => owner.with(hydrate),
            None => hydrate(),
        }
    }
}

/// The shell, and the children: waiting to be hydrated, or hydrated (or built).
struct LaterState {
    children: Rc<RefCell<Option<AnyViewState>>>,
    waiting: Rc<RefCell<Option<Waiting>>>,
    shell: ShellState,
}

impl LaterState {
    /// Hydrates the children now if they are still waiting (a step, or a rebuild that cannot
    /// wait for it).
    fn hydrate_waiting(
        children: &RefCell<Option<AnyViewState>>,
        waiting: &RefCell<Option<Waiting>>,
    ) {
        let Some(waiting) = waiting.borrow_mut().take() else {
            return;
        };
        let state = waiting.hydrate();
        *children.borrow_mut() = Some(state);
    }
}

impl Render for Later {
    type State = LaterState;

    fn build(self) -> Self::State {
        // Nothing to hydrate (client-side navigation): built in one go.
        let shell = shell().build();
        let mut children = self.children.into_view().build();
        if let Some(el) = shell.elements().first() {
            children.mount(el, None);
        }
        LaterState {
            children: Rc::new(RefCell::new(Some(children))),
            waiting: Rc::default(),
            shell,
        }
    }

    fn rebuild(self, state: &mut Self::State) {
        // Still waiting: the server's HTML matches the children it was made from, not these, so
        // those are hydrated first and then brought up to date.
        LaterState::hydrate_waiting(&state.children, &state.waiting);
        if let Some(children) = state.children.borrow_mut().as_mut() {
            self.children.into_view().rebuild(children);
        }
    }
}

impl RenderHtml for Later {
    type AsyncOutput = Self;
    type Owned = Self;

    const MIN_LENGTH: usize = SHELL_OPEN.len() + SHELL_CLOSE.len();

    fn dry_resolve(&mut self) {
        self.children.made().dry_resolve();
    }

    async fn resolve(self) -> Self::AsyncOutput {
        let view = self.children.into_view().resolve().await;
        Later { children: Content::Made(view) }
    }

    fn html_len(&self) -> usize {
        let children = match &self.children {
            Content::Made(view) => view.html_len(),
            // A size hint for the buffer: not worth making the children for.
            Content::Deferred(_) => 0,
        };
        children + Self::MIN_LENGTH
    }

    // Attributes from outside go to the children, as `add_any_attr` gives them; the children
    // are escaped as a `<div>`'s are.
    fn to_html_with_buf(
        self,
        buf: &mut String,
        position: &mut Position,
        _escape: bool,
        mark_branches: bool,
        extra_attrs: Vec<AnyAttribute>,
    ) {
        buf.push_str(SHELL_OPEN);
        *position = Position::FirstChild;
        self.children.into_view().to_html_with_buf(buf, position, true, mark_branches, extra_attrs);
        buf.push_str(SHELL_CLOSE);
        *position = Position::NextChild;
    }

    fn to_html_async_with_buf<const OUT_OF_ORDER: bool>(
        self,
        buf: &mut StreamBuilder,
        position: &mut Position,
        _escape: bool,
        mark_branches: bool,
        extra_attrs: Vec<AnyAttribute>,
    ) where
        Self: Sized,
    {
        buf.push_sync(SHELL_OPEN);
        *position = Position::FirstChild;
        self.children.into_view().to_html_async_with_buf::<OUT_OF_ORDER>(
            buf,
            position,
            true,
            mark_branches,
            extra_attrs,
        );
        buf.push_sync(SHELL_CLOSE);
        *position = Position::NextChild;
    }

    fn hydrate<const FROM_SERVER: bool>(
        self,
        cursor: &Cursor,
        position: &PositionState,
    ) -> Self::State {
        // The shell without children: takes the server's element and moves past it, as the
        // whole element would, leaving what is inside for the step.
        let shell = shell().hydrate::<FROM_SERVER>(cursor, position);
        let children = Rc::new(RefCell::new(None));
        let waiting =
            Rc::new(RefCell::new(shell.elements().into_iter().next().map(|el| Waiting {
                content: self.children,
                el,
                owner: Owner::current(),
            })));
        // Weak: a panel gone before its step (the guest navigated away) is not hydrated.
        let (children_slot, waiting_slot) = (Rc::downgrade(&children), Rc::downgrade(&waiting));
        put_aside(move || {
            if let (Some(children), Some(waiting)) =
                (children_slot.upgrade(), waiting_slot.upgrade())
            {
                LaterState::hydrate_waiting(&children, &waiting);
            }
        });
        LaterState { children, waiting, shell }
    }

    fn into_owned(self) -> Self::Owned {
        self
    }
}

/// Attributes spread onto a `HydrateLater` go to its children, which are then made at once.
impl AddAnyAttr for Later {
    type Output<SomeNewAttr: Attribute> = Self;

    fn add_any_attr<NewAttr: Attribute>(self, attr: NewAttr) -> Self::Output<NewAttr>
    where
        Self::Output<NewAttr>: RenderHtml,
    {
        let view = self.children.into_view().add_any_attr(attr).into_any();
        Later { children: Content::Made(view) }
    }
}

impl Mountable for LaterState {
    fn unmount(&mut self) {
        self.shell.unmount();
    }

    fn mount(&mut self, parent: &Element, marker: Option<&Node>) {
        self.shell.mount(parent, marker);
    }

    fn insert_before_this(&self, child: &mut dyn Mountable) -> bool {
        self.shell.insert_before_this(child)
    }

    fn elements(&self) -> Vec<Element> {
        self.shell.elements()
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn the_server_renders_the_children_in_place_inside_the_wrapper() {
        let owner = Owner::new();
        let html = owner.with(|| {
            view! {
                <p>"before"</p>
                <HydrateLater>
                    <section class="card">"inside"</section>
                    <p>"and more"</p>
                </HydrateLater>
                <p>"after"</p>
            }
            .to_html()
        });
        assert_eq!(
            html,
            "<p>before</p><div class=\"later\"><section class=\"card\">inside</section>\
             <p>and more</p></div><p>after</p>"
        );
    }

    #[test]
    fn the_children_are_made_only_when_rendered() {
        let owner = Owner::new();
        owner.with(|| {
            let made = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let seen = std::sync::Arc::clone(&made);
            let view = view! {
                <HydrateLater>
                    {
                        seen.store(true, std::sync::atomic::Ordering::SeqCst);
                        view! { <p>"inside"</p> }
                    }
                </HydrateLater>
            };
            assert!(!made.load(std::sync::atomic::Ordering::SeqCst), "made with the view");
            let _ = view.to_html();
            assert!(made.load(std::sync::atomic::Ordering::SeqCst), "rendered without being made");
        });
    }
}
