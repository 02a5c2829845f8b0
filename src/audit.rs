//! What the hotel counts and what it writes down: the Prometheus counters of the auth flows and
//! the security events a log shipper collects, one function per thing that happens.
//!
//! Counting goes through the `metrics` facade: without a recorder installed (the server installs
//! one only when `KEYCARD_METRICS_ADDR` is set) every call is a no-op. Label values come from
//! the enums below and nowhere else, so a series can never be named after a guest, a token, an
//! address or a path: the set of series stays small and nothing secret reaches a scrape.
//!
//! Security events are `tracing` events with target `keycard::security` and a field `event`
//! naming the kind (`check_in`, `check_in_refused`, `rotation_refused`, `reuse_detected`,
//! `revocation`, `password_changed`); they carry booking and guest ids, never a token, a password
//! or a username. With `KEYCARD_LOG_FORMAT=json` each is one JSON object on one line.

use std::time::Duration;

use crate::error::AuthError;

/// The target of every security event: what a log shipper filters on.
pub const SECURITY: &str = "keycard::security";

/// How a check-in ended: the `outcome` label of `keycard_check_ins_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckInOutcome {
    /// A new booking.
    CheckedIn,
    /// Wrong username or password (the two are one answer).
    Refused,
    /// A throttle said wait.
    Throttled,
    /// Anything else: a DPoP proof refused, the database down.
    Failed,
}

impl CheckInOutcome {
    /// Every value, for the series created at zero.
    pub const ALL: [Self; 4] = [Self::CheckedIn, Self::Refused, Self::Throttled, Self::Failed];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::CheckedIn => "checked_in",
            Self::Refused => "refused",
            Self::Throttled => "throttled",
            Self::Failed => "failed",
        }
    }

    /// The outcome of a check-in that ended with `result`.
    pub fn of<T>(result: &Result<T, AuthError>) -> Self {
        match result {
            Ok(_) => Self::CheckedIn,
            Err(AuthError::InvalidCredentials) => Self::Refused,
            Err(AuthError::TooManyRequests(_)) => Self::Throttled,
            Err(_) => Self::Failed,
        }
    }
}

/// How a visit to the front desk ended: the `outcome` label of `keycard_rotations_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationOutcome {
    /// A new confirmation, one generation on.
    Rotated,
    /// The current confirmation handed out again inside the grace window (a second tab).
    Grace,
    /// No new key card: expired, revoked, reused, a proof missing, throttled.
    Refused,
}

impl RotationOutcome {
    /// Every value, for the series created at zero.
    pub const ALL: [Self; 3] = [Self::Rotated, Self::Grace, Self::Refused];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::Grace => "grace",
            Self::Refused => "refused",
        }
    }
}

/// Which bookings a revocation ended: the `scope` label of `keycard_revocations_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationScope {
    /// The guest checked out of this booking.
    CheckOut,
    /// The guest ended one other booking from the bookings page.
    OneBooking,
    /// The guest ended every other booking (by hand, or by a new password).
    OtherBookings,
    /// The guest checked out everywhere.
    AllBookings,
    /// An old confirmation turned up again: the booking was cancelled as stolen.
    Theft,
}

impl RevocationScope {
    /// Every value, for the series created at zero.
    pub const ALL: [Self; 5] =
        [Self::CheckOut, Self::OneBooking, Self::OtherBookings, Self::AllBookings, Self::Theft];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::CheckOut => "check_out",
            Self::OneBooking => "one_booking",
            Self::OtherBookings => "other_bookings",
            Self::AllBookings => "all_bookings",
            Self::Theft => "theft",
        }
    }
}

/// Which limit said wait: the `route` label of `keycard_throttled_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttled {
    /// Check-in, registration and device authorization from one address.
    CheckIn,
    /// Check-in attempts on one account, cluster-wide.
    CheckInAccount,
    /// Front-desk visits from one address.
    FrontDesk,
    /// Device-code look-ups and decisions of one guest.
    Device,
    /// Forge-lab attempts of one booking.
    Lab,
}

impl Throttled {
    /// Every value, for the series created at zero.
    pub const ALL: [Self; 5] =
        [Self::CheckIn, Self::CheckInAccount, Self::FrontDesk, Self::Device, Self::Lab];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::CheckIn => "check_in",
            Self::CheckInAccount => "check_in_account",
            Self::FrontDesk => "front_desk",
            Self::Device => "device",
            Self::Lab => "lab",
        }
    }
}

/// Gives every family its help text (the exporter prints it as `# HELP`) and creates every
/// series at zero: a counter that appears with its first event at 1 shows Prometheus no
/// increase, and an alert on `increase(...)` would miss that first theft.
pub fn describe() {
    for outcome in CheckInOutcome::ALL {
        metrics::counter!("keycard_check_ins_total", "outcome" => outcome.label()).absolute(0);
    }
    for outcome in RotationOutcome::ALL {
        metrics::counter!("keycard_rotations_total", "outcome" => outcome.label()).absolute(0);
    }
    metrics::counter!("keycard_reuse_detected_total").absolute(0);
    for scope in RevocationScope::ALL {
        metrics::counter!("keycard_revocations_total", "scope" => scope.label()).absolute(0);
    }
    for limit in Throttled::ALL {
        metrics::counter!("keycard_throttled_total", "route" => limit.label()).absolute(0);
    }
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!("keycard_check_ins_total", "Check-ins by outcome.");
    describe_counter!(
        "keycard_rotations_total",
        "Visits to the front desk (refresh token exchanges) by outcome."
    );
    describe_counter!(
        "keycard_reuse_detected_total",
        "Old booking confirmations shown again: a theft, or a client that lost an answer."
    );
    describe_counter!("keycard_revocations_total", "Bookings ended, by what ended them.");
    describe_counter!("keycard_throttled_total", "Requests a rate limit refused, by limit.");
    describe_histogram!(
        "keycard_password_hash_seconds",
        Unit::Seconds,
        "Time to hash or verify one password (Argon2id), by operation."
    );
}

/// A check-in ended with `outcome`; `guest` and `booking` when it made one.
pub fn check_in(outcome: CheckInOutcome, guest: Option<&str>, booking: Option<&str>) {
    metrics::counter!("keycard_check_ins_total", "outcome" => outcome.label()).increment(1);
    match outcome {
        CheckInOutcome::CheckedIn => tracing::info!(
            target: SECURITY,
            event = "check_in",
            guest = guest.unwrap_or(""),
            booking = booking.unwrap_or(""),
            "checked in"
        ),
        CheckInOutcome::Refused => {
            tracing::info!(target: SECURITY, event = "check_in_refused", "check-in refused")
        }
        CheckInOutcome::Throttled | CheckInOutcome::Failed => {}
    }
}

/// A visit to the front desk ended with `outcome`; `why` says what refused it.
pub fn rotation(outcome: RotationOutcome, booking: Option<&str>, why: Option<&AuthError>) {
    metrics::counter!("keycard_rotations_total", "outcome" => outcome.label()).increment(1);
    if outcome == RotationOutcome::Refused {
        // Throttled visits are counted by the throttle (a line each would flood the log), and
        // a reuse has its own event.
        let own_event =
            |e: &&AuthError| matches!(e, AuthError::TooManyRequests(_) | AuthError::ReuseDetected);
        if let Some(e) = why.filter(|e| !own_event(e)) {
            tracing::info!(
                target: SECURITY,
                event = "rotation_refused",
                booking = booking.unwrap_or(""),
                reason = %e,
                "front desk refused a confirmation"
            );
        }
    }
}

/// An old confirmation of `booking` turned up again and the booking was cancelled.
pub fn reuse_detected(booking: &str, generation: i64) {
    metrics::counter!("keycard_reuse_detected_total").increment(1);
    revocation(RevocationScope::Theft, None, &[booking]);
    tracing::warn!(
        target: SECURITY,
        event = "reuse_detected",
        booking,
        generation,
        "confirmation reuse detected; booking cancelled"
    );
}

/// `bookings` of `guest` ended, for the reason `scope` names.
pub fn revocation(scope: RevocationScope, guest: Option<&str>, bookings: &[impl AsRef<str>]) {
    if bookings.is_empty() {
        return;
    }
    metrics::counter!("keycard_revocations_total", "scope" => scope.label())
        .increment(bookings.len() as u64);
    for booking in bookings {
        tracing::info!(
            target: SECURITY,
            event = "revocation",
            scope = scope.label(),
            guest = guest.unwrap_or(""),
            booking = booking.as_ref(),
            "booking ended"
        );
    }
}

/// `guest` changed their password; the other bookings ended are reported by [`revocation`].
pub fn password_changed(guest: &str) {
    tracing::info!(target: SECURITY, event = "password_changed", guest, "password changed");
}

/// A rate limit refused a request.
pub fn throttled(limit: Throttled) {
    metrics::counter!("keycard_throttled_total", "route" => limit.label()).increment(1);
}

/// One password hashed (`verify`: checked) in `took`.
pub fn password_hash(verify: bool, took: Duration) {
    let operation = if verify { "verify" } else { "hash" };
    metrics::histogram!("keycard_password_hash_seconds", "operation" => operation)
        .record(took.as_secs_f64());
}
