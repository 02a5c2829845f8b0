//! Two faults from one cause: `Owner::new_root` leaves a page's owner current on its thread.
use axum::{body::Body, http::{header::LOCATION, Request}};
use leptos::{prelude::*, reactive::owner::Owner};
use leptos_axum::{file_and_error_handler, generate_route_list, LeptosRoutes};
use leptos_router::{components::{Route, Router, Routes}, path, SsrMode};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::Notify;
use tower::ServiceExt;

static ENTERED: Notify = Notify::const_new();
static RELEASE: Notify = Notify::const_new();

fn app() -> impl IntoView {
    view! { <Router><Routes fallback=|| "404"><Route path=path!("/held") view=Held ssr=SsrMode::Async/></Routes></Router> }
}

/// A page that redirects, and is still rendering when the next request arrives.
#[component]
fn Held() -> impl IntoView {
    leptos_axum::redirect("/elsewhere");
    view! { <Suspense>{Suspend::new(async { ENTERED.notify_one(); RELEASE.notified().await })}</Suspense> }
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).header("accept", "text/html").body(Body::empty()).unwrap()
}

#[tokio::main(flavor = "current_thread")] // one thread: a busy worker of a multi-threaded runtime
async fn main() {
    let site = std::env::temp_dir().join("leptos-owner-leak");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("favicon.ico"), "icon").unwrap();
    let options = LeptosOptions::builder().output_name("repro").site_root(site.to_str().unwrap()).build();
    let router = axum::Router::new()
        .leptos_routes(&options, generate_route_list(app), app)
        .fallback(file_and_error_handler(|_| app()))
        .with_state(options);

    let page = tokio::spawn(router.clone().oneshot(get("/held")));
    ENTERED.notified().await; // the page has called redirect() and is waiting
    let file = router.clone().oneshot(get("/favicon.ico")).await.unwrap();
    println!("GET /favicon.ico -> {} Location {:?}", file.status(), file.headers().get(LOCATION));
    RELEASE.notify_one();
    let page = page.await.unwrap().unwrap();
    println!("GET /held        -> {} Location {:?}", page.status(), page.headers().get(LOCATION));

    // The worker deadlock, in reactive_graph alone: a later request's owner is a child of the
    // page's leftover owner; it reads context through it while the page's request ends.
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let page = Owner::new_root(None); // as a page render does: left current on this thread
        let handoff = Hook(Arc::new(Mutex::new(None)));
        page.with(|| provide_context(handoff.clone()));
        let file = Owner::new(); // leptos_axum's file handler: Owner::new() -> a child of `page`
        *handoff.0.lock().unwrap() = Some(page);
        file.with(|| use_context::<Hook>());
        done.send(()).unwrap();
    });
    match finished.recv_timeout(std::time::Duration::from_secs(3)) {
        Ok(()) => println!("use_context returned"),
        Err(_) => println!("use_context never returned: its thread waits in RwLock::write forever"),
    }
}

/// A context whose clone (which `use_context` runs while holding its read locks) lets the
/// page's request end: another thread drops the page's last handle but one, then it returns.
#[derive(Default)]
struct Hook(Arc<Mutex<Option<Owner>>>);
impl Clone for Hook {
    fn clone(&self) -> Self {
        if let Some(page) = self.0.lock().unwrap().take() {
            std::thread::spawn(move || drop(page)).join().unwrap();
        }
        Hook(self.0.clone())
    }
}
