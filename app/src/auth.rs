//! The auth context: one per page, provided at the root. It knows where the guest stands
//! ([`Stage`]), holds the key card in memory only (never in web storage or a script-readable
//! cookie), and runs every protected call through one path ([`Auth::protected`]): on
//! `key_card_expired` it goes to the front desk once, shared by every concurrent caller, and
//! retries. Tabs keep each other informed over a `BroadcastChannel`.

use std::future::Future;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::{self, ApiError, BookingInfo, CheckInResponse, ErrorCode, GuestInfo, MeResponse};
use crate::wire::Exchange;

/// Where the guest stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    SignedOut,
    CheckingIn,
    CheckedIn,
    KeyCardExpired,
    AtFrontDesk,
    BookingCancelled,
    /// The booking outlived its idle or absolute limit: both tokens are void (step 4).
    BookingLapsed,
    CheckedOut,
}

impl Stage {
    /// The hotel's words for it.
    pub fn label(self) -> &'static str {
        match self {
            Self::SignedOut => "Not checked in",
            Self::CheckingIn => "Checking in…",
            Self::CheckedIn => "Checked in: key card valid",
            Self::KeyCardExpired => "Key card expired",
            Self::AtFrontDesk => "At the front desk…",
            Self::BookingCancelled => "Booking cancelled",
            Self::BookingLapsed => "Booking lapsed: check in again",
            Self::CheckedOut => "Checked out",
        }
    }

    /// Which of the article's four steps (0-based) the guest is at.
    pub fn step(self) -> usize {
        match self {
            Self::SignedOut | Self::CheckingIn => 0,
            Self::CheckedIn => 1,
            Self::KeyCardExpired | Self::AtFrontDesk => 2,
            Self::BookingCancelled | Self::BookingLapsed | Self::CheckedOut => 3,
        }
    }
}

/// What the page knows of the stay: the key card (in memory) and the booking's metadata. The
/// booking confirmation itself never reaches the page. Its `Debug` leaves the key card out.
#[derive(Clone, PartialEq, Eq)]
pub struct Stay {
    pub key_card: String,
    pub expires_at: i64,
    pub guest: GuestInfo,
    pub booking: BookingInfo,
}

impl std::fmt::Debug for Stay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stay")
            .field("key_card", &crate::api::REDACTED)
            .field("expires_at", &self.expires_at)
            .field("guest", &self.guest)
            .field("booking", &self.booking)
            .finish()
    }
}

impl From<CheckInResponse> for Stay {
    fn from(res: CheckInResponse) -> Self {
        Self {
            key_card: res.access_token,
            expires_at: res.expires_at,
            guest: res.guest,
            booking: res.booking,
        }
    }
}

impl From<MeResponse> for Stay {
    fn from(m: MeResponse) -> Self {
        Self {
            key_card: m.access_token,
            expires_at: m.expires_at,
            guest: m.user,
            booking: m.session,
        }
    }
}

/// One step the page itself took, for the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageEvent {
    pub at: i64,
    pub text: String,
    /// `request`, `ok`, `expired`, `front-desk`, `retry`, `alarm` or `info`.
    pub kind: &'static str,
}

/// What the server said when the page loaded: the stay, if any, and a setting of the server that
/// a stay begun later on the page (check-in, registration) cannot tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrival {
    /// `/api/me` for the cookies the page was loaded with.
    pub me: Result<MeResponse, ApiError>,
    /// Whether the theft and fast-expiry demo controls are on.
    pub demo_controls: bool,
}

/// A stage the page entered by itself, overriding what the key card says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Override {
    CheckingIn,
    AtFrontDesk,
    Cancelled,
    Lapsed,
    CheckedOut,
}

/// The auth context. `Copy`: every field is a reactive handle.
#[derive(Clone, Copy)]
pub struct Auth {
    /// What the server said when the page loaded (resolved on the server, hydrated).
    loaded: Resource<Arrival>,
    /// The stay as the page knows it: `None` until the browser's first effects run (the load's
    /// answer is read from `loaded` until then, and copied here then), `Some(None)` when there is
    /// none (the load had none, or the guest checked out or the booking ended), so the load's
    /// answer never comes back.
    stay: RwSignal<Option<Option<Stay>>>,
    overridden: RwSignal<Option<Override>>,
    /// Page events for the timeline.
    pub log: RwSignal<Vec<PageEvent>>,
    /// The time, ticking each second in the browser.
    pub now: RwSignal<i64>,
    /// Go to the front desk a little before expiry instead of waiting for a 401.
    pub refresh_early: RwSignal<bool>,
    /// Bumped whenever the booking changed, so panels reload.
    pub version: RwSignal<u32>,
    /// Every HTTP exchange the page made, for the wire panel.
    pub wire: RwSignal<Vec<Exchange>>,
}

/// Provides the auth context; call once at the root.
pub fn provide_auth() -> Auth {
    let auth = Auth {
        loaded: Resource::new(
            || (),
            |_| async {
                let me = api::me().await;
                #[cfg(feature = "demo")]
                let demo_controls = api::demo_enabled().await.unwrap_or(false);
                // Built without the demo: nothing to ask.
                #[cfg(not(feature = "demo"))]
                let demo_controls = false;
                Arrival { me, demo_controls }
            },
        ),
        stay: RwSignal::new(None),
        overridden: RwSignal::new(None),
        log: RwSignal::new(Vec::new()),
        now: RwSignal::new(now_secs()),
        refresh_early: RwSignal::new(false),
        version: RwSignal::new(0),
        wire: RwSignal::new(Vec::new()),
    };
    provide_context(auth);
    #[cfg(feature = "hydrate")]
    browser::start(auth);
    auth
}

/// The auth context provided at the root.
pub fn use_auth() -> Auth {
    expect_context::<Auth>()
}

/// Seconds since the epoch, from the browser's or the server's clock.
pub fn now_secs() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        (js_sys::Date::now() / 1000.0) as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default()
    }
}

impl Auth {
    /// Waits for the server's view of the stay (for `<Suspense>`).
    pub fn loaded(&self) -> Resource<Arrival> {
        self.loaded
    }

    /// Whether the server offers the demo controls.
    #[track_caller]
    pub fn demo_controls(&self) -> bool {
        self.loaded.get().is_some_and(|a| a.demo_controls)
    }

    /// The current stay, if checked in. Tracked: in a future spawned from a handler (after an
    /// `.await`, where nothing tracks) read it through `untrack`. (`#[track_caller]` on these
    /// readers: Leptos' debug warnings name the caller's line.)
    #[track_caller]
    pub fn stay(&self) -> Option<Stay> {
        match self.stay.get() {
            Some(known) => known,
            None => self.loaded.get().and_then(|a| a.me.ok()).map(Stay::from),
        }
    }

    /// Where the guest stands now.
    #[track_caller]
    pub fn stage(&self) -> Stage {
        match self.overridden.get() {
            Some(Override::CheckingIn) => return Stage::CheckingIn,
            Some(Override::AtFrontDesk) => return Stage::AtFrontDesk,
            Some(Override::Cancelled) => return Stage::BookingCancelled,
            Some(Override::Lapsed) => return Stage::BookingLapsed,
            Some(Override::CheckedOut) => return Stage::CheckedOut,
            None => {}
        }
        match self.stay() {
            Some(stay) if stay.expires_at <= self.now.get() => Stage::KeyCardExpired,
            Some(_) => Stage::CheckedIn,
            None => match self.loaded.get().map(|a| a.me) {
                Some(Err(e)) if e.error == ErrorCode::KeyCardExpired => Stage::KeyCardExpired,
                Some(Err(e)) if e.error == ErrorCode::SessionExpired => Stage::BookingLapsed,
                Some(Err(e)) if e.error.ends_booking() => Stage::BookingCancelled,
                _ => Stage::SignedOut,
            },
        }
    }

    /// Appends a page event to the timeline.
    pub fn note(&self, kind: &'static str, text: impl Into<String>) {
        let at = now_secs();
        self.log.update(|log| log.push(PageEvent { at, text: text.into(), kind }));
    }

    /// Marks the start of a check-in (for the stage display).
    pub fn checking_in(&self) {
        self.overridden.set(Some(Override::CheckingIn));
    }

    /// Marks the trip to the front desk (for the stage display).
    pub fn at_front_desk(&self) {
        self.overridden.set(Some(Override::AtFrontDesk));
    }

    /// Back from a front desk or a check-in that could not help: the stage follows the stay again.
    pub fn settled(&self) {
        self.overridden.set(None);
    }

    /// Takes a check-in, registration or front-desk answer, and tells the other tabs.
    pub fn checked_in(&self, res: CheckInResponse, announce: bool) {
        self.took(Stay::from(res));
        if announce {
            #[cfg(feature = "hydrate")]
            browser::announce("refreshed");
        }
    }

    /// Takes a fresh `/api/me` answer.
    pub fn reloaded(&self, me: MeResponse) {
        self.took(Stay::from(me));
    }

    fn took(&self, stay: Stay) {
        self.stay.set(Some(Some(stay)));
        self.overridden.set(None);
        self.version.update(|v| *v += 1);
    }

    /// The booking is over: cancelled or revoked, or (`session_expired`, `confirmation_expired`)
    /// lapsed by time.
    pub fn ended(&self, e: &ApiError, announce: bool) {
        // By time, not by anyone's hand: the booking or its last confirmation outlived its limit.
        if matches!(e.error, ErrorCode::SessionExpired | ErrorCode::ConfirmationExpired) {
            self.stay.set(Some(None));
            self.overridden.set(Some(Override::Lapsed));
            self.note("alarm", format!("{}: both tokens are void; check in again", e.message));
            self.version.update(|v| *v += 1);
            if announce {
                #[cfg(feature = "hydrate")]
                browser::announce("lapsed");
            }
        } else {
            self.cancelled(&e.message, announce);
        }
    }

    /// The booking is over (cancelled or revoked).
    pub fn cancelled(&self, why: &str, announce: bool) {
        self.stay.set(Some(None));
        self.overridden.set(Some(Override::Cancelled));
        self.note("alarm", why.to_owned());
        self.version.update(|v| *v += 1);
        if announce {
            #[cfg(feature = "hydrate")]
            browser::announce("cancelled");
        }
    }

    /// The guest checked out. The browser's DPoP key goes with the stay: the next check-in binds
    /// a new one.
    pub fn checked_out(&self, announce: bool) {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(crate::dpop::forget());
        self.stay.set(Some(None));
        self.overridden.set(Some(Override::CheckedOut));
        self.version.update(|v| *v += 1);
        if announce {
            #[cfg(feature = "hydrate")]
            browser::announce("checked_out");
        }
    }

    /// Goes to the front desk: one trip, however many callers ask at once.
    pub async fn front_desk(&self) -> Result<(), ApiError> {
        #[cfg(feature = "hydrate")]
        {
            browser::front_desk(*self).await
        }
        #[cfg(not(feature = "hydrate"))]
        {
            Err(ApiError::new(ErrorCode::Network, "the front desk is visited from the browser"))
        }
    }

    /// Runs a protected call: on an expired key card, one trip to the front desk and one retry.
    /// Every step lands on the timeline.
    pub async fn protected<T, F, Fut>(&self, what: &str, call: F) -> Result<T, ApiError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        self.note("request", format!("{what}: request sent with the key card"));
        let first = call().await;
        let result = match first {
            Err(e) if e.error == ErrorCode::KeyCardExpired => {
                self.note("expired", format!("{what}: 401, the key card has expired"));
                self.front_desk().await?;
                self.note("retry", format!("{what}: retried with the new key card"));
                call().await
            }
            other => other,
        };
        match &result {
            Ok(_) => self.note("ok", format!("{what}: 200")),
            Err(e) if e.error.ends_booking() => self.ended(e, true),
            Err(e) => self.note("alarm", format!("{what}: {}", e.message)),
        }
        result
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    //! Browser-only machinery: the clock, the shared front-desk trip and the tab channel.

    use std::cell::RefCell;

    use futures::future::{FutureExt, LocalBoxFuture, Shared};
    use leptos::prelude::*;
    use wasm_bindgen::prelude::*;

    use super::Auth;
    use crate::api::{self, ApiError, ErrorCode};

    const CHANNEL: &str = "keycard";

    type Trip = Shared<LocalBoxFuture<'static, Result<(), ApiError>>>;

    thread_local! {
        static TRIP: RefCell<Option<Trip>> = const { RefCell::new(None) };
        static CHANNEL_HANDLE: RefCell<Option<web_sys::BroadcastChannel>> = const { RefCell::new(None) };
    }

    pub fn start(auth: Auth) {
        crate::wire::watch::start(auth.wire);
        // The fetch wrapper presents the key card the page holds now (bound ones with DPoP).
        Effect::new(move |_| crate::dpop::set_card(auth.stay().map(|s| s.key_card)));
        // The load's stay becomes the page's own copy as soon as effects run, without telling
        // anyone (it is the same stay, so nothing still hydrating differs): handlers, timers and
        // futures then read a signal, not the load, a resource that a debug build wants read only
        // in an effect (as here) or a `Suspense`.
        Effect::new(move |_| {
            if let Some(arrival) = auth.loaded.get() {
                auth.stay.update_untracked(|stay| {
                    stay.get_or_insert_with(|| arrival.me.ok().map(super::Stay::from));
                });
            }
        });
        // Everything else here can change what the page shows, so it waits until the page has
        // hydrated (see `crate::hydrated`), which happens once.
        Effect::new(move |_| {
            if crate::hydrated() {
                untrack(|| after_hydration(auth));
            }
        });
    }

    fn after_hydration(auth: Auth) {
        // The clock, and the optional early trip to the front desk.
        let _ = set_interval_with_handle(
            move || {
                let now = super::now_secs();
                auth.now.set(now);
                let due = untrack(|| auth.stay()).is_some_and(|s| s.expires_at - now <= 5);
                if auth.refresh_early.get_untracked() && due {
                    leptos::task::spawn_local(async move {
                        let _ = auth.front_desk().await;
                    });
                }
            },
            std::time::Duration::from_secs(1),
        );
        // A page loaded with an expired key card goes straight to the front desk.
        Effect::new(move |_| {
            if let Some(Err(e)) = auth.loaded.get().map(|a| a.me) {
                if e.error == ErrorCode::KeyCardExpired {
                    leptos::task::spawn_local(async move {
                        let _ = auth.front_desk().await;
                    });
                }
            }
        });
        open_channel(auth);
    }

    /// Other tabs.
    fn open_channel(auth: Auth) {
        if let Ok(channel) = web_sys::BroadcastChannel::new(CHANNEL) {
            let on_message =
                Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                    match e.data().as_string().as_deref() {
                        Some("refreshed") => reload(auth),
                        Some("cancelled") => {
                            auth.cancelled("the booking was cancelled in another tab", false)
                        }
                        Some("checked_out") => auth.checked_out(false),
                        Some("lapsed") => auth.ended(
                            &ApiError::new(ErrorCode::SessionExpired, "the booking has expired"),
                            false,
                        ),
                        _ => {}
                    }
                });
            channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            on_message.forget();
            CHANNEL_HANDLE.with(|c| *c.borrow_mut() = Some(channel));
        }
    }

    pub fn announce(message: &str) {
        CHANNEL_HANDLE.with(|c| {
            if let Some(channel) = c.borrow().as_ref() {
                let _ = channel.post_message(&JsValue::from_str(message));
            }
        });
    }

    /// Another tab changed the cookies: ask the server what they say now.
    fn reload(auth: Auth) {
        leptos::task::spawn_local(async move {
            match api::me().await {
                Ok(me) => {
                    auth.note(
                        "info",
                        "another tab visited the front desk; this tab took the new key card",
                    );
                    auth.reloaded(me);
                }
                Err(e) if e.error.ends_booking() => auth.ended(&e, false),
                Err(_) => {}
            }
        });
    }

    pub async fn front_desk(auth: Auth) -> Result<(), ApiError> {
        let trip = TRIP.with(|t| {
            let mut slot = t.borrow_mut();
            if let Some(trip) = slot.as_ref() {
                return trip.clone();
            }
            auth.at_front_desk();
            auth.note(
                "front-desk",
                "at the front desk: showing the booking confirmation (HttpOnly cookie)",
            );
            let trip: Trip = async move {
                let result = api::refresh().await;
                TRIP.with(|t| *t.borrow_mut() = None);
                match result {
                    Ok(res) => {
                        let generation = res.booking.generation;
                        auth.checked_in(res, true);
                        auth.note(
                            "front-desk",
                            format!("new key card and confirmation (generation {generation})"),
                        );
                        Ok(())
                    }
                    Err(e) => {
                        if e.error.ends_booking() {
                            auth.ended(&e, true);
                        } else {
                            auth.settled();
                        }
                        Err(e)
                    }
                }
            }
            .boxed_local()
            .shared();
            *slot = Some(trip.clone());
            trip
        });
        trip.await
    }
}
