//! Request isolation: every request runs with Leptos' reactive owner of its own, never one
//! another request left behind on the worker thread.
//!
//! Leptos keeps the "current owner" (the node that `use_context` starts from, and that
//! `Owner::new()` makes the parent of a new owner) in a thread-local. A page render starts with
//! `Owner::new_root`, which sets that thread-local and never restores it, and leptos_axum relies
//! on it staying set across the render's `.await`s. On a multi-threaded runtime the next request
//! polled on that worker thread then inherits the page's owner: leptos_axum's static-file
//! fallback found the *page's* `ResponseOptions` and moved its status and `Location` into the
//! file's answer (the page kept its 302 but lost the `Location`); a server function's owner
//! became a child of the page's; and when the page's owner was dropped while such a child was
//! reading context through it, the child's cleanup waited for a lock its own thread held, and
//! the worker thread was gone for good. docs/upstream/leptos-owner-leak.md has the whole story.
//!
//! [`OwnerScopeLayer`] makes the current owner belong to the request instead of the thread: each
//! time the request's future (or its body, which hyper polls after the handler has returned) is
//! polled, the owner the request left current at its previous poll is put back, and whatever
//! was current on the thread before is restored afterwards. A request's first poll starts with
//! no owner at all. So an owner is never shared between requests, whichever route or handler
//! serves them, and none of those failures can occur.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{Request, Response};
use http_body::{Frame, SizeHint};
use leptos::reactive::owner::{Owner, WeakOwner};
use tower::{Layer, Service};

/// The reactive owner a request had current when it last yielded. Weak, as the thread-local it
/// stands in for is: the request's own code decides when its owner goes away.
#[derive(Default)]
struct Slot(Option<WeakOwner>);

impl Slot {
    /// Runs `poll` with this request's own owner current on this thread (or none), then puts
    /// back what was current before.
    fn enter<R>(&mut self, poll: impl FnOnce() -> R) -> R {
        let outside = Owner::current().map(|owner| owner.downgrade());
        make_current(self.0.take());
        let out = poll();
        self.0 = Owner::current().map(|owner| owner.downgrade());
        make_current(outside);
        out
    }
}

/// Makes `owner` the thread's current owner, or leaves none current.
fn make_current(owner: Option<WeakOwner>) {
    match owner.and_then(|owner| owner.upgrade()) {
        Some(owner) => owner.set(),
        None => {
            if let Some(current) = Owner::current() {
                current.unset();
            }
        }
    }
}

/// Gives every request its own reactive owner scope (see the module's comment). Put it outside
/// every layer and handler that may touch Leptos.
#[derive(Clone, Copy, Debug, Default)]
pub struct OwnerScopeLayer;

impl<S> Layer<S> for OwnerScopeLayer {
    type Service = OwnerScope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OwnerScope { inner }
    }
}

/// The service [`OwnerScopeLayer`] wraps around another.
#[derive(Clone, Debug)]
pub struct OwnerScope<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for OwnerScope<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Scoped<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let mut slot = Slot::default();
        // Services may start work as they are called, not only when polled.
        let future = slot.enter(|| self.inner.call(req));
        Scoped { slot, future }
    }
}

pin_project_lite::pin_project! {
    /// A request's future, polled inside the request's own owner scope; its answer's body is
    /// too.
    pub struct Scoped<F> {
        slot: Slot,
        #[pin]
        future: F,
    }
}

impl<F, E> Future for Scoped<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let slot = this.slot;
        let future = this.future;
        match slot.enter(|| future.poll(cx)) {
            Poll::Ready(Ok(res)) => {
                // A streamed page renders on as hyper sends its body: same scope.
                let slot = std::mem::take(slot);
                Poll::Ready(Ok(res.map(|body| Body::new(ScopedBody { slot, body }))))
            }
            other => other,
        }
    }
}

/// An answer's body, read inside its request's owner scope.
struct ScopedBody {
    slot: Slot,
    body: Body,
}

impl http_body::Body for ScopedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let body = &mut this.body;
        this.slot.enter(|| Pin::new(body).poll_frame(cx))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leptos::prelude::{provide_context, use_context};

    #[test]
    fn a_scope_starts_with_no_owner_and_keeps_its_own_between_polls() {
        let leftover = Owner::new();
        leftover.set();
        leftover.with(|| provide_context("another request's"));

        let mut slot = Slot::default();
        slot.enter(|| {
            assert!(Owner::current().is_none(), "a request starts with no owner");
            assert_eq!(use_context::<&str>(), None);
        });
        // The request makes an owner of its own current (as a page render's root does).
        let own = slot.enter(|| {
            let own = Owner::new();
            own.set();
            own.with(|| provide_context("mine"));
            own
        });
        assert_eq!(Owner::current(), Some(leftover.clone()), "the thread's owner is put back");
        slot.enter(|| {
            assert_eq!(Owner::current(), Some(own.clone()));
            assert_eq!(use_context::<&str>(), Some("mine"));
            let child = Owner::new();
            assert_eq!(child.parent(), Some(own.clone()), "its owners are its own children");
        });
        leftover.unset();
    }

    #[test]
    fn an_owner_dropped_by_its_request_is_not_brought_back() {
        let mut slot = Slot::default();
        slot.enter(|| Owner::new().set());
        // The owner was only weakly current, as in Leptos: nothing keeps it alive.
        slot.enter(|| assert!(Owner::current().is_none()));
        assert!(Owner::current().is_none());
    }
}
