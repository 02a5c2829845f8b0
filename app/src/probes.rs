//! Deliberate failures, compiled only into test builds (feature `test-probes`, which the server's
//! integration tests switch on), so that tests can prove a panic or a stuck request anywhere still
//! gets an answer. Never part of a build that `cargo leptos` makes.

use leptos::prelude::*;

use crate::api::ApiError;

/// A page whose render panics.
pub const PANIC_PAGE: &str = "/__probe/panic";
/// A page that panics inside a `Suspense`, after the render has begun.
pub const PANIC_IN_SUSPENSE_PAGE: &str = "/__probe/panic-in-suspense";
/// A page that never finishes rendering.
pub const SLOW_PAGE: &str = "/__probe/slow";

/// The probe at `path`, if it is one (the 404 page asks).
pub fn page(path: &str) -> Option<AnyView> {
    match path {
        PANIC_PAGE => panic!("a deliberate panic in a page render (test probe)"),
        PANIC_IN_SUSPENSE_PAGE => Some(
            view! {
                <Suspense fallback=|| ()>
                    {Suspend::new(async {
                        panic!("a deliberate panic inside a Suspense (test probe)");
                        #[allow(unreachable_code)]
                        ()
                    })}
                </Suspense>
            }
            .into_any(),
        ),
        SLOW_PAGE => Some(
            view! {
                <Suspense fallback=|| ()>
                    {Suspend::new(async {
                        std::future::pending::<()>().await;
                    })}
                </Suspense>
            }
            .into_any(),
        ),
        _ => None,
    }
}

/// `POST /api/__probe/panic`: a server function that panics.
#[server(prefix = "/api", endpoint = "__probe/panic")]
pub async fn panic_probe() -> Result<(), ApiError> {
    panic!("a deliberate panic in a server function (test probe)")
}

/// `POST /api/__probe/slow`: a server function that never answers.
#[server(prefix = "/api", endpoint = "__probe/slow")]
pub async fn slow_probe() -> Result<(), ApiError> {
    std::future::pending::<()>().await;
    Ok(())
}
