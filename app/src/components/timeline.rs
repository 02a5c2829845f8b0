use leptos::prelude::*;

use crate::api::{session_events, EventInfo};
use crate::auth::use_auth;

/// `hh:mm:ss UTC`: the clock of the timeline and the wire.
pub(crate) fn clock_time(at: i64) -> String {
    let s = at.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s % 3600 / 60, s % 60)
}

fn describe(e: &EventInfo) -> String {
    let what = match e.kind.as_str() {
        "checked_in" => "Checked in: booking opened, confirmation generation 1",
        "refreshed" => "Front desk: confirmation rotated",
        "grace_reissued" => "Front desk: the previous confirmation came back within the grace window; current one handed out again",
        "reuse_detected" => "Theft alarm: an old confirmation came back. Booking cancelled",
        "revoked" => "Booking ended",
        "expired" => "Booking expired",
        "checked_out" => "Checked out",
        "password_changed" => "Password changed; other bookings ended",
        "limits_moved" => "Demo: the booking's limits moved so that it lapses soon",
        "device_approved" => "You approved a device's check-in: it gets a booking of its own",
        "device_denied" => "You denied a device's check-in",
        other => other,
    };
    match &e.detail {
        Some(detail) => format!("{what} ({detail})"),
        None => what.to_owned(),
    }
}

/// This booking's story: the server's event log merged with what this page did.
#[component]
pub fn Timeline() -> impl IntoView {
    let auth = use_auth();
    // Reloaded whenever the booking changes. A failure (e.g. the booking is over) keeps the
    // last list.
    let server = LocalResource::new(move || {
        auth.version.get();
        session_events()
    });
    let last = RwSignal::new(Vec::<EventInfo>::new());
    Effect::new(move |_| {
        if let Some(Ok(events)) = server.get() {
            last.set(events);
        }
    });
    let rows = move || {
        // (time, source: 0 server / 1 page / 2 wire, id unique within its source, class, text)
        let mut rows: Vec<(i64, u8, i64, String, String)> = last
            .get()
            .iter()
            .map(|e| (e.at, 0, e.id, format!("server {}", e.kind), describe(e)))
            .collect();
        rows.extend(
            auth.log
                .get()
                .into_iter()
                .enumerate()
                .map(|(i, e)| (e.at, 1, i as i64, format!("page {}", e.kind), e.text)),
        );
        // The wire's exchanges, on the same clock (numbered as in the wire panel).
        rows.extend(auth.wire.get().into_iter().map(|x| {
            let status = x.status.map_or_else(|| "…".to_owned(), |s| s.to_string());
            let text = format!("#{} {} {} → {status}", x.n, x.method, x.path);
            (x.at, 2, x.n as i64, "wire".to_owned(), text)
        }));
        rows.sort_by_key(|r| (r.0, r.1, r.2));
        rows
    };
    view! {
        <section class="card" aria-labelledby="timeline-title">
            <h2 id="timeline-title">"Timeline of this booking"</h2>
            <p class="muted">"What the front desk recorded (server), what this page did (page), and each request on the wire (wire, numbered as in the wire panel)."</p>
            <ol class="timeline" data-testid="timeline">
                <For each=rows key=|r| (r.1, r.2, r.4.clone()) let:row>
                    <li class=format!("event {}", row.3)>
                        <time>{clock_time(row.0)}</time>
                        <span class="who">{["server", "page", "wire"][row.1 as usize]}</span>
                        <span class="what">{row.4}</span>
                    </li>
                </For>
            </ol>
        </section>
    }
}
