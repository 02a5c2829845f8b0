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
/// A page that writes a redirect, a cookie and a header of its own into its answer, then holds
/// its render until [`release_held_page`] (request isolation: what other requests see meanwhile).
pub const HELD_PAGE: &str = "/__probe/held";

/// What the held page writes into its answer.
pub mod held {
    /// Its status.
    pub const STATUS: u16 = 302;
    /// Its `Location`.
    pub const LOCATION: &str = "/room";
    /// Its `Set-Cookie`.
    pub const SET_COOKIE: &str = "probe=held; Path=/";
    /// A header only it writes, and its value.
    pub const HEADER: (&str, &str) = ("x-probe-render", "held");
}

/// Where a request's room door was checked, told in a header of its answer (so a test of the
/// whole router can see that the page routes check it before the render).
pub mod room_door {
    /// The header.
    pub const HEADER: &str = "x-probe-room-door";
    /// Before the render, by the page routes' layer ([`crate::guard::CheckedAhead`]).
    pub const AHEAD: &str = "ahead";
    /// Inside the render or the server function, by [`crate::guard::CheckedIn::from_server_fn`].
    pub const HERE: &str = "here";
}

/// Writes [`room_door::HEADER`] into the answer being built, if there is one.
#[cfg(feature = "ssr")]
pub(crate) fn room_door_checked(where_: &'static str) {
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.insert_header(
            http::HeaderName::from_static(room_door::HEADER),
            http::HeaderValue::from_static(where_),
        );
    }
}

#[cfg(feature = "ssr")]
static HELD_ENTERED: tokio::sync::Notify = tokio::sync::Notify::const_new();
#[cfg(feature = "ssr")]
static HELD_RELEASE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Waits until the held page has written its answer's parts and is holding.
#[cfg(feature = "ssr")]
pub async fn held_page_entered() {
    HELD_ENTERED.notified().await
}

/// Lets the held page finish.
#[cfg(feature = "ssr")]
pub fn release_held_page() {
    HELD_RELEASE.notify_one()
}

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
        #[cfg(feature = "ssr")]
        HELD_PAGE => {
            use http::{HeaderName, HeaderValue, StatusCode};
            let res = expect_context::<leptos_axum::ResponseOptions>();
            res.set_status(StatusCode::from_u16(held::STATUS).expect("a status"));
            res.insert_header(http::header::LOCATION, HeaderValue::from_static(held::LOCATION));
            res.insert_header(http::header::SET_COOKIE, HeaderValue::from_static(held::SET_COOKIE));
            res.insert_header(
                HeaderName::from_static(held::HEADER.0),
                HeaderValue::from_static(held::HEADER.1),
            );
            Some(
                view! {
                    <Suspense fallback=|| ()>
                        {Suspend::new(async {
                            HELD_ENTERED.notify_one();
                            HELD_RELEASE.notified().await;
                            "released"
                        })}
                    </Suspense>
                }
                .into_any(),
            )
        }
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

/// What a server function finds around it: its reactive owner's ancestors, and the address of
/// a page render, if any is reachable from its context (it never should be).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Surroundings {
    /// How many owners its own owner descends from.
    pub ancestors: usize,
    /// The `RequestUrl` a page render provides, if its context reaches one.
    pub page_url: Option<String>,
}

/// `POST /api/__probe/context`: reports [`Surroundings`].
#[server(prefix = "/api", endpoint = "__probe/context")]
pub async fn context_probe() -> Result<Surroundings, ApiError> {
    Ok(Surroundings {
        ancestors: Owner::current().map_or(0, |owner| owner.ancestry().len()),
        page_url: use_context::<leptos_router::location::RequestUrl>()
            .map(|url| url.as_ref().to_owned()),
    })
}

/// `POST /api/__probe/slow`: a server function that never answers.
#[server(prefix = "/api", endpoint = "__probe/slow")]
pub async fn slow_probe() -> Result<(), ApiError> {
    std::future::pending::<()>().await;
    Ok(())
}
